use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use super::{ApiTags, AppContext, JsonString, UserView, problem::ApiError, security::BearerAuth};
use crate::{
    domain::{App, JsCode},
    service::LoginOutcome,
};

pub struct AuthApi;

#[derive(Object)]
pub struct LoginRequest {
    /// The one-time code from `wx.login()`.
    #[oai(validator(min_length = 1, max_length = 128, pattern = r"^[!-~]+$"))]
    code: JsonString,
}

#[derive(Object)]
pub struct TicketRequest {
    /// The `ticket` query parameter the browser came back with.
    #[oai(validator(min_length = 1, max_length = 128))]
    ticket: JsonString,
    /// The PKCE verifier, when the flow was started with a `code_challenge`.
    #[oai(nullable, validator(min_length = 1, max_length = 128))]
    code_verifier: Option<JsonString>,
}

#[derive(Object)]
pub struct WebLoginRequest {
    /// `official_account` or `website`.
    #[oai(validator(min_length = 1, max_length = 32))]
    app: JsonString,
    /// The `code` WeChat sent the page back with.
    #[oai(validator(min_length = 1, max_length = 128, pattern = r"^[!-~]+$"))]
    code: JsonString,
}

#[derive(Object)]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh.
    refresh_token: JsonString,
}

/// A token pair and the user. Answered by login and by refresh.
#[derive(Object)]
pub struct LoginResponse {
    /// Our JWT; send it as `Authorization: Bearer <token>`.
    access_token: String,
    /// Always `Bearer`.
    token_type: String,
    /// Seconds until the access token expires.
    expires_in: u64,
    /// Opaque; trade it at `/api/v1/auth/refresh` for a new pair. Single use.
    refresh_token: String,
    /// Seconds until the refresh token expires.
    refresh_expires_in: u64,
    /// Whether this login created the user.
    new_user: bool,
    user: UserView,
}

impl LoginResponse {
    pub(super) fn new(outcome: LoginOutcome, context: &AppContext) -> Json<Self> {
        Json(Self {
            access_token: outcome.access_token.token,
            token_type: "Bearer".to_owned(),
            expires_in: outcome.access_token.expires_in,
            refresh_token: outcome.refresh_token.token,
            refresh_expires_in: outcome.refresh_token.expires_in,
            new_user: outcome.new_user,
            user: context.user_view(outcome.user),
        })
    }
}

#[OpenApi(tag = "ApiTags::Auth")]
impl AuthApi {
    /// Log in with a `wx.login` code
    ///
    /// Exchanges the code with WeChat (`jscode2session`), creates the user on first sight,
    /// stores the new session_key, and returns an access token with the user.
    #[oai(path = "/api/v1/auth/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        context: Data<&Arc<AppContext>>,
        body: Json<LoginRequest>,
    ) -> Result<Json<LoginResponse>, ApiError> {
        let code = JsCode::parse(&body.code.0).map_err(|e| ApiError::invalid_request(e.0))?;
        let outcome = context.login.login(App::Miniprogram, &code).await?;
        Ok(LoginResponse::new(outcome, &context))
    }

    /// Trade a refresh token for a new token pair
    ///
    /// The presented refresh token is retired. Presenting a retired one again revokes the
    /// whole session (someone holds a copy) and answers `invalid_grant`.
    #[oai(
        path = "/api/v1/auth/refresh",
        method = "post",
        operation_id = "refresh"
    )]
    async fn refresh(
        &self,
        context: Data<&Arc<AppContext>>,
        body: Json<RefreshRequest>,
    ) -> Result<Json<LoginResponse>, ApiError> {
        let outcome = context.sessions.refresh(&body.refresh_token.0).await?;
        Ok(LoginResponse::new(outcome, &context))
    }

    /// End this session
    ///
    /// The session's access tokens stop working on this service at once; its refresh token
    /// stops working everywhere.
    #[oai(path = "/api/v1/auth/logout", method = "post", operation_id = "logout")]
    async fn logout(
        &self,
        context: Data<&Arc<AppContext>>,
        auth: BearerAuth,
    ) -> Result<LogoutResponse, ApiError> {
        context.sessions.logout(&auth.0).await?;
        Ok(LogoutResponse::LoggedOut)
    }

    /// Trade a web sign-in ticket for a token pair
    ///
    /// The redirect flow ends at `return_to?ticket=…`; the page posts the ticket here (with
    /// the PKCE `code_verifier` when it started the flow with a `code_challenge`). A ticket
    /// works once and lives `WEB_TICKET_TTL_SECS`.
    #[oai(
        path = "/api/v1/auth/ticket",
        method = "post",
        operation_id = "redeemTicket"
    )]
    async fn ticket(
        &self,
        context: Data<&Arc<AppContext>>,
        body: Json<TicketRequest>,
    ) -> Result<Json<LoginResponse>, ApiError> {
        let body = body.0;
        let outcome = context
            .web
            .redeem(
                &body.ticket.0,
                body.code_verifier.as_ref().map(|v| v.0.as_str()),
            )
            .await?;
        Ok(LoginResponse::new(outcome, &context))
    }

    /// Log in with a code a web page received
    ///
    /// For pages that let WeChat's authorise page send the browser back to themselves: the
    /// page posts the `code` here. A code posted again within `LOGIN_REPLAY_WINDOW_SECS`
    /// (a reloaded page) gets a fresh pair for the same user without a second WeChat call.
    #[oai(
        path = "/api/v1/auth/web/login",
        method = "post",
        operation_id = "webLogin"
    )]
    async fn web_login(
        &self,
        context: Data<&Arc<AppContext>>,
        body: Json<WebLoginRequest>,
    ) -> Result<Json<LoginResponse>, ApiError> {
        let outcome = context
            .web
            .login_with_code(&body.app.0, &body.code.0)
            .await?;
        Ok(LoginResponse::new(outcome, &context))
    }
}

#[derive(ApiResponse)]
pub enum LogoutResponse {
    /// The session is over.
    #[oai(status = 204)]
    LoggedOut,
}
