use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_app_with};

async fn sandbox_app() -> TestApp {
    spawn_app_with(&[("WECHAT_SANDBOX", "true")]).await
}

#[tokio::test]
async fn sandbox_codes_map_to_stable_users_with_a_fresh_session_each_login() {
    let app = sandbox_app().await;
    let first: Value = app.login("alice").await.json().await.unwrap();
    let second: Value = app
        .login("alice-from-another-device")
        .await
        .json()
        .await
        .unwrap();
    let bob: Value = app.login("bob-1").await.json().await.unwrap();
    assert_eq!(first["new_user"], true);
    assert_eq!(second["new_user"], false);
    assert_eq!(first["user"]["openid"], second["user"]["openid"]);
    assert_eq!(first["user"]["id"], second["user"]["id"]);
    assert_ne!(first["user"]["openid"], bob["user"]["openid"]);
    assert_eq!(app.wechat.calls(), 0, "the sandbox, not the fake, answered");
}

#[tokio::test]
async fn a_sandbox_code_works_only_once() {
    // With replay off, the second use reaches the simulator, which refuses it like WeChat.
    let app = spawn_app_with(&[
        ("WECHAT_SANDBOX", "true"),
        ("LOGIN_REPLAY_WINDOW_SECS", "0"),
    ])
    .await;
    assert_eq!(app.login("alice-once").await.status().as_u16(), 200);
    assert_problem(app.login("alice-once").await, 400, "code_used").await;
}

#[tokio::test]
async fn reserved_sandbox_codes_trigger_each_wechat_error() {
    let app = sandbox_app().await;
    for (code, status, problem) in [
        ("sandbox-busy", 503, "wechat_unavailable"),
        ("sandbox-invalid", 400, "invalid_code"),
        ("sandbox-used", 400, "code_used"),
        ("sandbox-blocked", 403, "user_blocked"),
        ("sandbox-limited", 429, "rate_limited"),
    ] {
        assert_problem(app.login(code).await, status, problem).await;
    }
}

#[tokio::test]
async fn sandbox_encrypt_seals_payloads_the_decrypt_endpoints_accept() {
    let app = sandbox_app().await;
    let alice = app.login_ok("alice").await;
    let sealed: Value = app
        .post_json(
            "/sandbox/encrypt",
            &json!({"openid": alice.openid, "payload": {"phoneNumber": "13800138000", "purePhoneNumber": "13800138000", "countryCode": "86"}}),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let response = app
        .post_json("/api/v1/wechat/phone-number", &sealed, Some(&alice.token))
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let me: Value = app.me(&alice.token).await.json().await.unwrap();
    assert_eq!(me["phone_number"], "13800138000");
}

#[tokio::test]
async fn sandbox_encrypt_for_an_unknown_user_is_not_found() {
    let app = sandbox_app().await;
    let response = app
        .post_json(
            "/sandbox/encrypt",
            &json!({"openid": "o_nobody", "payload": {}}),
            None,
        )
        .await;
    assert_problem(response, 404, "not_found").await;
}

#[tokio::test]
async fn without_sandbox_mode_there_is_no_sandbox() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(app.url("/sandbox/sns/jscode2session?js_code=alice"))
        .send()
        .await
        .unwrap();
    assert_problem(response, 404, "not_found").await;
}
