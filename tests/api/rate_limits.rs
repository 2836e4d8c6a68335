use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, spawn_app_with};

async fn login_from(app: &TestApp, code: &str, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut request = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "code": code }));
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn logins_over_the_limit_get_429_with_retry_after() {
    let app = spawn_app_with(&[("RATE_LIMIT_PER_MIN", "3")]).await;
    for i in 0..3 {
        assert_eq!(
            login_from(&app, &format!("user{i}"), None)
                .await
                .status()
                .as_u16(),
            200
        );
    }
    let limited = login_from(&app, "user9", None).await;
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=60).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    assert_problem(limited, 429, "rate_limited").await;
    assert_eq!(
        app.wechat.calls(),
        3,
        "a limited login never reaches WeChat"
    );
}

#[tokio::test]
async fn refresh_has_its_own_bucket_and_authenticated_calls_are_not_limited() {
    let app = spawn_app_with(&[("RATE_LIMIT_PER_MIN", "2")]).await;
    let first: Value = login_from(&app, "alice-1", None)
        .await
        .json()
        .await
        .unwrap();
    login_from(&app, "alice-2", None).await;
    assert_problem(login_from(&app, "alice-3", None).await, 429, "rate_limited").await;

    let refreshed = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": first["refresh_token"]}),
            None,
        )
        .await;
    assert_eq!(refreshed.status().as_u16(), 200);
    for _ in 0..5 {
        let token = first["access_token"].as_str().unwrap();
        assert_ne!(app.me(token).await.status().as_u16(), 429);
    }
}

#[tokio::test]
async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    let untrusted = spawn_app_with(&[("RATE_LIMIT_PER_MIN", "2")]).await;
    login_from(&untrusted, "a", Some("203.0.113.1")).await;
    login_from(&untrusted, "b", Some("203.0.113.2")).await;
    // The header is anyone's to forge: without a trusted proxy it does not split buckets.
    assert_problem(
        login_from(&untrusted, "c", Some("203.0.113.3")).await,
        429,
        "rate_limited",
    )
    .await;

    let proxied = spawn_app_with(&[
        ("RATE_LIMIT_PER_MIN", "2"),
        ("TRUSTED_PROXIES", "127.0.0.1/32"),
    ])
    .await;
    login_from(&proxied, "a", Some("203.0.113.1")).await;
    login_from(&proxied, "b", Some("203.0.113.1")).await;
    assert_problem(
        login_from(&proxied, "c", Some("203.0.113.1")).await,
        429,
        "rate_limited",
    )
    .await;
    assert_eq!(
        login_from(&proxied, "d", Some("203.0.113.2"))
            .await
            .status()
            .as_u16(),
        200
    );
    // A client cannot dodge its bucket by prepending a forged hop.
    let forged = login_from(&proxied, "e", Some("198.51.100.9, 203.0.113.1")).await;
    assert_problem(forged, 429, "rate_limited").await;
}

#[tokio::test]
async fn a_zero_limit_disables_rate_limiting() {
    let app = spawn_app_with(&[("RATE_LIMIT_PER_MIN", "0")]).await;
    for i in 0..20 {
        assert_eq!(
            login_from(&app, &format!("user{i}"), None)
                .await
                .status()
                .as_u16(),
            200
        );
    }
}

#[tokio::test]
async fn web_sign_in_shares_the_login_bucket() {
    let app = spawn_app_with(&[("RATE_LIMIT_PER_MIN", "3")]).await;
    let web = app
        .post_json(
            "/api/v1/auth/web/login",
            &json!({"app": "website", "code": "wanda-1"}),
            None,
        )
        .await;
    assert_eq!(web.status().as_u16(), 200);
    let ticket = app
        .post_json("/api/v1/auth/ticket", &json!({"ticket": "made-up"}), None)
        .await;
    assert_problem(ticket, 401, "invalid_grant").await;
    let authorize = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url(
            "/api/v1/web/authorize?app=website&return_to=https%3A%2F%2Fapp.example.test%2Fdone",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(authorize.status().as_u16(), 302);
    assert_problem(login_from(&app, "late-1", None).await, 429, "rate_limited").await;
}
