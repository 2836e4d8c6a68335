use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use poem::{
    EndpointExt, Response, Route, Server, handler,
    listener::{Acceptor, Listener, TcpListener},
    web::{Data, Query},
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use wechat_auth::{
    config::Settings,
    crypto,
    domain::{EncryptedPayload, SessionKey},
    startup::Application,
};

pub const APPID: &str = "wxtest0123456789ab";
pub const APP_SECRET: &str = "test-appsecret-never-shown";
pub const OA_APPID: &str = "wxoa0123456789abcd";
pub const OA_SECRET: &str = "test-oa-secret-never-shown";
pub const WEB_APPID: &str = "wxweb0123456789abc";
pub const WEB_SECRET: &str = "test-web-secret-never-shown";
/// How browsers reach the service in tests (only ever used inside URLs we check).
pub const PUBLIC_BASE_URL: &str = "https://auth.example.test";
pub const OPEN_BASE: &str = "https://open.example.test";
/// The allow-listed return URLs.
pub const RETURN_URL: &str = "https://app.example.test/done";
pub const JWT_SECRET: &str = "integration-test-jwt-secret-0123456789";

/// The running service plus everything a test needs to drive and inspect it.
pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    pub wechat: FakeWeChat,
    database: TestDatabase,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts the service with the test defaults overridden by `overrides`.
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    spawn(TestDatabase::create().await, overrides).await
}

/// Starts another instance on the same database and the same WeChat as `other` (several
/// instances behind a load balancer, or a restart with new settings).
pub async fn spawn_app_sharing(other: &TestApp, overrides: &[(&str, &str)]) -> TestApp {
    spawn_with(
        TestDatabase::shared(&other.database),
        other.wechat.clone(),
        overrides,
    )
    .await
}

/// Starts the service on a database the test prepared.
pub async fn spawn_app_on(database: TestDatabase) -> TestApp {
    spawn(database, &[]).await
}

/// Starts the service with `overrides` on a database the test prepared.
pub async fn spawn_app_on_with(database: TestDatabase, overrides: &[(&str, &str)]) -> TestApp {
    spawn(database, overrides).await
}

async fn spawn(database: TestDatabase, overrides: &[(&str, &str)]) -> TestApp {
    spawn_with(database, FakeWeChat::start().await, overrides).await
}

async fn spawn_with(
    database: TestDatabase,
    wechat: FakeWeChat,
    overrides: &[(&str, &str)],
) -> TestApp {
    let mut values: HashMap<String, String> = [
        ("BIND_ADDR", "127.0.0.1:0"),
        ("WECHAT_APPID", APPID),
        ("WECHAT_SECRET", APP_SECRET),
        ("JWT_SECRET", JWT_SECRET),
        ("WECHAT_TIMEOUT_MS", "1500"),
        ("WECHAT_OA_APPID", OA_APPID),
        ("WECHAT_OA_SECRET", OA_SECRET),
        ("WECHAT_WEB_APPID", WEB_APPID),
        ("WECHAT_WEB_SECRET", WEB_SECRET),
        ("PUBLIC_BASE_URL", PUBLIC_BASE_URL),
        ("WECHAT_OPEN_BASE", OPEN_BASE),
        (
            "WEB_RETURN_URLS",
            "https://app.example.test/done,http://localhost:3000/",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    values.insert("WECHAT_API_BASE".to_owned(), wechat.base_url());
    values.insert("DATABASE_URL".to_owned(), database.url.clone());
    for (key, value) in overrides {
        // An empty override removes the setting.
        if value.is_empty() {
            values.remove(*key);
        } else {
            values.insert((*key).to_owned(), (*value).to_owned());
        }
    }
    let settings = Settings::from_values(&values).expect("test settings are valid");
    let application = Application::build(settings)
        .await
        .expect("the service starts");
    let address = format!("http://{}", application.address());
    tokio::spawn(application.run_until_stopped());
    TestApp {
        address,
        http: reqwest::Client::new(),
        wechat,
        database,
    }
}

impl TestApp {
    pub fn database_url(&self) -> String {
        self.database.url.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn post_json(
        &self,
        path: &str,
        body: &Value,
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.http.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request reaches the service")
    }

    /// GETs `path` and parses the JSON answer.
    pub async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn login(&self, code: &str) -> reqwest::Response {
        self.post_json("/api/v1/auth/login", &json!({ "code": code }), None)
            .await
    }

    /// Logs in and returns (access token, openid, user id).
    pub async fn login_ok(&self, code: &str) -> LoggedIn {
        let response = self.login(code).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "login with {code} failed"
        );
        let body: Value = response.json().await.unwrap();
        LoggedIn {
            token: body["access_token"].as_str().unwrap().to_owned(),
            openid: body["user"]["openid"].as_str().unwrap().to_owned(),
            user_id: body["user"]["id"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn me(&self, token: &str) -> reqwest::Response {
        self.http
            .get(self.url("/api/v1/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Seals `payload` the way WeChat does for this user's current session_key.
    pub fn seal(&self, openid: &str, payload: &Value) -> Value {
        seal_with(&self.wechat.session_key(openid), payload)
    }
}

pub fn seal_with(key: &SessionKey, payload: &Value) -> Value {
    sealed_body(&crypto::encrypt_payload(
        key,
        payload.to_string().as_bytes(),
    ))
}

pub fn sealed_body(sealed: &EncryptedPayload) -> Value {
    json!({ "encrypted_data": sealed.encrypted_data_base64(), "iv": sealed.iv_base64() })
}

/// A getPhoneNumber payload as WeChat seals it for our app, stamped now.
pub fn phone_payload() -> Value {
    json!({
        "phoneNumber": "13800138000",
        "purePhoneNumber": "13800138000",
        "countryCode": "86",
        "watermark": watermark(APPID),
    })
}

pub fn watermark(appid: &str) -> Value {
    json!({ "appid": appid, "timestamp": chrono::Utc::now().timestamp() })
}

pub struct LoggedIn {
    pub token: String,
    pub openid: String,
    pub user_id: String,
}

/// Asserts an RFC 9457 answer with the contract's status and code; returns the body.
pub async fn assert_problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "unexpected status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/problem+json"),
        "content type was {content_type}"
    );
    let body: Value = response.json().await.expect("problem body is JSON");
    assert_eq!(body["code"], code, "body: {body}");
    assert_eq!(body["status"], status);
    for field in ["type", "title", "detail"] {
        assert!(body[field].is_string(), "problem lacks {field}: {body}");
    }
    body
}

/// How the fake answers one `jscode2session` call.
#[derive(Clone)]
pub enum Reply {
    /// JSON body labelled `text/plain`, as WeChat does.
    Json(Value),
    /// A raw status and body.
    Raw(u16, &'static str),
    /// Answer only after this long.
    Slow(Duration),
}

#[derive(Default)]
struct FakeState {
    scripted: HashMap<String, VecDeque<Reply>>,
    session_keys: HashMap<String, SessionKey>,
    /// Every session_key handed out per openid, in the order WeChat handed them out.
    key_history: HashMap<String, Vec<SessionKey>>,
    /// How long `jscode2session` waits before answering a code.
    code_delays: HashMap<String, Duration>,
    /// The scope WeChat reports for a web code (default: the app's consent scope).
    web_scopes: HashMap<String, &'static str>,
    web_tokens: HashMap<String, (String, String)>,
    userinfo_fails: bool,
    unionids: HashMap<String, String>,
    calls: Vec<String>,
    /// (api, query or body) of every call other than jscode2session.
    api_calls: Vec<(&'static str, String)>,
    valid_tokens: Vec<String>,
    issued_tokens: usize,
    /// Errcodes `wxa/getwxacodeunlimit` answers, one per call, before it answers images.
    code_errors: VecDeque<i64>,
}

/// A stand-in for `api.weixin.qq.com` on 127.0.0.1. By default a code `NAME` or
/// `NAME-ANYTHING` logs in openid `o_NAME` with a fresh session_key; tests script
/// anything else.
#[derive(Clone)]
pub struct FakeWeChat {
    address: SocketAddr,
    state: Arc<Mutex<FakeState>>,
}

impl FakeWeChat {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let address = *acceptor.local_addr()[0].as_socket_addr().unwrap();
        let routes = Route::new()
            .at("/sns/jscode2session", poem::get(jscode2session))
            .at("/cgi-bin/stable_token", poem::post(stable_token))
            .at("/wxa/business/getuserphonenumber", poem::post(phone_number))
            .at("/wxa/checksession", poem::get(check_session))
            .at("/sns/oauth2/access_token", poem::get(oauth_access_token))
            .at("/sns/userinfo", poem::get(oauth_userinfo))
            .at("/wxa/getwxacodeunlimit", poem::post(mini_program_code))
            .data(state.clone());
        tokio::spawn(Server::new_with_acceptor(acceptor).run(routes));
        Self { address, state }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Answers for `code`, one per call; the last one repeats.
    pub fn script(&self, code: &str, replies: Vec<Reply>) {
        self.state
            .lock()
            .unwrap()
            .scripted
            .insert(code.to_owned(), replies.into());
    }

    /// Makes every login of user `name` carry this unionid.
    pub fn bind_unionid(&self, name: &str, unionid: &str) {
        self.state
            .lock()
            .unwrap()
            .unionids
            .insert(name.to_owned(), unionid.to_owned());
    }

    pub fn session_key(&self, openid: &str) -> SessionKey {
        self.state.lock().unwrap().session_keys[openid].clone()
    }

    /// Every session_key handed out for `openid`, oldest first.
    pub fn session_key_history(&self, openid: &str) -> Vec<SessionKey> {
        self.state
            .lock()
            .unwrap()
            .key_history
            .get(openid)
            .cloned()
            .unwrap_or_default()
    }

    /// `jscode2session` waits this long before it hands out a key for `code`.
    pub fn delay_code(&self, code: &str, delay: Duration) {
        self.state
            .lock()
            .unwrap()
            .code_delays
            .insert(code.to_owned(), delay);
    }

    /// The scope `sns/oauth2/access_token` reports for `code`.
    pub fn web_scope(&self, code: &str, scope: &'static str) {
        self.state
            .lock()
            .unwrap()
            .web_scopes
            .insert(code.to_owned(), scope);
    }

    /// `sns/userinfo` answers an error from now on.
    pub fn fail_userinfo(&self) {
        self.state.lock().unwrap().userinfo_fails = true;
    }

    /// How many `jscode2session` calls reached the fake.
    pub fn calls(&self) -> usize {
        self.state.lock().unwrap().calls.len()
    }

    /// How many calls `api` (e.g. "stable_token") received.
    pub fn calls_to(&self, api: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .api_calls
            .iter()
            .filter(|(a, _)| *a == api)
            .count()
    }

    /// The requests (query or body) `api` received.
    pub fn requests_to(&self, api: &str) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .api_calls
            .iter()
            .filter(|(a, _)| *a == api)
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// WeChat invalidates every access_token it issued (the next use answers 40001).
    pub fn revoke_access_tokens(&self) {
        self.state.lock().unwrap().valid_tokens.clear();
    }

    /// The next calls of `wxa/getwxacodeunlimit` answer these errcodes, one each.
    pub fn fail_mini_program_codes(&self, errcodes: &[i64]) {
        self.state
            .lock()
            .unwrap()
            .code_errors
            .extend(errcodes.iter().copied());
    }

    /// WeChat rotates the user's session_key behind our back (a login we never saw).
    pub fn rotate_session_key(&self, openid: &str) {
        self.state
            .lock()
            .unwrap()
            .session_keys
            .insert(openid.to_owned(), SessionKey::generate());
    }

    /// The raw query strings the fake received.
    pub fn queries(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }
}

pub fn openid_of(name: &str) -> String {
    format!("o_{name}")
}

fn text_plain(body: String) -> Response {
    Response::builder().content_type("text/plain").body(body)
}

#[handler]
async fn jscode2session(
    Query(query): Query<HashMap<String, String>>,
    request: &poem::Request,
    state: Data<&Arc<Mutex<FakeState>>>,
) -> Response {
    let code = query.get("js_code").cloned().unwrap_or_default();
    let reply = {
        let mut state = state.lock().unwrap();
        state
            .calls
            .push(request.uri().query().unwrap_or_default().to_owned());
        state.scripted.get_mut(&code).and_then(|replies| {
            if replies.len() > 1 {
                replies.pop_front()
            } else {
                replies.front().cloned()
            }
        })
    };
    match reply {
        Some(Reply::Json(body)) => return text_plain(body.to_string()),
        Some(Reply::Raw(status, body)) => {
            return Response::builder()
                .status(poem::http::StatusCode::from_u16(status).unwrap())
                .body(body);
        }
        Some(Reply::Slow(delay)) => tokio::time::sleep(delay).await,
        None => {}
    }
    let delay = state.lock().unwrap().code_delays.get(&code).copied();
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    if query.get("appid").map(String::as_str) != Some(APPID)
        || query.get("secret").map(String::as_str) != Some(APP_SECRET)
        || query.get("grant_type").map(String::as_str) != Some("authorization_code")
    {
        return text_plain(json!({"errcode": 40013, "errmsg": "invalid appid"}).to_string());
    }
    let mut state = state.lock().unwrap();
    let name = code.split('-').next().unwrap_or_default().to_owned();
    let (openid, session_key) = (openid_of(&name), SessionKey::generate());
    let mut answer = json!({
        "openid": openid,
        "session_key": session_key.expose_text(),
        "expires_in": 7200,
    });
    if let Some(unionid) = state.unionids.get(&name) {
        answer["unionid"] = json!(unionid);
    }
    state
        .key_history
        .entry(openid.clone())
        .or_default()
        .push(session_key.clone());
    state.session_keys.insert(openid, session_key);
    text_plain(answer.to_string())
}

/// The openid the fake's web apps give user `name` (one per app, as WeChat does).
pub fn web_openid_of(appid: &str, name: &str) -> String {
    let app = if appid == OA_APPID { "oa" } else { "web" };
    format!("o_{app}_{name}")
}

#[handler]
async fn oauth_access_token(
    Query(query): Query<HashMap<String, String>>,
    state: Data<&Arc<Mutex<FakeState>>>,
) -> Response {
    let code = query.get("code").cloned().unwrap_or_default();
    let mut state = state.lock().unwrap();
    state.api_calls.push((
        "oauth2_access_token",
        format!("appid={:?} code={code}", query.get("appid")),
    ));
    if let Some(Reply::Json(reply)) = state.scripted.get(&code).and_then(|r| r.front().cloned()) {
        return text_plain(reply.to_string());
    }
    let appid = query.get("appid").cloned().unwrap_or_default();
    let expected_secret = match appid.as_str() {
        OA_APPID => OA_SECRET,
        WEB_APPID => WEB_SECRET,
        _ => return errcode(40013),
    };
    if query.get("secret").map(String::as_str) != Some(expected_secret)
        || query.get("grant_type").map(String::as_str) != Some("authorization_code")
    {
        return errcode(40125);
    }
    let name = code.split('-').next().unwrap_or_default().to_owned();
    let scope = state
        .web_scopes
        .get(&code)
        .copied()
        .unwrap_or(if appid == OA_APPID {
            "snsapi_userinfo"
        } else {
            "snsapi_login"
        });
    let openid = web_openid_of(&appid, &name);
    let token = format!("web-token-{}", uuid::Uuid::new_v4().simple());
    state
        .web_tokens
        .insert(token.clone(), (openid.clone(), name.clone()));
    let mut answer = json!({
        "access_token": token, "expires_in": 7200, "refresh_token": "web-refresh",
        "openid": openid, "scope": scope,
    });
    if scope != "snsapi_base"
        && let Some(unionid) = state.unionids.get(&name)
    {
        answer["unionid"] = json!(unionid);
    }
    if name == "snapshot" {
        answer["is_snapshotuser"] = json!(1);
    }
    text_plain(answer.to_string())
}

#[handler]
async fn oauth_userinfo(
    Query(query): Query<HashMap<String, String>>,
    state: Data<&Arc<Mutex<FakeState>>>,
) -> Response {
    let mut state = state.lock().unwrap();
    state
        .api_calls
        .push(("userinfo", format!("openid={:?}", query.get("openid"))));
    if state.userinfo_fails {
        return errcode(-1);
    }
    let Some((openid, name)) = query
        .get("access_token")
        .and_then(|token| state.web_tokens.get(token))
        .cloned()
    else {
        return errcode(40001);
    };
    if query.get("openid") != Some(&openid) {
        return errcode(40003);
    }
    let mut answer = json!({
        "openid": openid, "nickname": format!("Nick {name}"), "sex": 0,
        "province": "", "city": "", "country": "",
        "headimgurl": format!("https://thirdwx.qlogo.cn/{name}/132"), "privilege": [],
    });
    if let Some(unionid) = state.unionids.get(&name) {
        answer["unionid"] = json!(unionid);
    }
    text_plain(answer.to_string())
}

fn errcode(errcode: i64) -> Response {
    text_plain(json!({"errcode": errcode, "errmsg": "fake"}).to_string())
}

#[handler]
async fn stable_token(body: String, state: Data<&Arc<Mutex<FakeState>>>) -> Response {
    let request: Value = serde_json::from_str(&body).unwrap_or_default();
    let mut state = state.lock().unwrap();
    state.api_calls.push(("stable_token", body));
    if request["appid"] != APPID
        || request["secret"] != APP_SECRET
        || request["grant_type"] != "client_credential"
    {
        return errcode(40013);
    }
    if request["force_refresh"] == true || state.valid_tokens.is_empty() {
        state.issued_tokens += 1;
        let token = format!("fake-access-token-{}", state.issued_tokens);
        state.valid_tokens.push(token);
    }
    let token = state.valid_tokens.last().cloned().unwrap_or_default();
    text_plain(json!({"access_token": token, "expires_in": 7200}).to_string())
}

#[handler]
async fn phone_number(
    Query(query): Query<HashMap<String, String>>,
    body: String,
    state: Data<&Arc<Mutex<FakeState>>>,
) -> Response {
    let request: Value = serde_json::from_str(&body).unwrap_or_default();
    let mut state = state.lock().unwrap();
    state.api_calls.push(("getuserphonenumber", body.clone()));
    if !query
        .get("access_token")
        .is_some_and(|t| state.valid_tokens.contains(t))
    {
        return errcode(40001);
    }
    let code = request["code"].as_str().unwrap_or_default().to_owned();
    if let Some(replies) = state.scripted.get(&code)
        && let Some(Reply::Json(reply)) = replies.front()
    {
        return text_plain(reply.to_string());
    }
    let Some(digits) = code.strip_prefix("phone-") else {
        return errcode(40029);
    };
    text_plain(
        json!({
            "errcode": 0, "errmsg": "ok",
            "phone_info": {
                "phoneNumber": format!("+86{digits}"), "purePhoneNumber": digits, "countryCode": 86,
                "watermark": {"timestamp": chrono::Utc::now().timestamp(), "appid": APPID},
            },
        })
        .to_string(),
    )
}

/// The bytes the fake's mini-program code image starts with (a PNG signature).
pub const FAKE_PNG: &[u8] = b"\x89PNG\r\n\x1a\nfake-mini-program-code";

#[handler]
async fn mini_program_code(
    Query(query): Query<HashMap<String, String>>,
    body: String,
    state: Data<&Arc<Mutex<FakeState>>>,
) -> Response {
    let mut state = state.lock().unwrap();
    state.api_calls.push(("getwxacodeunlimit", body.clone()));
    if !query
        .get("access_token")
        .is_some_and(|t| state.valid_tokens.contains(t))
    {
        return errcode(40001);
    }
    if let Some(code) = state.code_errors.pop_front() {
        return Response::builder()
            .content_type("application/json; charset=UTF-8")
            .body(json!({"errcode": code, "errmsg": "fake"}).to_string());
    }
    let request: Value = serde_json::from_str(&body).unwrap_or_default();
    let mut png = FAKE_PNG.to_vec();
    png.extend_from_slice(request["scene"].as_str().unwrap_or_default().as_bytes());
    Response::builder().content_type("image/png").body(png)
}

#[handler]
async fn check_session(
    Query(query): Query<HashMap<String, String>>,
    state: Data<&Arc<Mutex<FakeState>>>,
) -> Response {
    let mut state = state.lock().unwrap();
    state.api_calls.push(("checksession", format!("{query:?}")));
    if !query
        .get("access_token")
        .is_some_and(|t| state.valid_tokens.contains(t))
    {
        return errcode(40001);
    }
    let expected = query
        .get("openid")
        .and_then(|openid| state.session_keys.get(openid))
        .map(|key| crypto::login_state_signature(key, b""));
    if query.get("sig_method").map(String::as_str) == Some("hmac_sha256")
        && expected.as_ref() == query.get("signature")
    {
        errcode(0)
    } else {
        errcode(87009)
    }
}

/// A fresh database for one test: a SQLite file in a temporary directory by default, or a
/// new database on the server named by `TEST_DATABASE_URL` (postgres://… or mysql://…),
/// dropped when the test ends.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    server: Option<(String, String)>,
}

impl TestDatabase {
    pub async fn create() -> Self {
        match std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        {
            None => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
                Self {
                    url,
                    _dir: Some(dir),
                    server: None,
                }
            }
            Some(server_url) => {
                let name = format!("wa_test_{}", uuid::Uuid::new_v4().simple());
                execute_on_server(&server_url, &format!("CREATE DATABASE {name}")).await;
                let base = server_url.trim_end_matches('/');
                Self {
                    url: format!("{base}/{name}"),
                    _dir: None,
                    server: Some((server_url, name)),
                }
            }
        }
    }
}

impl TestDatabase {
    /// The same database, owned (and dropped) by someone else.
    fn shared(owner: &TestDatabase) -> Self {
        Self {
            url: owner.url.clone(),
            _dir: None,
            server: None,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((server_url, name)) = self.server.take() {
            let statement = if server_url.starts_with("postgres") {
                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            } else {
                format!("DROP DATABASE IF EXISTS {name}")
            };
            // Drop runs inside the test's runtime: use a thread with its own.
            let _ = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(execute_on_server(&server_url, &statement));
            })
            .join();
        }
    }
}

/// Every text and UUID value in every table, as one string: what a copy of the database
/// reveals.
pub async fn dump_database(url: &str) -> String {
    dump_tables(
        url,
        &[
            "users",
            "wechat_identities",
            "sessions",
            "retired_refresh_tokens",
            "login_codes",
            "wechat_access_tokens",
            "web_flows",
            "phone_verifications",
            "user_aliases",
            "qr_logins",
        ],
    )
    .await
}

/// Every text and uuid value stored in the given tables, one a line.
pub async fn dump_tables(url: &str, tables: &[&str]) -> String {
    use sea_orm::{ConnectionTrait, Statement};
    let db = sea_orm::Database::connect(url).await.unwrap();
    let backend = db.get_database_backend();
    let mut dump = String::new();
    for table in tables {
        let rows = db
            .query_all_raw(Statement::from_string(
                backend,
                format!("SELECT * FROM {table}"),
            ))
            .await
            .unwrap();
        for row in rows {
            for (index, _) in row.column_names().iter().enumerate() {
                if let Ok(Some(text)) = row.try_get_by_index::<Option<String>>(index) {
                    dump.push_str(&text);
                    dump.push('\n');
                } else if let Ok(Some(id)) = row.try_get_by_index::<Option<uuid::Uuid>>(index) {
                    dump.push_str(&id.to_string());
                    dump.push('\n');
                }
            }
        }
    }
    let _ = db.close().await;
    dump
}

/// Runs one statement on the test's database (to age rows, as time would).
pub async fn execute_sql(url: &str, statement: &str) {
    use sea_orm::ConnectionTrait;
    let db = sea_orm::Database::connect(url).await.unwrap();
    db.execute_unprepared(statement).await.expect(statement);
    let _ = db.close().await;
}

async fn execute_on_server(server_url: &str, statement: &str) {
    use sea_orm::ConnectionTrait;
    let db = sea_orm::Database::connect(server_url)
        .await
        .expect("TEST_DATABASE_URL server is reachable");
    db.execute_unprepared(statement).await.expect(statement);
    let _ = db.close().await;
}
