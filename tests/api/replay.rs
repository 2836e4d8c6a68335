use std::{collections::HashSet, time::Duration};

use serde_json::{Value, json};

use crate::helpers::{Reply, assert_problem, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_code_posted_twice_gets_a_fresh_pair_for_the_same_user_with_one_wechat_call() {
    let app = spawn_app().await;
    let first: Value = app.login("alice-1").await.json().await.unwrap();

    let response = app.login("alice-1").await;

    assert_eq!(response.status().as_u16(), 200);
    let second: Value = response.json().await.unwrap();
    assert_eq!(second["user"]["id"], first["user"]["id"]);
    assert_eq!(second["new_user"], false);
    assert_ne!(second["access_token"], first["access_token"]);
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(app.wechat.calls(), 1);
}

#[tokio::test]
async fn simultaneous_posts_of_one_code_make_one_wechat_call() {
    let app = spawn_app().await;
    // A slow WeChat widens the window in which the duplicates arrive.
    app.wechat
        .script("alice-dup", vec![Reply::Slow(Duration::from_millis(300))]);
    let mut posts = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (http, url) = (app.http.clone(), app.url("/api/v1/auth/login"));
        posts.spawn(async move {
            http.post(url)
                .json(&json!({"code": "alice-dup"}))
                .send()
                .await
                .unwrap()
        });
    }
    let mut users = HashSet::new();
    let mut new_users = 0;
    while let Some(response) = posts.join_next().await {
        let response = response.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let body: Value = response.json().await.unwrap();
        users.insert(body["user"]["id"].as_str().unwrap().to_owned());
        new_users += usize::from(body["new_user"] == true);
    }
    assert_eq!(users.len(), 1);
    assert_eq!(new_users, 1);
    assert_eq!(app.wechat.calls(), 1);
}

#[tokio::test]
async fn a_failed_exchange_is_not_replayed_and_the_retry_asks_wechat_again() {
    let app = spawn_app().await;
    app.wechat.script(
        "flaky",
        vec![
            Reply::Json(json!({"errcode": 45011, "errmsg": "limited"})),
            Reply::Json(json!({"openid": "o_flaky", "session_key": "tiihtNczf5v6AKRyjwEUhQ=="})),
        ],
    );
    assert_problem(app.login("flaky").await, 429, "rate_limited").await;
    assert_eq!(app.login("flaky").await.status().as_u16(), 200);
    assert_eq!(app.wechat.calls(), 2);
}

#[tokio::test]
async fn a_zero_window_turns_replay_off() {
    let app = spawn_app_with(&[("LOGIN_REPLAY_WINDOW_SECS", "0")]).await;
    app.login("alice-1").await;
    app.login("alice-1").await;
    assert_eq!(app.wechat.calls(), 2);
}

#[tokio::test]
async fn only_a_hash_of_the_code_is_stored() {
    let app = spawn_app().await;
    app.login("alice-secret-code").await;
    let dump = crate::helpers::dump_database(&app.database_url()).await;
    assert!(!dump.contains("alice-secret-code"));
}
