//! The sandbox's WeChat web authorisation on its own, over plain HTTP: the consent and QR
//! pages' redirects and error pages, `sns/oauth2/access_token` and `sns/userinfo`.

use serde_json::Value;
use wechat_auth::{
    domain::AppId,
    wechat::sandbox::{openid_for, unionid_for},
};

use crate::{
    helpers::assert_problem,
    sandbox_app::{MINI_APPID, OA_APPID, SECRET, WEB_APPID, spawn_sandbox_alone},
};

fn appid(raw: &str) -> AppId {
    AppId::parse(raw).unwrap()
}

#[tokio::test]
async fn sandbox_user_and_sandbox_action_answer_at_once_like_wechat() {
    let sandbox = spawn_sandbox_alone().await;
    let query = |extra: &'static [(&'static str, &'static str)]| {
        let landing = sandbox.landing();
        let mut query = vec![
            ("appid".to_owned(), OA_APPID.to_owned()),
            ("redirect_uri".to_owned(), format!("{landing}?page=home")),
            ("response_type".to_owned(), "code".to_owned()),
            ("scope".to_owned(), "snsapi_userinfo".to_owned()),
            ("state".to_owned(), "abc123".to_owned()),
        ];
        query.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        query
    };
    let get = |query: Vec<(String, String)>| {
        let sandbox = &sandbox;
        async move {
            sandbox
                .http
                .get(sandbox.url("/sandbox/connect/oauth2/authorize"))
                .query(&query)
                .send()
                .await
                .unwrap()
        }
    };

    let allowed = get(query(&[("sandbox_user", "alice")])).await;
    assert_eq!(allowed.status().as_u16(), 302);
    let location = allowed.headers()["location"].to_str().unwrap().to_owned();
    let code = location
        .strip_prefix(&format!("{}?page=home&code=", sandbox.landing()))
        .and_then(|rest| rest.strip_suffix("&state=abc123"))
        .unwrap_or_else(|| panic!("the site's query kept, then code and state: {location}"));
    assert_eq!(code.len(), 32);
    assert!(code.bytes().all(|b| b.is_ascii_alphanumeric()));

    let denied = get(query(&[("sandbox_action", "deny")])).await;
    assert_eq!(denied.status().as_u16(), 302);
    assert_eq!(
        denied.headers()["location"],
        format!("{}?page=home&state=abc123", sandbox.landing()).as_str()
    );

    let asked = get(query(&[])).await;
    assert_eq!(asked.status().as_u16(), 200);
    assert!(asked.headers().get("location").is_none());
    assert!(
        asked.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

#[tokio::test]
async fn malformed_authorisation_requests_get_an_error_page_and_never_a_redirect() {
    let sandbox = spawn_sandbox_alone().await;
    let landing = sandbox.landing();
    let long_state = "a".repeat(129);
    let (oa, qr) = ("/connect/oauth2/authorize", "/connect/qrconnect");
    // (page, the one parameter that is wrong, its value, what the error page says)
    let cases = [
        (oa, "appid", "", "10012"),
        (oa, "appid", "wxunknown", "simulates no app"),
        (oa, "appid", WEB_APPID, "10016"),
        (oa, "appid", MINI_APPID, "wx.login"),
        (qr, "appid", OA_APPID, "website app"),
        (oa, "scope", "snsapi_login", "10005"),
        (oa, "scope", "", "10010"),
        (oa, "redirect_uri", "", "10011"),
        (oa, "redirect_uri", "/relative", "10003"),
        (oa, "redirect_uri", "javascript:alert(1)", "10003"),
        (oa, "redirect_uri", "ftp://x.example/", "10003"),
        (oa, "response_type", "token", "response_type"),
        (oa, "state", "has-dash", "state"),
        (oa, "state", &long_state, "state"),
    ];
    for (path, key, value, expected) in cases {
        let mut query = vec![
            ("appid", OA_APPID),
            ("redirect_uri", landing.as_str()),
            ("response_type", "code"),
            (
                "scope",
                if path.contains("qr") {
                    "snsapi_login"
                } else {
                    "snsapi_base"
                },
            ),
            ("state", "s"),
            ("sandbox_user", "alice"),
        ];
        query.retain(|(k, _)| *k != key);
        query.push((key, value));
        let response = sandbox.get(path, &query).await;
        assert_eq!(response.status().as_u16(), 400, "{path} {key}={value}");
        assert!(response.headers().get("location").is_none());
        let page = response.text().await.unwrap();
        assert!(page.contains("Oops! Something went wrong"), "{key}={value}");
        assert!(
            page.contains(expected),
            "{key}={value} should say {expected}"
        );
    }
}

#[tokio::test]
async fn everything_the_pages_show_is_escaped() {
    let sandbox = spawn_sandbox_alone().await;
    let hostile = format!("{}?x=\"><script>alert(1)</script>", sandbox.landing());
    let response = sandbox
        .get(
            "/connect/oauth2/authorize",
            &[
                ("appid", OA_APPID),
                ("redirect_uri", &hostile),
                ("response_type", "code"),
                ("scope", "snsapi_userinfo"),
                ("state", "s"),
                // Not a valid name (the '-'): the page shows it again in the name field.
                ("sandbox_user", "<img src=x onerror=alert(1)>-"),
            ],
        )
        .await;
    assert_eq!(response.status().as_u16(), 400);
    let page = response.text().await.unwrap();
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(!page.contains("<img src=x"), "{page}");
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;-"));
    assert!(page.contains("has no &#39;-&#39;"), "the reason is shown");
}

#[tokio::test]
async fn a_code_exchanges_once_for_the_openid_of_that_name_in_that_app() {
    let sandbox = spawn_sandbox_alone().await;
    let code = sandbox.code_for(OA_APPID, "snsapi_userinfo", "alice").await;
    let token = sandbox.exchange(OA_APPID, &code).await;
    assert_eq!(token["openid"], openid_for(&appid(OA_APPID), "alice"));
    assert_eq!(token["unionid"], unionid_for("alice"));
    assert_eq!(token["scope"], "snsapi_userinfo");
    assert_eq!(token["expires_in"], 7200);
    assert!(
        token["access_token"]
            .as_str()
            .is_some_and(|t| t.len() >= 32)
    );
    assert!(token["refresh_token"].is_string());
    assert!(token.get("is_snapshotuser").is_none());
    assert!(token.get("errcode").is_none());

    let again = sandbox.exchange(OA_APPID, &code).await;
    assert_eq!(again["errcode"], 40163);
}

#[tokio::test]
async fn the_code_exchange_checks_code_appid_and_secret_like_wechat() {
    let sandbox = spawn_sandbox_alone().await;
    let code = sandbox.code_for(OA_APPID, "snsapi_base", "alice").await;
    let exchange = |appid: &'static str, secret: &'static str, code: String| {
        let sandbox = &sandbox;
        async move {
            sandbox
                .get_wechat_json(
                    "/sns/oauth2/access_token",
                    &[
                        ("appid", appid),
                        ("secret", secret),
                        ("code", &code),
                        ("grant_type", "authorization_code"),
                    ],
                )
                .await
        }
    };
    assert_eq!(
        exchange("wxnobody", SECRET, code.clone()).await["errcode"],
        40013
    );
    assert_eq!(
        exchange(OA_APPID, "wrong", code.clone()).await["errcode"],
        40125
    );
    assert_eq!(
        exchange(OA_APPID, SECRET, "nonsense".into()).await["errcode"],
        40029
    );
    // Another app's code is no code for this one.
    assert_eq!(
        exchange(WEB_APPID, SECRET, code.clone()).await["errcode"],
        40029
    );
    // None of that spent it.
    assert!(exchange(OA_APPID, SECRET, code).await["openid"].is_string());
}

#[tokio::test]
async fn userinfo_answers_the_profile_for_the_token_and_its_openid_only() {
    let sandbox = spawn_sandbox_alone().await;
    let code = sandbox.code_for(OA_APPID, "snsapi_userinfo", "alice").await;
    let token = sandbox.exchange(OA_APPID, &code).await;
    let access_token = token["access_token"].as_str().unwrap();
    let openid = token["openid"].as_str().unwrap();
    let userinfo = |token: &str, openid: &str| {
        let query = [
            ("access_token", token.to_owned()),
            ("openid", openid.to_owned()),
        ];
        let sandbox = &sandbox;
        async move {
            let query: Vec<(&str, &str)> = query
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .chain([("lang", "zh_CN")])
                .collect();
            sandbox.get_wechat_json("/sns/userinfo", &query).await
        }
    };

    let profile = userinfo(access_token, openid).await;
    assert_eq!(profile["openid"], openid);
    assert_eq!(profile["nickname"], "alice");
    assert_eq!(profile["sex"], 0);
    assert_eq!(profile["province"], "");
    assert_eq!(profile["privilege"], Value::Array(vec![]));
    assert_eq!(profile["unionid"], unionid_for("alice"));
    let avatar = profile["headimgurl"].as_str().unwrap();
    assert_eq!(avatar, sandbox.url("/sandbox/avatar/alice.svg"));
    let image = reqwest::get(avatar).await.unwrap();
    assert_eq!(image.headers()["content-type"], "image/svg+xml");
    let not_an_avatar = reqwest::get(sandbox.url("/sandbox/avatar/alice.png"))
        .await
        .unwrap();
    assert_problem(not_an_avatar, 404, "not_found").await;

    assert_eq!(userinfo("not-a-token", openid).await["errcode"], 40001);
    let bob = openid_for(&appid(OA_APPID), "bob");
    assert_eq!(userinfo(access_token, &bob).await["errcode"], 40003);
}

#[tokio::test]
async fn silent_sign_in_reveals_neither_unionid_nor_profile() {
    let sandbox = spawn_sandbox_alone().await;
    let code = sandbox.code_for(OA_APPID, "snsapi_base", "alice").await;
    let token = sandbox.exchange(OA_APPID, &code).await;
    assert_eq!(token["scope"], "snsapi_base");
    assert!(token.get("unionid").is_none(), "{token}");
    let profile = sandbox
        .get_wechat_json(
            "/sns/userinfo",
            &[
                ("access_token", token["access_token"].as_str().unwrap()),
                ("openid", token["openid"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(profile["errcode"], 48001);
}

#[tokio::test]
async fn one_name_is_one_unionid_in_the_mini_program_and_on_the_web() {
    let sandbox = spawn_sandbox_alone().await;
    let mini = sandbox
        .get_wechat_json(
            "/sns/jscode2session",
            &[
                ("appid", MINI_APPID),
                ("secret", SECRET),
                ("js_code", "alice-phone"),
                ("grant_type", "authorization_code"),
            ],
        )
        .await;
    let oa_code = sandbox.code_for(OA_APPID, "snsapi_userinfo", "alice").await;
    let oa = sandbox.exchange(OA_APPID, &oa_code).await;
    let web_code = sandbox.code_for(WEB_APPID, "snsapi_login", "alice").await;
    let web = sandbox.exchange(WEB_APPID, &web_code).await;

    assert_eq!(mini["unionid"], oa["unionid"]);
    assert_eq!(oa["unionid"], web["unionid"]);
    assert_ne!(mini["openid"], oa["openid"]);
    assert_ne!(oa["openid"], web["openid"]);
    assert_eq!(mini["openid"], openid_for(&appid(MINI_APPID), "alice"));
}

#[tokio::test]
async fn the_mini_program_api_refuses_web_appids() {
    let sandbox = spawn_sandbox_alone().await;
    let answer = sandbox
        .get_wechat_json(
            "/sns/jscode2session",
            &[
                ("appid", OA_APPID),
                ("secret", SECRET),
                ("js_code", "alice"),
                ("grant_type", "authorization_code"),
            ],
        )
        .await;
    assert_eq!(answer["errcode"], 40013);
}

#[tokio::test]
async fn the_snapshot_user_is_flagged_like_wechats_virtual_users() {
    let sandbox = spawn_sandbox_alone().await;
    let code = sandbox.code_for(OA_APPID, "snsapi_base", "snapshot").await;
    let token = sandbox.exchange(OA_APPID, &code).await;
    assert_eq!(token["is_snapshotuser"], 1);
}

#[tokio::test]
async fn reserved_names_answer_their_wechat_error_at_the_exchange() {
    let sandbox = spawn_sandbox_alone().await;
    for (name, errcode) in [
        ("sandbox-busy", -1),
        ("sandbox-invalid", 40029),
        ("sandbox-used", 40163),
        ("sandbox-blocked", 40226),
        ("sandbox-limited", 45011),
    ] {
        let code = sandbox.code_for(OA_APPID, "snsapi_userinfo", name).await;
        assert_eq!(sandbox.exchange(OA_APPID, &code).await["errcode"], errcode);
        // Busy stays busy for a caller's retries.
        assert_eq!(sandbox.exchange(OA_APPID, &code).await["errcode"], errcode);
    }
}
