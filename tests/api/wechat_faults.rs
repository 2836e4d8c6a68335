use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{Reply, assert_problem, spawn_app, spawn_app_with};

#[tokio::test]
async fn each_wechat_errcode_maps_to_its_problem_code() {
    let app = spawn_app().await;
    let cases = [
        (40029, 400, "invalid_code"),
        (40163, 400, "code_used"),
        (40226, 403, "user_blocked"),
        (45011, 429, "rate_limited"),
        (40013, 502, "wechat_error"),
        (40125, 502, "wechat_error"),
        (41008, 502, "wechat_error"),
    ];
    for (errcode, status, code) in cases {
        let js_code = format!("errcode{errcode}");
        app.wechat.script(
            &js_code,
            vec![Reply::Json(
                json!({"errcode": errcode, "errmsg": "scripted"}),
            )],
        );
        let response = app.login(&js_code).await;
        if code == "rate_limited" {
            assert!(response.headers().contains_key("retry-after"));
        }
        let problem = assert_problem(response, status, code).await;
        assert!(
            !problem.to_string().contains("scripted"),
            "WeChat's errmsg is not relayed"
        );
    }
}

#[tokio::test]
async fn a_busy_wechat_is_retried_and_the_login_succeeds() {
    let app = spawn_app().await;
    app.wechat.script(
        "alice-busy",
        vec![
            Reply::Json(json!({"errcode": -1, "errmsg": "system error"})),
            Reply::Json(json!({"errcode": -1, "errmsg": "system error"})),
            Reply::Json(json!({"openid": "o_alice", "session_key": "tiihtNczf5v6AKRyjwEUhQ=="})),
        ],
    );
    let response = app.login("alice-busy").await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(app.wechat.calls(), 3);
}

#[tokio::test]
async fn a_wechat_that_stays_busy_is_unavailable_after_three_attempts() {
    let app = spawn_app().await;
    app.wechat.script(
        "busy",
        vec![Reply::Json(
            json!({"errcode": -1, "errmsg": "system error"}),
        )],
    );
    let response = app.login("busy").await;
    assert_problem(response, 503, "wechat_unavailable").await;
    assert_eq!(app.wechat.calls(), 3);
}

#[tokio::test]
async fn a_slow_wechat_is_cut_off_within_the_timeout_and_not_retried() {
    let app = spawn_app_with(&[("WECHAT_TIMEOUT_MS", "800")]).await;
    app.wechat
        .script("slow", vec![Reply::Slow(Duration::from_secs(5))]);
    let started = Instant::now();
    let response = app.login("slow").await;
    let elapsed = started.elapsed();
    assert_problem(response, 503, "wechat_unavailable").await;
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    // The code may have reached WeChat: repeating it would only turn into 40163.
    assert_eq!(app.wechat.calls(), 1);
}

#[tokio::test]
async fn an_unreachable_wechat_is_unavailable_quickly() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let app = spawn_app_with(&[("WECHAT_API_BASE", &base)]).await;
    let started = Instant::now();
    let response = app.login("alice").await;
    assert_problem(response, 503, "wechat_unavailable").await;
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn server_errors_and_answers_that_are_not_wechat_json_are_wechat_errors() {
    let app = spawn_app().await;
    let cases = [
        ("http500", Reply::Raw(500, "{\"errcode\":0}")),
        ("http502", Reply::Raw(502, "<html>bad gateway</html>")),
        ("html", Reply::Raw(200, "<html>maintenance</html>")),
        ("empty", Reply::Raw(200, "")),
        ("truncated", Reply::Raw(200, "{\"openid\":\"o_x\",")),
        ("no-session-key", Reply::Json(json!({"openid": "o_x"}))),
        (
            "bad-session-key",
            Reply::Json(json!({"openid": "o_x", "session_key": "short"})),
        ),
        ("errcode-as-text", Reply::Json(json!({"errcode": "40029"}))),
    ];
    for (code, reply) in cases {
        app.wechat.script(code, vec![reply]);
        let response = app.login(code).await;
        assert_problem(response, 502, "wechat_error").await;
    }
}

#[tokio::test]
async fn wechat_json_labelled_text_plain_with_extra_fields_is_understood() {
    let app = spawn_app().await;
    app.wechat.script(
        "extra",
        vec![Reply::Json(json!({
            "openid": "o_extra", "session_key": "tiihtNczf5v6AKRyjwEUhQ==",
            "expires_in": 7200, "errcode": 0, "errmsg": "ok", "something_new": [1, 2],
        }))],
    );
    let response = app.login("extra").await;
    assert_eq!(response.status().as_u16(), 200);
}
