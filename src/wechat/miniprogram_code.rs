//! `wxa/getwxacodeunlimit`: the mini-program code a computer shows for sign-in. Unlike
//! every other call it answers image bytes on success and WeChat's JSON only on failure,
//! so it has its own reading of the answer (by Content-Type) on the shared client.

use std::time::Duration;

use tokio::time::Instant;

use super::{AccessToken, WeChatClient, WeChatError, client::error_for};

/// WeChat's codes are tens of KB at the default width; anything this large is not one.
const MAX_IMAGE_BYTES: usize = 2 * 1024 * 1024;
const MAX_ATTEMPTS: u32 = 3;
const API: &str = "getwxacodeunlimit";

/// One try's outcome when it did not succeed.
enum Failure {
    /// errcode -1, or no connection: WeChat did not act on the request.
    Retryable(String),
    Final(WeChatError),
}

impl WeChatClient {
    /// The PNG of the mini-program code that opens `page` with `scene`.
    pub async fn mini_program_code(
        &self,
        token: &AccessToken,
        scene: &str,
        page: &str,
    ) -> Result<Vec<u8>, WeChatError> {
        let deadline = Instant::now() + self.budget();
        let attempts = async {
            let mut attempt = 1;
            loop {
                let started = std::time::Instant::now();
                let outcome = self.code_attempt(token, scene, page).await;
                let label = match &outcome {
                    Ok(_) => "0".to_owned(),
                    Err(Failure::Retryable(_)) => "retryable".to_owned(),
                    Err(Failure::Final(WeChatError::AccessTokenRejected(errcode)))
                    | Err(Failure::Final(WeChatError::Errcode { errcode, .. })) => {
                        errcode.to_string()
                    }
                    Err(Failure::Final(_)) => "error".to_owned(),
                };
                crate::metrics::wechat_call(API, &label, started.elapsed());
                match outcome {
                    Ok(png) => return Ok(png),
                    Err(Failure::Final(error)) => return Err(error),
                    Err(Failure::Retryable(reason)) if attempt >= MAX_ATTEMPTS => {
                        return Err(WeChatError::Unavailable(format!(
                            "{API}: {reason} after {attempt} attempts"
                        )));
                    }
                    Err(Failure::Retryable(reason)) => {
                        tracing::warn!(api = API, attempt, %reason, "retrying WeChat call");
                        tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                        attempt += 1;
                    }
                }
            }
        };
        tokio::time::timeout_at(deadline, attempts)
            .await
            .unwrap_or_else(|_| Err(WeChatError::Unavailable(format!("{API}: timed out"))))
    }

    async fn code_attempt(
        &self,
        token: &AccessToken,
        scene: &str,
        page: &str,
    ) -> Result<Vec<u8>, Failure> {
        let url = format!("{}/wxa/getwxacodeunlimit", self.base_url);
        let body = serde_json::json!({ "scene": scene, "page": page });
        // `without_url` below: the URL carries the access_token.
        let response = self
            .http
            .post(&url)
            .query(&[("access_token", token.expose())])
            .json(&body)
            .send()
            .await
            .map_err(|error| {
                let connect = error.is_connect();
                let reason = error.without_url().to_string();
                if connect {
                    Failure::Retryable(format!("connection failed: {reason}"))
                } else {
                    Failure::Final(WeChatError::Unavailable(format!("{API}: {reason}")))
                }
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(Failure::Final(WeChatError::BadAnswer(format!(
                "{API}: HTTP {status}"
            ))));
        }
        let is_image = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.trim_start().starts_with("image/"));
        if response
            .content_length()
            .is_some_and(|len| len > MAX_IMAGE_BYTES as u64)
        {
            return Err(Failure::Final(WeChatError::BadAnswer(format!(
                "{API}: oversized answer"
            ))));
        }
        let bytes = response.bytes().await.map_err(|error| {
            Failure::Final(WeChatError::Unavailable(format!(
                "{API}: reading the answer failed: {}",
                error.without_url()
            )))
        })?;
        if bytes.len() > MAX_IMAGE_BYTES {
            return Err(Failure::Final(WeChatError::BadAnswer(format!(
                "{API}: oversized answer"
            ))));
        }
        if is_image {
            return if bytes.starts_with(PNG_SIGNATURE) {
                Ok(bytes.to_vec())
            } else {
                Err(Failure::Final(WeChatError::BadAnswer(format!(
                    "{API}: the image is not a PNG"
                ))))
            };
        }
        let envelope: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|_| Failure::Final(WeChatError::BadAnswer(format!("{API}: not JSON"))))?;
        match envelope.get("errcode").and_then(serde_json::Value::as_i64) {
            Some(-1) => Err(Failure::Retryable("system busy (errcode -1)".to_owned())),
            Some(errcode) if errcode != 0 => Err(Failure::Final(error_for(
                errcode,
                envelope
                    .get("errmsg")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            ))),
            _ => Err(Failure::Final(WeChatError::BadAnswer(format!(
                "{API}: JSON without an errcode instead of an image"
            )))),
        }
    }
}

/// The eight bytes every PNG file starts with.
pub const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
