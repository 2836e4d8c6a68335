//! The server API (contract v1.4): only the team's backends, with a key, look users up,
//! disable and enable them and end their sessions.

use reqwest::redirect::Policy;
use serde_json::{Value, json};

use crate::{
    events::{SERVER_KEY, server_get, server_post, spawn_with_server_keys},
    helpers::{APPID, OA_APPID, RETURN_URL, assert_problem, openid_of, phone_payload, spawn_app},
};

#[tokio::test]
async fn without_keys_every_server_path_answers_app_not_configured() {
    let app = spawn_app().await;
    for path in [
        "/api/v1/server/events",
        "/api/v1/server/users?unionid=x",
        "/api/v1/server/users/3f1c0000-0000-7000-8000-000000000000",
    ] {
        let response = app
            .http
            .get(app.url(path))
            .bearer_auth(SERVER_KEY)
            .send()
            .await
            .unwrap();
        assert_problem(response, 404, "app_not_configured").await;
        let bare = app.http.get(app.url(path)).send().await.unwrap();
        assert_problem(bare, 404, "app_not_configured").await;
    }
}

#[tokio::test]
async fn only_a_configured_key_opens_the_server_api_and_a_key_is_no_user_token() {
    let app = spawn_with_server_keys().await;
    let user = app.login_ok("wes").await;
    let path = app.url(&format!("/api/v1/server/users/{}", user.user_id));
    let missing = app.http.get(&path).send().await.unwrap();
    assert_problem(missing, 401, "unauthorized").await;
    let wrong = app
        .http
        .get(&path)
        .bearer_auth("backend-key-0123456789-abcdefghijklmnoX")
        .send()
        .await
        .unwrap();
    assert_problem(wrong, 401, "unauthorized").await;
    let user_token = app
        .http
        .get(&path)
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    assert_problem(user_token, 401, "unauthorized").await;
    assert_problem(app.me(SERVER_KEY).await, 401, "unauthorized").await;
    let right = app
        .http
        .get(&path)
        .bearer_auth(SERVER_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status().as_u16(), 200);
}

#[tokio::test]
async fn users_are_found_by_id_by_a_joined_away_id_by_openid_by_unionid_and_by_phone() {
    let app = spawn_with_server_keys().await;
    let xan = app.login_ok("xan").await;
    let phone = app
        .post_json(
            "/api/v1/wechat/phone-number",
            &app.seal(&xan.openid, &phone_payload()),
            Some(&xan.token),
        )
        .await;
    assert_eq!(phone.status().as_u16(), 200);

    let by_id: Value = server_get(&app, &format!("/api/v1/server/users/{}", xan.user_id))
        .await
        .json()
        .await
        .unwrap();
    let user = &by_id["user"];
    assert_eq!(user["id"], xan.user_id.as_str());
    assert_eq!(user["openid"], openid_of("xan"));
    assert_eq!(user["phone_number"], "13800138000");
    assert_eq!(user["disabled"], false);
    assert!(user["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(user["identities"][0]["appid"], APPID);

    for query in [
        format!("appid={APPID}&openid={}", openid_of("xan")),
        "phone_number=13800138000".to_owned(),
        "phone_number=%2B8613800138000".to_owned(),
    ] {
        let found: Value = server_get(&app, &format!("/api/v1/server/users?{query}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(found["users"].as_array().unwrap().len(), 1, "{query}");
        assert_eq!(found["users"][0]["id"], xan.user_id.as_str(), "{query}");
    }
    let nobody: Value = server_get(&app, "/api/v1/server/users?phone_number=13900000000")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(nobody["users"], json!([]));

    // A join: the removed id answers the kept user.
    let older = app.login_ok("yara-1").await;
    app.wechat.bind_unionid("yara", "oU_yara");
    let newer: Value = app
        .post_json(
            "/api/v1/auth/web/login",
            &json!({"app": "official_account", "code": "yara-2"}),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let removed = newer["user"]["id"].as_str().unwrap().to_owned();
    app.login_ok("yara-3").await;
    let aliased: Value = server_get(&app, &format!("/api/v1/server/users/{removed}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(aliased["user"]["id"], older.user_id.as_str());
    let by_unionid: Value = server_get(&app, "/api/v1/server/users?unionid=oU_yara")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_unionid["users"][0]["id"], older.user_id.as_str());
    let by_oa: Value = server_get(
        &app,
        &format!(
            "/api/v1/server/users?appid={OA_APPID}&openid={}",
            by_unionid["users"][0]["identities"][1]["openid"]
                .as_str()
                .unwrap()
        ),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(by_oa["users"][0]["id"], older.user_id.as_str());

    for unknown in ["3f1c0000-0000-7000-8000-000000000000", "not-a-user-id"] {
        assert_problem(
            server_get(&app, &format!("/api/v1/server/users/{unknown}")).await,
            404,
            "not_found",
        )
        .await;
    }
    for bad in [
        "",
        "unionid=a&phone_number=13800138000",
        "appid=wx0123",
        "phone_number=12345",
    ] {
        assert_problem(
            server_get(&app, &format!("/api/v1/server/users?{bad}")).await,
            400,
            "invalid_request",
        )
        .await;
    }
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// Starts a redirect flow for the Official Account; returns (state, cookie).
async fn start_flow(app: &crate::helpers::TestApp) -> (String, String) {
    let return_to: String = url::form_urlencoded::byte_serialize(RETURN_URL.as_bytes()).collect();
    let response = browser()
        .get(app.url(&format!(
            "/api/v1/web/authorize?app=official_account&return_to={return_to}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let state = url::Url::parse(&location.replace("#wechat_redirect", ""))
        .unwrap()
        .query_pairs()
        .find(|(key, _)| key == "state")
        .unwrap()
        .1
        .into_owned();
    (state, cookie)
}

/// WeChat sends the browser back with `code`: where we send it next.
async fn come_back(app: &crate::helpers::TestApp, state: &str, cookie: &str, code: &str) -> String {
    let response = browser()
        .get(app.url(&format!("/api/v1/web/callback?code={code}&state={state}")))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 302);
    response.headers()["location"].to_str().unwrap().to_owned()
}

fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

#[tokio::test]
async fn a_disabled_user_is_refused_on_every_login_path_until_enabled() {
    let app = spawn_with_server_keys().await;
    // zed uses the mini program and the Official Account: one person by unionid.
    app.wechat.bind_unionid("zed", "oU_zed");
    let first: Value = app.login("zed-1").await.json().await.unwrap();
    let user_id = first["user"]["id"].as_str().unwrap().to_owned();
    let token = first["access_token"].as_str().unwrap().to_owned();
    let refresh = first["refresh_token"].as_str().unwrap().to_owned();
    // A ticket issued before the user is disabled.
    let (state, cookie) = start_flow(&app).await;
    let ticket = param(&come_back(&app, &state, &cookie, "zed-2").await, "ticket").unwrap();

    let disabled: Value = server_post(&app, &format!("/api/v1/server/users/{user_id}/disable"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(disabled["user"]["id"], user_id.as_str());
    assert_eq!(disabled["user"]["disabled"], true);

    assert_problem(app.me(&token).await, 401, "unauthorized").await;
    assert_problem(
        app.post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": refresh}),
            None,
        )
        .await,
        403,
        "user_disabled",
    )
    .await;
    assert_problem(app.login("zed-3").await, 403, "user_disabled").await;
    assert_problem(
        app.post_json(
            "/api/v1/auth/web/login",
            &json!({"app": "official_account", "code": "zed-4"}),
            None,
        )
        .await,
        403,
        "user_disabled",
    )
    .await;
    assert_problem(
        app.post_json("/api/v1/auth/ticket", &json!({"ticket": ticket}), None)
            .await,
        403,
        "user_disabled",
    )
    .await;
    let (state, cookie) = start_flow(&app).await;
    let back = come_back(&app, &state, &cookie, "zed-5").await;
    assert!(back.starts_with(RETURN_URL), "{back}");
    assert_eq!(param(&back, "error").as_deref(), Some("user_disabled"));
    assert_eq!(param(&back, "ticket"), None);

    let enabled: Value = server_post(&app, &format!("/api/v1/server/users/{user_id}/enable"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(enabled["user"]["disabled"], false);
    let again = app.login_ok("zed-6").await;
    assert_eq!(again.user_id, user_id);
    assert_eq!(app.me(&again.token).await.status().as_u16(), 200);
    let (state, cookie) = start_flow(&app).await;
    let back = come_back(&app, &state, &cookie, "zed-7").await;
    let ticket = param(&back, "ticket").expect("a ticket once enabled");
    let redeemed = app
        .post_json("/api/v1/auth/ticket", &json!({"ticket": ticket}), None)
        .await;
    assert_eq!(redeemed.status().as_u16(), 200);
    assert_problem(
        server_post(
            &app,
            "/api/v1/server/users/3f1c0000-0000-7000-8000-000000000000/disable",
        )
        .await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn revoking_a_users_sessions_ends_every_one_of_them() {
    let app = spawn_with_server_keys().await;
    let first: Value = app.login("abe-1").await.json().await.unwrap();
    let second = app.login_ok("abe-2").await;
    let user_id = second.user_id.clone();
    let revoked = server_post(
        &app,
        &format!("/api/v1/server/users/{user_id}/sessions/revoke"),
    )
    .await;
    assert_eq!(revoked.status().as_u16(), 204);
    assert_problem(app.me(&second.token).await, 401, "unauthorized").await;
    assert_problem(
        app.me(first["access_token"].as_str().unwrap()).await,
        401,
        "unauthorized",
    )
    .await;
    assert_problem(
        app.post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": first["refresh_token"]}),
            None,
        )
        .await,
        401,
        "invalid_grant",
    )
    .await;
    // Not disabled: they sign in again.
    assert_eq!(app.login_ok("abe-3").await.user_id, user_id);
}

#[tokio::test]
async fn the_spec_documents_the_server_api_under_its_own_tag_and_scheme() {
    let app = spawn_app().await;
    let spec: Value = app.get_json("/api/openapi.json").await;
    assert_eq!(
        spec["components"]["securitySchemes"]["ServerKey"]["scheme"],
        "bearer"
    );
    for (path, method) in [
        ("/api/v1/server/users/{id}", "get"),
        ("/api/v1/server/users", "get"),
        ("/api/v1/server/users/{id}/disable", "post"),
        ("/api/v1/server/users/{id}/enable", "post"),
        ("/api/v1/server/users/{id}/sessions/revoke", "post"),
        ("/api/v1/server/events", "get"),
    ] {
        let operation = &spec["paths"][path][method];
        assert_eq!(operation["tags"], json!(["Server"]), "{method} {path}");
        assert_eq!(
            operation["security"],
            json!([{"ServerKey": []}]),
            "{method} {path}"
        );
    }
    assert!(
        spec["components"]["schemas"]["ProblemCode"]["enum"]
            .as_array()
            .unwrap()
            .contains(&json!("user_disabled"))
    );
}
