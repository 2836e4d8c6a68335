//! The caller's sessions and deleting the account (contract v1.3).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, assert_problem, dump_database, dump_tables, execute_sql, spawn_app},
    phone::{app_with_sms, prove_phone},
    sms_fakes::FakeSms,
};

async fn sessions(app: &TestApp, token: &str) -> Vec<Value> {
    let response = app
        .http
        .get(app.url("/api/v1/me/sessions"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["sessions"].as_array().unwrap().clone()
}

async fn delete(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.http
        .delete(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn login_pair(app: &TestApp, code: &str) -> (String, String) {
    let body: Value = app.login(code).await.json().await.unwrap();
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn refresh(app: &TestApp, refresh_token: &str) -> reqwest::Response {
    app.post_json(
        "/api/v1/auth/refresh",
        &json!({ "refresh_token": refresh_token }),
        None,
    )
    .await
}

#[tokio::test]
async fn sessions_are_listed_newest_first_with_the_current_one_marked() {
    let app = spawn_app().await;
    let (first, _) = login_pair(&app, "alice-phone").await;
    let (second, _) = login_pair(&app, "alice-laptop").await;
    login_pair(&app, "bob").await;

    let listed = sessions(&app, &first).await;
    assert_eq!(listed.len(), 2, "bob's session is not alice's: {listed:?}");
    let mine = sessions(&app, &second).await;
    assert_eq!(mine[0]["current"], true, "the newest is the second login");
    assert_eq!(mine[1]["current"], false);
    assert_eq!(listed[0]["id"], mine[0]["id"]);
    assert_eq!(listed[1]["current"], true);
    for session in &listed {
        assert_eq!(session["app"], "miniprogram");
        for field in ["created_at", "last_used_at"] {
            let text = session[field].as_str().unwrap();
            assert!(text.ends_with('Z'), "{field} is UTC: {text}");
            chrono::DateTime::parse_from_rfc3339(text).expect("RFC 3339");
        }
        assert!(session["id"].as_str().is_some_and(|id| !id.is_empty()));
    }
    assert!(listed[0]["created_at"].as_str() >= listed[1]["created_at"].as_str());
}

#[tokio::test]
async fn a_session_ended_from_the_list_stops_working_everywhere() {
    let app = spawn_app().await;
    let (phone, phone_refresh) = login_pair(&app, "alice-phone").await;
    let (laptop, _) = login_pair(&app, "alice-laptop").await;
    // The phone's session is in use, then ended from the laptop.
    assert_eq!(app.me(&phone).await.status(), StatusCode::OK);
    let listed = sessions(&app, &laptop).await;
    let phone_session = listed.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/me/sessions/{phone_session}");
    assert_eq!(
        delete(&app, &path, &laptop).await.status(),
        StatusCode::NO_CONTENT
    );

    assert_problem(app.me(&phone).await, 401, "unauthorized").await;
    assert_problem(refresh(&app, &phone_refresh).await, 401, "invalid_grant").await;
    let listed = sessions(&app, &laptop).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["current"], true);
    assert_problem(delete(&app, &path, &laptop).await, 404, "not_found").await;
}

#[tokio::test]
async fn another_users_session_or_an_unknown_one_is_not_found() {
    let app = spawn_app().await;
    let (alice, _) = login_pair(&app, "alice").await;
    let (bob, _) = login_pair(&app, "bob").await;
    let bobs = sessions(&app, &bob).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for id in [
        bobs.as_str(),
        "00000000-0000-0000-0000-000000000000",
        "not-a-session",
    ] {
        let response = delete(&app, &format!("/api/v1/me/sessions/{id}"), &alice).await;
        assert_problem(response, 404, "not_found").await;
    }
    assert_eq!(app.me(&bob).await.status(), StatusCode::OK);
    assert_problem(
        app.http
            .get(app.url("/api/v1/me/sessions"))
            .send()
            .await
            .unwrap(),
        401,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn ended_and_expired_sessions_are_not_listed() {
    let app = spawn_app().await;
    let (old, _) = login_pair(&app, "alice-1").await;
    let (gone, _) = login_pair(&app, "alice-2").await;
    let (current, _) = login_pair(&app, "alice-3").await;
    let status = app
        .post_json("/api/v1/auth/logout", &json!({}), Some(&gone))
        .await
        .status();
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(sessions(&app, &current).await.len(), 2);
    // Every refresh token's lifetime passes.
    execute_sql(
        &app.database_url(),
        "UPDATE sessions SET refresh_expires_at = created_at",
    )
    .await;
    assert!(sessions(&app, &old).await.is_empty());
}

#[tokio::test]
async fn a_refresh_counts_as_a_use_of_the_session() {
    let app = spawn_app().await;
    let (token, refresh_token) = login_pair(&app, "alice").await;
    let before = sessions(&app, &token).await[0]["last_used_at"].clone();
    let refreshed: Value = refresh(&app, &refresh_token).await.json().await.unwrap();
    let after = sessions(&app, refreshed["access_token"].as_str().unwrap()).await;
    assert_eq!(after.len(), 1, "a refresh stays in its session");
    assert!(after[0]["last_used_at"].as_str() >= before.as_str());
}

#[tokio::test]
async fn deleting_the_account_leaves_nothing_of_the_person_in_any_table() {
    let sms = FakeSms::webhook().await;
    let app = app_with_sms(&sms, &[]).await;
    let alice = app.login_ok("alice").await;
    let bob = app.login_ok("bob").await;
    // A second device, a refresh (a retired refresh token), a bound phone, a replayable code.
    let (_, laptop_refresh) = login_pair(&app, "alice-laptop").await;
    let laptop: Value = refresh(&app, &laptop_refresh).await.json().await.unwrap();
    let laptop_refresh = laptop["refresh_token"].as_str().unwrap().to_owned();
    prove_phone(&app, &sms, &alice.token, "+8613800138000").await;
    let session_ids: Vec<String> = sessions(&app, &alice.token)
        .await
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();

    let dump = dump_database(&app.database_url()).await;
    for trace in [&alice.openid, &alice.user_id, &"+8613800138000".to_owned()] {
        assert!(
            dump.contains(trace.as_str()),
            "the dump shows {trace} before"
        );
    }

    assert_eq!(
        delete(&app, "/api/v1/me", &alice.token).await.status(),
        StatusCode::NO_CONTENT
    );

    let dump = dump_database(&app.database_url()).await;
    for trace in [&alice.openid, &alice.user_id, &"+8613800138000".to_owned()]
        .into_iter()
        .chain(&session_ids)
    {
        assert!(!dump.contains(trace.as_str()), "{trace} is still stored");
    }
    assert!(dump.contains(&bob.user_id) && dump.contains(&bob.openid));
    // The events table is the one place the deleted user's id stays: `user.deleted` is the
    // notification of the deletion and carries only that id, and the person's earlier
    // events are redacted to `{"user_id"}` (kept so undelivered ones are still delivered
    // in order). Nothing else of the person remains there.
    let events = dump_tables(&app.database_url(), &["events"]).await;
    assert!(events.contains(&format!(r#"{{"user_id":"{}"}}"#, alice.user_id)));
    for trace in [&alice.openid, &"+8613800138000".to_owned()]
        .into_iter()
        .chain(&session_ids)
    {
        assert!(
            !events.contains(trace.as_str()),
            "{trace} is still in events"
        );
    }

    assert_problem(app.me(&alice.token).await, 401, "unauthorized").await;
    assert_problem(refresh(&app, &laptop_refresh).await, 401, "invalid_grant").await;
    assert_eq!(app.me(&bob.token).await.status(), StatusCode::OK);

    // The same WeChat identity signs in again later: a new user.
    let again: Value = app.login("alice-again").await.json().await.unwrap();
    assert_eq!(again["new_user"], true);
    assert_ne!(again["user"]["id"], alice.user_id.as_str());
    assert_eq!(again["user"]["phone_number"], Value::Null);
}

#[tokio::test]
async fn a_code_replayed_after_the_deletion_does_not_find_the_deleted_user() {
    let app = spawn_app().await;
    let first: Value = app.login("alice-once").await.json().await.unwrap();
    let token = first["access_token"].as_str().unwrap();
    assert_eq!(
        delete(&app, "/api/v1/me", token).await.status(),
        StatusCode::NO_CONTENT
    );
    // The same wx.login code within the replay window is exchanged afresh.
    let again: Value = app.login("alice-once").await.json().await.unwrap();
    assert_eq!(again["new_user"], true);
    assert_ne!(again["user"]["id"], first["user"]["id"]);
}

#[tokio::test]
async fn using_a_session_moves_its_last_used_time() {
    let app = spawn_app().await;
    let (token, _) = login_pair(&app, "alice").await;
    let url = app.database_url();
    let long_ago = if url.starts_with("sqlite") {
        "2001-01-01T00:00:00.000000+00:00"
    } else {
        "2001-01-01 00:00:00"
    };
    execute_sql(
        &url,
        &format!("UPDATE sessions SET last_used_at = '{long_ago}'"),
    )
    .await;
    // Listing is a use of the session; the use is recorded off the request's path, so
    // look until it shows.
    let mut seen = String::new();
    for _ in 0..100 {
        seen = sessions(&app, &token).await[0]["last_used_at"]
            .as_str()
            .unwrap()
            .to_owned();
        if !seen.starts_with("2001-") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(seen.as_str() > "2026-", "last_used_at is {seen}");
}

#[tokio::test]
async fn the_spec_documents_the_account_operations_and_their_error_codes() {
    let app = spawn_app().await;
    let spec: Value = app.get_json("/api/openapi.json").await;
    for (path, method, status) in [
        ("/api/v1/me/phone/verification", "post", "202"),
        ("/api/v1/me/phone", "post", "200"),
        ("/api/v1/me/sessions", "get", "200"),
        ("/api/v1/me/sessions/{id}", "delete", "204"),
        ("/api/v1/me", "delete", "204"),
    ] {
        let operation = &spec["paths"][path][method];
        assert!(operation["security"].is_array(), "{method} {path}");
        assert!(
            operation["responses"][status].is_object(),
            "{method} {path}"
        );
    }
    let codes = spec["components"]["schemas"]["ProblemCode"]["enum"].to_string();
    for code in ["verification_failed", "phone_in_use", "sms_failed"] {
        assert!(codes.contains(code), "{code} is undocumented");
    }
    let session = &spec["components"]["schemas"]["Session"]["properties"];
    for field in ["id", "app", "created_at", "last_used_at", "current"] {
        assert!(session[field].is_object(), "Session.{field}");
    }
}
