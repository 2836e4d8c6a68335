//! A WeChat look-alike for local development (`WECHAT_SANDBOX=true`), served under
//! `/sandbox`. It follows WeChat's observable behaviour, not an idealised one: answers are
//! JSON labelled `text/plain`, codes are single-use, every login rotates the session_key,
//! a refusal on the consent page comes back without a code.
//!
//! A sandbox user is a *name*: one unionid per name across every app, one openid per name
//! and app, so alice of the mini program and alice of the Official Account are one person.

/// The mini-program server API: jscode2session, stable_token, phone, checksession.
mod miniprogram;
/// Web authorisation: the consent and QR pages, `sns/oauth2/access_token`, `sns/userinfo`.
mod oauth;
/// HTML: the consent, QR and error pages, the demo page at `/sandbox/`, avatars.
mod pages;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use poem::{EndpointExt, Response, Route};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{
    config::Secret,
    domain::{App, AppId},
};

/// What the sandbox simulates: the apps it knows (their credentials are what the service
/// is configured with) and where browsers reach this service.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    pub apps: Vec<SandboxApp>,
    /// This service as browsers reach it, without a trailing `/` (e.g.
    /// `http://127.0.0.1:8080`); the sandbox lives under `{public_base_url}/sandbox`.
    pub public_base_url: String,
}

/// One simulated WeChat app.
#[derive(Debug, Clone)]
pub struct SandboxApp {
    pub app: App,
    pub appid: AppId,
    pub secret: Secret,
}

/// Names (mini-program codes, or sandbox users on the web pages) that make the sandbox
/// answer with a WeChat error instead of a session.
const RESERVED_NAMES: [(&str, i64, &str); 5] = [
    ("sandbox-busy", -1, "system error"),
    ("sandbox-invalid", 40029, "invalid code"),
    ("sandbox-used", 40163, "code been used"),
    ("sandbox-blocked", 40226, "high risk user"),
    ("sandbox-limited", 45011, "api minute-quota reach limit"),
];

fn reserved(name: &str) -> Option<(i64, &'static str)> {
    RESERVED_NAMES
        .iter()
        .find(|(reserved, ..)| *reserved == name)
        .map(|(_, errcode, errmsg)| (*errcode, *errmsg))
}

/// Everything the simulated WeChat remembers, shared by all its routes.
struct Sandbox {
    apps: Vec<SandboxApp>,
    public_base_url: String,
    miniprogram: Mutex<miniprogram::Simulated>,
    oauth: Mutex<oauth::Simulated>,
}

impl Sandbox {
    fn app(&self, appid: &str) -> Option<&SandboxApp> {
        self.apps.iter().find(|app| app.appid.as_str() == appid)
    }

    fn app_of_kind(&self, kind: App) -> Option<&SandboxApp> {
        self.apps.iter().find(|app| app.app == kind)
    }

    /// WeChat's answer to an unknown appid or a wrong appsecret, else the app.
    fn authenticate(
        &self,
        appid: Option<&str>,
        secret: Option<&str>,
    ) -> Result<&SandboxApp, Refusal> {
        let app = appid
            .and_then(|appid| self.app(appid))
            .ok_or(Refusal(40013, "invalid appid"))?;
        if secret != Some(app.secret.expose()) {
            return Err(Refusal(40125, "invalid appsecret"));
        }
        Ok(app)
    }

    fn miniprogram(&self) -> MutexGuard<'_, miniprogram::Simulated> {
        self.miniprogram
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn oauth(&self) -> MutexGuard<'_, oauth::Simulated> {
        self.oauth.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The `/sandbox` routes simulating `settings.apps`.
pub fn routes(settings: SandboxSettings) -> Route {
    let sandbox = Arc::new(Sandbox {
        apps: settings.apps,
        public_base_url: settings.public_base_url.trim_end_matches('/').to_owned(),
        miniprogram: Mutex::default(),
        oauth: Mutex::default(),
    });
    Route::new()
        .at("/", poem::get(pages::demo).data(sandbox.clone()))
        .at(
            "/sns/jscode2session",
            poem::get(miniprogram::jscode2session).data(sandbox.clone()),
        )
        .at(
            "/cgi-bin/stable_token",
            poem::post(miniprogram::stable_token).data(sandbox.clone()),
        )
        .at(
            "/wxa/business/getuserphonenumber",
            poem::post(miniprogram::phone_number).data(sandbox.clone()),
        )
        .at(
            "/wxa/checksession",
            poem::get(miniprogram::check_session).data(sandbox.clone()),
        )
        .at(
            "/encrypt",
            poem::post(miniprogram::encrypt).data(sandbox.clone()),
        )
        .at(
            "/connect/oauth2/authorize",
            poem::get(oauth::authorize).data(sandbox.clone()),
        )
        .at(
            "/connect/qrconnect",
            poem::get(oauth::qrconnect).data(sandbox.clone()),
        )
        .at(
            "/sns/oauth2/access_token",
            poem::get(oauth::access_token).data(sandbox.clone()),
        )
        .at(
            "/sns/userinfo",
            poem::get(oauth::userinfo).data(sandbox.clone()),
        )
        .at("/avatar/:file", poem::get(pages::avatar))
}

/// The stable openid WeChat would give user `name` in this app.
pub fn openid_for(appid: &AppId, name: &str) -> String {
    format!("o{}", stable_id(appid.as_str(), name))
}

/// The unionid of user `name`: the same in every app of the (simulated) Open Platform
/// account.
pub fn unionid_for(name: &str) -> String {
    format!("oU{}", stable_id("unionid", name))
}

fn stable_id(scope: &str, name: &str) -> String {
    let digest = Sha256::digest(format!("{scope}\0{name}").as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..20])
}

fn wechat_answer(body: Value) -> Response {
    Response::builder()
        .content_type("text/plain")
        .header("Cache-Control", "no-store")
        .body(body.to_string())
}

fn wechat_error(errcode: i64, errmsg: &str) -> Response {
    wechat_answer(json!({ "errcode": errcode, "errmsg": errmsg }))
}

/// A WeChat errcode and errmsg, not yet sent.
struct Refusal(i64, &'static str);

impl Refusal {
    fn answer(self) -> Response {
        wechat_error(self.0, self.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_has_one_unionid_and_an_openid_per_app() {
        let mini = AppId::parse("wxmini").unwrap();
        let oa = AppId::parse("wxoa").unwrap();
        assert_ne!(openid_for(&mini, "alice"), openid_for(&oa, "alice"));
        assert_eq!(openid_for(&oa, "alice"), openid_for(&oa, "alice"));
        assert_ne!(openid_for(&oa, "alice"), openid_for(&oa, "bob"));
        assert_ne!(unionid_for("alice"), unionid_for("bob"));
    }
}
