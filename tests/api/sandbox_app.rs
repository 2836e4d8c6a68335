//! Servers for the web sign-in tests: the WeChat sandbox on its own (three simulated apps
//! and a page to land on), and the whole service in sandbox mode.

use std::collections::HashMap;

use poem::{
    Route, Server, handler,
    http::Uri,
    listener::{Acceptor, Listener, TcpListener},
    web::Html,
};
use serde_json::Value;
use wechat_auth::{
    config::{Secret, Settings},
    domain::{App, AppId},
    startup::Application,
    wechat::sandbox::{self, SandboxApp, SandboxSettings},
};

use crate::helpers::TestDatabase;

pub const MINI_APPID: &str = "wxsandboxmini00001";
pub const OA_APPID: &str = "wxsandboxoa0000001";
pub const WEB_APPID: &str = "wxsandboxweb000001";
pub const SECRET: &str = "sandbox-test-secret";

/// The simulator alone at `base`: `/sandbox/…` plus `/landing`, a page that stands for
/// the site WeChat sends the browser back to.
pub struct SandboxAlone {
    pub base: String,
    /// Follows no redirects, so that tests see WeChat's 302s.
    pub http: reqwest::Client,
}

pub async fn spawn_sandbox_alone() -> SandboxAlone {
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let base = format!(
        "http://{}",
        acceptor.local_addr()[0].as_socket_addr().unwrap()
    );
    let app = |app: App, appid: &str| SandboxApp {
        app,
        appid: AppId::parse(appid).unwrap(),
        secret: Secret::new(SECRET),
    };
    let routes = Route::new()
        .nest(
            "/sandbox",
            sandbox::routes(SandboxSettings {
                apps: vec![
                    app(App::Miniprogram, MINI_APPID),
                    app(App::OfficialAccount, OA_APPID),
                    app(App::Website, WEB_APPID),
                ],
                public_base_url: base.clone(),
            }),
        )
        .at("/landing", poem::get(landing));
    tokio::spawn(Server::new_with_acceptor(acceptor).run(routes));
    SandboxAlone {
        base,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    }
}

impl SandboxAlone {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Where the tests ask WeChat to send the browser back.
    pub fn landing(&self) -> String {
        self.url("/landing")
    }

    /// `GET /sandbox{path}?{query}`, redirects not followed.
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .get(self.url(&format!("/sandbox{path}")))
            .query(query)
            .send()
            .await
            .expect("the sandbox answers")
    }

    /// A WeChat-style answer: JSON labelled `text/plain`.
    pub async fn get_wechat_json(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let response = self.get(path, query).await;
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.headers()["content-type"], "text/plain");
        serde_json::from_str(&response.text().await.unwrap()).expect("JSON body")
    }

    /// The authorisation request a site sends the browser to (`path` is
    /// `/connect/oauth2/authorize` or `/connect/qrconnect`) for `appid`, with extra
    /// parameters.
    pub fn authorize_url(&self, path: &str, appid: &str, scope: &str, extra: &str) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("appid", appid)
            .append_pair("redirect_uri", &self.landing())
            .append_pair("response_type", "code")
            .append_pair("scope", scope)
            .append_pair("state", "xyzSTATE123")
            .finish();
        format!(
            "{}{path}?{query}{extra}#wechat_redirect",
            self.url("/sandbox")
        )
    }

    /// Sandbox user `name` allows `appid` at once; returns WeChat's code.
    pub async fn code_for(&self, appid: &str, scope: &str, name: &str) -> String {
        let path = if appid == WEB_APPID {
            "/connect/qrconnect"
        } else {
            "/connect/oauth2/authorize"
        };
        let response = self
            .get(
                path,
                &[
                    ("appid", appid),
                    ("redirect_uri", &self.landing()),
                    ("response_type", "code"),
                    ("scope", scope),
                    ("state", "s1"),
                    ("sandbox_user", name),
                ],
            )
            .await;
        assert_eq!(response.status().as_u16(), 302, "no redirect for {name}");
        let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
        query_map(&location)["code"].clone()
    }

    /// `sns/oauth2/access_token` for `code` with the app's own credentials.
    pub async fn exchange(&self, appid: &str, code: &str) -> Value {
        self.get_wechat_json(
            "/sns/oauth2/access_token",
            &[
                ("appid", appid),
                ("secret", SECRET),
                ("code", code),
                ("grant_type", "authorization_code"),
            ],
        )
        .await
    }
}

pub fn query_map(url: &url::Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

/// The page WeChat sends the browser back to; shows the query it received.
#[handler]
fn landing(uri: &Uri) -> Html<String> {
    let query = uri.query().unwrap_or_default();
    let shown: String = query
        .chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            c => c.to_string(),
        })
        .collect();
    Html(format!(
        "<!doctype html><title>landed</title><h1 id=\"landed\">Back at the site</h1><p>query: <code>{shown}</code></p>"
    ))
}

/// The whole service in sandbox mode (`WECHAT_SANDBOX=true`, every app simulated) on a
/// fresh database. Its address is also its `PUBLIC_BASE_URL` unless overridden.
pub struct SandboxService {
    pub address: String,
    _database: TestDatabase,
}

pub async fn spawn_sandbox_app() -> SandboxService {
    spawn_sandbox_app_with(&[]).await
}

/// As [`spawn_sandbox_app`], with `overrides` added to (or replacing) its environment:
/// e.g. a `PUBLIC_BASE_URL` of a reverse proxy in front of it.
pub async fn spawn_sandbox_app_with(overrides: &[(&str, &str)]) -> SandboxService {
    let database = TestDatabase::create().await;
    let values: HashMap<String, String> = [
        ("BIND_ADDR", "127.0.0.1:0"),
        ("WECHAT_SANDBOX", "true"),
        ("DATABASE_URL", database.url.as_str()),
    ]
    .into_iter()
    .chain(overrides.iter().copied())
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect();
    let settings = Settings::from_values(&values).expect("sandbox settings are valid");
    let application = Application::build(settings)
        .await
        .expect("the service starts");
    let address = format!("http://{}", application.address());
    tokio::spawn(application.run_until_stopped());
    SandboxService {
        address,
        _database: database,
    }
}

impl SandboxService {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }
}
