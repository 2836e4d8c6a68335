use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{Object, OpenApi, payload::Json};

use super::{ApiTags, AppContext, JsonString, UserView, problem::ApiError};
use crate::{domain::JsCode, service::LoginOutcome};

pub struct AuthApi;

#[derive(Object)]
pub struct LoginRequest {
    /// The one-time code from `wx.login()`.
    code: JsonString,
}

#[derive(Object)]
pub struct LoginResponse {
    /// Our JWT; send it as `Authorization: Bearer <token>`.
    access_token: String,
    /// Always `Bearer`.
    token_type: String,
    /// Seconds until the access token expires.
    expires_in: u64,
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
}
