//! Use cases. They speak domain types only: no poem, no sea-orm in any signature.

mod access_token;
mod accounts;
mod login;
mod phone;
mod principal_cache;
mod profile;
mod qr_login;
mod server_users;
mod sessions;
mod web_login;

pub use accounts::Accounts;
pub use login::{AppClients, Identified, LoginService};
pub use phone::{PhoneService, VerificationSent};
pub use principal_cache::PrincipalCache;
pub use profile::{PhoneNumber, ProfileService, SignedRawData, UserInfo};
pub use qr_login::{QrLoginOptions, QrLoginPoll, QrLogins, RequestedBy, StartedQrLogin};
pub use server_users::{MAX_FEED_PAGE, ServerUsers, UserQuery};
pub use sessions::{Authenticated, LoginOutcome, SessionView, Sessions};
pub use web_login::{Authorization, CallbackOutcome, STATE_TTL, WebLogin, WebSignIn};

use crate::{
    crypto::DecryptError, domain::App, store::StoreError, token::TokenError, wechat::WeChatError,
};

/// Every way a use case can fail, in the caller's terms. `api::problem` alone turns these
/// into HTTP answers.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("not authenticated: {0}")]
    Unauthenticated(String),
    #[error("the refresh token is unknown, expired, revoked or already used")]
    InvalidGrant,
    #[error(transparent)]
    WeChat(#[from] WeChatError),
    #[error(transparent)]
    DecryptFailed(#[from] DecryptError),
    #[error("watermark rejected: {0}")]
    WatermarkMismatch(&'static str),
    #[error("rawData signature does not match")]
    SignatureMismatch,
    #[error("the payload belongs to another openid")]
    OpenIdMismatch,
    #[error("the {0} app is not configured")]
    AppNotConfigured(App),
    #[error("the sign-in state is unknown, expired, used, or belongs to another browser")]
    InvalidState,
    #[error("return_to is not an allowed return URL")]
    InvalidReturnUrl,
    #[error("a snapshot page's virtual user cannot sign in")]
    SnapshotUser,
    #[error("this needs a mini-program identity, and the caller has none")]
    MiniprogramRequired,
    #[error("the user is disabled")]
    UserDisabled,
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("phone verification is not configured (SMS_PROVIDER)")]
    SmsNotConfigured,
    #[error("too many verification codes; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("the verification code is wrong, expired or spent")]
    VerificationFailed,
    #[error("another user holds this phone number and has an identity of the same app")]
    PhoneInUse,
    #[error("the SMS provider did not send the code")]
    SmsFailed,
    #[error("no such computer sign-in (or not this computer's)")]
    QrLoginNotFound,
    #[error("the computer sign-in is closed: {0}")]
    QrLoginClosed(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Token(TokenError),
}

impl ServiceError {
    /// A short, bounded label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::Unauthenticated(_) => "unauthorized",
            Self::InvalidGrant => "invalid_grant",
            Self::WeChat(WeChatError::InvalidCode) => "invalid_code",
            Self::WeChat(WeChatError::CodeUsed) => "code_used",
            Self::WeChat(WeChatError::UserBlocked) => "user_blocked",
            Self::WeChat(WeChatError::RateLimited) => "rate_limited",
            Self::WeChat(WeChatError::Unavailable(_)) => "wechat_unavailable",
            Self::WeChat(_) => "wechat_error",
            Self::DecryptFailed(_) => "decrypt_failed",
            Self::WatermarkMismatch(_) => "watermark_mismatch",
            Self::SignatureMismatch => "signature_mismatch",
            Self::OpenIdMismatch => "openid_mismatch",
            Self::AppNotConfigured(_) => "app_not_configured",
            Self::InvalidState => "invalid_state",
            Self::InvalidReturnUrl => "invalid_return_url",
            Self::SnapshotUser => "snapshot_user",
            Self::MiniprogramRequired => "miniprogram_required",
            Self::UserDisabled => "user_disabled",
            Self::NotFound(_) => "not_found",
            Self::SmsNotConfigured => "app_not_configured",
            Self::RateLimited { .. } => "rate_limited",
            Self::VerificationFailed => "verification_failed",
            Self::PhoneInUse => "phone_in_use",
            Self::SmsFailed => "sms_failed",
            Self::QrLoginNotFound => "not_found",
            Self::QrLoginClosed(_) => "qr_login_closed",
            Self::Store(_) | Self::Token(_) => "internal",
        }
    }
}

impl From<TokenError> for ServiceError {
    fn from(error: TokenError) -> Self {
        match error {
            TokenError::Rejected(reason) => Self::Unauthenticated(reason),
            other @ (TokenError::Signing(_) | TokenError::Key { .. }) => Self::Token(other),
        }
    }
}
