use std::time::Duration;

use url::Url;

use crate::{
    crypto,
    domain::{App, JsCode, ReturnTo},
    store::{NewWebFlow, Store},
    wechat,
};

use super::{LoginOutcome, LoginService, ServiceError, Sessions};

/// A `state` is valid this long: WeChat's authorise page, a consent, and the way back.
pub const STATE_TTL: Duration = Duration::from_secs(600);
/// WeChat accepts `[A-Za-z0-9]` up to 128 characters; 32 of them carry 190 bits.
const STATE_LEN: usize = 32;
/// ≥ 128 bits, as the contract asks of tickets; we give 256.
const TICKET_BYTES: usize = 32;
const BROWSER_BYTES: usize = 32;
/// RFC 7636 S256: 43 base64url characters.
const CODE_CHALLENGE_LEN: usize = 43;
const CALLBACK_PATH: &str = "/api/v1/web/callback";

/// Where web sign-in sends browsers, resolved at start.
#[derive(Clone)]
pub struct WebSignIn {
    /// `{PUBLIC_BASE_URL}/api/v1/web/callback`.
    pub callback_url: String,
    pub return_urls: Vec<Url>,
    pub open_base: String,
    pub ticket_ttl: Duration,
    /// Whether browsers reach us over https (the cookie is then `Secure`).
    pub secure_cookies: bool,
}

impl WebSignIn {
    pub fn new(
        public_base_url: &Url,
        return_urls: Vec<Url>,
        open_base: String,
        ticket_ttl: Duration,
    ) -> Self {
        Self {
            callback_url: format!(
                "{}{CALLBACK_PATH}",
                public_base_url.as_str().trim_end_matches('/')
            ),
            return_urls,
            open_base,
            ticket_ttl,
            secure_cookies: public_base_url.scheme() == "https",
        }
    }
}

/// The start of a redirect flow: where to send the browser, and the value of the cookie
/// that binds the flow to it.
pub struct Authorization {
    pub location: String,
    pub browser_binding: String,
    pub secure_cookie: bool,
}

/// How a callback with a valid state ends: back at `return_to` with a ticket or an error.
pub enum CallbackOutcome {
    Ticket {
        return_to: ReturnTo,
        ticket: String,
    },
    Failed {
        return_to: ReturnTo,
        error: &'static str,
    },
}

/// Web sign-in through WeChat's authorise page (the redirect flow): a single-use `state`
/// bound to the browser, the code exchanged on the way back, and a one-time ticket (PKCE
/// bound when asked) that the page trades for tokens. All of it in the database, so any
/// instance can finish a flow another started.
#[derive(Clone)]
pub struct WebLogin {
    login: LoginService,
    sessions: Sessions,
    store: Store,
    settings: WebSignIn,
}

impl WebLogin {
    pub fn new(login: LoginService, sessions: Sessions, store: Store, settings: WebSignIn) -> Self {
        Self {
            login,
            sessions,
            store,
            settings,
        }
    }

    /// Whether the flow cookie must be `Secure` (browsers reach us over https).
    pub fn secure_cookies(&self) -> bool {
        self.settings.secure_cookies
    }

    /// Starts a redirect flow for `app`.
    pub async fn authorize(
        &self,
        app: &str,
        scope: Option<&str>,
        return_to: Option<&str>,
        code_challenge: Option<&str>,
    ) -> Result<Authorization, ServiceError> {
        let app = web_app(app)?;
        let scope = scope_for(app, scope)?;
        let appid = self.login.appid(app)?.clone();
        let return_to = ReturnTo::parse(return_to.unwrap_or_default(), &self.settings.return_urls)
            .map_err(|_| ServiceError::InvalidReturnUrl)?;
        if let Some(challenge) = code_challenge
            && (challenge.len() != CODE_CHALLENGE_LEN
                || !challenge
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        {
            return Err(ServiceError::InvalidRequest(
                "code_challenge must be 43 base64url characters (S256)".to_owned(),
            ));
        }
        let state = crypto::random_alphanumeric(STATE_LEN);
        let browser_binding = crypto::random_urlsafe(BROWSER_BYTES);
        self.store
            .create_web_flow(&NewWebFlow {
                state: &state,
                browser: &browser_binding,
                app,
                scope,
                return_to: return_to.as_str(),
                code_challenge,
                ttl: STATE_TTL,
            })
            .await?;
        Ok(Authorization {
            location: wechat::authorize_url(
                &self.settings.open_base,
                app,
                &appid,
                &self.settings.callback_url,
                scope,
                &state,
            ),
            browser_binding,
            secure_cookie: self.settings.secure_cookies,
        })
    }

    /// WeChat sent the browser back. An unknown, spent or expired state, or one that
    /// belongs to another browser, is `InvalidState`; anything after a valid state ends at
    /// `return_to`.
    pub async fn callback(
        &self,
        state: Option<&str>,
        code: Option<&str>,
        browser_binding: Option<&str>,
    ) -> Result<CallbackOutcome, ServiceError> {
        let state = state
            .filter(|s| {
                (16..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
            })
            .ok_or(ServiceError::InvalidState)?;
        let flow = self
            .store
            .spend_web_flow(state, browser_binding)
            .await?
            .filter(|flow| flow.same_browser)
            .ok_or(ServiceError::InvalidState)?;
        let return_to =
            ReturnTo::trusted(&flow.return_to).map_err(|e| ServiceError::InvalidRequest(e.0))?;
        let Some(code) = code.filter(|c| !c.is_empty()) else {
            return Ok(CallbackOutcome::Failed {
                return_to,
                error: "access_denied",
            });
        };
        let identified = match JsCode::parse(code) {
            Ok(code) => self.login.identify(flow.app, &code).await,
            Err(_) => Err(ServiceError::WeChat(wechat::WeChatError::InvalidCode)),
        };
        let identified = match identified {
            Ok(identified) => match self.sessions.current_user(identified.user_id).await {
                Ok(user) if user.disabled => Err(ServiceError::UserDisabled),
                Ok(_) => Ok(identified),
                Err(error) => Err(error),
            },
            Err(error) => Err(error),
        };
        let identified = match identified {
            Ok(identified) => identified,
            Err(error @ ServiceError::Store(_)) => return Err(error),
            Err(error) => {
                tracing::info!(error = error.label(), app = %flow.app, "web sign-in failed after a valid state");
                return Ok(CallbackOutcome::Failed {
                    return_to,
                    error: error.label(),
                });
            }
        };
        let ticket = crypto::random_urlsafe(TICKET_BYTES);
        self.store
            .issue_ticket(
                state,
                &ticket,
                identified.user_id,
                identified.new_user,
                self.settings.ticket_ttl,
            )
            .await?;
        Ok(CallbackOutcome::Ticket { return_to, ticket })
    }

    /// Trades a ticket (and the PKCE verifier, when the flow had a challenge) for a session.
    pub async fn redeem(
        &self,
        ticket: &str,
        code_verifier: Option<&str>,
    ) -> Result<LoginOutcome, ServiceError> {
        if ticket.is_empty() || ticket.len() > 128 {
            return Err(ServiceError::InvalidGrant);
        }
        let redeemed = self
            .store
            .redeem_ticket(ticket)
            .await?
            .ok_or(ServiceError::InvalidGrant)?;
        if let Some(challenge) = &redeemed.code_challenge {
            let verifier = code_verifier.ok_or(ServiceError::InvalidGrant)?;
            if !crypto::pkce_verifies(verifier, challenge) {
                return Err(ServiceError::InvalidGrant);
            }
        }
        self.sessions
            .start(redeemed.user_id, redeemed.app, redeemed.new_user)
            .await
    }

    /// The front-end flow: the page received WeChat's code itself and posts it.
    pub async fn login_with_code(
        &self,
        app: &str,
        code: &str,
    ) -> Result<LoginOutcome, ServiceError> {
        let app = web_app(app)?;
        let code = JsCode::parse(code).map_err(|e| ServiceError::InvalidRequest(e.0))?;
        self.login.login(app, &code).await
    }
}

fn web_app(raw: &str) -> Result<App, ServiceError> {
    match App::parse(raw) {
        Ok(app @ (App::OfficialAccount | App::Website)) => Ok(app),
        _ => Err(ServiceError::InvalidRequest(
            "app must be official_account or website".to_owned(),
        )),
    }
}

fn scope_for(app: App, scope: Option<&str>) -> Result<&'static str, ServiceError> {
    match (app, scope) {
        (App::OfficialAccount, None | Some("snsapi_base")) => Ok("snsapi_base"),
        (App::OfficialAccount, Some("snsapi_userinfo")) => Ok("snsapi_userinfo"),
        (App::Website, None | Some("snsapi_login")) => Ok("snsapi_login"),
        _ => Err(ServiceError::InvalidRequest(format!(
            "scope does not fit app {app}: use {}",
            match app {
                App::Website => "snsapi_login",
                _ => "snsapi_base or snsapi_userinfo",
            }
        ))),
    }
}
