//! Web sign-in end to end in a real browser: the sandbox's demo page at `/sandbox/`, the
//! service's `/api/v1/web/authorize` and callback, the sandbox's WeChat pages, back to the
//! demo page with a ticket, which it trades for tokens and shows the user.

use crate::{
    browser::Browser,
    sandbox_app::{SandboxService, spawn_sandbox_app},
};

/// The demo page, loaded and settled.
async fn open_demo(browser: &Browser, service: &SandboxService) {
    browser.goto(&service.url("/sandbox/")).await;
    browser.wait_for("body[data-ready]").await;
}

/// The identities the page lists, as (app, openid) pairs.
async fn identities_shown(browser: &Browser) -> Vec<(String, String)> {
    let mut shown = Vec::new();
    for row in browser
        .client
        .find_all(fantoccini::Locator::Css("#identities tbody tr"))
        .await
        .unwrap()
    {
        let cells = row.find_all(fantoccini::Locator::Css("td")).await.unwrap();
        shown.push((
            cells[0].text().await.unwrap(),
            cells[2].text().await.unwrap(),
        ));
    }
    shown
}

#[tokio::test]
async fn official_account_sign_in_in_a_browser_shows_the_user_and_its_identity() {
    let service = spawn_sandbox_app().await;
    let Some(browser) = Browser::start("web-oa-userinfo").await else {
        return;
    };
    open_demo(&browser, &service).await;
    browser.screenshot("start").await;
    browser.click("#start-oa-userinfo").await;
    browser.wait_for("#consent").await;
    browser.screenshot("consent").await;
    browser.type_into("#sandbox_user", "alice").await;
    browser.click("#allow").await;

    browser
        .wait_for("#session[data-state='signed-in'][data-via^='official_account']")
        .await;
    browser.screenshot("signed-in").await;
    assert_eq!(browser.text("#nickname").await, "alice");
    let identities = identities_shown(&browser).await;
    assert_eq!(identities.len(), 1, "{identities:?}");
    assert_eq!(identities[0].0, "official_account");
    assert!(!browser.text("#user-unionid").await.starts_with("null"));
    let avatar = browser.find("#avatar").await.attr("src").await.unwrap();
    assert!(avatar.is_some_and(|src| src.ends_with("/sandbox/avatar/alice.svg")));
    // The ticket is gone from the address bar (and so from history).
    let url = browser.url().await;
    assert_eq!(url.path(), "/sandbox/");
    assert!(url.query().is_none(), "{url}");
    browser.close().await;
}

#[tokio::test]
async fn denying_on_wechats_page_brings_the_browser_back_with_access_denied() {
    let service = spawn_sandbox_app().await;
    let Some(browser) = Browser::start("web-oa-deny").await else {
        return;
    };
    open_demo(&browser, &service).await;
    browser.click("#start-oa-userinfo").await;
    browser.click("#deny").await;

    let error = browser.wait_for("#error:not([hidden]) #error-code").await;
    assert_eq!(error.text().await.unwrap(), "access_denied");
    assert_eq!(
        browser
            .find("#session")
            .await
            .attr("data-state")
            .await
            .unwrap()
            .as_deref(),
        Some("signed-out")
    );
    browser.screenshot("denied").await;
    browser.close().await;
}

#[tokio::test]
async fn silent_sign_in_in_a_browser_shows_a_user_without_a_profile() {
    let service = spawn_sandbox_app().await;
    let Some(browser) = Browser::start("web-oa-base").await else {
        return;
    };
    open_demo(&browser, &service).await;
    browser.click("#start-oa-base").await;
    browser.click("#allow").await;
    browser
        .wait_for("#session[data-state='signed-in'][data-via^='official_account']")
        .await;
    assert_eq!(browser.text("#nickname").await, "(no nickname)");
    assert_eq!(identities_shown(&browser).await.len(), 1);
    browser.close().await;
}

#[tokio::test]
async fn qr_login_in_a_browser_signs_in_the_website_identity() {
    let service = spawn_sandbox_app().await;
    let Some(browser) = Browser::start("web-qr").await else {
        return;
    };
    open_demo(&browser, &service).await;
    browser.click("#start-website").await;
    browser.wait_for("#qrconnect").await;
    browser.screenshot("qr").await;
    browser.type_into("#sandbox_user", "bob").await;
    browser.click("#allow").await;

    browser
        .wait_for("#session[data-state='signed-in'][data-via^='website']")
        .await;
    assert_eq!(browser.text("#nickname").await, "bob");
    let identities = identities_shown(&browser).await;
    assert_eq!(identities.len(), 1);
    assert_eq!(identities[0].0, "website");
    browser.screenshot("signed-in").await;
    browser.close().await;
}

#[tokio::test]
async fn alice_of_the_mini_program_and_alice_of_the_web_are_one_user() {
    let service = spawn_sandbox_app().await;
    let Some(browser) = Browser::start("web-one-user").await else {
        return;
    };
    open_demo(&browser, &service).await;
    browser.type_into("#mini-name", "alice").await;
    browser.click("#mini-login").await;
    let session = browser
        .wait_for("#session[data-state='signed-in'][data-via^='miniprogram']")
        .await;
    let mini_user = session.attr("data-user-id").await.unwrap().unwrap();
    browser.screenshot("mini-program").await;

    browser.click("#start-oa-userinfo").await;
    browser.type_into("#sandbox_user", "alice").await;
    browser.click("#allow").await;
    let session = browser
        .wait_for("#session[data-state='signed-in'][data-identities='2']")
        .await;
    assert_eq!(
        session.attr("data-user-id").await.unwrap().as_deref(),
        Some(mini_user.as_str()),
        "one person, one user"
    );
    let apps: Vec<String> = identities_shown(&browser)
        .await
        .into_iter()
        .map(|(app, _)| app)
        .collect();
    assert_eq!(apps, ["miniprogram", "official_account"]);
    assert!(
        browser
            .text("#activity")
            .await
            .contains("the same user as sign-in 1")
    );
    browser.screenshot("one-user").await;

    browser.click("#sign-out").await;
    browser.wait_for("#session[data-state='signed-out']").await;
    browser.close().await;
}
