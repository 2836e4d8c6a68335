//! Web sign-in (contract v1.2): the redirect flow through WeChat's authorise page, the
//! front-end code flow, and one user per person across apps.

use reqwest::{StatusCode, redirect::Policy};
use serde_json::{Value, json};

use crate::helpers::{
    APPID, OA_APPID, OPEN_BASE, PUBLIC_BASE_URL, RETURN_URL, Reply, TestApp, WEB_APPID,
    assert_problem, openid_of, spawn_app, spawn_app_sharing, spawn_app_with, web_openid_of,
};

/// A browser that does not follow redirects, so the test sees each hop.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// A started redirect flow: WeChat's authorise URL, the state in it, and the cookie.
struct Flow {
    location: String,
    state: String,
    cookie: String,
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

async fn authorize_response(app: &TestApp, query: &str) -> reqwest::Response {
    browser()
        .get(app.url(&format!("/api/v1/web/authorize?{query}")))
        .send()
        .await
        .unwrap()
}

async fn start(app: &TestApp, web_app: &str, scope: &str, return_to: &str) -> Flow {
    start_with(
        app,
        &format!(
            "app={web_app}&scope={scope}&return_to={}",
            encode(return_to)
        ),
    )
    .await
}

async fn start_with(app: &TestApp, query: &str) -> Flow {
    let response = authorize_response(app, query).await;
    assert_eq!(response.status(), StatusCode::FOUND, "authorize {query}");
    let location = header(&response, "location");
    let set_cookie = header(&response, "set-cookie");
    let cookie = set_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.strip_prefix("wa_web_flow="))
        .expect("the flow cookie is set")
        .to_owned();
    let state = query_param(&location.replace("#wechat_redirect", ""), "state").expect("state");
    Flow {
        location,
        state,
        cookie,
    }
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .to_owned()
}

fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

async fn callback(app: &TestApp, query: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut request = browser().get(app.url(&format!("/api/v1/web/callback?{query}")));
    if let Some(cookie) = cookie {
        request = request.header("cookie", format!("wa_web_flow={cookie}"));
    }
    request.send().await.unwrap()
}

/// WeChat sends the browser back with `code`; returns where we sent it next.
async fn come_back(app: &TestApp, flow: &Flow, code: &str) -> String {
    let response = callback(
        app,
        &format!("code={code}&state={}", flow.state),
        Some(&flow.cookie),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    header(&response, "location")
}

async fn redeem(app: &TestApp, ticket: &str, verifier: Option<&str>) -> reqwest::Response {
    let mut body = json!({ "ticket": ticket });
    if let Some(verifier) = verifier {
        body["code_verifier"] = json!(verifier);
    }
    app.post_json("/api/v1/auth/ticket", &body, None).await
}

/// The whole redirect flow for user `code`'s name; returns the login response.
async fn sign_in(app: &TestApp, web_app: &str, scope: &str, code: &str) -> Value {
    let flow = start(app, web_app, scope, RETURN_URL).await;
    let back = come_back(app, &flow, code).await;
    let ticket = query_param(&back, "ticket").expect("a ticket");
    let response = redeem(app, &ticket, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn web_login(app: &TestApp, web_app: &str, code: &str) -> reqwest::Response {
    app.post_json(
        "/api/v1/auth/web/login",
        &json!({ "app": web_app, "code": code }),
        None,
    )
    .await
}

#[tokio::test]
async fn authorize_sends_the_browser_to_the_official_accounts_page_with_a_fresh_state_and_a_cookie()
{
    let app = spawn_app().await;
    let response = authorize_response(
        &app,
        &format!(
            "app=official_account&scope=snsapi_userinfo&return_to={}",
            encode(RETURN_URL)
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = header(&response, "location");
    let state = query_param(&location.replace("#wechat_redirect", ""), "state").unwrap();
    assert!((16..=128).contains(&state.len()));
    assert!(state.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(
        location,
        format!(
            "{OPEN_BASE}/connect/oauth2/authorize?appid={OA_APPID}&redirect_uri={}&response_type=code&scope=snsapi_userinfo&state={state}#wechat_redirect",
            encode(&format!("{PUBLIC_BASE_URL}/api/v1/web/callback"))
        )
    );
    let cookie = header(&response, "set-cookie");
    for attribute in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/api/v1/web",
        "Max-Age=600",
        "Secure",
    ] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    let again = start(&app, "official_account", "snsapi_userinfo", RETURN_URL).await;
    assert_ne!(again.state, state, "every flow gets its own state");
}

#[tokio::test]
async fn the_website_goes_to_the_qr_page_and_the_silent_scope_is_the_default() {
    let app = spawn_app().await;
    let website = start_with(
        &app,
        &format!("app=website&return_to={}", encode(RETURN_URL)),
    )
    .await;
    assert!(website.location.starts_with(&format!(
        "{OPEN_BASE}/connect/qrconnect?appid={WEB_APPID}&redirect_uri="
    )));
    assert!(website.location.contains("&scope=snsapi_login&"));
    let oa = start_with(
        &app,
        &format!("app=official_account&return_to={}", encode(RETURN_URL)),
    )
    .await;
    assert!(oa.location.contains("&scope=snsapi_base&"));
}

#[tokio::test]
async fn the_redirect_flow_ends_with_a_ticket_that_buys_one_token_pair() {
    let app = spawn_app().await;
    let flow = start(
        &app,
        "official_account",
        "snsapi_userinfo",
        "https://app.example.test/done?tab=2#top",
    )
    .await;
    let back = come_back(&app, &flow, "olivia-1").await;
    assert!(
        back.starts_with("https://app.example.test/done?tab=2&ticket="),
        "{back}"
    );
    assert!(back.ends_with("#top"), "the fragment is kept: {back}");
    assert!(!back.contains("access_token") && !back.contains("refresh_token"));
    let ticket = query_param(&back, "ticket").unwrap();
    assert!(ticket.len() >= 22, "at least 128 bits");

    let response = redeem(&app, &ticket, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["new_user"], true);
    assert_eq!(body["token_type"], "Bearer");
    let user = &body["user"];
    assert_eq!(user["openid"], Value::Null, "no mini-program identity");
    assert_eq!(user["nickname"], "Nick olivia");
    assert_eq!(user["avatar_url"], "https://thirdwx.qlogo.cn/olivia/132");
    assert_eq!(
        user["identities"],
        json!([{"app": "official_account", "appid": OA_APPID, "openid": web_openid_of(OA_APPID, "olivia")}])
    );
    let me: Value = app
        .me(body["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(&me, user);

    assert_problem(redeem(&app, &ticket, None).await, 401, "invalid_grant").await;
}

#[tokio::test]
async fn the_silent_scope_signs_in_without_asking_for_the_profile() {
    let app = spawn_app().await;
    app.wechat.web_scope("sam-1", "snsapi_base");
    let body = sign_in(&app, "official_account", "snsapi_base", "sam-1").await;
    assert_eq!(body["user"]["nickname"], Value::Null);
    assert_eq!(app.wechat.calls_to("userinfo"), 0);
    assert_eq!(app.wechat.calls_to("oauth2_access_token"), 1);
}

#[tokio::test]
async fn a_refusal_comes_back_as_access_denied() {
    let app = spawn_app().await;
    let flow = start(&app, "website", "snsapi_login", RETURN_URL).await;
    let response = callback(&app, &format!("state={}", flow.state), Some(&flow.cookie)).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(
        header(&response, "location"),
        format!("{RETURN_URL}?error=access_denied")
    );
    assert!(
        header(&response, "set-cookie").contains("Max-Age=0"),
        "the cookie is cleared"
    );
}

#[tokio::test]
async fn a_state_works_once_and_only_in_the_browser_that_started_it() {
    let app = spawn_app().await;
    let flow = start(&app, "official_account", "snsapi_userinfo", RETURN_URL).await;
    let other = start(&app, "official_account", "snsapi_userinfo", RETURN_URL).await;

    // Without the cookie, or with another flow's: refused, and the state is spent.
    for cookie in [None, Some(other.cookie.as_str())] {
        let flow = start(&app, "official_account", "snsapi_userinfo", RETURN_URL).await;
        let response = callback(&app, &format!("code=x-1&state={}", flow.state), cookie).await;
        assert!(
            response.headers().get("location").is_none(),
            "never a redirect"
        );
        assert_problem(response, 400, "invalid_state").await;
        let retry = callback(
            &app,
            &format!("code=x-1&state={}", flow.state),
            Some(&flow.cookie),
        )
        .await;
        assert_problem(retry, 400, "invalid_state").await;
    }

    come_back(&app, &flow, "pat-1").await;
    let replay = callback(
        &app,
        &format!("code=pat-2&state={}", flow.state),
        Some(&flow.cookie),
    )
    .await;
    assert_problem(replay, 400, "invalid_state").await;

    for state in ["", "unknownstate0000000000", "bad$state!000000000"] {
        let response = callback(&app, &format!("code=x&state={state}"), Some(&flow.cookie)).await;
        assert_problem(response, 400, "invalid_state").await;
    }
    assert_eq!(app.wechat.calls_to("oauth2_access_token"), 1);
}

#[tokio::test]
async fn a_state_that_outlived_its_ten_minutes_is_refused() {
    let app = spawn_app().await;
    let flow = start(&app, "website", "snsapi_login", RETURN_URL).await;
    // Ten minutes pass: the row's expiry moves into the past.
    crate::helpers::execute_sql(
        &app.database_url(),
        "UPDATE web_flows SET expires_at = created_at",
    )
    .await;
    let response = callback(
        &app,
        &format!("code=late-1&state={}", flow.state),
        Some(&flow.cookie),
    )
    .await;
    assert_problem(response, 400, "invalid_state").await;
    assert_eq!(app.wechat.calls_to("oauth2_access_token"), 0);
}

#[tokio::test]
async fn return_to_must_be_on_the_allow_list_as_a_parsed_url() {
    let app = spawn_app().await;
    for hostile in [
        "",
        "https://good.example.com",
        "https://app.example.test.evil.com/done",
        "https://app.example.test@evil.com/done",
        "//evil.com/done",
        "https://app.example.test:8443/done",
        "http://app.example.test/done",
        "https://app.example.test/donex",
        "https://app.example.test/other",
        "https://app.example.test\\@evil.com/done",
        "https://evil.com\\@app.example.test/done",
        "https://app.example.test%2F@evil.com/done",
        "https://app.example.test/done/../admin",
        "https://app.example.test/done%2F..%2Fadmin",
        "javascript:alert(1)",
    ] {
        let response = authorize_response(
            &app,
            &format!("app=official_account&return_to={}", encode(hostile)),
        )
        .await;
        assert!(response.headers().get("location").is_none(), "{hostile}");
        assert_problem(response, 400, "invalid_return_url").await;
    }
    let missing = authorize_response(&app, "app=official_account").await;
    assert_problem(missing, 400, "invalid_return_url").await;
    for allowed in [
        "https://app.example.test/done",
        "https://app.example.test/done/deeper?x=1",
        "https://app.example.test:443/done",
        "http://localhost:3000/anything",
    ] {
        start(&app, "official_account", "snsapi_base", allowed).await;
    }
}

#[tokio::test]
async fn unknown_apps_and_scopes_that_do_not_fit_are_invalid_requests() {
    let app = spawn_app().await;
    let return_to = encode(RETURN_URL);
    for query in [
        format!("app=miniprogram&return_to={return_to}"),
        format!("app=wechat&return_to={return_to}"),
        format!("return_to={return_to}"),
        format!("app=website&scope=snsapi_userinfo&return_to={return_to}"),
        format!("app=official_account&scope=snsapi_login&return_to={return_to}"),
        format!("app=official_account&scope=all&return_to={return_to}"),
        format!("app=official_account&code_challenge=short&return_to={return_to}"),
    ] {
        assert_problem(
            authorize_response(&app, &query).await,
            400,
            "invalid_request",
        )
        .await;
    }
}

#[tokio::test]
async fn apps_that_are_not_configured_answer_app_not_configured() {
    let app = spawn_app_with(&[("WECHAT_WEB_APPID", ""), ("WECHAT_WEB_SECRET", "")]).await;
    let response = authorize_response(
        &app,
        &format!("app=website&return_to={}", encode(RETURN_URL)),
    )
    .await;
    assert_problem(response, 404, "app_not_configured").await;
    assert_problem(
        web_login(&app, "website", "a-1").await,
        404,
        "app_not_configured",
    )
    .await;

    let web_only = spawn_app_with(&[("WECHAT_APPID", ""), ("WECHAT_SECRET", "")]).await;
    assert_problem(web_only.login("alice-1").await, 404, "app_not_configured").await;
    let body = sign_in(&web_only, "official_account", "snsapi_userinfo", "ann-1").await;
    let token = body["access_token"].as_str().unwrap();
    let phone = web_only
        .post_json(
            "/api/v1/wechat/phone-number",
            &json!({"code": "phone-13800138000"}),
            Some(token),
        )
        .await;
    assert_problem(phone, 404, "app_not_configured").await;
}

#[tokio::test]
async fn mini_program_operations_need_a_mini_program_identity() {
    let app = spawn_app().await;
    let body = sign_in(&app, "official_account", "snsapi_userinfo", "wendy-1").await;
    let token = body["access_token"].as_str().unwrap();
    for (path, payload) in [
        (
            "/api/v1/wechat/phone-number",
            json!({"code": "phone-13800138000"}),
        ),
        ("/api/v1/wechat/session/check", json!({})),
        (
            "/api/v1/wechat/user-info",
            json!({"encrypted_data": "AAAAAAAAAAAAAAAAAAAAAA==", "iv": "AAAAAAAAAAAAAAAAAAAAAA=="}),
        ),
    ] {
        let response = app.post_json(path, &payload, Some(token)).await;
        assert_problem(response, 409, "miniprogram_required").await;
    }
}

#[tokio::test]
async fn pkce_binds_the_ticket_to_the_verifier_of_rfc_7636_appendix_b() {
    let app = spawn_app().await;
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let mut tickets = Vec::new();
    for name in ["pk1", "pk2", "pk3"] {
        let flow = start_with(
            &app,
            &format!(
                "app=website&code_challenge={challenge}&return_to={}",
                encode(RETURN_URL)
            ),
        )
        .await;
        let back = come_back(&app, &flow, &format!("{name}-1")).await;
        tickets.push(query_param(&back, "ticket").unwrap());
    }
    assert_problem(redeem(&app, &tickets[0], None).await, 401, "invalid_grant").await;
    assert_problem(
        redeem(
            &app,
            &tickets[1],
            Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK"),
        )
        .await,
        401,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        redeem(&app, &tickets[2], Some(verifier)).await.status(),
        StatusCode::OK
    );
    // A failed redemption spends the ticket: no guessing the verifier.
    assert_problem(
        redeem(&app, &tickets[1], Some(verifier)).await,
        401,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn tickets_expire() {
    let app = spawn_app_with(&[("WEB_TICKET_TTL_SECS", "1")]).await;
    let flow = start(&app, "website", "snsapi_login", RETURN_URL).await;
    let back = come_back(&app, &flow, "late-1").await;
    let ticket = query_param(&back, "ticket").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_problem(redeem(&app, &ticket, None).await, 401, "invalid_grant").await;
    assert_problem(
        redeem(&app, "no-such-ticket", None).await,
        401,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn failures_after_a_valid_state_come_back_as_error_codes() {
    let app = spawn_app().await;
    for (code, reply, error) in [
        (
            "bad-1",
            json!({"errcode": 40029, "errmsg": "invalid code"}),
            "invalid_code",
        ),
        (
            "used-1",
            json!({"errcode": 40163, "errmsg": "code been used"}),
            "code_used",
        ),
        (
            "limit-1",
            json!({"errcode": 45011, "errmsg": "limit"}),
            "rate_limited",
        ),
        (
            "odd-1",
            json!({"errcode": 40999, "errmsg": "odd"}),
            "wechat_error",
        ),
        (
            "busy-1",
            json!({"errcode": -1, "errmsg": "busy"}),
            "wechat_unavailable",
        ),
    ] {
        app.wechat.script(code, vec![Reply::Json(reply)]);
        let flow = start(&app, "official_account", "snsapi_base", RETURN_URL).await;
        let back = come_back(&app, &flow, code).await;
        assert_eq!(back, format!("{RETURN_URL}?error={error}"));
    }
    let flow = start(&app, "official_account", "snsapi_userinfo", RETURN_URL).await;
    assert_eq!(
        come_back(&app, &flow, "snapshot-1").await,
        format!("{RETURN_URL}?error=snapshot_user")
    );
}

#[tokio::test]
async fn snapshot_users_get_no_account() {
    let app = spawn_app().await;
    assert_problem(
        web_login(&app, "official_account", "snapshot-1").await,
        403,
        "snapshot_user",
    )
    .await;
    let dump = crate::helpers::dump_database(&app.database_url()).await;
    assert!(!dump.contains("snapshot"), "no identity was stored");
}

#[tokio::test]
async fn a_failed_userinfo_still_signs_the_user_in() {
    let app = spawn_app().await;
    app.wechat.fail_userinfo();
    let response = web_login(&app, "official_account", "quiet-1").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["nickname"], Value::Null);
}

#[tokio::test]
async fn the_front_end_flow_logs_in_and_a_reloaded_page_reuses_the_exchange() {
    let app = spawn_app().await;
    let first = web_login(&app, "website", "rita-1").await;
    assert_eq!(first.status(), StatusCode::OK);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["new_user"], true);
    let reload = web_login(&app, "website", "rita-1").await;
    assert_eq!(reload.status(), StatusCode::OK);
    let reload: Value = reload.json().await.unwrap();
    assert_eq!(reload["new_user"], false);
    assert_eq!(reload["user"]["id"], first["user"]["id"]);
    assert_ne!(reload["refresh_token"], first["refresh_token"]);
    assert_eq!(
        app.wechat.calls_to("oauth2_access_token"),
        1,
        "one WeChat call in all"
    );

    for (body, code) in [
        (
            json!({"app": "miniprogram", "code": "x"}),
            "invalid_request",
        ),
        (json!({"app": "website", "code": ""}), "invalid_request"),
        (json!({"app": "website"}), "invalid_request"),
    ] {
        let response = app.post_json("/api/v1/auth/web/login", &body, None).await;
        assert_problem(response, 400, code).await;
    }
}

#[tokio::test]
async fn one_person_is_one_user_across_the_mini_program_the_official_account_and_the_website() {
    let app = spawn_app().await;
    app.wechat.bind_unionid("uma", "oUnion-uma");
    let mini = app.login_ok("uma-1").await;
    let oa: Value = web_login(&app, "official_account", "uma-2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(oa["new_user"], false, "the unionid found the user");
    assert_eq!(oa["user"]["id"], mini.user_id.as_str());
    let web: Value = web_login(&app, "website", "uma-3")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(web["user"]["id"], mini.user_id.as_str());
    let me: Value = app.me(&mini.token).await.json().await.unwrap();
    assert_eq!(me["openid"], openid_of("uma"));
    assert_eq!(me["unionid"], "oUnion-uma");
    assert_eq!(
        me["identities"],
        json!([
            {"app": "miniprogram", "appid": APPID, "openid": openid_of("uma")},
            {"app": "official_account", "appid": OA_APPID, "openid": web_openid_of(OA_APPID, "uma")},
            {"app": "website", "appid": WEB_APPID, "openid": web_openid_of(WEB_APPID, "uma")},
        ])
    );
}

#[tokio::test]
async fn a_unionid_that_arrives_later_joins_two_users_keeping_the_older() {
    let app = spawn_app().await;
    // The mini program first knows carol without a unionid...
    let older = app.login_ok("carol-1").await;
    let older_refresh = {
        let body: Value = app.login("carol-2").await.json().await.unwrap();
        body["refresh_token"].as_str().unwrap().to_owned()
    };
    // ...then the Official Account, with consent, shows her unionid: a second user.
    app.wechat.bind_unionid("carol", "oUnion-carol");
    let newer: Value = web_login(&app, "official_account", "carol-3")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(newer["new_user"], true);
    let newer_id = newer["user"]["id"].as_str().unwrap().to_owned();
    let newer_token = newer["access_token"].as_str().unwrap().to_owned();
    let newer_refresh = newer["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(newer_id, older.user_id);

    // The next mini-program login carries the unionid too: they are one person.
    let joined: Value = app.login("carol-4").await.json().await.unwrap();
    assert_eq!(joined["new_user"], false);
    assert_eq!(
        joined["user"]["id"],
        older.user_id.as_str(),
        "the older id survives"
    );
    assert_eq!(joined["user"]["unionid"], "oUnion-carol");
    assert_eq!(
        joined["user"]["nickname"], "Nick carol",
        "missing profile moved over"
    );
    assert_eq!(joined["user"]["identities"].as_array().unwrap().len(), 2);

    // The removed id's access tokens stop working; its refresh tokens now speak for the kept user.
    assert_problem(app.me(&newer_token).await, 401, "unauthorized").await;
    let refreshed = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": newer_refresh}),
            None,
        )
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let refreshed: Value = refreshed.json().await.unwrap();
    assert_eq!(refreshed["user"]["id"], older.user_id.as_str());
    // The kept user's own sessions carry on.
    assert_eq!(app.me(&older.token).await.status(), StatusCode::OK);
    let kept = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": older_refresh}),
            None,
        )
        .await;
    assert_eq!(kept.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_flow_started_on_one_instance_finishes_on_another() {
    let first = spawn_app().await;
    let second = spawn_app_sharing(&first, &[]).await;
    let flow = start(&first, "website", "snsapi_login", RETURN_URL).await;
    let back = come_back(&second, &flow, "ivy-1").await;
    let ticket = query_param(&back, "ticket").unwrap();
    let response = redeem(&first, &ticket, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_problem(redeem(&second, &ticket, None).await, 401, "invalid_grant").await;
}

#[tokio::test]
async fn the_official_accounts_domain_check_file_is_served_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("MP_verify_AbC123xyz.txt");
    std::fs::write(&path, b"AbC123xyz").unwrap();
    let app = spawn_app_with(&[("WECHAT_OA_VERIFY_FILE", path.to_str().unwrap())]).await;
    let response = app
        .http
        .get(app.url("/MP_verify_AbC123xyz.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(header(&response, "content-type").starts_with("text/plain"));
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"AbC123xyz");
    let other = app
        .http
        .get(app.url("/MP_verify_other.txt"))
        .send()
        .await
        .unwrap();
    assert_problem(other, 404, "not_found").await;
}
