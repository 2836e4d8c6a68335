//! Computer sign-in by the mini program: the computer's side (start, image, long-poll)
//! and the mini program's (scan, confirm, deny).

use std::{sync::Arc, time::Duration};

use poem::{Request, web::Data};
use poem_openapi::{
    ApiResponse, Enum, Object, OpenApi,
    param::{Path, Query},
    payload::{Binary, Json},
};

use super::{
    ApiTags, AppContext, UserView, problem::ApiError, rate_limit::ClientIp, security::BearerAuth,
};
use crate::{
    domain::{App, QrLoginStatus},
    service::{QrLogins, ServiceError},
};

pub struct QrLoginApi;

/// A computer sign-in just started.
#[derive(Object)]
pub struct QrLoginStarted {
    /// The sign-in's public id: the mini-program code's `scene` (16–32 of `[A-Za-z0-9]`).
    /// It is printed in the image, so it proves nothing.
    id: String,
    /// Known only to this computer; poll with it. Never in the image or any URL we build.
    secret: String,
    /// Seconds until the sign-in expires (`QR_LOGIN_TTL_SECS`).
    expires_in: u64,
    /// Where the mini-program code (PNG) is served.
    image_url: String,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "QrLoginStatus", rename_all = "snake_case")]
pub enum StatusName {
    Pending,
    Scanned,
    Confirmed,
    Denied,
    Expired,
}

impl From<QrLoginStatus> for StatusName {
    fn from(status: QrLoginStatus) -> Self {
        match status {
            QrLoginStatus::Pending => Self::Pending,
            QrLoginStatus::Scanned => Self::Scanned,
            QrLoginStatus::Confirmed => Self::Confirmed,
            QrLoginStatus::Denied => Self::Denied,
            QrLoginStatus::Expired => Self::Expired,
        }
    }
}

/// Where a computer sign-in stands. The one poll that first sees it `confirmed` also gets
/// the login response fields; every later poll gets the status alone.
#[derive(Object)]
#[oai(rename = "QrLoginState")]
pub struct QrLoginState {
    status: StatusName,
    #[oai(nullable)]
    access_token: Option<String>,
    /// `Bearer`, with the tokens.
    #[oai(nullable)]
    token_type: Option<String>,
    /// Seconds until the access token expires, with the tokens.
    #[oai(nullable)]
    expires_in: Option<u64>,
    #[oai(nullable)]
    refresh_token: Option<String>,
    #[oai(nullable)]
    refresh_expires_in: Option<u64>,
    /// Always `false`: the person signed in on the phone before.
    #[oai(nullable)]
    new_user: Option<bool>,
    #[oai(nullable)]
    user: Option<UserView>,
}

/// The computer that started a sign-in, as the phone shows it.
#[derive(Object)]
pub struct RequestedBy {
    #[oai(nullable)]
    ip: Option<String>,
    #[oai(nullable)]
    user_agent: Option<String>,
}

/// The mini program saw the code.
#[derive(Object)]
pub struct QrLoginScanned {
    /// Always `scanned`.
    status: StatusName,
    /// Show this and ask "is this your computer?" before confirming: the defence against
    /// someone relaying a sign-in code from their own screen.
    requested_by: RequestedBy,
}

/// The sign-in after the user's answer.
#[derive(Object)]
pub struct QrLoginAnswered {
    /// `confirmed` or `denied`.
    status: StatusName,
}

#[derive(ApiResponse)]
pub enum StartResponse {
    /// Started; show the image and poll with the secret.
    #[oai(status = 201)]
    Created(
        Json<QrLoginStarted>,
        #[oai(header = "Cache-Control")] String,
    ),
}

#[derive(ApiResponse)]
pub enum ImageResponse {
    /// The mini-program code.
    #[oai(status = 200, content_type = "image/png")]
    Png(Binary<Vec<u8>>, #[oai(header = "Cache-Control")] String),
}

#[derive(ApiResponse)]
pub enum PollResponse {
    #[oai(status = 200)]
    State(Json<QrLoginState>, #[oai(header = "Cache-Control")] String),
}

fn qr_logins(context: &AppContext) -> Result<&QrLogins, ApiError> {
    context
        .qr_logins
        .as_ref()
        .ok_or_else(|| ServiceError::AppNotConfigured(App::Miniprogram).into())
}

#[OpenApi(tag = "ApiTags::QrLogin")]
impl QrLoginApi {
    /// Start a computer sign-in
    ///
    /// The computer shows the image at `image_url` and long-polls with `secret`. Shares the
    /// login's per-IP rate limit. 404 `app_not_configured` without the mini program.
    #[oai(
        path = "/api/v1/qr-login",
        method = "post",
        operation_id = "startQrLogin"
    )]
    async fn start(
        &self,
        context: Data<&Arc<AppContext>>,
        request: &Request,
    ) -> Result<StartResponse, ApiError> {
        let ip = request
            .extensions()
            .get::<ClientIp>()
            .and_then(|client| client.0);
        let user_agent = request
            .headers()
            .get(poem::http::header::USER_AGENT)
            .and_then(|value| value.to_str().ok());
        let started = qr_logins(&context)?.start(ip, user_agent).await?;
        Ok(StartResponse::Created(
            Json(QrLoginStarted {
                id: started.id.to_string(),
                secret: started.secret,
                expires_in: started.expires_in.as_secs(),
                image_url: started.image_url,
            }),
            "no-store".to_owned(),
        ))
    }

    /// The mini-program code of a sign-in
    ///
    /// Made once by WeChat (`wxa/getwxacodeunlimit`, `scene` = id, `page` = `QR_LOGIN_PAGE`)
    /// and served from storage after that. 409 `qr_login_closed` once the sign-in expired
    /// or finished.
    #[oai(
        path = "/api/v1/qr-login/:id/image",
        method = "get",
        operation_id = "qrLoginImage"
    )]
    async fn image(
        &self,
        context: Data<&Arc<AppContext>>,
        /// The sign-in's id.
        id: Path<String>,
    ) -> Result<ImageResponse, ApiError> {
        let png = qr_logins(&context)?.image(&id.0).await?;
        Ok(ImageResponse::Png(
            Binary(png),
            "private, max-age=300".to_owned(),
        ))
    }

    /// Where a computer sign-in stands (long-poll)
    ///
    /// Waits up to `wait` seconds (at most 30) while the sign-in stays as it was when the
    /// request arrived, and answers at once when it changes or expires. Without the
    /// sign-in's `secret`: 404 `not_found`. The first poll to see `confirmed` gets the new
    /// session's tokens (a `website` session for the user who confirmed); later polls
    /// get the status alone.
    #[oai(
        path = "/api/v1/qr-login/:id",
        method = "get",
        operation_id = "pollQrLogin"
    )]
    async fn poll(
        &self,
        context: Data<&Arc<AppContext>>,
        /// The sign-in's id.
        id: Path<String>,
        /// The `secret` from the start of the sign-in.
        secret: Query<Option<String>>,
        /// Seconds to wait for a change, 0–30 (larger values wait 30); default 0.
        wait: Query<Option<u64>>,
    ) -> Result<PollResponse, ApiError> {
        let wait = Duration::from_secs(wait.0.unwrap_or(0));
        let polled = qr_logins(&context)?
            .poll(&id.0, secret.0.as_deref().unwrap_or_default(), wait)
            .await?;
        let mut state = QrLoginState {
            status: polled.status.into(),
            access_token: None,
            token_type: None,
            expires_in: None,
            refresh_token: None,
            refresh_expires_in: None,
            new_user: None,
            user: None,
        };
        if let Some(login) = polled.login {
            state.access_token = Some(login.access_token.token);
            state.token_type = Some("Bearer".to_owned());
            state.expires_in = Some(login.access_token.expires_in);
            state.refresh_token = Some(login.refresh_token.token);
            state.refresh_expires_in = Some(login.refresh_token.expires_in);
            state.new_user = Some(login.new_user);
            state.user = Some(context.user_view(login.user));
        }
        Ok(PollResponse::State(Json(state), "no-store".to_owned()))
    }

    /// The mini program scanned a sign-in's code
    ///
    /// Marks the sign-in `scanned` by the caller, who then has 30 seconds to answer, and
    /// tells the phone which computer asks. 409 `qr_login_closed` when it expired,
    /// finished, or another user scanned it first; 404 `not_found` when unknown.
    #[oai(
        path = "/api/v1/qr-login/:id/scan",
        method = "post",
        operation_id = "scanQrLogin"
    )]
    async fn scan(
        &self,
        context: Data<&Arc<AppContext>>,
        auth: BearerAuth,
        /// The `scene` the mini-program page was opened with.
        id: Path<String>,
    ) -> Result<Json<QrLoginScanned>, ApiError> {
        let asking = qr_logins(&context)?.scan(&id.0, auth.0.user_id).await?;
        Ok(Json(QrLoginScanned {
            status: StatusName::Scanned,
            requested_by: RequestedBy {
                ip: asking.ip,
                user_agent: asking.user_agent,
            },
        }))
    }

    /// Sign the computer in
    ///
    /// Needs a prior `scan` by the caller (else 400 `invalid_request`, or 409
    /// `qr_login_closed` when another user scanned it). The computer's poll then receives
    /// a session for the caller.
    #[oai(
        path = "/api/v1/qr-login/:id/confirm",
        method = "post",
        operation_id = "confirmQrLogin"
    )]
    async fn confirm(
        &self,
        context: Data<&Arc<AppContext>>,
        auth: BearerAuth,
        /// The sign-in's id.
        id: Path<String>,
    ) -> Result<Json<QrLoginAnswered>, ApiError> {
        let status = qr_logins(&context)?
            .answer_scan(&id.0, auth.0.user_id, true)
            .await?;
        Ok(Json(QrLoginAnswered {
            status: status.into(),
        }))
    }

    /// Refuse the computer's sign-in
    ///
    /// Same rules as `confirm`; the computer's poll answers `denied`.
    #[oai(
        path = "/api/v1/qr-login/:id/deny",
        method = "post",
        operation_id = "denyQrLogin"
    )]
    async fn deny(
        &self,
        context: Data<&Arc<AppContext>>,
        auth: BearerAuth,
        /// The sign-in's id.
        id: Path<String>,
    ) -> Result<Json<QrLoginAnswered>, ApiError> {
        let status = qr_logins(&context)?
            .answer_scan(&id.0, auth.0.user_id, false)
            .await?;
        Ok(Json(QrLoginAnswered {
            status: status.into(),
        }))
    }
}
