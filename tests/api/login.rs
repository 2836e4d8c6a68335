use std::collections::HashSet;

use serde_json::{Value, json};

use crate::helpers::{APP_SECRET, assert_problem, openid_of, phone_payload, seal_with, spawn_app};

#[tokio::test]
async fn a_first_login_creates_the_user_and_answers_the_contract_shape() {
    let app = spawn_app().await;

    let response = app.login("alice-1").await;

    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 7200);
    assert_eq!(body["new_user"], true);
    assert!(body["access_token"].as_str().unwrap().split('.').count() == 3);
    let user = &body["user"];
    assert!(!user["id"].as_str().unwrap().is_empty());
    assert_eq!(user["openid"], openid_of("alice"));
    for field in ["unionid", "phone_number", "nickname", "avatar_url"] {
        assert!(user[field].is_null(), "{field} should be null: {user}");
    }
    assert!(body["refresh_token"].as_str().unwrap().len() >= 43);
    assert_eq!(body["refresh_expires_in"], 2_592_000);
    let fields: HashSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        HashSet::from([
            "access_token",
            "token_type",
            "expires_in",
            "refresh_token",
            "refresh_expires_in",
            "new_user",
            "user"
        ])
    );
}

#[tokio::test]
async fn the_exchange_sends_appid_secret_code_and_grant_type_to_wechat() {
    let app = spawn_app().await;
    app.login_ok("alice-1").await;
    let query = &app.wechat.queries()[0];
    for part in [
        "appid=wxtest0123456789ab",
        &format!("secret={APP_SECRET}"),
        "js_code=alice-1",
        "grant_type=authorization_code",
    ] {
        assert!(query.contains(part), "{query} lacks {part}");
    }
}

#[tokio::test]
async fn logging_in_again_returns_the_same_user_and_replaces_the_session_key() {
    let app = spawn_app().await;
    let first = app.login_ok("alice-1").await;
    let oldest_key = app.wechat.session_key(&first.openid);
    app.login_ok("alice-2").await;

    let response = app.login("alice-3").await;
    let body: Value = response.json().await.unwrap();

    assert_eq!(body["new_user"], false);
    assert_eq!(body["user"]["id"], first.user_id.as_str());
    let current_key = app.wechat.session_key(&first.openid);
    assert_ne!(oldest_key.expose_text(), current_key.expose_text());
    // A key two logins old is gone; the current one works.
    let token = body["access_token"].as_str().unwrap();
    let stale = app
        .post_json(
            PHONE,
            &seal_with(&oldest_key, &phone_payload()),
            Some(token),
        )
        .await;
    assert_problem(stale, 422, "decrypt_failed").await;
    let fresh = app
        .post_json(
            PHONE,
            &seal_with(&current_key, &phone_payload()),
            Some(token),
        )
        .await;
    assert_eq!(fresh.status().as_u16(), 200);
}

#[tokio::test]
async fn data_sealed_with_the_key_just_replaced_still_decrypts_during_the_grace_period() {
    let app = spawn_app().await;
    let alice = app.login_ok("alice-1").await;
    // getPhoneNumber's popup was open while the mini program called wx.login again.
    let sealed_before = app.seal(&alice.openid, &phone_payload());
    let again = app.login_ok("alice-2").await;
    let response = app
        .post_json(PHONE, &sealed_before, Some(&again.token))
        .await;
    assert_eq!(response.status().as_u16(), 200);
}

const PHONE: &str = "/api/v1/wechat/phone-number";

#[tokio::test]
async fn earlier_access_tokens_stay_valid_after_a_new_login() {
    let app = spawn_app().await;
    let phone = app.login_ok("alice-1").await;
    let tablet = app.login_ok("alice-2").await;
    assert_eq!(app.me(&phone.token).await.status().as_u16(), 200);
    assert_eq!(app.me(&tablet.token).await.status().as_u16(), 200);
}

#[tokio::test]
async fn a_unionid_from_wechat_is_saved_on_the_user() {
    let app = spawn_app().await;
    app.wechat.bind_unionid("alice", "oU_alice_union");
    let body: Value = app.login("alice-1").await.json().await.unwrap();
    assert_eq!(body["user"]["unionid"], "oU_alice_union");
}

#[tokio::test]
async fn a_unionid_that_appears_later_is_added_to_the_existing_user() {
    let app = spawn_app().await;
    let first = app.login_ok("alice-1").await;
    app.wechat.bind_unionid("alice", "oU_alice_union");
    let body: Value = app.login("alice-2").await.json().await.unwrap();
    assert_eq!(body["user"]["id"], first.user_id.as_str());
    assert_eq!(body["user"]["unionid"], "oU_alice_union");
}

#[tokio::test]
async fn fifty_parallel_logins_of_one_openid_yield_one_user() {
    let app = spawn_app().await;
    let mut logins = tokio::task::JoinSet::new();
    for i in 0..50 {
        let (http, url) = (app.http.clone(), app.url("/api/v1/auth/login"));
        logins.spawn(async move {
            http.post(url)
                .json(&json!({"code": format!("carol-{i}")}))
                .send()
                .await
                .unwrap()
        });
    }
    let mut user_ids = HashSet::new();
    let mut created = 0;
    while let Some(response) = logins.join_next().await {
        let response = response.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let body: Value = response.json().await.unwrap();
        user_ids.insert(body["user"]["id"].as_str().unwrap().to_owned());
        created += usize::from(body["new_user"] == true);
    }
    assert_eq!(user_ids.len(), 1);
    assert_eq!(created, 1, "exactly one login reports a new user");
}

#[tokio::test]
async fn two_hundred_parallel_logins_of_different_openids_yield_two_hundred_users() {
    let app = spawn_app().await;
    let mut logins = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (http, url) = (app.http.clone(), app.url("/api/v1/auth/login"));
        logins.spawn(async move {
            http.post(url)
                .json(&json!({"code": format!("user{i}")}))
                .send()
                .await
                .unwrap()
        });
    }
    let mut user_ids = HashSet::new();
    while let Some(response) = logins.join_next().await {
        let response = response.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["new_user"], true);
        user_ids.insert(body["user"]["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(user_ids.len(), 200);
}

#[tokio::test]
async fn malformed_login_requests_are_invalid_requests_and_never_reach_wechat() {
    let app = spawn_app().await;
    for body in [
        json!({}),
        json!({"code": ""}),
        json!({"code": 42}),
        json!({"code": "has space"}),
        json!({"code": "x".repeat(129)}),
        json!(["alice"]),
    ] {
        let response = app.post_json("/api/v1/auth/login", &body, None).await;
        assert_problem(response, 400, "invalid_request").await;
    }
    let broken = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{\"code\": ")
        .send()
        .await
        .unwrap();
    assert_problem(broken, 400, "invalid_request").await;
    assert_eq!(app.wechat.calls(), 0);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused_with_a_problem() {
    let app = spawn_app().await;
    let response = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "text/plain")
        .body("code=alice")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let code = if status == 415 {
        "unsupported_media_type"
    } else {
        "invalid_request"
    };
    assert_problem(response, status, code).await;
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413() {
    let app = spawn_app().await;
    let huge = json!({"code": "a".repeat(70_000)});
    let response = app.post_json("/api/v1/auth/login", &huge, None).await;
    assert_problem(response, 413, "payload_too_large").await;

    // Without Content-Length the limit applies while the chunked body is read.
    let status_line = chunked_post(&app.address, "/api/v1/auth/login", &huge.to_string()).await;
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");
}

/// Posts `body` with `Transfer-Encoding: chunked` over a raw socket; returns the status line.
async fn chunked_post(address: &str, path: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address.trim_start_matches("http://"))
        .await
        .unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    for chunk in body.as_bytes().chunks(4096) {
        request.push_str(&format!(
            "{:x}\r\n{}\r\n",
            chunk.len(),
            std::str::from_utf8(chunk).unwrap()
        ));
    }
    request.push_str("0\r\n\r\n");
    // The server may answer and close before it has read everything: ignore write errors.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn no_response_ever_carries_the_appsecret_or_the_session_key() {
    let app = spawn_app().await;
    let body = app.login("alice-1").await.text().await.unwrap();
    let key = app.wechat.session_key(&openid_of("alice"));
    assert!(!body.contains(APP_SECRET));
    assert!(!body.contains(key.expose_text()));
}
