//! A WeChat look-alike for local development (`WECHAT_SANDBOX=true`), served under
//! `/sandbox`. It follows WeChat's observable behaviour, not an idealised one: answers are
//! JSON labelled `text/plain`, codes are single-use, every login rotates the session_key.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, PoisonError},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use poem::{
    EndpointExt, IntoResponse, Response, Route, handler,
    web::{Data, Json, Query},
};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{
    api::problem::{ProblemCode, problem_response},
    config::Secret,
    crypto,
    domain::{AppId, SessionKey},
};

/// Codes that make the sandbox answer with a WeChat error instead of a session.
const RESERVED_CODES: [(&str, i64, &str); 5] = [
    ("sandbox-busy", -1, "system error"),
    ("sandbox-invalid", 40029, "invalid code"),
    ("sandbox-used", 40163, "code been used"),
    ("sandbox-blocked", 40226, "high risk user"),
    ("sandbox-limited", 45011, "api minute-quota reach limit"),
];

/// Remembered codes are capped so that a long-running sandbox does not grow forever.
const MAX_REMEMBERED_CODES: usize = 100_000;

struct SandboxState {
    appid: AppId,
    secret: Secret,
    inner: Mutex<Simulated>,
}

#[derive(Default)]
struct Simulated {
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

/// The `/sandbox` routes for the given app credentials.
pub fn routes(appid: AppId, secret: Secret) -> Route {
    let state = Arc::new(SandboxState {
        appid,
        secret,
        inner: Mutex::new(Simulated::default()),
    });
    Route::new()
        .at(
            "/sns/jscode2session",
            poem::get(jscode2session).data(state.clone()),
        )
        .at(
            "/cgi-bin/stable_token",
            poem::post(stable_token).data(state.clone()),
        )
        .at(
            "/wxa/business/getuserphonenumber",
            poem::post(phone_number).data(state.clone()),
        )
        .at(
            "/wxa/checksession",
            poem::get(check_session).data(state.clone()),
        )
        .at("/encrypt", poem::post(encrypt).data(state))
}

/// The stable openid WeChat would give user `name` in this app.
pub fn openid_for(appid: &AppId, name: &str) -> String {
    format!("o{}", stable_id(appid.as_str(), name))
}

fn unionid_for(name: &str) -> String {
    format!("oU{}", stable_id("unionid", name))
}

fn stable_id(scope: &str, name: &str) -> String {
    let digest = Sha256::digest(format!("{scope}\0{name}").as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..20])
}

fn wechat_answer(body: Value) -> Response {
    Response::builder()
        .content_type("text/plain")
        .body(body.to_string())
}

fn wechat_error(errcode: i64, errmsg: &str) -> Response {
    wechat_answer(json!({ "errcode": errcode, "errmsg": errmsg }))
}

/// WeChat's answer to a wrong appid, appsecret or grant_type; `None` when all are right.
fn check_credentials(
    state: &SandboxState,
    [appid, secret, grant_type]: [&Option<String>; 3],
    expected_grant: &str,
) -> Option<Response> {
    if appid.as_deref() != Some(state.appid.as_str()) {
        Some(wechat_error(40013, "invalid appid"))
    } else if secret.as_deref() != Some(state.secret.expose()) {
        Some(wechat_error(40125, "invalid appsecret"))
    } else if grant_type.as_deref() != Some(expected_grant) {
        Some(wechat_error(40002, "invalid grant_type"))
    } else {
        None
    }
}

#[derive(Deserialize)]
struct Code2SessionQuery {
    appid: Option<String>,
    secret: Option<String>,
    js_code: Option<String>,
    grant_type: Option<String>,
}

#[handler]
fn jscode2session(
    Query(query): Query<Code2SessionQuery>,
    state: Data<&Arc<SandboxState>>,
) -> Response {
    if let Some(refusal) = check_credentials(
        &state,
        [&query.appid, &query.secret, &query.grant_type],
        "authorization_code",
    ) {
        return refusal;
    }
    let Some(code) = query.js_code.filter(|c| !c.is_empty()) else {
        return wechat_error(41008, "missing code");
    };
    if let Some((_, errcode, errmsg)) = RESERVED_CODES.iter().find(|(c, ..)| *c == code) {
        return wechat_error(*errcode, errmsg);
    }
    let name = code.split('-').next().unwrap_or_default();
    if name.is_empty() {
        return wechat_error(40029, "invalid code");
    }

    let mut simulated = state.inner.lock().unwrap_or_else(PoisonError::into_inner);
    if !simulated.remember_code(&code) {
        return wechat_error(40163, "code been used");
    }
    let openid = openid_for(&state.appid, name);
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
struct StableTokenRequest {
    grant_type: Option<String>,
    appid: Option<String>,
    secret: Option<String>,
    #[serde(default)]
    force_refresh: bool,
}

#[handler]
fn stable_token(
    body: poem::Result<Json<StableTokenRequest>>,
    state: Data<&Arc<SandboxState>>,
) -> Response {
    let Ok(Json(request)) = body else {
        return wechat_error(47001, "data format error");
    };
    if let Some(refusal) = check_credentials(
        &state,
        [&request.appid, &request.secret, &request.grant_type],
        "client_credential",
    ) {
        return refusal;
    }
    let mut simulated = state.inner.lock().unwrap_or_else(PoisonError::into_inner);
    if request.force_refresh || simulated.access_tokens.is_empty() {
        let token = format!("sandbox-token-{}", uuid::Uuid::new_v4().simple());
        simulated.access_tokens.push(token);
    }
    let token = simulated.access_tokens.last().cloned().unwrap_or_default();
    wechat_answer(json!({ "access_token": token, "expires_in": 7200 }))
}

fn token_is_valid(state: &SandboxState, token: Option<&String>) -> bool {
    let simulated = state.inner.lock().unwrap_or_else(PoisonError::into_inner);
    token.is_some_and(|token| simulated.access_tokens.contains(token))
}

/// A stable, plausible mainland number for sandbox user `name`.
fn phone_for(name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    let digits = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % 100_000_000;
    format!("138{digits:08}")
}

#[derive(Deserialize)]
struct PhoneCodeRequest {
    code: Option<String>,
}

#[handler]
fn phone_number(
    Query(query): Query<HashMap<String, String>>,
    body: poem::Result<Json<PhoneCodeRequest>>,
    state: Data<&Arc<SandboxState>>,
) -> Response {
    if !token_is_valid(&state, query.get("access_token")) {
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
    let mut simulated = state.inner.lock().unwrap_or_else(PoisonError::into_inner);
    if !simulated.remember_code(&code) {
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
            "watermark": { "timestamp": chrono::Utc::now().timestamp(), "appid": state.appid.as_str() },
        },
    }))
}

#[handler]
fn check_session(
    Query(query): Query<HashMap<String, String>>,
    state: Data<&Arc<SandboxState>>,
) -> Response {
    if !token_is_valid(&state, query.get("access_token")) {
        return wechat_error(
            40001,
            "invalid credential, access_token is invalid or not latest",
        );
    }
    if query.get("sig_method").map(String::as_str) != Some("hmac_sha256") {
        return wechat_error(87009, "invalid signature method");
    }
    let simulated = state.inner.lock().unwrap_or_else(PoisonError::into_inner);
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
struct EncryptRequest {
    openid: String,
    payload: serde_json::Map<String, Value>,
}

#[handler]
fn encrypt(body: poem::Result<Json<EncryptRequest>>, state: Data<&Arc<SandboxState>>) -> Response {
    let Ok(Json(request)) = body else {
        return problem_response(
            ProblemCode::InvalidRequest,
            "expected {\"openid\": string, \"payload\": object}",
        );
    };
    let session_key = {
        let simulated = state.inner.lock().unwrap_or_else(PoisonError::into_inner);
        simulated.session_keys.get(&request.openid).cloned()
    };
    let Some(session_key) = session_key else {
        return problem_response(
            ProblemCode::NotFound,
            "no sandbox user with this openid has logged in since the sandbox started",
        );
    };
    let mut payload = request.payload;
    payload.insert(
        "watermark".to_owned(),
        json!({ "appid": state.appid.as_str(), "timestamp": chrono::Utc::now().timestamp() }),
    );
    let sealed =
        crypto::encrypt_payload(&session_key, Value::Object(payload).to_string().as_bytes());
    Json(json!({
        "encrypted_data": sealed.encrypted_data_base64(),
        "iv": sealed.iv_base64(),
    }))
    .into_response()
}
