//! Web sign-in's browser redirects: to WeChat's authorise page, and back from it. These
//! answer with `302`s and cookies, so they live here and not in the service.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, OpenApi, param::Cookie, param::Query, payload::Json};

use super::{
    ApiTags, AppContext,
    problem::{ApiError, Problem},
};
use crate::service::{CallbackOutcome, STATE_TTL};

/// Binds a redirect flow to the browser that started it.
const FLOW_COOKIE: &str = "wa_web_flow";
const FLOW_COOKIE_PATH: &str = "/api/v1/web";

pub struct WebApi;

#[derive(ApiResponse)]
pub enum AuthorizeResponse {
    /// To WeChat's authorise page (`connect/oauth2/authorize` or `connect/qrconnect`),
    /// with the cookie that binds the flow to this browser.
    #[oai(status = 302)]
    Found(
        #[oai(header = "Location")] String,
        #[oai(header = "Set-Cookie")] String,
    ),
}

#[derive(ApiResponse)]
pub enum CallbackResponse {
    /// Back to `return_to`, with `ticket=` on success or `error=<code>` on failure; the
    /// flow's cookie is cleared.
    #[oai(status = 302)]
    Found(
        #[oai(header = "Location")] String,
        #[oai(header = "Set-Cookie")] String,
    ),
    /// `invalid_state`: the state is unknown, expired or used, or the request lacks the
    /// flow's cookie. Never a redirect.
    #[oai(status = 400, content_type = "application/problem+json")]
    InvalidState(Json<Problem>, #[oai(header = "Set-Cookie")] String),
    /// A bug or an unreachable database; the body never carries internals.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>, #[oai(header = "Set-Cookie")] String),
}

fn flow_cookie(value: &str, max_age: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{FLOW_COOKIE}={value}; Path={FLOW_COOKIE_PATH}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
    )
}

#[OpenApi(tag = "ApiTags::Web")]
impl WebApi {
    /// Start a web sign-in
    ///
    /// Sends the browser to WeChat's authorise page: the Official Account's
    /// (`app=official_account`, `scope=snsapi_base` silent or `snsapi_userinfo` with consent,
    /// inside WeChat) or the website's QR login (`app=website`, `scope=snsapi_login`). WeChat
    /// sends the browser back to `/api/v1/web/callback`, which ends at `return_to` (an
    /// allowed URL, see `WEB_RETURN_URLS`) with a one-time `ticket`. With `code_challenge`
    /// (RFC 7636 S256) the ticket is only redeemed with the matching `code_verifier`.
    #[oai(
        path = "/api/v1/web/authorize",
        method = "get",
        operation_id = "webAuthorize"
    )]
    async fn authorize(
        &self,
        context: Data<&Arc<AppContext>>,
        /// `official_account` or `website`.
        app: Query<Option<String>>,
        /// `snsapi_base` (default) or `snsapi_userinfo` for the Official Account;
        /// `snsapi_login` (default) for the website.
        scope: Query<Option<String>>,
        /// Where the browser returns; must be on the `WEB_RETURN_URLS` allow-list.
        return_to: Query<Option<String>>,
        /// Base64url SHA-256 of a PKCE verifier (43 characters).
        code_challenge: Query<Option<String>>,
    ) -> Result<AuthorizeResponse, ApiError> {
        let authorization = context
            .web
            .authorize(
                app.0.as_deref().unwrap_or_default(),
                scope.0.as_deref(),
                return_to.0.as_deref(),
                code_challenge.0.as_deref(),
            )
            .await?;
        Ok(AuthorizeResponse::Found(
            authorization.location,
            flow_cookie(
                &authorization.browser_binding,
                STATE_TTL.as_secs(),
                authorization.secure_cookie,
            ),
        ))
    }

    /// Where WeChat sends the browser back
    ///
    /// Spends the flow's `state` (single use, 10 minutes, bound to this browser by the
    /// `wa_web_flow` cookie), exchanges the `code`, finds or creates the user, and sends the
    /// browser to `return_to` with `ticket=<one-time ticket>`. No `code` means the person
    /// refused: `error=access_denied`. A failure after a valid state: `error=<problem code>`.
    #[oai(
        path = "/api/v1/web/callback",
        method = "get",
        operation_id = "webCallback"
    )]
    async fn callback(
        &self,
        context: Data<&Arc<AppContext>>,
        /// The code WeChat hands out once the person allowed.
        code: Query<Option<String>>,
        /// The state this service put into the authorise URL.
        state: Query<Option<String>>,
        /// Set by `/api/v1/web/authorize`.
        #[oai(name = "wa_web_flow")]
        browser: Cookie<Option<String>>,
    ) -> CallbackResponse {
        let secure = context.web.secure_cookies();
        let cleared = flow_cookie("", 0, secure);
        let outcome = context
            .web
            .callback(state.0.as_deref(), code.0.as_deref(), browser.0.as_deref())
            .await;
        // Every answer is one of these three, so the document lists each status once.
        match outcome {
            Ok(CallbackOutcome::Ticket { return_to, ticket }) => {
                CallbackResponse::Found(return_to.with_param("ticket", &ticket), cleared)
            }
            Ok(CallbackOutcome::Failed { return_to, error }) => {
                CallbackResponse::Found(return_to.with_param("error", error), cleared)
            }
            Err(error) => match ApiError::from(error) {
                ApiError::BadRequest(problem) => CallbackResponse::InvalidState(problem, cleared),
                other => CallbackResponse::Internal(other.into_problem(), cleared),
            },
        }
    }
}
