use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use super::{ApiTags, AppContext, JsonString, UserView, problem::ApiError, security::BearerAuth};
use crate::{domain::JsCode, service::LoginOutcome};

pub struct AuthApi;

#[derive(Object)]
pub struct LoginRequest {
    /// The one-time code from `wx.login()`.
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

impl From<LoginOutcome> for LoginResponse {
    fn from(outcome: LoginOutcome) -> Self {
        Self {
            access_token: outcome.access_token.token,
            token_type: "Bearer".to_owned(),
            expires_in: outcome.access_token.expires_in,
            refresh_token: outcome.refresh_token.token,
            refresh_expires_in: outcome.refresh_token.expires_in,
            new_user: outcome.new_user,
            user: outcome.user.into(),
        }
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
        let outcome = context.auth.login(&code).await?;
        Ok(Json(outcome.into()))
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
        let outcome = context.auth.refresh(&body.refresh_token.0).await?;
        Ok(Json(outcome.into()))
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
        context.auth.logout(&auth.0).await?;
        Ok(LogoutResponse::LoggedOut)
    }
}

#[derive(ApiResponse)]
pub enum LogoutResponse {
    /// The session is over.
    #[oai(status = 204)]
    LoggedOut,
}
