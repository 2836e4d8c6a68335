//! The sandbox's consent, QR and error pages on their own, in a real browser: what a
//! person clicks, and where WeChat sends the browser afterwards.

use wechat_auth::{
    domain::AppId,
    wechat::sandbox::{openid_for, unionid_for},
};

use crate::{
    browser::Browser,
    sandbox_app::{OA_APPID, WEB_APPID, query_map, spawn_sandbox_alone},
};

fn appid(raw: &str) -> AppId {
    AppId::parse(raw).unwrap()
}

#[tokio::test]
async fn allowing_on_the_consent_page_sends_the_browser_back_with_a_code_and_the_state() {
    let sandbox = spawn_sandbox_alone().await;
    let Some(browser) = Browser::start("consent-allow").await else {
        return;
    };
    browser
        .goto(&sandbox.authorize_url("/connect/oauth2/authorize", OA_APPID, "snsapi_userinfo", ""))
        .await;
    browser.wait_for("#consent").await;
    let page = browser.text("#consent").await;
    assert!(page.contains(OA_APPID), "the page names the app: {page}");
    assert!(page.contains("snsapi_userinfo"), "and the scope: {page}");
    browser.screenshot("page").await;

    browser.type_into("#sandbox_user", "bob").await;
    browser.click("#allow").await;
    browser.wait_for("#landed").await;

    let landed = browser.url().await;
    assert_eq!(landed.path(), "/landing");
    let pairs: Vec<(String, String)> = landed.query_pairs().into_owned().collect();
    assert_eq!(pairs.len(), 2, "code and state, nothing else: {landed}");
    assert_eq!(pairs[0].0, "code");
    assert_eq!(pairs[1], ("state".to_owned(), "xyzSTATE123".to_owned()));
    let token = sandbox.exchange(OA_APPID, &pairs[0].1).await;
    assert_eq!(token["openid"], openid_for(&appid(OA_APPID), "bob"));
    browser.close().await;
}

#[tokio::test]
async fn denying_on_the_consent_page_sends_the_state_back_without_a_code() {
    let sandbox = spawn_sandbox_alone().await;
    let Some(browser) = Browser::start("consent-deny").await else {
        return;
    };
    browser
        .goto(&sandbox.authorize_url("/connect/oauth2/authorize", OA_APPID, "snsapi_base", ""))
        .await;
    browser.click("#deny").await;
    browser.wait_for("#landed").await;
    let landed = browser.url().await;
    assert_eq!(landed.path(), "/landing");
    assert_eq!(landed.query(), Some("state=xyzSTATE123"));
    browser.close().await;
}

#[tokio::test]
async fn the_qr_page_scans_as_the_chosen_name_for_the_website_app() {
    let sandbox = spawn_sandbox_alone().await;
    let Some(browser) = Browser::start("qrconnect").await else {
        return;
    };
    browser
        .goto(&sandbox.authorize_url("/connect/qrconnect", WEB_APPID, "snsapi_login", ""))
        .await;
    browser.wait_for("#qr-code svg").await;
    assert!(browser.text("#qrconnect").await.contains("微信登录"));
    browser.screenshot("page").await;

    // One click on a name: scanned and allowed as carol.
    browser.click("a.chip[href*='sandbox_user=carol']").await;
    browser.wait_for("#landed").await;
    let landed = query_map(&browser.url().await);
    assert_eq!(landed["state"], "xyzSTATE123");
    let token = sandbox.exchange(WEB_APPID, &landed["code"]).await;
    assert_eq!(token["openid"], openid_for(&appid(WEB_APPID), "carol"));
    assert_eq!(token["scope"], "snsapi_login");
    assert_eq!(token["unionid"], unionid_for("carol"));
    browser.close().await;
}

#[tokio::test]
async fn a_malformed_request_shows_wechats_error_page_in_the_browser() {
    let sandbox = spawn_sandbox_alone().await;
    let Some(browser) = Browser::start("error-page").await else {
        return;
    };
    // A website appid on the Official Account's page.
    let url = sandbox.authorize_url("/connect/oauth2/authorize", WEB_APPID, "snsapi_base", "");
    browser.goto(&url).await;
    let page = browser
        .wait_for("#wechat-error")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("10016"), "{page}");
    assert_eq!(
        browser.url().await.path(),
        "/sandbox/connect/oauth2/authorize"
    );
    browser.screenshot("page").await;
    browser.close().await;
}
