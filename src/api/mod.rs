//! The HTTP surface: poem-openapi operations, one module per tag, over the services.

mod account;
mod auth;
pub mod health;
mod json_string;
mod keys;
mod me;
pub mod middleware;
pub mod problem;
mod qr_login;
pub mod rate_limit;
pub mod routes;
mod security;
pub mod server;
mod web;
mod wechat;

use poem_openapi::{Enum, Object, OpenApiService, Tags};

pub use json_string::JsonString;

use crate::{
    config::ServerApiKey,
    domain::{App, AppId},
    service::{
        Accounts, LoginService, PhoneService, ProfileService, QrLogins, ServerUsers, Sessions,
        WebLogin,
    },
    store::{Store, UserRecord},
};

use problem::ApiError;

/// What every handler can reach.
pub struct AppContext {
    pub sessions: Sessions,
    pub login: LoginService,
    pub web: WebLogin,
    /// `None` when the mini program is not configured.
    pub profiles: Option<ProfileService>,
    /// The mini program's appid: `user.openid` is the user's openid there.
    pub miniprogram_appid: Option<AppId>,
    /// `MP_verify_<token>.txt` and its contents, when configured.
    pub oa_verify_file: Option<(String, Vec<u8>)>,
    /// `None` when the mini program is not configured.
    pub qr_logins: Option<QrLogins>,
    pub store: Store,
    /// The server API: lookups, disabling, the events feed.
    pub server_users: ServerUsers,
    /// `SERVER_API_KEYS`.
    pub server_keys: Vec<ServerApiKey>,
    pub accounts: Accounts,
    /// `None` when no SMS provider is configured.
    pub phones: Option<PhoneService>,
}

impl AppContext {
    fn profiles(&self) -> Result<&ProfileService, ApiError> {
        self.profiles
            .as_ref()
            .ok_or_else(|| crate::service::ServiceError::AppNotConfigured(App::Miniprogram).into())
    }

    /// A user as clients see them.
    pub fn user_view(&self, user: UserRecord) -> UserView {
        let openid = self
            .miniprogram_appid
            .as_ref()
            .and_then(|appid| user.openid_in(appid))
            .map(|openid| openid.as_str().to_owned());
        UserView {
            id: user.id.to_string(),
            openid,
            unionid: user.unionid.map(|u| u.into_string()),
            phone_number: user.phone_number,
            nickname: user.nickname,
            avatar_url: user.avatar_url,
            identities: user
                .identities
                .into_iter()
                .map(|identity| IdentityView {
                    app: identity.app.into(),
                    appid: identity.appid.into_string(),
                    openid: identity.openid.into_string(),
                })
                .collect(),
        }
    }
}

#[derive(Tags)]
enum ApiTags {
    /// Logging in
    Auth,
    /// Web sign-in: Official Account pages and website QR login (browser redirects)
    Web,
    /// The signed-in user
    Users,
    /// Data the mini program received from WeChat
    #[oai(rename = "WeChat")]
    WeChat,
    /// Computer sign-in by the mini program: the computer shows a mini-program code, the
    /// signed-in mini-program user scans and confirms
    #[oai(rename = "QR login")]
    QrLogin,
    /// Keys for verifying our tokens elsewhere
    Keys,
    /// Probes for orchestrators
    Health,
    /// For the team's own backends (a `SERVER_API_KEYS` key): users, and the events feed
    Server,
}

/// A user as clients see it.
// Every `Option` field is answered as `null` when unset, so it carries
// `#[oai(nullable)]`; tests/api/docs.rs checks that no optional field lacks it.
#[derive(Object)]
#[oai(rename = "User")]
pub struct UserView {
    /// Our user id: opaque, stable per user.
    id: String,
    /// The user's openid in the mini program; `null` for a user who never used it.
    #[oai(nullable)]
    openid: Option<String>,
    /// Shared by every app bound to the Open Platform account; joins identities.
    #[oai(nullable)]
    unionid: Option<String>,
    #[oai(nullable)]
    phone_number: Option<String>,
    #[oai(nullable)]
    nickname: Option<String>,
    #[oai(nullable)]
    avatar_url: Option<String>,
    /// Every WeChat identity of the user, oldest first.
    identities: Vec<IdentityView>,
}

/// One WeChat app's id for the user.
#[derive(Object)]
#[oai(rename = "Identity")]
pub struct IdentityView {
    app: AppName,
    appid: String,
    openid: String,
}

/// The WeChat products a person signs in from.
#[derive(Enum, Clone, Copy)]
#[oai(rename = "App", rename_all = "snake_case")]
pub enum AppName {
    Miniprogram,
    OfficialAccount,
    Website,
}

impl From<App> for AppName {
    fn from(app: App) -> Self {
        match app {
            App::Miniprogram => Self::Miniprogram,
            App::OfficialAccount => Self::OfficialAccount,
            App::Website => Self::Website,
        }
    }
}

pub type Api = (
    auth::AuthApi,
    web::WebApi,
    me::MeApi,
    account::AccountApi,
    wechat::WeChatApi,
    qr_login::QrLoginApi,
    keys::KeysApi,
    health::HealthApi,
    server::ServerApi,
);

/// The OpenAPI service; the document it describes is the published contract.
pub fn service() -> OpenApiService<Api, ()> {
    OpenApiService::new(
        (
            auth::AuthApi,
            web::WebApi,
            me::MeApi,
            account::AccountApi,
            wechat::WeChatApi,
            qr_login::QrLoginApi,
            keys::KeysApi,
            health::HealthApi,
            server::ServerApi,
        ),
        "wechat-auth",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Signs WeChat users in — from the mini program (wx.login code), from Official \
         Account pages and from a website's QR login — as one user per person, and decrypts \
         the phone number and profile they share. Errors are RFC 9457 problem+json with a \
         stable `code`.",
    )
}

/// The OpenAPI document as YAML, exactly as served at `/api/openapi.yaml`.
pub fn spec_yaml() -> String {
    service().spec_yaml()
}
