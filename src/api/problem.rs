//! RFC 9457 problem details: the one place that decides HTTP statuses and error codes.

use poem::{IntoResponse, Response, http::StatusCode};
use poem_openapi::{ApiResponse, Enum, Object, payload::Json};

use crate::{service::ServiceError, wechat::WeChatError};

/// Stable, greppable error codes (the contract's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum ProblemCode {
    InvalidRequest,
    InvalidCode,
    CodeUsed,
    UserBlocked,
    Unauthorized,
    InvalidGrant,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    DecryptFailed,
    WatermarkMismatch,
    SignatureMismatch,
    OpenidMismatch,
    RateLimited,
    WechatError,
    WechatUnavailable,
    NotReady,
    Internal,
    InvalidState,
    InvalidReturnUrl,
    SnapshotUser,
    AppNotConfigured,
    MiniprogramRequired,
    UserDisabled,
    VerificationFailed,
    PhoneInUse,
    SmsFailed,
    QrLoginClosed,
}

impl ProblemCode {
    fn status(self) -> StatusCode {
        match self {
            Self::InvalidRequest
            | Self::InvalidCode
            | Self::CodeUsed
            | Self::InvalidState
            | Self::InvalidReturnUrl => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::InvalidGrant => StatusCode::UNAUTHORIZED,
            Self::UserBlocked | Self::SnapshotUser | Self::UserDisabled => StatusCode::FORBIDDEN,
            Self::NotFound | Self::AppNotConfigured => StatusCode::NOT_FOUND,
            Self::MiniprogramRequired | Self::PhoneInUse | Self::QrLoginClosed => {
                StatusCode::CONFLICT
            }
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::DecryptFailed
            | Self::WatermarkMismatch
            | Self::SignatureMismatch
            | Self::OpenidMismatch
            | Self::VerificationFailed => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::WechatError | Self::SmsFailed => StatusCode::BAD_GATEWAY,
            Self::WechatUnavailable | Self::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidCode => "invalid_code",
            Self::CodeUsed => "code_used",
            Self::UserBlocked => "user_blocked",
            Self::Unauthorized => "unauthorized",
            Self::InvalidGrant => "invalid_grant",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::DecryptFailed => "decrypt_failed",
            Self::WatermarkMismatch => "watermark_mismatch",
            Self::SignatureMismatch => "signature_mismatch",
            Self::OpenidMismatch => "openid_mismatch",
            Self::RateLimited => "rate_limited",
            Self::WechatError => "wechat_error",
            Self::WechatUnavailable => "wechat_unavailable",
            Self::NotReady => "not_ready",
            Self::Internal => "internal",
            Self::InvalidState => "invalid_state",
            Self::InvalidReturnUrl => "invalid_return_url",
            Self::SnapshotUser => "snapshot_user",
            Self::AppNotConfigured => "app_not_configured",
            Self::MiniprogramRequired => "miniprogram_required",
            Self::UserDisabled => "user_disabled",
            Self::VerificationFailed => "verification_failed",
            Self::PhoneInUse => "phone_in_use",
            Self::SmsFailed => "sms_failed",
            Self::QrLoginClosed => "qr_login_closed",
        }
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Object)]
pub struct Problem {
    /// A URI naming the problem type.
    #[oai(rename = "type")]
    pub problem_type: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request; never carries secrets or internals.
    pub detail: String,
    /// Stable machine-readable error code.
    pub code: ProblemCode,
}

/// Seconds a client should wait after `rate_limited`: WeChat's limits are per minute.
const RETRY_AFTER_SECS: u64 = 60;
const BEARER_CHALLENGE: &str = "Bearer";

/// Every error answer of the API.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// Malformed request, a code WeChat rejected, or a web sign-in state or return URL
    /// that is not acceptable.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// Missing, malformed, expired or forged bearer token, or an unusable refresh token.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>, #[oai(header = "WWW-Authenticate")] String),
    /// WeChat flagged the user as high-risk, a snapshot page's virtual user, or a user the
    /// team's backend disabled.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// Unknown path, or the app this operation needs is not configured.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// Known path, wrong method.
    #[oai(status = 405, content_type = "application/problem+json")]
    MethodNotAllowed(Json<Problem>),
    /// The operation needs a mini-program identity and the caller has none, or the phone
    /// number belongs to another user who cannot be joined with the caller.
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// Body over the size limit.
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// The body is not `application/json`.
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// The encrypted data did not decrypt, or decrypted to something not ours, or a phone
    /// verification code is wrong, expired or spent.
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Problem>),
    /// Too many requests; retry after the given number of seconds.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Json<Problem>, #[oai(header = "Retry-After")] u64),
    /// A bug on our side; the body never carries internals.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// WeChat answered with an error or with something that is not its documented JSON, or
    /// the SMS provider did not send the code.
    #[oai(status = 502, content_type = "application/problem+json")]
    BadGateway(Json<Problem>),
    /// WeChat or the database cannot be reached right now.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
}

impl ApiError {
    pub fn new(code: ProblemCode, detail: impl Into<String>) -> Self {
        let status = code.status();
        let problem = Json(Problem {
            problem_type: format!("urn:wechat-auth:problem:{}", code.name()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            code,
        });
        match status {
            StatusCode::BAD_REQUEST => Self::BadRequest(problem),
            StatusCode::UNAUTHORIZED => Self::Unauthorized(problem, BEARER_CHALLENGE.to_owned()),
            StatusCode::FORBIDDEN => Self::Forbidden(problem),
            StatusCode::NOT_FOUND => Self::NotFound(problem),
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed(problem),
            StatusCode::CONFLICT => Self::Conflict(problem),
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge(problem),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType(problem),
            StatusCode::UNPROCESSABLE_ENTITY => Self::Unprocessable(problem),
            StatusCode::TOO_MANY_REQUESTS => Self::TooManyRequests(problem, RETRY_AFTER_SECS),
            StatusCode::BAD_GATEWAY => Self::BadGateway(problem),
            StatusCode::SERVICE_UNAVAILABLE => Self::Unavailable(problem),
            _ => Self::Internal(problem),
        }
    }

    /// The problem document, whatever the status.
    pub fn into_problem(self) -> Json<Problem> {
        match self {
            Self::BadRequest(problem)
            | Self::Unauthorized(problem, _)
            | Self::Forbidden(problem)
            | Self::NotFound(problem)
            | Self::MethodNotAllowed(problem)
            | Self::Conflict(problem)
            | Self::PayloadTooLarge(problem)
            | Self::UnsupportedMediaType(problem)
            | Self::Unprocessable(problem)
            | Self::TooManyRequests(problem, _)
            | Self::Internal(problem)
            | Self::BadGateway(problem)
            | Self::Unavailable(problem) => problem,
        }
    }

    /// Our own per-client limit was hit; the client may retry after `retry_after_secs`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        match Self::new(
            ProblemCode::RateLimited,
            "too many requests from this address; retry after the Retry-After delay",
        ) {
            Self::TooManyRequests(problem, _) => Self::TooManyRequests(problem, retry_after_secs),
            other => other,
        }
    }

    pub fn invalid_request(detail: impl Into<String>) -> Self {
        Self::new(ProblemCode::InvalidRequest, detail)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            ProblemCode::Unauthorized,
            "a valid bearer access token is required",
        )
    }

    fn internal() -> Self {
        Self::new(
            ProblemCode::Internal,
            "the server failed to handle the request",
        )
    }

    /// Problem answers for errors raised outside our handlers: routing, body parsing, the
    /// security scheme, middleware. Answers we built ourselves pass through unchanged.
    pub fn from_poem_error(error: poem::Error) -> Response {
        if error.is_from_response() {
            return error.into_response();
        }
        let status = error.status();
        let problem = match status {
            StatusCode::BAD_REQUEST => Self::invalid_request(error.to_string()),
            StatusCode::UNAUTHORIZED => Self::unauthorized(),
            StatusCode::NOT_FOUND => Self::new(ProblemCode::NotFound, "no such resource"),
            StatusCode::METHOD_NOT_ALLOWED => Self::new(
                ProblemCode::MethodNotAllowed,
                "this method is not allowed on this path",
            ),
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::LENGTH_REQUIRED => Self::new(
                ProblemCode::PayloadTooLarge,
                "the request body is too large",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::new(
                ProblemCode::UnsupportedMediaType,
                "the request body must be application/json",
            ),
            status if status.is_client_error() => Self::invalid_request(error.to_string()),
            _ => {
                tracing::error!(%status, error = %error, "unhandled error");
                Self::internal()
            }
        };
        problem.into_response()
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::InvalidRequest(detail) => Self::invalid_request(detail),
            ServiceError::Unauthenticated(reason) => {
                tracing::debug!(%reason, "bearer token rejected");
                Self::unauthorized()
            }
            ServiceError::InvalidGrant => Self::new(
                ProblemCode::InvalidGrant,
                "the refresh token or ticket is unknown, expired, revoked or already used; sign in again",
            ),
            ServiceError::WeChat(error) => Self::from(error),
            ServiceError::DecryptFailed(_) => Self::new(
                ProblemCode::DecryptFailed,
                "the encrypted data could not be decrypted; call wx.login again and retry",
            ),
            ServiceError::WatermarkMismatch(reason) => Self::new(
                ProblemCode::WatermarkMismatch,
                format!("the payload's watermark is not acceptable: {reason}"),
            ),
            ServiceError::SignatureMismatch => Self::new(
                ProblemCode::SignatureMismatch,
                "signature does not match sha1(raw_data + session_key)",
            ),
            ServiceError::OpenIdMismatch => Self::new(
                ProblemCode::OpenidMismatch,
                "the payload was issued for another user",
            ),
            ServiceError::AppNotConfigured(app) => Self::new(
                ProblemCode::AppNotConfigured,
                format!("the {app} app is not configured on this service"),
            ),
            ServiceError::InvalidState => Self::new(
                ProblemCode::InvalidState,
                "this sign-in is unknown, expired, already finished, or was started in another \
                 browser; start it again",
            ),
            ServiceError::InvalidReturnUrl => Self::new(
                ProblemCode::InvalidReturnUrl,
                "return_to is missing or not on this service's list of allowed return URLs",
            ),
            ServiceError::SnapshotUser => Self::new(
                ProblemCode::SnapshotUser,
                "this is a snapshot page's virtual user; open the page in WeChat to sign in",
            ),
            ServiceError::MiniprogramRequired => Self::new(
                ProblemCode::MiniprogramRequired,
                "this needs the caller to have signed in with the mini program",
            ),
            ServiceError::UserDisabled => Self::new(
                ProblemCode::UserDisabled,
                "this user is disabled; no login path lets them in until they are enabled",
            ),
            ServiceError::NotFound(what) => {
                Self::new(ProblemCode::NotFound, format!("no such {what}"))
            }
            ServiceError::SmsNotConfigured => Self::new(
                ProblemCode::AppNotConfigured,
                "phone verification is not configured on this service (SMS_PROVIDER)",
            ),
            ServiceError::RateLimited { retry_after_secs } => match Self::new(
                ProblemCode::RateLimited,
                "too many verification codes for this phone number or user; retry after the \
                 Retry-After delay",
            ) {
                Self::TooManyRequests(problem, _) => {
                    Self::TooManyRequests(problem, retry_after_secs)
                }
                other => other,
            },
            ServiceError::VerificationFailed => Self::new(
                ProblemCode::VerificationFailed,
                "the verification code is wrong, expired or already used; request a new one",
            ),
            ServiceError::PhoneInUse => Self::new(
                ProblemCode::PhoneInUse,
                "another user holds this phone number and has signed in with the same app",
            ),
            ServiceError::SmsFailed => Self::new(
                ProblemCode::SmsFailed,
                "the verification code could not be sent; retry later",
            ),
            ServiceError::QrLoginNotFound => Self::new(
                ProblemCode::NotFound,
                "no such sign-in, or the secret does not match",
            ),
            ServiceError::QrLoginClosed(reason) => Self::new(ProblemCode::QrLoginClosed, reason),
            error @ (ServiceError::Store(_) | ServiceError::Token(_)) => {
                tracing::error!(%error, "request failed");
                Self::internal()
            }
        }
    }
}

impl From<WeChatError> for ApiError {
    fn from(error: WeChatError) -> Self {
        match error {
            WeChatError::InvalidCode => Self::new(
                ProblemCode::InvalidCode,
                "WeChat rejected the code as invalid or expired; call wx.login again",
            ),
            WeChatError::CodeUsed => Self::new(
                ProblemCode::CodeUsed,
                "this code was already used; call wx.login again",
            ),
            WeChatError::UserBlocked => Self::new(
                ProblemCode::UserBlocked,
                "WeChat blocked this user as high-risk",
            ),
            WeChatError::RateLimited => Self::new(
                ProblemCode::RateLimited,
                "WeChat rate-limited this request; retry later",
            ),
            WeChatError::Unavailable(reason) => {
                tracing::warn!(%reason, "WeChat unavailable");
                Self::new(
                    ProblemCode::WechatUnavailable,
                    "WeChat is not reachable right now; retry later",
                )
            }
            error @ (WeChatError::Errcode { .. }
            | WeChatError::BadAnswer(_)
            | WeChatError::AccessTokenRejected(_)) => {
                tracing::error!(%error, "WeChat call failed");
                Self::new(ProblemCode::WechatError, "WeChat answered with an error")
            }
        }
    }
}

/// A bare problem response, for routes outside the OpenAPI document.
pub fn problem_response(code: ProblemCode, detail: impl Into<String>) -> Response {
    ApiError::new(code, detail).into_response()
}
