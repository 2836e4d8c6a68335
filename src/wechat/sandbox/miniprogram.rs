//! The mini-program server API as WeChat answers it.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use poem::{
    IntoResponse, Response, handler,
    web::{Data, Json, Query},
};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{
    Refusal, Sandbox, SandboxApp, openid_for, reserved, unionid_for, wechat_answer, wechat_error,
};
use crate::{
    api::problem::{ProblemCode, problem_response},
    crypto,
    domain::{App, SessionKey},
};

/// Remembered codes are capped so that a long-running sandbox does not grow forever.
const MAX_REMEMBERED_CODES: usize = 100_000;

#[derive(Default)]
pub(super) struct Simulated {
    used_codes: HashSet<String>,
    session_keys: HashMap<String, SessionKey>,
    /// Tokens handed out by stable_token; like WeChat's, an old one stays valid after a
    /// forced refresh.
    access_tokens: Vec<String>,
}

impl Simulated {
    fn remember_code(&mut self, code: &str) -> bool {
        if self.used_codes.len() >= MAX_REMEMBERED_CODES {
            self.used_codes.clear();
        }
        self.used_codes.insert(code.to_owned())
    }
}

/// WeChat's answer to a wrong appid, appsecret or grant_type; else the app.
fn check_credentials<'a>(
    sandbox: &'a Sandbox,
    [appid, secret, grant_type]: [&Option<String>; 3],
    expected_grant: &str,
) -> Result<&'a SandboxApp, Refusal> {
    let app = sandbox.authenticate(appid.as_deref(), secret.as_deref())?;
    if grant_type.as_deref() != Some(expected_grant) {
        return Err(Refusal(40002, "invalid grant_type"));
    }
    Ok(app)
}

#[derive(Deserialize)]
pub(super) struct Code2SessionQuery {
    appid: Option<String>,
    secret: Option<String>,
    js_code: Option<String>,
    grant_type: Option<String>,
}

#[handler]
pub(super) fn jscode2session(
    Query(query): Query<Code2SessionQuery>,
    sandbox: Data<&Arc<Sandbox>>,
) -> Response {
    let app = match check_credentials(
        &sandbox,
        [&query.appid, &query.secret, &query.grant_type],
        "authorization_code",
    ) {
        Ok(app) if app.app == App::Miniprogram => app,
        // An Official Account or website appid is no mini program.
        Ok(_) => return wechat_error(40013, "invalid appid"),
        Err(refusal) => return refusal.answer(),
    };
    let Some(code) = query.js_code.filter(|c| !c.is_empty()) else {
        return wechat_error(41008, "missing code");
    };
    if let Some((errcode, errmsg)) = reserved(&code) {
        return wechat_error(errcode, errmsg);
    }
    let name = code.split('-').next().unwrap_or_default();
    if name.is_empty() {
        return wechat_error(40029, "invalid code");
    }

    let mut simulated = sandbox.miniprogram();
    if !simulated.remember_code(&code) {
        return wechat_error(40163, "code been used");
    }
    let openid = openid_for(&app.appid, name);
    let session_key = SessionKey::generate();
    let answer = json!({
        "openid": openid,
        "session_key": session_key.expose_text(),
        "unionid": unionid_for(name),
    });
    simulated.session_keys.insert(openid, session_key);
    wechat_answer(answer)
}

#[derive(Deserialize)]
pub(super) struct StableTokenRequest {
    grant_type: Option<String>,
    appid: Option<String>,
    secret: Option<String>,
    #[serde(default)]
    force_refresh: bool,
}

#[handler]
pub(super) fn stable_token(
    body: poem::Result<Json<StableTokenRequest>>,
    sandbox: Data<&Arc<Sandbox>>,
) -> Response {
    let Ok(Json(request)) = body else {
        return wechat_error(47001, "data format error");
    };
    if let Err(refusal) = check_credentials(
        &sandbox,
        [&request.appid, &request.secret, &request.grant_type],
        "client_credential",
    ) {
        return refusal.answer();
    }
    let mut simulated = sandbox.miniprogram();
    if request.force_refresh || simulated.access_tokens.is_empty() {
        let token = format!("sandbox-token-{}", uuid::Uuid::new_v4().simple());
        simulated.access_tokens.push(token);
    }
    let token = simulated.access_tokens.last().cloned().unwrap_or_default();
    wechat_answer(json!({ "access_token": token, "expires_in": 7200 }))
}

fn token_is_valid(sandbox: &Sandbox, token: Option<&String>) -> bool {
    let simulated = sandbox.miniprogram();
    token.is_some_and(|token| simulated.access_tokens.contains(token))
}

/// The appid stamped on the mini program's payloads (empty when it is not simulated, so
/// that nothing would accept them).
fn miniprogram_appid(sandbox: &Sandbox) -> &str {
    sandbox
        .app_of_kind(App::Miniprogram)
        .map(|app| app.appid.as_str())
        .unwrap_or_default()
}

/// A stable, plausible mainland number for sandbox user `name`.
fn phone_for(name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    let digits = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % 100_000_000;
    format!("138{digits:08}")
}

#[derive(Deserialize)]
pub(super) struct PhoneCodeRequest {
    code: Option<String>,
}

#[handler]
pub(super) fn phone_number(
    Query(query): Query<HashMap<String, String>>,
    body: poem::Result<Json<PhoneCodeRequest>>,
    sandbox: Data<&Arc<Sandbox>>,
) -> Response {
    if !token_is_valid(&sandbox, query.get("access_token")) {
        return wechat_error(
            40001,
            "invalid credential, access_token is invalid or not latest",
        );
    }
    let code = body
        .ok()
        .and_then(|Json(request)| request.code)
        .unwrap_or_default();
    let Some(name) = code.strip_prefix("phone-").filter(|name| !name.is_empty()) else {
        return wechat_error(40029, "invalid code");
    };
    if !sandbox.miniprogram().remember_code(&code) {
        return wechat_error(40029, "invalid code");
    }
    let phone = phone_for(name);
    wechat_answer(json!({
        "errcode": 0,
        "errmsg": "ok",
        "phone_info": {
            "phoneNumber": phone,
            "purePhoneNumber": phone,
            "countryCode": 86,
            "watermark": { "timestamp": chrono::Utc::now().timestamp(), "appid": miniprogram_appid(&sandbox) },
        },
    }))
}

#[handler]
pub(super) fn check_session(
    Query(query): Query<HashMap<String, String>>,
    sandbox: Data<&Arc<Sandbox>>,
) -> Response {
    if !token_is_valid(&sandbox, query.get("access_token")) {
        return wechat_error(
            40001,
            "invalid credential, access_token is invalid or not latest",
        );
    }
    if query.get("sig_method").map(String::as_str) != Some("hmac_sha256") {
        return wechat_error(87009, "invalid signature method");
    }
    let simulated = sandbox.miniprogram();
    let current = query
        .get("openid")
        .and_then(|openid| simulated.session_keys.get(openid));
    let expected = current.map(|key| crypto::login_state_signature(key, b""));
    if expected.is_some() && expected.as_ref() == query.get("signature") {
        wechat_answer(json!({ "errcode": 0, "errmsg": "ok" }))
    } else {
        wechat_error(87009, "invalid signature")
    }
}

#[derive(Deserialize)]
pub(super) struct EncryptRequest {
    openid: String,
    payload: serde_json::Map<String, Value>,
}

#[handler]
pub(super) fn encrypt(
    body: poem::Result<Json<EncryptRequest>>,
    sandbox: Data<&Arc<Sandbox>>,
) -> Response {
    let Ok(Json(request)) = body else {
        return problem_response(
            ProblemCode::InvalidRequest,
            "expected {\"openid\": string, \"payload\": object}",
        );
    };
    let session_key = sandbox
        .miniprogram()
        .session_keys
        .get(&request.openid)
        .cloned();
    let Some(session_key) = session_key else {
        return problem_response(
            ProblemCode::NotFound,
            "no sandbox user with this openid has logged in since the sandbox started",
        );
    };
    let mut payload = request.payload;
    payload.insert(
        "watermark".to_owned(),
        json!({ "appid": miniprogram_appid(&sandbox), "timestamp": chrono::Utc::now().timestamp() }),
    );
    let sealed =
        crypto::encrypt_payload(&session_key, Value::Object(payload).to_string().as_bytes());
    Json(json!({
        "encrypted_data": sealed.encrypted_data_base64(),
        "iv": sealed.iv_base64(),
    }))
    .into_response()
}
