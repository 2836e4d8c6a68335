//! The web library (`clients/web/index.js`, as it ships) in headless Chromium against the
//! service in sandbox mode: the redirect flow with PKCE for the Official Account and the
//! website, a refusal, and the front-end-code flow, each through the sandbox's WeChat
//! pages.
//!
//! The service sends no CORS headers, so a page calls it on its own origin. The test plays
//! the site the way one is deployed: a server that serves the page and the library and
//! reverse-proxies everything else to the service, whose `PUBLIC_BASE_URL` is that server.
//! WeChat's pages (`/sandbox/…`), the callback and the return page are then one origin.

use std::sync::Arc;

use poem::{
    Body, EndpointExt, Request, Response, Route, Server, handler,
    http::{StatusCode, header},
    listener::{Acceptor, Listener, TcpListener},
    web::{Data, Html},
};
use serde_json::Value;
use wechat_auth::config::SANDBOX_OA_APPID;

use crate::{
    browser::Browser,
    sandbox_app::{SandboxService, spawn_sandbox_app_with},
};

const PAGE: &str = include_str!("web_client_page.html");

/// The site: `/app/` (the test page), `/client/index.js` (the library), the rest proxied.
struct Site {
    origin: String,
    _service: SandboxService,
}

impl Site {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }
}

struct Upstream {
    base: String,
    http: reqwest::Client,
}

async fn spawn_site() -> Site {
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let origin = format!(
        "http://{}",
        acceptor.local_addr()[0].as_socket_addr().unwrap()
    );
    let service = spawn_sandbox_app_with(&[("PUBLIC_BASE_URL", &origin)]).await;
    let upstream = Arc::new(Upstream {
        base: service.address.clone(),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    });
    let routes = Route::new()
        .at("/app/", poem::get(page))
        .at("/client/index.js", poem::get(library))
        .at("/*path", forward.data(upstream));
    tokio::spawn(Server::new_with_acceptor(acceptor).run(routes));
    Site {
        origin,
        _service: service,
    }
}

#[handler]
fn page() -> Html<String> {
    Html(PAGE.replace("{{OA_APPID}}", SANDBOX_OA_APPID))
}

/// Read on every request, so the test always runs the library as it is on disk.
#[handler]
fn library() -> Response {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/web/index.js");
    let source = std::fs::read_to_string(path).expect("clients/web/index.js");
    Response::builder()
        .content_type("text/javascript; charset=utf-8")
        .body(source)
}

/// A reverse proxy: the request as the browser sent it, the answer (redirects and cookies
/// included) as the service gave it.
#[handler]
async fn forward(request: &Request, body: Body, upstream: Data<&Arc<Upstream>>) -> Response {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str());
    let mut headers = request.headers().clone();
    for hop in [
        header::HOST,
        header::CONNECTION,
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
    ] {
        headers.remove(hop);
    }
    let answer = upstream
        .http
        .request(request.method().clone(), format!("{}{path}", upstream.base))
        .headers(headers)
        .body(body.into_bytes().await.expect("the request body"))
        .send()
        .await;
    let answer = match answer {
        Ok(answer) => answer,
        Err(error) => {
            return Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(error.to_string());
        }
    };
    let mut response = Response::builder().status(answer.status()).finish();
    for (name, value) in answer.headers() {
        if ![
            header::CONNECTION,
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
        ]
        .contains(name)
        {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    response.set_body(answer.bytes().await.expect("the answer's body"));
    response
}

/// What the page ended with: `#outcome`'s `data-*` and, when signed in, `/api/v1/me`.
struct Outcome {
    state: String,
    data: Value,
    me: Option<Value>,
}

async fn outcome(browser: &Browser) -> Outcome {
    browser.wait_for("body[data-done]").await;
    let data = browser
        .client
        .execute(
            "return Object.assign({}, document.getElementById('outcome').dataset);",
            vec![],
        )
        .await
        .expect("the page's outcome");
    let state = data["state"].as_str().unwrap_or_default().to_owned();
    let me = if state == "signed-in" {
        Some(serde_json::from_str(&browser.text("#me").await).expect("/api/v1/me as JSON"))
    } else {
        None
    };
    Outcome { state, data, me }
}

async fn session_storage(browser: &Browser, key: &str) -> Value {
    browser
        .client
        .execute(
            "return sessionStorage.getItem(arguments[0]);",
            vec![Value::from(key)],
        )
        .await
        .expect("sessionStorage")
}

fn identity_apps(me: &Value) -> Vec<&str> {
    me["identities"]
        .as_array()
        .expect("identities")
        .iter()
        .map(|identity| identity["app"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn the_library_signs_in_through_the_official_account_and_cleans_the_address_bar() {
    let site = spawn_site().await;
    let Some(browser) = Browser::start("web-client-oa").await else {
        return;
    };
    browser.goto(&site.url("/app/?tab=orders#top")).await;
    assert_eq!(outcome(&browser).await.state, "signed-out");
    browser.screenshot("start").await;

    browser.click("#oa").await;
    browser.wait_for("#consent").await;
    assert!(
        session_storage(&browser, "wechat-auth.code_verifier")
            .await
            .is_string(),
        "the verifier waits in sessionStorage"
    );
    browser.screenshot("consent").await;
    browser.type_into("#sandbox_user", "alice").await;
    browser.click("#allow").await;

    let landed = outcome(&browser).await;
    browser.screenshot("signed-in").await;
    assert_eq!(landed.state, "signed-in", "{}", landed.data);
    assert_eq!(landed.data["via"], "handleRedirectCallback");
    assert_eq!(landed.data["status"], "200");
    assert_eq!(landed.data["newUser"], "true");
    let me = landed.me.unwrap();
    assert_eq!(me["nickname"], "alice");
    assert!(me["unionid"].is_string());
    assert_eq!(identity_apps(&me), ["official_account"]);
    assert!(
        me["avatar_url"]
            .as_str()
            .is_some_and(|url| url.starts_with(&site.origin))
    );

    let url = browser.url().await;
    assert_eq!(url.path(), "/app/");
    assert_eq!(url.query(), Some("tab=orders"), "the ticket is gone: {url}");
    assert_eq!(url.fragment(), Some("top"));
    assert!(
        session_storage(&browser, "wechat-auth.code_verifier")
            .await
            .is_null(),
        "a verifier is used once"
    );

    // Reloaded, the page has no ticket to redeem and is still signed in from storage.
    browser.client.refresh().await.unwrap();
    let reloaded = outcome(&browser).await;
    assert_eq!(reloaded.state, "signed-in");
    assert_eq!(reloaded.data["via"], "storage");
    assert_eq!(reloaded.me.unwrap()["id"], me["id"]);
    browser.close().await;
}

#[tokio::test]
async fn a_refusal_on_wechats_page_rejects_with_access_denied() {
    let site = spawn_site().await;
    let Some(browser) = Browser::start("web-client-deny").await else {
        return;
    };
    browser.goto(&site.url("/app/?tab=orders#top")).await;
    outcome(&browser).await;
    browser.click("#oa").await;
    browser.click("#deny").await;

    let landed = outcome(&browser).await;
    browser.screenshot("denied").await;
    assert_eq!(landed.state, "error", "{}", landed.data);
    assert_eq!(landed.data["errorName"], "AuthError");
    assert_eq!(landed.data["authError"], "true");
    assert_eq!(landed.data["errorCode"], "access_denied");
    let url = browser.url().await;
    assert_eq!(url.query(), Some("tab=orders"), "the error is gone: {url}");
    assert_eq!(url.fragment(), Some("top"));
    browser.close().await;
}

#[tokio::test]
async fn the_library_signs_in_with_the_websites_qr_page() {
    let site = spawn_site().await;
    let Some(browser) = Browser::start("web-client-qr").await else {
        return;
    };
    browser.goto(&site.url("/app/?from=computer")).await;
    outcome(&browser).await;
    browser.click("#website").await;
    browser.wait_for("#qrconnect").await;
    browser.screenshot("qr").await;
    browser.type_into("#sandbox_user", "bob").await;
    browser.click("#allow").await;

    let landed = outcome(&browser).await;
    browser.screenshot("signed-in").await;
    assert_eq!(landed.state, "signed-in", "{}", landed.data);
    let me = landed.me.unwrap();
    assert_eq!(me["nickname"], "bob");
    assert_eq!(identity_apps(&me), ["website"]);
    let url = browser.url().await;
    assert_eq!(url.query(), Some("from=computer"), "{url}");
    // The browser carried the `#wechat_redirect` of WeChat's URL through the redirects to
    // this page, which had no fragment; the library leaves none.
    assert_eq!(url.fragment(), None, "{url}");
    browser.close().await;
}

#[tokio::test]
async fn a_page_that_gets_wechats_code_itself_signs_in_with_it() {
    let site = spawn_site().await;
    let Some(browser) = Browser::start("web-client-code").await else {
        return;
    };
    browser.goto(&site.url("/app/")).await;
    outcome(&browser).await;
    browser.click("#oa-code").await;
    browser.type_into("#sandbox_user", "carol").await;
    browser.click("#allow").await;

    let landed = outcome(&browser).await;
    browser.screenshot("signed-in").await;
    assert_eq!(landed.state, "signed-in", "{}", landed.data);
    assert_eq!(landed.data["via"], "signInWithCode");
    let me = landed.me.unwrap();
    assert_eq!(me["nickname"], "carol");
    assert_eq!(identity_apps(&me), ["official_account"]);
    browser.close().await;
}
