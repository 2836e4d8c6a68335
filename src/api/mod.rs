//! The HTTP surface: poem-openapi operations, one module per tag, over the services.

mod auth;
pub mod health;
mod json_string;
mod keys;
mod me;
pub mod middleware;
pub mod problem;
pub mod rate_limit;
pub mod routes;
mod security;
mod wechat;

use poem_openapi::{Object, OpenApiService, Tags};

pub use json_string::JsonString;

use crate::{
    service::{AuthService, ProfileService},
    store::{Store, UserRecord},
};

/// What every handler can reach.
pub struct AppContext {
    pub auth: AuthService,
    pub profiles: ProfileService,
    pub store: Store,
}

#[derive(Tags)]
enum ApiTags {
    /// Logging in
    Auth,
    /// The signed-in user
    Users,
    /// Data the mini program received from WeChat
    #[oai(rename = "WeChat")]
    WeChat,
    /// Keys for verifying our tokens elsewhere
    Keys,
    /// Probes for orchestrators
    Health,
}

/// A user as clients see it.
// Every `Option` field is answered as `null` when unset, so it carries
// `#[oai(nullable)]`; tests/api/docs.rs checks that no optional field lacks it.
#[derive(Object)]
#[oai(rename = "User")]
pub struct UserView {
    /// Our user id: opaque, stable per user.
    id: String,
    /// The user's openid in this mini program.
    openid: String,
    #[oai(nullable)]
    unionid: Option<String>,
    #[oai(nullable)]
    phone_number: Option<String>,
    #[oai(nullable)]
    nickname: Option<String>,
    #[oai(nullable)]
    avatar_url: Option<String>,
}

impl From<UserRecord> for UserView {
    fn from(user: UserRecord) -> Self {
        Self {
            id: user.id.to_string(),
            openid: user.openid.into_string(),
            unionid: user.unionid.map(|u| u.into_string()),
            phone_number: user.phone_number,
            nickname: user.nickname,
            avatar_url: user.avatar_url,
        }
    }
}

pub type Api = (
    auth::AuthApi,
    me::MeApi,
    wechat::WeChatApi,
    keys::KeysApi,
    health::HealthApi,
);

/// The OpenAPI service; the document it describes is the published contract.
pub fn service() -> OpenApiService<Api, ()> {
    OpenApiService::new(
        (
            auth::AuthApi,
            me::MeApi,
            wechat::WeChatApi,
            keys::KeysApi,
            health::HealthApi,
        ),
        "wechat-auth",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Logs WeChat mini-program users in (wx.login code → JWT) and decrypts the phone \
         number and profile they share. Errors are RFC 9457 problem+json with a stable `code`.",
    )
}

/// The OpenAPI document as YAML, exactly as served at `/api/openapi.yaml`.
pub fn spec_yaml() -> String {
    service().spec_yaml()
}
