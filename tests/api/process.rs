//! The real binary as operators run it: separate processes, real signals, real log output.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::helpers::{
    APP_SECRET, APPID, FakeWeChat, JWT_SECRET, Reply, TestDatabase, assert_problem, seal_with,
};

/// A service process with its log lines.
pub struct ServiceProcess {
    child: Child,
    pub address: String,
    logs: Arc<Mutex<Vec<String>>>,
    pub http: reqwest::Client,
}

impl ServiceProcess {
    pub async fn start(database_url: &str, wechat: &FakeWeChat, extra: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        let mut command = Command::new(env!("CARGO_BIN_EXE_wechat-auth"));
        command
            .env_clear()
            .env("BIND_ADDR", &address)
            .env("DATABASE_URL", database_url)
            .env("WECHAT_APPID", APPID)
            .env("WECHAT_SECRET", APP_SECRET)
            .env("JWT_SECRET", JWT_SECRET)
            .env("WECHAT_API_BASE", wechat.base_url())
            .env("WECHAT_TIMEOUT_MS", "3000")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in extra {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("the binary starts");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let process = Self {
            child,
            address: format!("http://{address}"),
            logs,
            http: reqwest::Client::new(),
        };
        process.wait_until_ready().await;
        process
    }

    async fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(response) = self
                .http
                .get(format!("{}/readyz", self.address))
                .send()
                .await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the service did not become ready: {:?}",
            self.logs.lock().unwrap()
        );
    }

    pub async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> reqwest::Response {
        let mut request = self.http.post(format!("{}{path}", self.address)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    pub(crate) async fn login(&self, code: &str) -> Value {
        let response = self
            .post("/api/v1/auth/login", &json!({ "code": code }), None)
            .await;
        assert_eq!(response.status().as_u16(), 200);
        response.json().await.unwrap()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait_for_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the service did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn two_instances_on_one_database_serve_the_same_users_and_sessions() {
    let database = TestDatabase::create().await;
    let wechat = FakeWeChat::start().await;
    let a = ServiceProcess::start(&database.url, &wechat, &[]).await;
    let b = ServiceProcess::start(&database.url, &wechat, &[]).await;

    // Login on A; decrypt and /me on B.
    let login = a.login("alice-1").await;
    let token = text(&login, "/access_token");
    let openid = text(&login, "/user/openid");
    let phone = crate::helpers::phone_payload();
    let sealed = seal_with(&wechat.session_key(&openid), &phone);
    let decrypted = b
        .post("/api/v1/wechat/phone-number", &sealed, Some(&token))
        .await;
    assert_eq!(decrypted.status().as_u16(), 200);
    let me: Value = b
        .get("/api/v1/me", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["phone_number"], "13800138000");

    // Refresh on A; presenting the retired token on B is caught as reuse.
    let retired = text(&login, "/refresh_token");
    let refreshed = a
        .post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": retired}),
            None,
        )
        .await;
    assert_eq!(refreshed.status().as_u16(), 200);
    let refreshed: Value = refreshed.json().await.unwrap();
    let reuse = b
        .post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": retired}),
            None,
        )
        .await;
    assert_problem(reuse, 401, "invalid_grant").await;
    let successor = text(&refreshed, "/refresh_token");
    let revoked = a
        .post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": successor}),
            None,
        )
        .await;
    assert_problem(revoked, 401, "invalid_grant").await;

    // One code posted to both at once: one jscode2session call, one user.
    wechat.script("carol-dup", vec![Reply::Slow(Duration::from_millis(400))]);
    let calls_before = wechat.calls();
    let (on_a, on_b) = tokio::join!(a.login("carol-dup"), b.login("carol-dup"));
    assert_eq!(on_a["user"]["id"], on_b["user"]["id"]);
    assert_eq!(wechat.calls() - calls_before, 1);

    // The WeChat access_token is fetched once for both.
    let carol_token = text(&on_a, "/access_token");
    for (instance, code) in [(&a, "phone-13900139000"), (&b, "phone-13900139001")] {
        let response = instance
            .post(
                "/api/v1/wechat/phone-number",
                &json!({"code": code}),
                Some(&carol_token),
            )
            .await;
        assert_eq!(response.status().as_u16(), 200);
    }
    assert_eq!(wechat.calls_to("stable_token"), 1);
}

#[tokio::test]
async fn no_log_line_ever_contains_a_secret() {
    let database = TestDatabase::create().await;
    let wechat = FakeWeChat::start().await;
    let service = ServiceProcess::start(
        &database.url,
        &wechat,
        &[("RUST_LOG", "debug"), ("LOG_FORMAT", "json")],
    )
    .await;

    let login = service.login("alice-1").await;
    let token = text(&login, "/access_token");
    let refresh = text(&login, "/refresh_token");
    let openid = text(&login, "/user/openid");
    let session_key = wechat.session_key(&openid);
    let phone = crate::helpers::phone_payload();
    service
        .post(
            "/api/v1/wechat/phone-number",
            &seal_with(&session_key, &phone),
            Some(&token),
        )
        .await;
    service
        .post(
            "/api/v1/wechat/phone-number",
            &json!({"code": "phone-13800138000"}),
            Some(&token),
        )
        .await;
    service
        .post("/api/v1/wechat/session/check", &json!({}), Some(&token))
        .await;
    let refreshed: Value = service
        .post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": refresh}),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    // Failures log too: a reused refresh token, a forged access token, a WeChat error.
    service
        .post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": refresh}),
            None,
        )
        .await;
    service.get("/api/v1/me", Some(&format!("{token}x"))).await;
    wechat.script("broken", vec![Reply::Raw(500, "oops")]);
    service
        .post("/api/v1/auth/login", &json!({"code": "broken"}), None)
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let logs = service.log_text();
    assert!(
        logs.contains("request"),
        "the service logged nothing: {logs}"
    );
    for (what, secret) in [
        ("appsecret", APP_SECRET.to_owned()),
        ("JWT secret", JWT_SECRET.to_owned()),
        ("session_key", session_key.expose_text().to_owned()),
        ("access token", token.clone()),
        ("refreshed access token", text(&refreshed, "/access_token")),
        ("refresh token", refresh.clone()),
        ("new refresh token", text(&refreshed, "/refresh_token")),
        ("WeChat access_token", "fake-access-token-1".to_owned()),
    ] {
        assert!(!logs.contains(&secret), "a log line contains the {what}");
    }
}

#[tokio::test]
async fn json_logs_carry_the_request_id_that_the_response_names() {
    let database = TestDatabase::create().await;
    let wechat = FakeWeChat::start().await;
    let service = ServiceProcess::start(&database.url, &wechat, &[("LOG_FORMAT", "json")]).await;

    let response = service.get("/healthz", None).await;
    let generated = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let echoed = service
        .http
        .get(format!("{}/healthz", service.address))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-me-42");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let lines: Vec<Value> = service
        .logs
        .lock()
        .unwrap()
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let request_ids: Vec<&str> = lines
        .iter()
        .filter(|line| line["fields"]["message"] == "request")
        .filter_map(|line| line["span"]["request_id"].as_str())
        .collect();
    assert!(request_ids.contains(&generated.as_str()), "{lines:?}");
    assert!(request_ids.contains(&"trace-me-42"), "{lines:?}");
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish_then_exits_zero() {
    let database = TestDatabase::create().await;
    let wechat = FakeWeChat::start().await;
    let mut service = ServiceProcess::start(&database.url, &wechat, &[]).await;
    wechat.script("slow-1", vec![Reply::Slow(Duration::from_millis(800))]);

    let in_flight = {
        let (http, url) = (
            service.http.clone(),
            format!("{}/api/v1/auth/login", service.address),
        );
        tokio::spawn(async move { http.post(url).json(&json!({"code": "slow-1"})).send().await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    service.terminate();

    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request is answered");
    assert_eq!(response.status().as_u16(), 200);
    let status = service.wait_for_exit(Duration::from_secs(15));
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test]
async fn metrics_are_served_in_prometheus_text_format() {
    let database = TestDatabase::create().await;
    let wechat = FakeWeChat::start().await;
    let service = ServiceProcess::start(&database.url, &wechat, &[]).await;
    service.login("alice-1").await;
    wechat.script(
        "bad",
        vec![Reply::Json(
            json!({"errcode": 40029, "errmsg": "invalid code"}),
        )],
    );
    service
        .post("/api/v1/auth/login", &json!({"code": "bad"}), None)
        .await;
    service.get("/api/v1/nothing", None).await;

    let response = service.get("/metrics", None).await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    for expected in [
        r#"http_requests_total{method="POST",route="/api/v1/auth/login",status="200"} 1"#,
        r#"http_requests_total{method="GET",route="other",status="404"} 1"#,
        "http_request_duration_seconds_bucket{",
        r#"wechat_api_calls_total{api="jscode2session",outcome="0"} 1"#,
        r#"wechat_api_calls_total{api="jscode2session",outcome="40029"} 1"#,
        r#"logins_total{outcome="new_user"} 1"#,
        r#"logins_total{outcome="invalid_code"} 1"#,
        r#"db_pool_connections{state="open"}"#,
    ] {
        assert!(text.contains(expected), "missing {expected} in:\n{text}");
    }
}
