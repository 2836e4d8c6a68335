//! Computer sign-in by the mini program (contract v1.3): the computer starts a sign-in and
//! long-polls it, the mini-program user scans and answers.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{
    FAKE_PNG, TestApp, assert_problem, dump_database, spawn_app, spawn_app_sharing, spawn_app_with,
};

const BROWSER: &str = "Mozilla/5.0 (Macintosh) TestBrowser/1.0";
/// The longest wait a poll asks for in these tests; a woken poll answers well before it.
const LONG_WAIT: u64 = 25;

struct Started {
    id: String,
    secret: String,
    body: Value,
}

async fn start(app: &TestApp) -> Started {
    let response = app
        .http
        .post(app.url("/api/v1/qr-login"))
        .header("User-Agent", BROWSER)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    Started {
        id: body["id"].as_str().unwrap().to_owned(),
        secret: body["secret"].as_str().unwrap().to_owned(),
        body,
    }
}

async fn poll_raw(app: &TestApp, id: &str, secret: &str, wait: u64) -> reqwest::Response {
    app.http
        .get(app.url(&format!("/api/v1/qr-login/{id}")))
        .query(&[("secret", secret), ("wait", &wait.to_string())])
        .send()
        .await
        .unwrap()
}

async fn poll(app: &TestApp, started: &Started, wait: u64) -> Value {
    let response = poll_raw(app, &started.id, &started.secret, wait).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// Polls with a long wait in the background; the answer and how long it took.
fn poll_in_background(
    app: &TestApp,
    started: &Started,
) -> tokio::task::JoinHandle<(Value, Duration)> {
    let (http, url) = (
        app.http.clone(),
        app.url(&format!("/api/v1/qr-login/{}", started.id)),
    );
    let secret = started.secret.clone();
    tokio::spawn(async move {
        let began = Instant::now();
        let response = http
            .get(url)
            .query(&[
                ("secret", secret.as_str()),
                ("wait", &LONG_WAIT.to_string()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        (response.json().await.unwrap(), began.elapsed())
    })
}

/// Long enough for a background poll to reach the service and start waiting.
async fn let_the_poll_start_waiting() {
    tokio::time::sleep(Duration::from_millis(700)).await;
}

async fn act(app: &TestApp, id: &str, action: &str, token: &str) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/api/v1/qr-login/{id}/{action}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn act_ok(app: &TestApp, id: &str, action: &str, token: &str) -> Value {
    let response = act(app, id, action, token).await;
    assert_eq!(response.status(), StatusCode::OK, "{action}");
    response.json().await.unwrap()
}

async fn image(app: &TestApp, id: &str) -> reqwest::Response {
    app.http
        .get(app.url(&format!("/api/v1/qr-login/{id}/image")))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_computer_signs_in_as_the_phone_user_who_scans_and_confirms() {
    let app = spawn_app().await;
    let started = start(&app).await;
    let id = &started.id;
    assert!(
        (16..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric()),
        "id {id}"
    );
    assert!(started.secret.len() >= 22, "128 bits at least");
    assert_eq!(started.body["expires_in"], 120);
    let image_url = started.body["image_url"].as_str().unwrap();
    assert_eq!(
        image_url,
        format!("https://auth.example.test/api/v1/qr-login/{id}/image")
    );
    assert_eq!(poll(&app, &started, 0).await["status"], "pending");

    let alice = app.login_ok("alice-phone").await;
    let scanned = act_ok(&app, id, "scan", &alice.token).await;
    assert_eq!(scanned["status"], "scanned");
    assert_eq!(scanned["requested_by"]["ip"], "127.0.0.1");
    assert_eq!(scanned["requested_by"]["user_agent"], BROWSER);
    assert_eq!(poll(&app, &started, 0).await["status"], "scanned");

    let confirmed = act_ok(&app, id, "confirm", &alice.token).await;
    assert_eq!(confirmed["status"], "confirmed");
    let signed_in = poll(&app, &started, 0).await;
    assert_eq!(signed_in["status"], "confirmed");
    assert_eq!(signed_in["token_type"], "Bearer");
    assert_eq!(signed_in["new_user"], false);
    assert_eq!(signed_in["user"]["id"], alice.user_id.as_str());
    assert!(signed_in["refresh_token"].is_string());
    assert!(signed_in["refresh_expires_in"].is_u64());
    assert!(signed_in["expires_in"].is_u64());
    let computer_token = signed_in["access_token"].as_str().unwrap();
    let me: Value = app.me(computer_token).await.json().await.unwrap();
    assert_eq!(me["id"], alice.user_id.as_str());

    let again = poll(&app, &started, 0).await;
    assert_eq!(again["status"], "confirmed");
    assert!(
        again.get("access_token").is_none_or(Value::is_null),
        "{again}"
    );
    assert!(again.get("user").is_none_or(Value::is_null));
}

#[tokio::test]
async fn a_waiting_poll_answers_at_once_on_each_change() {
    let app = spawn_app().await;
    let started = start(&app).await;
    let alice = app.login_ok("alice-wait").await;

    let waiting = poll_in_background(&app, &started);
    let_the_poll_start_waiting().await;
    act_ok(&app, &started.id, "scan", &alice.token).await;
    let (answer, took) = waiting.await.unwrap();
    assert_eq!(answer["status"], "scanned");
    assert!(took < Duration::from_secs(LONG_WAIT), "took {took:?}");

    let waiting = poll_in_background(&app, &started);
    let_the_poll_start_waiting().await;
    act_ok(&app, &started.id, "confirm", &alice.token).await;
    let (answer, took) = waiting.await.unwrap();
    assert_eq!(answer["status"], "confirmed");
    assert!(answer["access_token"].is_string());
    assert!(took < Duration::from_secs(LONG_WAIT), "took {took:?}");
}

#[tokio::test]
async fn a_deny_wakes_the_poll_and_no_one_is_signed_in() {
    let app = spawn_app().await;
    let started = start(&app).await;
    let alice = app.login_ok("alice-deny").await;
    act_ok(&app, &started.id, "scan", &alice.token).await;
    let waiting = poll_in_background(&app, &started);
    let_the_poll_start_waiting().await;
    let denied = act_ok(&app, &started.id, "deny", &alice.token).await;
    assert_eq!(denied["status"], "denied");
    let (answer, took) = waiting.await.unwrap();
    assert_eq!(answer["status"], "denied");
    assert!(answer.get("access_token").is_none_or(Value::is_null));
    assert!(took < Duration::from_secs(LONG_WAIT));
    // Finished: no second answer.
    let response = act(&app, &started.id, "confirm", &alice.token).await;
    assert_problem(response, 409, "qr_login_closed").await;
}

#[tokio::test]
async fn of_two_racing_polls_exactly_one_gets_the_tokens() {
    let app = spawn_app().await;
    for round in 0..3 {
        let started = start(&app).await;
        let alice = app.login_ok(&format!("alice-race-{round}")).await;
        act_ok(&app, &started.id, "scan", &alice.token).await;
        let (first, second) = (
            poll_in_background(&app, &started),
            poll_in_background(&app, &started),
        );
        let_the_poll_start_waiting().await;
        act_ok(&app, &started.id, "confirm", &alice.token).await;
        let answers = [first.await.unwrap().0, second.await.unwrap().0];
        assert!(answers.iter().all(|a| a["status"] == "confirmed"));
        let with_tokens = answers
            .iter()
            .filter(|a| a["access_token"].is_string())
            .count();
        assert_eq!(with_tokens, 1, "round {round}: {answers:?}");
        // Two polls arriving together after the confirm race the same way.
        let started = start(&app).await;
        act_ok(&app, &started.id, "scan", &alice.token).await;
        act_ok(&app, &started.id, "confirm", &alice.token).await;
        let (a, b) = tokio::join!(poll(&app, &started, 0), poll(&app, &started, 0));
        let with_tokens = [a, b]
            .iter()
            .filter(|a| a["access_token"].is_string())
            .count();
        assert_eq!(with_tokens, 1, "round {round}");
    }
}

#[tokio::test]
async fn a_confirm_on_another_instance_wakes_a_poll_here() {
    let here = spawn_app().await;
    let there = spawn_app_sharing(&here, &[]).await;
    let started = start(&here).await;
    let alice = there.login_ok("alice-elsewhere").await;
    act_ok(&there, &started.id, "scan", &alice.token).await;
    let waiting = poll_in_background(&here, &started);
    let_the_poll_start_waiting().await;
    act_ok(&there, &started.id, "confirm", &alice.token).await;
    let (answer, took) = waiting.await.unwrap();
    assert_eq!(answer["status"], "confirmed");
    assert_eq!(answer["user"]["id"], alice.user_id.as_str());
    assert!(took < Duration::from_secs(LONG_WAIT), "took {took:?}");
}

#[tokio::test]
async fn the_image_is_made_once_by_wechat_and_served_again() {
    let app = spawn_app().await;
    let started = start(&app).await;
    let (a, b, c) = tokio::join!(
        image(&app, &started.id),
        image(&app, &started.id),
        image(&app, &started.id)
    );
    for response in [a, b, c, image(&app, &started.id).await] {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "image/png");
        let png = response.bytes().await.unwrap();
        assert!(png.starts_with(FAKE_PNG));
        assert!(png.ends_with(started.id.as_bytes()));
    }
    assert_eq!(app.wechat.calls_to("getwxacodeunlimit"), 1);
    let request: Value =
        serde_json::from_str(&app.wechat.requests_to("getwxacodeunlimit")[0]).unwrap();
    assert_eq!(request["scene"], started.id.as_str());
    assert_eq!(request["page"], "pages/qr-login/index");
    // The secret is in no image, no request to WeChat, no URL we built, no stored row.
    let secret = started.secret.as_str();
    assert!(!app.wechat.requests_to("getwxacodeunlimit")[0].contains(secret));
    assert!(!started.body["image_url"].as_str().unwrap().contains(secret));
    assert!(!dump_database(&app.database_url()).await.contains(secret));
}

#[tokio::test]
async fn the_code_opens_the_configured_page() {
    let app = spawn_app_with(&[("QR_LOGIN_PAGE", "pages/pc/login")]).await;
    let started = start(&app).await;
    assert_eq!(image(&app, &started.id).await.status(), StatusCode::OK);
    let request: Value =
        serde_json::from_str(&app.wechat.requests_to("getwxacodeunlimit")[0]).unwrap();
    assert_eq!(request["page"], "pages/pc/login");
}

#[tokio::test]
async fn a_rejected_access_token_is_refreshed_once_for_the_image() {
    let app = spawn_app().await;
    let started = start(&app).await;
    assert_eq!(image(&app, &started.id).await.status(), StatusCode::OK);
    let second = start(&app).await;
    app.wechat.revoke_access_tokens();
    assert_eq!(image(&app, &second.id).await.status(), StatusCode::OK);
    let forced = app
        .wechat
        .requests_to("stable_token")
        .iter()
        .filter(|body| body.contains("\"force_refresh\":true"))
        .count();
    assert_eq!(forced, 1);
    assert_eq!(app.wechat.calls_to("getwxacodeunlimit"), 3);
}

#[tokio::test]
async fn wechat_errors_on_the_image_map_like_other_calls() {
    let app = spawn_app().await;
    let started = start(&app).await;
    app.wechat.fail_mini_program_codes(&[45009]);
    assert_problem(image(&app, &started.id).await, 502, "wechat_error").await;
    app.wechat.fail_mini_program_codes(&[45011]);
    assert_problem(image(&app, &started.id).await, 429, "rate_limited").await;
    // "System busy" is retried.
    app.wechat.fail_mini_program_codes(&[-1]);
    assert_eq!(image(&app, &started.id).await.status(), StatusCode::OK);
    assert_eq!(app.wechat.calls_to("getwxacodeunlimit"), 4);
}

#[tokio::test]
async fn polling_needs_the_sign_ins_secret() {
    let app = spawn_app().await;
    let started = start(&app).await;
    let other = start(&app).await;
    for (id, secret) in [
        (started.id.as_str(), ""),
        (started.id.as_str(), "wrong-secret"),
        (started.id.as_str(), other.secret.as_str()),
        ("UnknownSignIn0000000", started.secret.as_str()),
        ("bad!", started.secret.as_str()),
    ] {
        assert_problem(poll_raw(&app, id, secret, 0).await, 404, "not_found").await;
    }
    let response = app
        .http
        .get(app.url(&format!("/api/v1/qr-login/{}", started.id)))
        .send()
        .await
        .unwrap();
    assert_problem(response, 404, "not_found").await;
}

#[tokio::test]
async fn the_phone_needs_a_signed_in_user() {
    let app = spawn_app().await;
    let started = start(&app).await;
    for action in ["scan", "confirm", "deny"] {
        let response = app
            .http
            .post(app.url(&format!("/api/v1/qr-login/{}/{action}", started.id)))
            .send()
            .await
            .unwrap();
        assert_problem(response, 401, "unauthorized").await;
    }
}

#[tokio::test]
async fn unknown_sign_ins_are_not_found() {
    let app = spawn_app().await;
    let alice = app.login_ok("alice-unknown").await;
    for action in ["scan", "confirm", "deny"] {
        for id in ["UnknownSignIn0000000", "x"] {
            assert_problem(act(&app, id, action, &alice.token).await, 404, "not_found").await;
        }
    }
    assert_problem(image(&app, "UnknownSignIn0000000").await, 404, "not_found").await;
}

#[tokio::test]
async fn only_the_user_who_scanned_may_answer() {
    let app = spawn_app().await;
    let started = start(&app).await;
    let alice = app.login_ok("alice-answer").await;
    let bob = app.login_ok("bob-answer").await;
    // No answer without a scan: the phone must have shown who asks.
    let response = act(&app, &started.id, "confirm", &alice.token).await;
    assert_problem(response, 400, "invalid_request").await;
    act_ok(&app, &started.id, "scan", &alice.token).await;
    // Scanning again is harmless for alice, closed for anyone else.
    act_ok(&app, &started.id, "scan", &alice.token).await;
    for action in ["scan", "confirm", "deny"] {
        let response = act(&app, &started.id, action, &bob.token).await;
        assert_problem(response, 409, "qr_login_closed").await;
    }
    act_ok(&app, &started.id, "confirm", &alice.token).await;
    for action in ["scan", "confirm", "deny"] {
        let response = act(&app, &started.id, action, &alice.token).await;
        assert_problem(response, 409, "qr_login_closed").await;
    }
    assert_problem(image(&app, &started.id).await, 409, "qr_login_closed").await;
    let signed_in = poll(&app, &started, 0).await;
    assert_eq!(signed_in["user"]["id"], alice.user_id.as_str());
}

#[tokio::test]
async fn a_sign_in_expires_after_its_ttl_and_the_waiting_poll_says_so() {
    let app = spawn_app_with(&[("QR_LOGIN_TTL_SECS", "1")]).await;
    let started = start(&app).await;
    assert_eq!(started.body["expires_in"], 1);
    let waiting = poll_in_background(&app, &started);
    let (answer, took) = waiting.await.unwrap();
    assert_eq!(answer["status"], "expired");
    assert!(took < Duration::from_secs(LONG_WAIT));
    let alice = app.login_ok("alice-late").await;
    for action in ["scan", "confirm", "deny"] {
        let response = act(&app, &started.id, action, &alice.token).await;
        assert_problem(response, 409, "qr_login_closed").await;
    }
    assert_problem(image(&app, &started.id).await, 409, "qr_login_closed").await;
}

#[tokio::test]
async fn a_scan_left_unanswered_expires_after_thirty_seconds() {
    let app = spawn_app_with(&[("QR_LOGIN_TTL_SECS", "600")]).await;
    let started = start(&app).await;
    let alice = app.login_ok("alice-silent").await;
    act_ok(&app, &started.id, "scan", &alice.token).await;
    // One poll waits as long as allowed; the answer window closes first.
    let answer = poll(&app, &started, 30).await;
    assert_eq!(answer["status"], "expired");
    let response = act(&app, &started.id, "confirm", &alice.token).await;
    assert_problem(response, 409, "qr_login_closed").await;
}

#[tokio::test]
async fn starting_a_sign_in_shares_the_login_rate_limit() {
    let app = spawn_app_with(&[("RATE_LIMIT_PER_MIN", "2")]).await;
    assert_eq!(app.login("carol-limit").await.status(), StatusCode::OK);
    start(&app).await;
    let response = app
        .http
        .post(app.url("/api/v1/qr-login"))
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("retry-after"));
    assert_problem(response, 429, "rate_limited").await;
}

#[tokio::test]
async fn without_the_mini_program_computer_sign_in_is_not_configured() {
    let app = spawn_app_with(&[("WECHAT_APPID", ""), ("WECHAT_SECRET", "")]).await;
    let response = app
        .http
        .post(app.url("/api/v1/qr-login"))
        .send()
        .await
        .unwrap();
    assert_problem(response, 404, "app_not_configured").await;
    let response = poll_raw(&app, "UnknownSignIn0000000", "x", 0).await;
    assert_problem(response, 404, "app_not_configured").await;
}

#[tokio::test]
async fn the_sandbox_shows_a_real_qr_code_and_both_pages() {
    let app = spawn_app_with(&[("WECHAT_SANDBOX", "true")]).await;
    let started = start(&app).await;
    let response = image(&app, &started.id).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/png");
    let png = response.bytes().await.unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert_eq!(&png[12..16], b"IHDR");
    assert!(
        !png.windows(started.secret.len())
            .any(|w| w == started.secret.as_bytes())
    );
    assert_eq!(
        app.wechat.calls_to("getwxacodeunlimit"),
        0,
        "the sandbox answered"
    );

    let computer = app
        .http
        .get(app.url("/sandbox/computer"))
        .send()
        .await
        .unwrap();
    assert_eq!(computer.status(), StatusCode::OK);
    assert!(computer.text().await.unwrap().contains("/api/v1/qr-login"));
    let phone = app
        .http
        .get(app.url(&format!("/sandbox/qr-login/{}", started.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(phone.status(), StatusCode::OK);
    let page = phone.text().await.unwrap();
    assert!(page.contains(&started.id));
    assert!(!page.contains(&started.secret));

    // What the phone page does: sign a sandbox user in, scan, confirm.
    let alice = app.login_ok("alice-sandbox").await;
    act_ok(&app, &started.id, "scan", &alice.token).await;
    act_ok(&app, &started.id, "confirm", &alice.token).await;
    let signed_in = poll(&app, &started, 0).await;
    assert_eq!(signed_in["user"]["id"], alice.user_id.as_str());
}
