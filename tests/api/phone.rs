//! Proving and binding a phone number by SMS code (contract v1.3), through the webhook and
//! Tencent Cloud providers (fakes on 127.0.0.1), and joining users by phone.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{
        APPID, LoggedIn, OA_APPID, TestApp, TestDatabase, assert_problem, dump_database,
        execute_sql, phone_payload, spawn_app_on_with, spawn_app_with, web_openid_of,
    },
    sms_fakes::{FakeSms, SmsMode, TC_SDK_APP_ID, TC_SIGN_NAME, TC_TEMPLATE_ID},
};

const PHONE: &str = "+8613800138000";

pub async fn app_with_sms(sms: &FakeSms, extra: &[(&str, &str)]) -> TestApp {
    app_with_sms_on(TestDatabase::create().await, sms, extra).await
}

async fn app_with_sms_on(database: TestDatabase, sms: &FakeSms, extra: &[(&str, &str)]) -> TestApp {
    let settings = sms.settings();
    let mut overrides: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    overrides.extend_from_slice(extra);
    spawn_app_on_with(database, &overrides).await
}

pub async fn send_code(app: &TestApp, token: &str, phone: &str) -> reqwest::Response {
    app.post_json(
        "/api/v1/me/phone/verification",
        &json!({ "phone_number": phone }),
        Some(token),
    )
    .await
}

pub async fn bind(app: &TestApp, token: &str, phone: &str, code: &str) -> reqwest::Response {
    app.post_json(
        "/api/v1/me/phone",
        &json!({ "phone_number": phone, "verification_code": code }),
        Some(token),
    )
    .await
}

/// Sends a code to `phone` and binds it with the code the provider received.
pub async fn prove_phone(app: &TestApp, sms: &FakeSms, token: &str, phone: &str) -> Value {
    assert_eq!(
        send_code(app, token, phone).await.status(),
        StatusCode::ACCEPTED
    );
    let code = sms.last_code(PHONE).expect("the provider received a code");
    let response = bind(app, token, phone, &code).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// Moves every stored code's send time `secs` into the past, as waiting would.
pub async fn age_codes(app: &TestApp, secs: i64) {
    let url = app.database_url();
    let then = chrono::Utc::now() - chrono::Duration::seconds(secs);
    let literal = if url.starts_with("sqlite") {
        then.to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
    } else {
        then.format("%Y-%m-%d %H:%M:%S").to_string()
    };
    execute_sql(
        &url,
        &format!("UPDATE phone_verifications SET created_at = '{literal}'"),
    )
    .await;
}

async fn web_login(app: &TestApp, code: &str) -> Value {
    let response = app
        .post_json(
            "/api/v1/auth/web/login",
            &json!({ "app": "official_account", "code": code }),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_code_sent_through_the_webhook_binds_the_phone_in_e164_form() {
    let sms = FakeSms::webhook().await;
    let app = app_with_sms(&sms, &[]).await;
    let alice = app.login_ok("alice").await;

    let response = send_code(&app, &alice.token, "13800138000").await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let sent: Value = response.json().await.unwrap();
    assert_eq!(sent, json!({ "expires_in": 300, "resend_after": 60 }));
    let message = &sms.messages()[0];
    assert_eq!(message["phone_number"], PHONE);
    assert_eq!(message["expires_in"], 300);
    let code = message["code"].as_str().unwrap().to_owned();
    assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()));

    let response = bind(&app, &alice.token, "13800138000", &code).await;
    assert_eq!(response.status(), StatusCode::OK);
    let login: Value = response.json().await.unwrap();
    assert_eq!(login["user"]["id"], alice.user_id.as_str());
    assert_eq!(login["user"]["phone_number"], PHONE);
    assert_eq!(login["new_user"], false);
    assert_eq!(login["token_type"], "Bearer");
    assert!(login["refresh_token"].is_string());
    let me: Value = app
        .me(login["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["phone_number"], PHONE);
    // The caller's own session still works: nobody was joined.
    assert_eq!(app.me(&alice.token).await.status(), StatusCode::OK);
    // The code was spent by the success, and only its hash was ever stored.
    assert_problem(
        bind(&app, &alice.token, PHONE, &code).await,
        422,
        "verification_failed",
    )
    .await;
    assert!(!dump_database(&app.database_url()).await.contains(&code));
}

#[tokio::test]
async fn phone_numbers_in_other_shapes_are_invalid_requests() {
    let sms = FakeSms::webhook().await;
    let app = app_with_sms(&sms, &[]).await;
    let alice = app.login_ok("alice").await;
    for phone in [
        "",
        "138 0013 8000",
        "1380013800",
        "+86-13800138000",
        "8613800138000",
        "+0123",
    ] {
        assert_problem(
            send_code(&app, &alice.token, phone).await,
            400,
            "invalid_request",
        )
        .await;
    }
    assert_problem(
        bind(&app, &alice.token, "12345", "123456").await,
        400,
        "invalid_request",
    )
    .await;
    assert!(sms.messages().is_empty());
}

#[tokio::test]
async fn without_an_sms_provider_the_phone_endpoints_are_not_configured() {
    let app = spawn_app_with(&[]).await;
    let alice = app.login_ok("alice").await;
    assert_problem(
        send_code(&app, &alice.token, PHONE).await,
        404,
        "app_not_configured",
    )
    .await;
    assert_problem(
        bind(&app, &alice.token, PHONE, "123456").await,
        404,
        "app_not_configured",
    )
    .await;
    // Still a bearer endpoint: no token, no answer about configuration.
    let anonymous = app
        .post_json(
            "/api/v1/me/phone/verification",
            &json!({ "phone_number": PHONE }),
            None,
        )
        .await;
    assert_problem(anonymous, 401, "unauthorized").await;
}

#[tokio::test]
async fn five_wrong_tries_spend_the_code() {
    let sms = FakeSms::webhook().await;
    let app = app_with_sms(&sms, &[]).await;
    let alice = app.login_ok("alice").await;
    send_code(&app, &alice.token, PHONE).await;
    let code = sms.last_code(PHONE).unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        assert_problem(
            bind(&app, &alice.token, PHONE, wrong).await,
            422,
            "verification_failed",
        )
        .await;
    }
    assert_problem(
        bind(&app, &alice.token, PHONE, &code).await,
        422,
        "verification_failed",
    )
    .await;
    let me: Value = app.me(&alice.token).await.json().await.unwrap();
    assert_eq!(me["phone_number"], Value::Null);
}

#[tokio::test]
async fn four_wrong_tries_leave_the_code_usable() {
    let sms = FakeSms::webhook().await;
    let app = app_with_sms(&sms, &[]).await;
    let alice = app.login_ok("alice").await;
    send_code(&app, &alice.token, PHONE).await;
    let code = sms.last_code(PHONE).unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..4 {
        assert_problem(
            bind(&app, &alice.token, PHONE, wrong).await,
            422,
            "verification_failed",
        )
        .await;
    }
    assert_eq!(
        bind(&app, &alice.token, PHONE, &code).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_code_is_only_good_for_its_user_and_number_and_until_it_expires() {
    let sms = FakeSms::webhook().await;
    let app = app_with_sms(&sms, &[]).await;
    let alice = app.login_ok("alice").await;
    let bob = app.login_ok("bob").await;
    send_code(&app, &alice.token, PHONE).await;
    let code = sms.last_code(PHONE).unwrap();
    assert_problem(
        bind(&app, &bob.token, PHONE, &code).await,
        422,
        "verification_failed",
    )
    .await;
    assert_problem(
        bind(&app, &alice.token, "+8613900139000", &code).await,
        422,
        "verification_failed",
    )
    .await;
    // The code's lifetime passes.
    execute_sql(
        &app.database_url(),
        "UPDATE phone_verifications SET expires_at = created_at",
    )
    .await;
    assert_problem(
        bind(&app, &alice.token, PHONE, &code).await,
        422,
        "verification_failed",
    )
    .await;
}

#[tokio::test]
async fn one_code_per_number_per_minute_and_a_newer_code_replaces_the_older() {
    let sms = FakeSms::webhook().await;
    let app = app_with_sms(&sms, &[]).await;
    let alice = app.login_ok("alice").await;
    let bob = app.login_ok("bob").await;
    send_code(&app, &alice.token, PHONE).await;
    let first = sms.last_code(PHONE).unwrap();

    // Within the minute, for anyone asking: 429 with a Retry-After of at most a minute.
    for token in [&alice.token, &bob.token] {
        let response = send_code(&app, token, "13800138000").await;
        let retry_after: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
        assert_problem(response, 429, "rate_limited").await;
    }
    assert_eq!(sms.messages().len(), 1);

    age_codes(&app, 61).await;
    assert_eq!(
        send_code(&app, &alice.token, PHONE).await.status(),
        StatusCode::ACCEPTED
    );
    let second = sms.last_code(PHONE).unwrap();
    if first != second {
        assert_problem(
            bind(&app, &alice.token, PHONE, &first).await,
            422,
            "verification_failed",
        )
        .await;
    }
    assert_eq!(
        bind(&app, &alice.token, PHONE, &second).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn at_most_ten_codes_per_number_a_day_whoever_asks() {
    let sms = FakeSms::webhook().await;
    let app = app_with_sms(&sms, &[]).await;
    let alice = app.login_ok("alice").await;
    let bob = app.login_ok("bob").await;
    for round in 0..10 {
        let token = if round % 2 == 0 {
            &alice.token
        } else {
            &bob.token
        };
        assert_eq!(
            send_code(&app, token, PHONE).await.status(),
            StatusCode::ACCEPTED
        );
        age_codes(&app, 120).await;
    }
    let response = send_code(&app, &alice.token, PHONE).await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        retry_after > 23 * 3600 && retry_after <= 24 * 3600,
        "Retry-After {retry_after}"
    );
    assert_problem(response, 429, "rate_limited").await;
    // Other numbers are not affected.
    assert_eq!(
        send_code(&app, &alice.token, "+8613900139000")
            .await
            .status(),
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn at_most_twenty_codes_per_user_a_day() {
    let sms = FakeSms::webhook().await;
    let app = app_with_sms(&sms, &[]).await;
    let alice = app.login_ok("alice").await;
    for n in 0..20 {
        let phone = format!("+86139001390{n:02}");
        assert_eq!(
            send_code(&app, &alice.token, &phone).await.status(),
            StatusCode::ACCEPTED
        );
    }
    assert_problem(
        send_code(&app, &alice.token, "+8613700137000").await,
        429,
        "rate_limited",
    )
    .await;
    let bob = app.login_ok("bob").await;
    assert_eq!(
        send_code(&app, &bob.token, "+8613700137000").await.status(),
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn a_webhook_failure_is_sms_failed_and_keeps_no_code() {
    let sms = FakeSms::webhook().await;
    let app = app_with_sms(&sms, &[]).await;
    let alice = app.login_ok("alice").await;
    sms.set_mode(SmsMode::Refuse);
    let body = assert_problem(
        send_code(&app, &alice.token, PHONE).await,
        502,
        "sms_failed",
    )
    .await;
    assert!(!body.to_string().contains("webhook-url-secret"));
    assert!(!dump_database(&app.database_url()).await.contains(PHONE));
    // Nothing was sent, so nothing counts against the minute.
    sms.set_mode(SmsMode::Accept);
    assert_eq!(
        send_code(&app, &alice.token, PHONE).await.status(),
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn an_unreachable_webhook_is_sms_failed() {
    let app = spawn_app_with(&[
        ("SMS_PROVIDER", "webhook"),
        ("SMS_WEBHOOK_URL", "http://127.0.0.1:9/sms"),
    ])
    .await;
    let alice = app.login_ok("alice").await;
    assert_problem(
        send_code(&app, &alice.token, PHONE).await,
        502,
        "sms_failed",
    )
    .await;
}

#[tokio::test]
async fn tencent_cloud_gets_a_signed_send_sms_and_its_code_binds() {
    let sms = FakeSms::tencentcloud().await;
    let app = app_with_sms(&sms, &[("SMS_CODE_TTL_SECS", "120")]).await;
    let alice = app.login_ok("alice").await;
    let sent: Value = send_code(&app, &alice.token, PHONE)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sent["expires_in"], 120);
    assert_eq!(
        sms.bad_signatures(),
        0,
        "the fake accepted the TC3 signature"
    );
    let body = &sms.messages()[0];
    assert_eq!(body["PhoneNumberSet"], json!([PHONE]));
    assert_eq!(body["SmsSdkAppId"], TC_SDK_APP_ID);
    assert_eq!(body["SignName"], TC_SIGN_NAME);
    assert_eq!(body["TemplateId"], TC_TEMPLATE_ID);
    assert_eq!(body["TemplateParamSet"][1], "2", "the template's minutes");
    let headers = sms.last_headers();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(header("x-tc-action"), "SendSms");
    assert_eq!(header("x-tc-version"), "2021-01-11");
    assert_eq!(header("x-tc-region"), "ap-guangzhou");
    let code = sms.last_code(PHONE).unwrap();
    let login: Value = bind(&app, &alice.token, PHONE, &code)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(login["user"]["phone_number"], PHONE);
}

#[tokio::test]
async fn tencent_cloud_failures_inside_http_200_are_sms_failed() {
    for mode in [SmsMode::Refuse, SmsMode::Error] {
        let sms = FakeSms::tencentcloud().await;
        let app = app_with_sms(&sms, &[]).await;
        let alice = app.login_ok("alice").await;
        sms.set_mode(mode);
        assert_problem(
            send_code(&app, &alice.token, PHONE).await,
            502,
            "sms_failed",
        )
        .await;
        assert!(!dump_database(&app.database_url()).await.contains(PHONE));
    }
}

#[tokio::test]
async fn a_wrong_tencent_cloud_secret_fails_the_signature_check() {
    let sms = FakeSms::tencentcloud().await;
    let app = app_with_sms(&sms, &[("SMS_TENCENTCLOUD_SECRET_KEY", "not-the-key")]).await;
    let alice = app.login_ok("alice").await;
    assert_problem(
        send_code(&app, &alice.token, PHONE).await,
        502,
        "sms_failed",
    )
    .await;
    assert_eq!(sms.bad_signatures(), 1);
}

#[tokio::test]
async fn binding_a_phone_another_user_holds_joins_the_caller_into_that_user() {
    let sms = FakeSms::webhook().await;
    let app = app_with_sms(&sms, &[]).await;
    let alice = app.login_ok("alice").await;
    prove_phone(&app, &sms, &alice.token, PHONE).await;

    // The same person on the Official Account, as a separate user with a nickname.
    let page = web_login(&app, "alice2").await;
    let page_token = page["access_token"].as_str().unwrap().to_owned();
    let page_refresh = page["refresh_token"].as_str().unwrap().to_owned();
    let page_user = page["user"]["id"].as_str().unwrap().to_owned();
    assert_ne!(page_user, alice.user_id);

    age_codes(&app, 61).await;
    let joined = prove_phone(&app, &sms, &page_token, "13800138000").await;
    assert_eq!(joined["user"]["id"], alice.user_id.as_str());
    assert_eq!(joined["user"]["phone_number"], PHONE);
    assert_eq!(joined["user"]["openid"], alice.openid.as_str());
    let identities: Vec<(String, String)> = joined["user"]["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["appid"].as_str().unwrap().to_owned(),
                i["openid"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        identities,
        [
            (APPID.to_owned(), alice.openid.clone()),
            (OA_APPID.to_owned(), web_openid_of(OA_APPID, "alice2")),
        ]
    );
    // The missing profile moved over with the identity.
    assert_eq!(joined["user"]["nickname"], page["user"]["nickname"]);

    // The page's old access token spoke for a user id that is gone.
    assert_problem(app.me(&page_token).await, 401, "unauthorized").await;
    // Its refresh token's session moved with it: it answers for the kept user.
    let refreshed = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({ "refresh_token": page_refresh }),
            None,
        )
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let refreshed: Value = refreshed.json().await.unwrap();
    assert_eq!(refreshed["user"]["id"], alice.user_id.as_str());
    // The new pair and the holder's own token both work.
    let me: Value = app
        .me(joined["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], alice.user_id.as_str());
    assert_eq!(app.me(&alice.token).await.status(), StatusCode::OK);
    // A later Official Account login of the same person finds the kept user.
    assert_eq!(
        web_login(&app, "alice2-again").await["user"]["id"],
        alice.user_id.as_str()
    );
}

#[tokio::test]
async fn a_phone_from_wechat_and_the_same_number_by_sms_are_one_number() {
    let sms = FakeSms::webhook().await;
    let app = app_with_sms(&sms, &[]).await;
    let alice: LoggedIn = app.login_ok("alice").await;
    // getPhoneNumber: WeChat reports 13800138000 with country code 86.
    let saved = app
        .post_json(
            "/api/v1/wechat/phone-number",
            &app.seal(&alice.openid, &phone_payload()),
            Some(&alice.token),
        )
        .await;
    assert_eq!(saved.status(), StatusCode::OK);
    let page = web_login(&app, "alice2").await;
    let joined = prove_phone(&app, &sms, page["access_token"].as_str().unwrap(), PHONE).await;
    assert_eq!(joined["user"]["id"], alice.user_id.as_str());
    // The holder keeps the number as WeChat gave it.
    assert_eq!(joined["user"]["phone_number"], "13800138000");
}

#[tokio::test]
async fn two_users_of_the_same_app_cannot_share_a_phone() {
    let sms = FakeSms::webhook().await;
    let app = app_with_sms(&sms, &[]).await;
    let alice = app.login_ok("alice").await;
    let bob = app.login_ok("bob").await;
    prove_phone(&app, &sms, &alice.token, PHONE).await;
    age_codes(&app, 61).await;
    send_code(&app, &bob.token, PHONE).await;
    let code = sms.last_code(PHONE).unwrap();
    assert_problem(
        bind(&app, &bob.token, PHONE, &code).await,
        409,
        "phone_in_use",
    )
    .await;
    let me: Value = app.me(&bob.token).await.json().await.unwrap();
    assert_eq!(me["id"], bob.user_id.as_str());
    assert_eq!(me["phone_number"], Value::Null);
}

#[tokio::test]
async fn the_sandbox_shows_the_last_code_and_serves_the_phone_page() {
    let app = spawn_app_with(&[("WECHAT_SANDBOX", "true")]).await;
    let alice = app.login_ok("alice").await;
    assert_problem(
        app.http
            .get(app.url("/sandbox/sms?phone_number=13800138000"))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    assert_eq!(
        send_code(&app, &alice.token, "13800138000").await.status(),
        StatusCode::ACCEPTED
    );
    let shown = app.get_json("/sandbox/sms?phone_number=13800138000").await;
    assert_eq!(shown["phone_number"], PHONE);
    let code = shown["code"].as_str().unwrap();
    let login: Value = bind(&app, &alice.token, PHONE, code)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(login["user"]["phone_number"], PHONE);

    let page = app
        .http
        .get(app.url("/sandbox/phone"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("/api/v1/me/phone/verification") && html.contains("wa_sandbox_tokens"));
}

#[tokio::test]
async fn a_phone_saved_from_wechat_before_the_upgrade_is_found_by_its_e164_form() {
    use sea_orm::{ConnectionTrait, Statement};
    let database = TestDatabase::create().await;
    let holder = uuid::Uuid::now_v7();
    {
        use migration::MigratorTrait;
        let db = sea_orm::Database::connect(&database.url).await.unwrap();
        // The schema of v1.2, with a user whose number WeChat gave as 13800138000.
        migration::Migrator::up(&db, Some(5)).await.unwrap();
        let backend = db.get_database_backend();
        let placeholders = if backend == sea_orm::DatabaseBackend::Postgres {
            "$1, $2, $3, $4"
        } else {
            "?, ?, ?, ?"
        };
        let now = chrono::Utc::now();
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "INSERT INTO users (id, phone_number, created_at, updated_at) VALUES ({placeholders})"
            ),
            [holder.into(), "13800138000".into(), now.into(), now.into()],
        ))
        .await
        .unwrap();
        db.close().await.unwrap();
    }
    let sms = FakeSms::webhook().await;
    let app = app_with_sms_on(database, &sms, &[]).await;
    let page = web_login(&app, "alice2").await;
    let joined = prove_phone(&app, &sms, page["access_token"].as_str().unwrap(), PHONE).await;
    assert_eq!(joined["user"]["id"], holder.to_string());
    assert_eq!(joined["user"]["phone_number"], "13800138000");
}

#[tokio::test]
async fn of_two_binds_racing_with_one_code_exactly_one_succeeds() {
    let sms = FakeSms::webhook().await;
    let app = app_with_sms(&sms, &[]).await;
    let alice = app.login_ok("alice").await;
    send_code(&app, &alice.token, PHONE).await;
    let code = sms.last_code(PHONE).unwrap();
    let (first, second) = tokio::join!(
        bind(&app, &alice.token, PHONE, &code),
        bind(&app, &alice.token, PHONE, &code)
    );
    let mut statuses = [first.status().as_u16(), second.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 422]);
}

#[tokio::test]
async fn of_many_sends_racing_for_one_number_at_most_one_goes_out() {
    let sms = FakeSms::webhook().await;
    let app = app_with_sms(&sms, &[]).await;
    let mut tokens = Vec::new();
    for name in ["alice", "bob", "carol", "dave", "erin", "frank"] {
        tokens.push(app.login_ok(name).await.token);
    }
    let (a, b, c, d, e, f) = tokio::join!(
        send_code(&app, &tokens[0], PHONE),
        send_code(&app, &tokens[1], PHONE),
        send_code(&app, &tokens[2], PHONE),
        send_code(&app, &tokens[3], PHONE),
        send_code(&app, &tokens[4], PHONE),
        send_code(&app, &tokens[5], PHONE),
    );
    let answers = [a, b, c, d, e, f];
    let accepted = answers
        .iter()
        .filter(|a| a.status() == StatusCode::ACCEPTED)
        .count();
    assert!(accepted <= 1, "{accepted} codes went out at once");
    assert!(
        answers
            .iter()
            .all(|a| matches!(a.status().as_u16(), 202 | 429))
    );
    assert_eq!(sms.messages().len(), accepted);
}
