use std::{
    sync::atomic::{AtomicI64, Ordering},
    time::Duration,
};

use serde::{Deserialize, de::DeserializeOwned};
use tokio::time::Instant;

use crate::{
    config::{AppCredentials, Secret},
    domain::{AppId, JsCode, OpenId, SessionKey, UnionId},
};

/// At most this many tries of one call, and only for failures where WeChat certainly did
/// not act on the request (a refused connection, or its own "system busy").
const MAX_ATTEMPTS: u32 = 3;
/// WeChat's answers are a few hundred bytes; anything far larger is not WeChat.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeChatError {
    #[error("WeChat rejected the code as invalid or expired (40029)")]
    InvalidCode,
    #[error("WeChat says the code was already used (40163)")]
    CodeUsed,
    #[error("WeChat blocked this user as high-risk (40226)")]
    UserBlocked,
    #[error("WeChat rate-limited the request (45011)")]
    RateLimited,
    #[error("WeChat could not be reached: {0}")]
    Unavailable(String),
    #[error("WeChat answered errcode {errcode}: {errmsg}")]
    Errcode { errcode: i64, errmsg: String },
    #[error("WeChat's answer was not the documented JSON: {0}")]
    BadAnswer(String),
    /// 40001/42001: the app's access_token is invalid or expired.
    #[error("WeChat rejected the access_token ({0})")]
    AccessTokenRejected(i64),
}

/// The app's credential for WeChat's server APIs. Not `Debug`: it must not be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    pub fn new(token: String) -> Self {
        Self(token)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A token from `cgi-bin/stable_token` with its lifetime.
pub struct FreshAccessToken {
    pub token: AccessToken,
    pub expires_in: Duration,
}

/// `phone_info` of `getuserphonenumber`, in WeChat's field names.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneInfo {
    pub phone_number: String,
    pub pure_phone_number: String,
    pub country_code: serde_json::Value,
    pub watermark: Option<serde_json::Value>,
}

/// What `jscode2session` tells us about the user behind a code.
pub struct CodeSession {
    pub openid: OpenId,
    pub session_key: SessionKey,
    pub unionid: Option<UnionId>,
    /// When the answer arrived (µs since the epoch, strictly increasing in this process):
    /// WeChat's newest key is the one from the exchange that finished last.
    pub exchanged_us: i64,
}

/// Microseconds since the epoch, never the same or smaller twice in this process, so that
/// two exchanges finishing within one clock tick are still ordered.
fn exchange_timestamp() -> i64 {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = chrono::Utc::now().timestamp_micros();
    let previous = LAST
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
            Some(now.max(last + 1))
        })
        .unwrap_or(now);
    now.max(previous + 1)
}

#[derive(Clone)]
pub struct WeChatClient {
    pub(super) http: reqwest::Client,
    pub(super) base_url: String,
    pub(super) appid: AppId,
    pub(super) secret: Secret,
    budget: Duration,
}

/// One try's outcome when it did not succeed.
enum Failure {
    /// WeChat certainly did not act on the request: trying again is safe.
    Retryable(RetryReason),
    Final(WeChatError),
}

enum RetryReason {
    /// errcode -1, "system busy".
    Busy,
    /// The connection was never established, so the request was never sent.
    ConnectFailed(String),
}

impl std::fmt::Display for RetryReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Busy => f.write_str("system busy (errcode -1)"),
            Self::ConnectFailed(reason) => write!(f, "connection failed: {reason}"),
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

#[derive(Deserialize)]
struct StableTokenWire {
    access_token: String,
    expires_in: u64,
}

#[derive(Deserialize)]
struct PhoneNumberWire {
    phone_info: PhoneInfo,
}

#[derive(Deserialize)]
struct CodeSessionWire {
    openid: String,
    session_key: String,
    unionid: Option<String>,
}

impl WeChatClient {
    /// A client for one app's credentials; `budget` bounds each call, retries included.
    pub fn new(
        budget: Duration,
        base_url: String,
        app: &AppCredentials,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(budget)
            .connect_timeout(budget.min(Duration::from_secs(2)))
            .user_agent(concat!("wechat-auth/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            base_url,
            appid: app.appid.clone(),
            secret: app.secret.clone(),
            budget,
        })
    }

    /// The same connection pool and time budget, speaking for another app.
    pub fn for_app(&self, app: &AppCredentials) -> Self {
        Self {
            appid: app.appid.clone(),
            secret: app.secret.clone(),
            ..self.clone()
        }
    }

    pub fn appid(&self) -> &AppId {
        &self.appid
    }

    /// The most one call may take, retries included.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// `sns/jscode2session`: trades a `wx.login` code for the user's openid and session_key.
    pub async fn code_to_session(&self, code: &JsCode) -> Result<CodeSession, WeChatError> {
        let url = format!("{}/sns/jscode2session", self.base_url);
        let wire: CodeSessionWire = self
            .call("jscode2session", || {
                self.http.get(&url).query(&[
                    ("appid", self.appid.as_str()),
                    ("secret", self.secret.expose()),
                    ("js_code", code.as_str()),
                    ("grant_type", "authorization_code"),
                ])
            })
            .await?;
        let exchanged_us = exchange_timestamp();
        let bad = |what: &str| WeChatError::BadAnswer(format!("jscode2session returned {what}"));
        Ok(CodeSession {
            exchanged_us,
            openid: OpenId::parse(&wire.openid).map_err(|_| bad("a malformed openid"))?,
            session_key: SessionKey::parse(&wire.session_key)
                .map_err(|_| bad("a malformed session_key"))?,
            unionid: match wire.unionid.as_deref() {
                None | Some("") => None,
                Some(raw) => Some(UnionId::parse(raw).map_err(|_| bad("a malformed unionid"))?),
            },
        })
    }

    /// `cgi-bin/stable_token`: every caller gets the same token while it is valid, so
    /// several instances may ask without knocking each other out (unlike `cgi-bin/token`).
    /// `force_refresh` is rationed by WeChat: use it only after a confirmed rejection.
    pub async fn stable_token(&self, force_refresh: bool) -> Result<FreshAccessToken, WeChatError> {
        let url = format!("{}/cgi-bin/stable_token", self.base_url);
        let body = serde_json::json!({
            "grant_type": "client_credential",
            "appid": self.appid.as_str(),
            "secret": self.secret.expose(),
            "force_refresh": force_refresh,
        });
        let wire: StableTokenWire = self
            .call("stable_token", || self.http.post(&url).json(&body))
            .await?;
        if wire.access_token.is_empty() || wire.expires_in == 0 {
            return Err(WeChatError::BadAnswer(
                "stable_token returned no token".to_owned(),
            ));
        }
        Ok(FreshAccessToken {
            token: AccessToken(wire.access_token),
            expires_in: Duration::from_secs(wire.expires_in),
        })
    }

    /// `wxa/business/getuserphonenumber`: the phone number behind getPhoneNumber's code.
    pub async fn phone_number(
        &self,
        token: &AccessToken,
        code: &JsCode,
    ) -> Result<PhoneInfo, WeChatError> {
        let url = format!("{}/wxa/business/getuserphonenumber", self.base_url);
        let body = serde_json::json!({ "code": code.as_str() });
        let wire: PhoneNumberWire = self
            .call("getuserphonenumber", || {
                self.http
                    .post(&url)
                    .query(&[("access_token", token.expose())])
                    .json(&body)
            })
            .await?;
        Ok(wire.phone_info)
    }

    /// `wxa/checksession`: whether WeChat still holds this session_key for the user.
    /// `signature` is the login-state signature of the empty string.
    pub async fn check_session(
        &self,
        token: &AccessToken,
        openid: &OpenId,
        signature: &str,
    ) -> Result<bool, WeChatError> {
        let url = format!("{}/wxa/checksession", self.base_url);
        let answer: Result<serde_json::Value, _> = self
            .call("checksession", || {
                self.http.get(&url).query(&[
                    ("access_token", token.expose()),
                    ("openid", openid.as_str()),
                    ("signature", signature),
                    ("sig_method", "hmac_sha256"),
                ])
            })
            .await;
        match answer {
            Ok(_) => Ok(true),
            Err(WeChatError::Errcode {
                errcode: INVALID_SIGNATURE,
                ..
            }) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Runs one API call within the time budget, retrying only what is safe to retry.
    pub(super) async fn call<T: DeserializeOwned>(
        &self,
        api: &'static str,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<T, WeChatError> {
        let deadline = Instant::now() + self.budget;
        let attempts = async {
            let mut attempt = 1;
            loop {
                let started = std::time::Instant::now();
                let outcome = self.attempt(api, request()).await;
                crate::metrics::wechat_call(api, &outcome_label(&outcome), started.elapsed());
                match outcome {
                    Ok(answer) => return Ok(answer),
                    Err(Failure::Final(error)) => return Err(error),
                    Err(Failure::Retryable(reason)) if attempt >= MAX_ATTEMPTS => {
                        return Err(WeChatError::Unavailable(format!(
                            "{api}: {reason} after {attempt} attempts"
                        )));
                    }
                    Err(Failure::Retryable(reason)) => {
                        tracing::warn!(api, attempt, %reason, "retrying WeChat call");
                        tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                        attempt += 1;
                    }
                }
            }
        };
        tokio::time::timeout_at(deadline, attempts)
            .await
            .unwrap_or_else(|_| Err(WeChatError::Unavailable(format!("{api}: timed out"))))
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        api: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, Failure> {
        // `without_url` everywhere below: the URL carries the appsecret.
        let response = request.send().await.map_err(|error| {
            if error.is_connect() {
                Failure::Retryable(RetryReason::ConnectFailed(error.without_url().to_string()))
            } else if error.is_timeout() {
                Failure::Final(WeChatError::Unavailable(format!("{api}: timed out")))
            } else {
                Failure::Final(WeChatError::Unavailable(format!(
                    "{api}: {}",
                    error.without_url()
                )))
            }
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(Failure::Final(WeChatError::BadAnswer(format!(
                "{api}: HTTP {status}"
            ))));
        }
        if response
            .content_length()
            .is_some_and(|len| len > MAX_ANSWER_BYTES as u64)
        {
            return Err(Failure::Final(WeChatError::BadAnswer(format!(
                "{api}: oversized answer"
            ))));
        }
        let body = response.bytes().await.map_err(|error| {
            let timed_out = error.is_timeout();
            let reason = format!("{api}: reading the answer failed: {}", error.without_url());
            Failure::Final(if timed_out {
                WeChatError::Unavailable(reason)
            } else {
                WeChatError::BadAnswer(reason)
            })
        })?;
        if body.len() > MAX_ANSWER_BYTES {
            return Err(Failure::Final(WeChatError::BadAnswer(format!(
                "{api}: oversized answer"
            ))));
        }
        // WeChat labels its JSON `text/plain`, so the content type is not consulted.
        let envelope: Envelope = serde_json::from_slice(&body)
            .map_err(|_| Failure::Final(WeChatError::BadAnswer(format!("{api}: not JSON"))))?;
        match envelope.errcode {
            0 => serde_json::from_slice(&body).map_err(|_| {
                Failure::Final(WeChatError::BadAnswer(format!(
                    "{api}: missing or mistyped fields"
                )))
            }),
            -1 => Err(Failure::Retryable(RetryReason::Busy)),
            errcode => Err(Failure::Final(error_for(errcode, envelope.errmsg))),
        }
    }
}

fn outcome_label<T>(outcome: &Result<T, Failure>) -> String {
    match outcome {
        Ok(_) => "0".to_owned(),
        Err(Failure::Retryable(RetryReason::Busy)) => "-1".to_owned(),
        Err(Failure::Retryable(RetryReason::ConnectFailed(_))) => "connect_error".to_owned(),
        Err(Failure::Final(error)) => match error {
            WeChatError::InvalidCode => "40029".to_owned(),
            WeChatError::CodeUsed => "40163".to_owned(),
            WeChatError::UserBlocked => "40226".to_owned(),
            WeChatError::RateLimited => "45011".to_owned(),
            WeChatError::AccessTokenRejected(errcode) | WeChatError::Errcode { errcode, .. } => {
                errcode.to_string()
            }
            WeChatError::Unavailable(_) => "unavailable".to_owned(),
            WeChatError::BadAnswer(_) => "bad_answer".to_owned(),
        },
    }
}

/// checksession's answer when the session_key is no longer the user's current one.
const INVALID_SIGNATURE: i64 = 87009;

pub(super) fn error_for(errcode: i64, errmsg: String) -> WeChatError {
    match errcode {
        40001 | 42001 => WeChatError::AccessTokenRejected(errcode),
        40029 => WeChatError::InvalidCode,
        40163 => WeChatError::CodeUsed,
        40226 => WeChatError::UserBlocked,
        45011 => WeChatError::RateLimited,
        _ => WeChatError::Errcode { errcode, errmsg },
    }
}
