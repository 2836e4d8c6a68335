//! The caller's account: proving and binding a phone number, their sessions, and deleting
//! the account.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};

use super::{
    ApiTags, AppContext, AppName, JsonString, auth::LoginResponse, problem::ApiError,
    security::BearerAuth,
};
use crate::service::{PhoneService, ServiceError};

pub struct AccountApi;

#[derive(Object)]
pub struct PhoneVerificationRequest {
    /// `+<country code><number>` (E.164), or an 11-digit mainland China number.
    #[oai(validator(pattern = r"^(\+[1-9][0-9]{7,14}|1[0-9]{10})$"))]
    phone_number: JsonString,
}

#[derive(Object)]
pub struct PhoneVerificationSent {
    /// Seconds the code works.
    expires_in: u64,
    /// Seconds until another code may be sent to this number.
    resend_after: u64,
}

#[derive(Object)]
pub struct BindPhoneRequest {
    /// The number the code was sent to, in either accepted form.
    #[oai(validator(pattern = r"^(\+[1-9][0-9]{7,14}|1[0-9]{10})$"))]
    phone_number: JsonString,
    /// The 6 digits received by SMS.
    #[oai(validator(pattern = r"^[0-9]{6}$"))]
    verification_code: JsonString,
}

#[derive(Object)]
pub struct SessionList {
    /// Live sessions, newest first.
    sessions: Vec<SessionItem>,
}

/// One signed-in device or browser.
#[derive(Object)]
#[oai(rename = "Session")]
pub struct SessionItem {
    id: String,
    /// The app the session was started from.
    app: AppName,
    /// RFC 3339, UTC.
    created_at: String,
    /// RFC 3339, UTC; may lag by up to a minute.
    last_used_at: String,
    /// Whether this is the session of the token that asked.
    current: bool,
}

#[derive(ApiResponse)]
pub enum VerificationResponse {
    /// The code is on its way.
    #[oai(status = 202)]
    Sent(Json<PhoneVerificationSent>),
}

#[derive(ApiResponse)]
pub(super) enum DeletedResponse {
    /// Done.
    #[oai(status = 204)]
    Deleted,
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl AppContext {
    fn phones(&self) -> Result<&PhoneService, ApiError> {
        self.phones
            .as_ref()
            .ok_or_else(|| ServiceError::SmsNotConfigured.into())
    }
}

#[OpenApi(tag = "ApiTags::Users")]
impl AccountApi {
    /// Send a code to prove a phone number
    ///
    /// Sends 6 random digits by SMS, valid `SMS_CODE_TTL_SECS`. A newer code replaces the
    /// one before. One code per number per minute, at most 10 per number and 20 per user a
    /// day: beyond, `rate_limited` with `Retry-After`.
    #[oai(
        path = "/api/v1/me/phone/verification",
        method = "post",
        operation_id = "sendPhoneVerification"
    )]
    async fn send_verification(
        &self,
        context: Data<&Arc<AppContext>>,
        auth: BearerAuth,
        body: Json<PhoneVerificationRequest>,
    ) -> Result<VerificationResponse, ApiError> {
        let sent = context
            .phones()?
            .send_code(&auth.0, &body.phone_number.0)
            .await?;
        Ok(VerificationResponse::Sent(Json(PhoneVerificationSent {
            expires_in: sent.expires_in,
            resend_after: sent.resend_after,
        })))
    }

    /// Bind a proven phone number
    ///
    /// With the code sent to the number, the number becomes the caller's. When another
    /// user already holds it, the caller's identities, sessions and missing profile move to
    /// that user (unless both signed in with the same app: `phone_in_use`). Answers a fresh
    /// token pair for the user who holds the number now; a joined caller's old user id is
    /// gone, so its access tokens stop working.
    #[oai(path = "/api/v1/me/phone", method = "post", operation_id = "bindPhone")]
    async fn bind_phone(
        &self,
        context: Data<&Arc<AppContext>>,
        auth: BearerAuth,
        body: Json<BindPhoneRequest>,
    ) -> Result<Json<LoginResponse>, ApiError> {
        let outcome = context
            .phones()?
            .bind(&auth.0, &body.phone_number.0, &body.verification_code.0)
            .await?;
        Ok(LoginResponse::new(outcome, &context))
    }

    /// The caller's live sessions
    #[oai(
        path = "/api/v1/me/sessions",
        method = "get",
        operation_id = "listSessions"
    )]
    async fn sessions(
        &self,
        context: Data<&Arc<AppContext>>,
        auth: BearerAuth,
    ) -> Result<Json<SessionList>, ApiError> {
        let sessions = context.sessions.list(&auth.0).await?;
        Ok(Json(SessionList {
            sessions: sessions
                .into_iter()
                .map(|session| SessionItem {
                    id: session.id.to_string(),
                    app: session.app.into(),
                    created_at: rfc3339(session.created_at),
                    last_used_at: rfc3339(session.last_used_at),
                    current: session.current,
                })
                .collect(),
        }))
    }

    /// End one of the caller's sessions
    ///
    /// Its access tokens stop working on this service at once and its refresh token
    /// everywhere. Another user's session, or an unknown one: `not_found`.
    #[oai(
        path = "/api/v1/me/sessions/:id",
        method = "delete",
        operation_id = "endSession"
    )]
    async fn end_session(
        &self,
        context: Data<&Arc<AppContext>>,
        auth: BearerAuth,
        id: Path<String>,
    ) -> Result<DeletedResponse, ApiError> {
        context.sessions.end(&auth.0, &id.0).await?;
        Ok(DeletedResponse::Deleted)
    }
}
