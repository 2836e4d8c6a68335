//! WeChat's web authorisation as a browser and a server see it: the Official Account's
//! `connect/oauth2/authorize` and the website's `connect/qrconnect` pages, then
//! `sns/oauth2/access_token` and `sns/userinfo`.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use poem::{
    Response, handler,
    http::StatusCode,
    web::{Data, Query},
};
use rand::{Rng, distr::Alphanumeric};
use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::{
    Sandbox, SandboxApp, openid_for, pages, reserved, unionid_for, wechat_answer, wechat_error,
};
use crate::domain::{App, AppId};

/// WeChat's codes die after five minutes.
const CODE_TTL: Duration = Duration::from_secs(300);
/// The web access token's `expires_in`.
const TOKEN_TTL: Duration = Duration::from_secs(7200);
/// Remembered codes and tokens are capped so that a long-running sandbox does not grow
/// forever.
const MAX_REMEMBERED: usize = 100_000;
/// The sandbox user who stands for a snapshot page's virtual user (朋友圈快照页) on the
/// Official Account: WeChat flags its token answer with `is_snapshotuser: 1`.
pub(super) const SNAPSHOT_NAME: &str = "snapshot";
/// Longest sandbox user name, in characters.
const MAX_NAME_CHARS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    Base,
    UserInfo,
    Login,
}

impl Scope {
    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "snsapi_base" => Some(Self::Base),
            "snsapi_userinfo" => Some(Self::UserInfo),
            "snsapi_login" => Some(Self::Login),
            _ => None,
        }
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Base => "snsapi_base",
            Self::UserInfo => "snsapi_userinfo",
            Self::Login => "snsapi_login",
        }
    }

    /// Only consent scopes reveal the profile and the unionid.
    fn reveals_profile(self) -> bool {
        self != Self::Base
    }
}

/// Which of WeChat's two authorisation pages was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Page {
    /// `connect/oauth2/authorize`: Official Account pages inside WeChat.
    OAuth2,
    /// `connect/qrconnect`: a website's QR login on a computer.
    QrConnect,
}

impl Page {
    fn scopes(self) -> &'static [Scope] {
        match self {
            Self::OAuth2 => &[Scope::Base, Scope::UserInfo],
            Self::QrConnect => &[Scope::Login],
        }
    }

    fn app(self) -> App {
        match self {
            Self::OAuth2 => App::OfficialAccount,
            Self::QrConnect => App::Website,
        }
    }
}

/// Who allowed which app to know what.
#[derive(Clone)]
struct Grant {
    app: App,
    appid: AppId,
    name: String,
    scope: Scope,
}

struct IssuedCode {
    grant: Grant,
    issued: Instant,
    used: bool,
}

struct IssuedToken {
    grant: Grant,
    openid: String,
    issued: Instant,
}

#[derive(Default)]
pub(super) struct Simulated {
    codes: HashMap<String, IssuedCode>,
    tokens: HashMap<String, IssuedToken>,
}

impl Simulated {
    fn issue_code(&mut self, grant: Grant) -> String {
        let code = random_text(32);
        let now = Instant::now();
        insert_bounded(
            &mut self.codes,
            code.clone(),
            IssuedCode {
                grant,
                issued: now,
                used: false,
            },
            |issued| now.duration_since(issued.issued) < CODE_TTL,
        );
        code
    }

    fn issue_token(&mut self, grant: Grant, openid: String) -> String {
        let token = random_text(64);
        let now = Instant::now();
        insert_bounded(
            &mut self.tokens,
            token.clone(),
            IssuedToken {
                grant,
                openid,
                issued: now,
            },
            |issued| now.duration_since(issued.issued) < TOKEN_TTL,
        );
        token
    }
}

/// Inserts, first forgetting entries that are no longer `alive` when the map is full (and
/// everything if that is not enough).
fn insert_bounded<V>(
    map: &mut HashMap<String, V>,
    key: String,
    value: V,
    alive: impl Fn(&V) -> bool,
) {
    if map.len() >= MAX_REMEMBERED {
        map.retain(|_, value| alive(value));
        if map.len() >= MAX_REMEMBERED {
            map.clear();
        }
    }
    map.insert(key, value);
}

fn random_text(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// WeChat's query parameters, plus the sandbox's own `sandbox_user` and `sandbox_action`.
#[derive(Deserialize)]
pub(super) struct AuthorizeQuery {
    appid: Option<String>,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    sandbox_user: Option<String>,
    sandbox_action: Option<String>,
}

/// A well-formed authorisation request: what the pages show and where the answer goes.
pub(super) struct Authorization<'a> {
    pub(super) page: Page,
    pub(super) app: &'a SandboxApp,
    pub(super) scope: Scope,
    /// Exactly as the caller sent it, to send it again from the page's form.
    pub(super) raw_redirect_uri: String,
    pub(super) redirect_uri: Url,
    pub(super) state: String,
}

impl Authorization<'_> {
    /// `redirect_uri?code=CODE&state=STATE`, or without `code` for a refusal, as WeChat
    /// sends them.
    fn answer(&self, code: Option<&str>) -> Url {
        let mut target = self.redirect_uri.clone();
        {
            let mut query = target.query_pairs_mut();
            if let Some(code) = code {
                query.append_pair("code", code);
            }
            query.append_pair("state", &self.state);
        }
        target
    }

    /// The page's own query, as WeChat received it, plus `extra`: the links and forms of
    /// the page come back here.
    pub(super) fn query_with(&self, extra: &[(&str, &str)]) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("appid", self.app.appid.as_str())
            .append_pair("redirect_uri", &self.raw_redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("scope", self.scope.as_str())
            .append_pair("state", &self.state);
        for (key, value) in extra {
            query.append_pair(key, value);
        }
        query.finish()
    }
}

/// Why WeChat shows its error page instead of redirecting. `errcode` is WeChat's where
/// it documents one.
pub(super) struct PageError {
    pub(super) errcode: Option<u32>,
    pub(super) message: &'static str,
    pub(super) explanation: String,
}

impl PageError {
    fn new(errcode: Option<u32>, message: &'static str, explanation: impl Into<String>) -> Self {
        Self {
            errcode,
            message,
            explanation: explanation.into(),
        }
    }
}

fn validate<'a>(
    sandbox: &'a Sandbox,
    page: Page,
    query: &AuthorizeQuery,
) -> Result<Authorization<'a>, PageError> {
    let Some(appid) = query.appid.as_deref().filter(|a| !a.is_empty()) else {
        return Err(PageError::new(
            Some(10012),
            "appid 不能为空",
            "appid is missing.",
        ));
    };
    let Some(app) = sandbox.app(appid) else {
        let known = sandbox
            .apps
            .iter()
            .map(|app| format!("{} ({})", app.appid, app.app))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(PageError::new(
            None,
            "appid 参数错误",
            format!("The sandbox simulates no app with this appid. It knows: {known}."),
        ));
    };
    if app.app != page.app() {
        return Err(match (page, app.app) {
            (Page::OAuth2, App::Website) => PageError::new(
                Some(10016),
                "不支持微信开放平台的Appid，请使用公众号Appid",
                "This is the website app's appid: its QR login page is /connect/qrconnect.",
            ),
            (Page::OAuth2, _) => PageError::new(
                None,
                "appid 参数错误",
                "Only an Official Account signs in on this page; a mini program uses wx.login.",
            ),
            (Page::QrConnect, _) => PageError::new(
                None,
                "appid 参数错误",
                "The QR login page is for an Open Platform website app; an Official Account \
                 uses /connect/oauth2/authorize.",
            ),
        });
    }
    let Some(raw_redirect_uri) = query.redirect_uri.as_deref().filter(|u| !u.is_empty()) else {
        return Err(PageError::new(
            Some(10011),
            "redirect_uri 不能为空",
            "redirect_uri is missing.",
        ));
    };
    let redirect_uri = Url::parse(raw_redirect_uri)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
        .ok_or_else(|| {
            PageError::new(
                Some(10003),
                "redirect_uri 参数错误",
                "redirect_uri must be an absolute http or https URL (percent-encoded in the query).",
            )
        })?;
    if query.response_type.as_deref() != Some("code") {
        return Err(PageError::new(
            None,
            "response_type 参数错误",
            "response_type must be code.",
        ));
    }
    let Some(raw_scope) = query.scope.as_deref().filter(|s| !s.is_empty()) else {
        return Err(PageError::new(
            Some(10010),
            "scope 不能为空",
            "scope is missing.",
        ));
    };
    let scope = Scope::parse(raw_scope)
        .filter(|scope| page.scopes().contains(scope))
        .ok_or_else(|| {
            let allowed = page
                .scopes()
                .iter()
                .map(|scope| scope.as_str())
                .collect::<Vec<_>>()
                .join(" or ");
            PageError::new(
                Some(10005),
                "此公众号并没有这些scope的权限",
                format!("This app has no such scope: it accepts {allowed}."),
            )
        })?;
    let state = query.state.clone().unwrap_or_default();
    if state.len() > 128 || !state.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(PageError::new(
            None,
            "state 参数错误",
            "state may only hold a-z, A-Z and 0-9, at most 128 bytes.",
        ));
    }
    Ok(Authorization {
        page,
        app,
        scope,
        raw_redirect_uri: raw_redirect_uri.to_owned(),
        redirect_uri,
        state,
    })
}

/// A sandbox user's name, or why it cannot be one.
pub(super) fn parse_name(raw: &str) -> Result<&str, &'static str> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("Type a name: who is signing in?");
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err("A name has at most 32 characters.");
    }
    if name.chars().any(char::is_control) {
        return Err("A name has no control characters.");
    }
    if name.contains('-') && reserved(name).is_none() {
        return Err("A name has no '-': in the mini program the code alice-1 is alice.");
    }
    Ok(name)
}

#[handler]
pub(super) fn authorize(
    Query(query): Query<AuthorizeQuery>,
    sandbox: Data<&Arc<Sandbox>>,
) -> Response {
    respond(&sandbox, Page::OAuth2, &query)
}

#[handler]
pub(super) fn qrconnect(
    Query(query): Query<AuthorizeQuery>,
    sandbox: Data<&Arc<Sandbox>>,
) -> Response {
    respond(&sandbox, Page::QrConnect, &query)
}

fn respond(sandbox: &Sandbox, page: Page, query: &AuthorizeQuery) -> Response {
    let request = match validate(sandbox, page, query) {
        Ok(request) => request,
        Err(error) => return pages::error_page(&error),
    };
    match query.sandbox_action.as_deref() {
        Some("deny") => return redirect(&request.answer(None)),
        Some("allow") | None => {}
        Some(_) => {
            return pages::authorization_page(
                &request,
                query.sandbox_user.as_deref(),
                Some("sandbox_action must be allow or deny."),
            );
        }
    }
    if query.sandbox_action.is_none() && query.sandbox_user.is_none() {
        return pages::authorization_page(&request, None, None);
    }
    match parse_name(query.sandbox_user.as_deref().unwrap_or_default()) {
        Ok(name) => {
            let code = sandbox.oauth().issue_code(Grant {
                app: request.app.app,
                appid: request.app.appid.clone(),
                name: name.to_owned(),
                scope: request.scope,
            });
            redirect(&request.answer(Some(&code)))
        }
        Err(problem) => {
            pages::authorization_page(&request, query.sandbox_user.as_deref(), Some(problem))
        }
    }
}

fn redirect(target: &Url) -> Response {
    Response::builder()
        .status(StatusCode::FOUND)
        .header("Location", target.as_str())
        .header("Cache-Control", "no-store")
        .header("Referrer-Policy", "no-referrer")
        .finish()
}

#[derive(Deserialize)]
pub(super) struct AccessTokenQuery {
    appid: Option<String>,
    secret: Option<String>,
    code: Option<String>,
    grant_type: Option<String>,
}

#[handler]
pub(super) fn access_token(
    Query(query): Query<AccessTokenQuery>,
    sandbox: Data<&Arc<Sandbox>>,
) -> Response {
    let app = match sandbox.authenticate(query.appid.as_deref(), query.secret.as_deref()) {
        Ok(app) => app,
        Err(refusal) => return refusal.answer(),
    };
    if query.grant_type.as_deref() != Some("authorization_code") {
        return wechat_error(40002, "invalid grant_type");
    }
    let Some(code) = query.code.filter(|code| !code.is_empty()) else {
        return wechat_error(41008, "missing code");
    };
    let mut simulated = sandbox.oauth();
    let Some(issued) = simulated
        .codes
        .get_mut(&code)
        .filter(|issued| issued.grant.appid == app.appid && issued.issued.elapsed() < CODE_TTL)
    else {
        return wechat_error(40029, "invalid code");
    };
    // A reserved name keeps answering its error, as the mini program's reserved codes do:
    // `sandbox-busy` must stay busy for the caller's retries.
    if let Some((errcode, errmsg)) = reserved(&issued.grant.name) {
        return wechat_error(errcode, errmsg);
    }
    if issued.used {
        return wechat_error(40163, "code been used");
    }
    issued.used = true;
    let grant = issued.grant.clone();
    let openid = openid_for(&grant.appid, &grant.name);
    let access_token = simulated.issue_token(grant.clone(), openid.clone());
    let mut answer = json!({
        "access_token": access_token,
        "expires_in": TOKEN_TTL.as_secs(),
        "refresh_token": random_text(64),
        "openid": openid,
        "scope": grant.scope.as_str(),
    });
    if grant.scope.reveals_profile() {
        answer["unionid"] = json!(unionid_for(&grant.name));
    }
    if grant.app == App::OfficialAccount && grant.name == SNAPSHOT_NAME {
        answer["is_snapshotuser"] = json!(1);
    }
    wechat_answer(answer)
}

#[derive(Deserialize)]
pub(super) struct UserInfoQuery {
    access_token: Option<String>,
    openid: Option<String>,
}

#[handler]
pub(super) fn userinfo(
    Query(query): Query<UserInfoQuery>,
    sandbox: Data<&Arc<Sandbox>>,
) -> Response {
    let simulated = sandbox.oauth();
    let Some(token) = query
        .access_token
        .as_ref()
        .and_then(|token| simulated.tokens.get(token))
    else {
        return wechat_error(
            40001,
            "invalid credential, access_token is invalid or not latest",
        );
    };
    if token.issued.elapsed() >= TOKEN_TTL {
        return wechat_error(42001, "access_token expired");
    }
    if query.openid.as_deref() != Some(token.openid.as_str()) {
        return wechat_error(40003, "invalid openid");
    }
    if !token.grant.scope.reveals_profile() {
        return wechat_error(48001, "api unauthorized");
    }
    let name = &token.grant.name;
    wechat_answer(json!({
        "openid": token.openid,
        "nickname": name,
        "sex": 0,
        "province": "",
        "city": "",
        "country": "",
        "headimgurl": pages::avatar_url(&sandbox.public_base_url, name),
        "privilege": [],
        "unionid": unionid_for(name),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_refused_when_they_cannot_be_one_person() {
        assert_eq!(parse_name("  alice "), Ok("alice"));
        assert_eq!(parse_name("张三"), Ok("张三"));
        assert_eq!(parse_name("sandbox-blocked"), Ok("sandbox-blocked"));
        assert!(parse_name("").is_err());
        assert!(parse_name("alice-1").is_err());
        assert!(parse_name("a\u{7}").is_err());
        assert!(parse_name(&"a".repeat(33)).is_err());
    }
}
