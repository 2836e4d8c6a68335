use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_app_with};

const REFRESH: &str = "/api/v1/auth/refresh";
const LOGOUT: &str = "/api/v1/auth/logout";

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.post_json(REFRESH, &json!({ "refresh_token": token }), None)
        .await
}

async fn login_body(app: &TestApp, code: &str) -> Value {
    app.login(code).await.json().await.unwrap()
}

fn text(value: &Value, field: &str) -> String {
    value[field].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_refresh_answers_a_new_pair_for_the_same_user() {
    let app = spawn_app().await;
    let login = login_body(&app, "alice-1").await;

    let response = refresh(&app, &text(&login, "refresh_token")).await;

    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["new_user"], false);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["user"], login["user"]);
    assert_ne!(body["refresh_token"], login["refresh_token"]);
    assert_ne!(body["access_token"], login["access_token"]);
    assert_eq!(
        app.me(&text(&body, "access_token")).await.status().as_u16(),
        200
    );
    assert_eq!(app.wechat.calls(), 1, "refresh does not go to WeChat");
}

#[tokio::test]
async fn rotation_retires_each_refresh_token_after_one_use() {
    let app = spawn_app().await;
    let login = login_body(&app, "alice-1").await;
    let second: Value = refresh(&app, &text(&login, "refresh_token"))
        .await
        .json()
        .await
        .unwrap();
    let third: Value = refresh(&app, &text(&second, "refresh_token"))
        .await
        .json()
        .await
        .unwrap();
    assert!(third["refresh_token"].is_string());
    assert_eq!(third["user"]["id"], login["user"]["id"]);
}

#[tokio::test]
async fn reusing_a_retired_refresh_token_revokes_the_whole_session() {
    let app = spawn_app().await;
    let login = login_body(&app, "alice-1").await;
    let stolen = text(&login, "refresh_token");
    let legitimate: Value = refresh(&app, &stolen).await.json().await.unwrap();

    let replay = refresh(&app, &stolen).await;

    assert_problem(replay, 401, "invalid_grant").await;
    // Everything of that session is dead: the successor refresh token and its access token.
    assert_problem(
        refresh(&app, &text(&legitimate, "refresh_token")).await,
        401,
        "invalid_grant",
    )
    .await;
    assert_problem(
        app.me(&text(&legitimate, "access_token")).await,
        401,
        "unauthorized",
    )
    .await;
    assert_problem(
        app.me(&text(&login, "access_token")).await,
        401,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn reuse_revokes_only_that_session_not_the_users_other_devices() {
    let app = spawn_app().await;
    let phone = login_body(&app, "alice-1").await;
    let tablet = login_body(&app, "alice-2").await;
    refresh(&app, &text(&phone, "refresh_token")).await;
    refresh(&app, &text(&phone, "refresh_token")).await;
    assert_eq!(
        app.me(&text(&tablet, "access_token"))
            .await
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        refresh(&app, &text(&tablet, "refresh_token"))
            .await
            .status()
            .as_u16(),
        200
    );
}

#[tokio::test]
async fn of_two_refreshes_racing_with_one_token_exactly_one_wins() {
    let app = spawn_app().await;
    let login = login_body(&app, "alice-1").await;
    let token = text(&login, "refresh_token");
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..2 {
        let (http, url, token) = (app.http.clone(), app.url(REFRESH), token.clone());
        racers.spawn(async move {
            http.post(url)
                .json(&json!({"refresh_token": token}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = racers.join_next().await {
        statuses.push(status.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, vec![200, 401]);
}

#[tokio::test]
async fn unknown_and_malformed_refresh_tokens_are_invalid_grants() {
    let app = spawn_app().await;
    for token in [
        "",
        "not-a-token",
        &"x".repeat(500),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        assert_problem(refresh(&app, token).await, 401, "invalid_grant").await;
    }
    let missing = app.post_json(REFRESH, &json!({}), None).await;
    assert_problem(missing, 400, "invalid_request").await;
}

#[tokio::test]
async fn logout_ends_the_sessions_access_and_refresh_tokens_at_once() {
    let app = spawn_app().await;
    let login = login_body(&app, "alice-1").await;
    let access = text(&login, "access_token");

    let response = app.post_json(LOGOUT, &json!({}), Some(&access)).await;

    assert_eq!(response.status().as_u16(), 204);
    assert_problem(app.me(&access).await, 401, "unauthorized").await;
    assert_problem(
        refresh(&app, &text(&login, "refresh_token")).await,
        401,
        "invalid_grant",
    )
    .await;
    let again = app.post_json(LOGOUT, &json!({}), Some(&access)).await;
    assert_problem(again, 401, "unauthorized").await;
}

#[tokio::test]
async fn logout_needs_a_token() {
    let app = spawn_app().await;
    let response = app.post_json(LOGOUT, &json!({}), None).await;
    assert_problem(response, 401, "unauthorized").await;
}

#[tokio::test]
async fn an_expired_refresh_token_is_an_invalid_grant() {
    let app = spawn_app_with(&[("REFRESH_TOKEN_TTL_SECS", "60")]).await;
    let login = login_body(&app, "alice-1").await;
    assert_eq!(login["refresh_expires_in"], 60);
    let database = sea_orm::Database::connect(app.database_url())
        .await
        .unwrap();
    use sea_orm::ConnectionTrait;
    // Age the token rather than wait a minute.
    let past = chrono::Utc::now() - chrono::Duration::minutes(5);
    database
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            database.get_database_backend(),
            match database.get_database_backend() {
                sea_orm::DatabaseBackend::Postgres => "UPDATE sessions SET refresh_expires_at = $1",
                _ => "UPDATE sessions SET refresh_expires_at = ?",
            },
            [past.into()],
        ))
        .await
        .unwrap();
    assert_problem(
        refresh(&app, &text(&login, "refresh_token")).await,
        401,
        "invalid_grant",
    )
    .await;
}
