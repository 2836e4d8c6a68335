//! Stand-ins for the SMS providers on 127.0.0.1: a webhook receiver, and a Tencent Cloud
//! SMS endpoint that checks the TC3-HMAC-SHA256 signature the way Tencent Cloud does (its
//! own implementation here, not the service's) and answers in Tencent Cloud's shapes.

use std::sync::{Arc, Mutex};

use hmac::{Hmac, KeyInit, Mac};
use poem::{
    EndpointExt, Request, Response, Route, Server, handler,
    http::StatusCode,
    listener::{Acceptor, Listener, TcpListener},
    web::{Data, Json},
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const TC_SECRET_ID: &str = "AKIDtestsecretid0000000000000000";
pub const TC_SECRET_KEY: &str = "test-tencentcloud-secret-key-never-shown";
pub const TC_SDK_APP_ID: &str = "1400000001";
pub const TC_SIGN_NAME: &str = "测试签名";
pub const TC_TEMPLATE_ID: &str = "100001";

/// How the fake answers a send.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SmsMode {
    Accept,
    /// Webhook: HTTP 500. Tencent Cloud: HTTP 200 with a `SendStatusSet` entry not `Ok`.
    Refuse,
    /// Tencent Cloud: HTTP 200 with `Response.Error`.
    Error,
}

#[derive(Default)]
struct SmsState {
    /// (phone_number, code, the whole request body)
    messages: Vec<(String, String, Value)>,
    headers: Vec<Vec<(String, String)>>,
    mode: Option<SmsMode>,
    bad_signatures: usize,
}

#[derive(Clone)]
pub struct FakeSms {
    pub url: String,
    state: Arc<Mutex<SmsState>>,
}

impl FakeSms {
    async fn serve(route: Route) -> (String, Arc<Mutex<SmsState>>) {
        let state = Arc::new(Mutex::new(SmsState::default()));
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let address = *acceptor.local_addr()[0].as_socket_addr().unwrap();
        tokio::spawn(Server::new_with_acceptor(acceptor).run(route.data(state.clone())));
        (format!("http://{address}"), state)
    }

    pub async fn webhook() -> Self {
        let (base, state) = Self::serve(Route::new().at("/sms", poem::post(webhook))).await;
        Self {
            url: format!("{base}/sms?token=webhook-url-secret"),
            state,
        }
    }

    pub async fn tencentcloud() -> Self {
        let (url, state) = Self::serve(Route::new().at("/", poem::post(send_sms))).await;
        Self { url, state }
    }

    /// The settings that point the service at this fake.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        if self.url.contains("/sms?") {
            return vec![
                ("SMS_PROVIDER", "webhook".to_owned()),
                ("SMS_WEBHOOK_URL", self.url.clone()),
            ];
        }
        vec![
            ("SMS_PROVIDER", "tencentcloud".to_owned()),
            ("SMS_TENCENTCLOUD_SECRET_ID", TC_SECRET_ID.to_owned()),
            ("SMS_TENCENTCLOUD_SECRET_KEY", TC_SECRET_KEY.to_owned()),
            ("SMS_TENCENTCLOUD_SDK_APP_ID", TC_SDK_APP_ID.to_owned()),
            ("SMS_TENCENTCLOUD_SIGN_NAME", TC_SIGN_NAME.to_owned()),
            ("SMS_TENCENTCLOUD_TEMPLATE_ID", TC_TEMPLATE_ID.to_owned()),
            ("SMS_TENCENTCLOUD_ENDPOINT", self.url.clone()),
        ]
    }

    pub fn set_mode(&self, mode: SmsMode) {
        self.state.lock().unwrap().mode = Some(mode);
    }

    /// The last code the fake received for `phone` (E.164).
    pub fn last_code(&self, phone: &str) -> Option<String> {
        let state = self.state.lock().unwrap();
        state
            .messages
            .iter()
            .rev()
            .find(|(to, _, _)| to == phone)
            .map(|(_, code, _)| code.clone())
    }

    pub fn messages(&self) -> Vec<Value> {
        let state = self.state.lock().unwrap();
        state
            .messages
            .iter()
            .map(|(_, _, body)| body.clone())
            .collect()
    }

    pub fn last_headers(&self) -> Vec<(String, String)> {
        let state = self.state.lock().unwrap();
        state.headers.last().cloned().unwrap_or_default()
    }

    pub fn bad_signatures(&self) -> usize {
        self.state.lock().unwrap().bad_signatures
    }
}

#[handler]
fn webhook(body: Json<Value>, state: Data<&Arc<Mutex<SmsState>>>) -> StatusCode {
    let mut state = state.lock().unwrap();
    if state.mode == Some(SmsMode::Refuse) {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let phone = body["phone_number"].as_str().unwrap_or_default().to_owned();
    let code = body["code"].as_str().unwrap_or_default().to_owned();
    state.messages.push((phone, code, body.0));
    StatusCode::NO_CONTENT
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// What Tencent Cloud computes for a request: the signature over the headers the request
/// names in `SignedHeaders`, with the date of `X-TC-Timestamp` in UTC.
fn expected_signature(request: &Request, body: &[u8], credential: &str, signed: &str) -> String {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let canonical_headers: String = signed
        .split(';')
        .map(|name| format!("{name}:{}\n", header(name).to_lowercase()))
        .collect();
    let canonical = format!(
        "POST\n/\n\n{canonical_headers}\n{signed}\n{}",
        hex(&Sha256::digest(body))
    );
    let timestamp = header("x-tc-timestamp");
    let scope = credential
        .split_once('/')
        .map(|(_, s)| s)
        .unwrap_or_default();
    let date = scope.split('/').next().unwrap_or_default();
    let string_to_sign = format!(
        "TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let key = hmac(format!("TC3{TC_SECRET_KEY}").as_bytes(), date.as_bytes());
    let key = hmac(&key, b"sms");
    let key = hmac(&key, b"tc3_request");
    hex(&hmac(&key, string_to_sign.as_bytes()))
}

fn tc_answer(response: Value) -> Response {
    Response::builder()
        .content_type("application/json")
        .body(json!({ "Response": response }).to_string())
}

#[handler]
fn send_sms(request: &Request, body: Vec<u8>, state: Data<&Arc<Mutex<SmsState>>>) -> Response {
    let mut state = state.lock().unwrap();
    state.headers.push(
        request
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
    );
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let field = |name: &str| {
        authorization
            .split(", ")
            .find_map(|part| {
                part.trim_start_matches("TC3-HMAC-SHA256 ")
                    .strip_prefix(name)
            })
            .unwrap_or_default()
            .to_owned()
    };
    let (credential, signed, signature) = (
        field("Credential="),
        field("SignedHeaders="),
        field("Signature="),
    );
    let timestamp: i64 = request
        .headers()
        .get("x-tc-timestamp")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_default();
    let date = chrono::DateTime::from_timestamp(timestamp, 0)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string();
    let valid = authorization.starts_with("TC3-HMAC-SHA256 ")
        && credential == format!("{TC_SECRET_ID}/{date}/sms/tc3_request")
        && signed.split(';').any(|h| h == "host")
        && signed.split(';').any(|h| h == "content-type")
        && signature == expected_signature(request, &body, &credential, &signed);
    if !valid {
        state.bad_signatures += 1;
        return tc_answer(json!({
            "Error": {"Code": "AuthFailure.SignatureFailure", "Message": "The provided credentials could not be validated."},
            "RequestId": "fake",
        }));
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
    match state.mode {
        Some(SmsMode::Error) => {
            return tc_answer(json!({
                "Error": {"Code": "FailedOperation.TemplateIncorrectOrUnapproved", "Message": "template"},
                "RequestId": "fake",
            }));
        }
        Some(SmsMode::Refuse) => {
            return tc_answer(json!({
                "SendStatusSet": [{"SerialNo": "", "PhoneNumber": body["PhoneNumberSet"][0], "Fee": 0,
                    "SessionContext": "", "Code": "LimitExceeded.PhoneNumberDailyLimit",
                    "Message": "the number of SMS messages sent from a single mobile number every day exceeds the upper limit", "IsoCode": "CN"}],
                "RequestId": "fake",
            }));
        }
        _ => {}
    }
    let phone = body["PhoneNumberSet"][0]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let code = body["TemplateParamSet"][0]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let answer = json!({
        "SendStatusSet": [{"SerialNo": "5000:1045710669157053657849499619", "PhoneNumber": phone,
            "Fee": 1, "SessionContext": "", "Code": "Ok", "Message": "send success", "IsoCode": "CN"}],
        "RequestId": "a0aabda6-cf91-4f3e-a81f-9198114a2279",
    });
    state.messages.push((phone, code, body));
    tc_answer(answer)
}
