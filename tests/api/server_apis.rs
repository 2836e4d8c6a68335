use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, assert_problem, spawn_app, spawn_app_with};

const PHONE: &str = "/api/v1/wechat/phone-number";
const CHECK: &str = "/api/v1/wechat/session/check";

async fn phone_by_code(app: &TestApp, token: &str, code: &str) -> reqwest::Response {
    app.post_json(PHONE, &json!({ "code": code }), Some(token))
        .await
}

#[tokio::test]
async fn a_phone_code_is_exchanged_with_wechat_and_the_number_saved() {
    let app = spawn_app().await;
    let alice = app.login_ok("alice-1").await;

    let response = phone_by_code(&app, &alice.token, "phone-13800138000").await;

    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"phone_number": "+8613800138000", "pure_phone_number": "13800138000", "country_code": "86"})
    );
    let me: Value = app.me(&alice.token).await.json().await.unwrap();
    assert_eq!(me["phone_number"], "+8613800138000");
    assert!(app.wechat.requests_to("getuserphonenumber")[0].contains("phone-13800138000"));
}

#[tokio::test]
async fn many_phone_requests_share_one_access_token_fetch() {
    let app = spawn_app().await;
    let alice = app.login_ok("alice-1").await;
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..10 {
        let (http, url, token) = (app.http.clone(), app.url(PHONE), alice.token.clone());
        requests.spawn(async move {
            http.post(url)
                .bearer_auth(token)
                .json(&json!({"code": format!("phone-1380013800{i}")}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    while let Some(status) = requests.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    phone_by_code(&app, &alice.token, "phone-13800138099").await;
    assert_eq!(app.wechat.calls_to("stable_token"), 1);
    assert_eq!(app.wechat.calls_to("getuserphonenumber"), 11);
    assert!(app.wechat.requests_to("stable_token")[0].contains("\"force_refresh\":false"));
}

#[tokio::test]
async fn a_rejected_access_token_is_force_refreshed_once_and_the_call_repeated() {
    let app = spawn_app().await;
    let alice = app.login_ok("alice-1").await;
    assert_eq!(
        phone_by_code(&app, &alice.token, "phone-13800138000")
            .await
            .status()
            .as_u16(),
        200
    );
    app.wechat.revoke_access_tokens();

    let response = phone_by_code(&app, &alice.token, "phone-13800138001").await;

    assert_eq!(response.status().as_u16(), 200);
    let fetches = app.wechat.requests_to("stable_token");
    assert_eq!(fetches.len(), 2);
    assert!(fetches[1].contains("\"force_refresh\":true"));
    assert_eq!(app.wechat.calls_to("getuserphonenumber"), 3);
}

#[tokio::test]
async fn instances_sharing_a_database_share_the_access_token() {
    let first = spawn_app().await;
    let second = crate::helpers::spawn_app_sharing(&first, &[]).await;
    let alice = first.login_ok("alice-1").await;
    let bob = second.login_ok("bob-1").await;

    assert_eq!(
        phone_by_code(&first, &alice.token, "phone-13800138000")
            .await
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        phone_by_code(&second, &bob.token, "phone-13800138001")
            .await
            .status()
            .as_u16(),
        200
    );

    assert_eq!(first.wechat.calls_to("stable_token"), 1);
}

#[tokio::test]
async fn phone_code_errors_map_like_login_errors() {
    let app = spawn_app().await;
    let alice = app.login_ok("alice-1").await;
    assert_problem(
        phone_by_code(&app, &alice.token, "not-a-phone-code").await,
        400,
        "invalid_code",
    )
    .await;
    app.wechat.script(
        "phone-limited",
        vec![Reply::Json(json!({"errcode": 45011, "errmsg": "limited"}))],
    );
    assert_problem(
        phone_by_code(&app, &alice.token, "phone-limited").await,
        429,
        "rate_limited",
    )
    .await;
    app.wechat.script(
        "phone-odd",
        vec![Reply::Json(json!({"errcode": 0, "errmsg": "ok"}))],
    );
    assert_problem(
        phone_by_code(&app, &alice.token, "phone-odd").await,
        502,
        "wechat_error",
    )
    .await;
}

#[tokio::test]
async fn code_together_with_encrypted_data_or_neither_is_an_invalid_request() {
    let app = spawn_app().await;
    let alice = app.login_ok("alice-1").await;
    for body in [
        json!({"code": "phone-1", "encrypted_data": "AAAA", "iv": "AAAA"}),
        json!({"code": "phone-1", "iv": "AAAA"}),
        json!({}),
        json!({"encrypted_data": "AAAAAAAAAAAAAAAAAAAAAA=="}),
        json!({"code": ""}),
    ] {
        let response = app.post_json(PHONE, &body, Some(&alice.token)).await;
        assert_problem(response, 400, "invalid_request").await;
    }
    assert_eq!(app.wechat.calls_to("getuserphonenumber"), 0);
}

#[tokio::test]
async fn session_check_reports_whether_wechat_still_holds_our_session_key() {
    let app = spawn_app().await;
    let alice = app.login_ok("alice-1").await;

    let fresh: Value = app
        .post_json(CHECK, &json!({}), Some(&alice.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fresh, json!({"valid": true}));
    let request = &app.wechat.requests_to("checksession")[0];
    assert!(
        request.contains("hmac_sha256") && request.contains("o_alice"),
        "{request}"
    );

    app.wechat.rotate_session_key(&alice.openid);
    let stale: Value = app
        .post_json(CHECK, &json!({}), Some(&alice.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stale, json!({"valid": false}));
}

#[tokio::test]
async fn session_check_needs_a_token() {
    let app = spawn_app().await;
    assert_problem(
        app.post_json(CHECK, &json!({}), None).await,
        401,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn the_sandbox_simulates_phone_codes_and_session_checks() {
    let app = spawn_app_with(&[("WECHAT_SANDBOX", "true")]).await;
    let alice = app.login_ok("alice").await;
    let response = phone_by_code(&app, &alice.token, "phone-alice").await;
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["country_code"], "86");
    assert_eq!(body["phone_number"].as_str().unwrap().len(), 11);
    assert_problem(
        phone_by_code(&app, &alice.token, "phone-alice").await,
        400,
        "invalid_code",
    )
    .await;
    let check: Value = app
        .post_json(CHECK, &json!({}), Some(&alice.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(check, json!({"valid": true}));
}
