//! Settings, read once at start from the environment (and an optional TOML file) and
//! validated into types; nothing else in the service reads the environment.

use std::{cell::RefCell, collections::HashMap, net::SocketAddr, path::Path, time::Duration};

use url::Url;

use crate::domain::{App, AppId};

/// A secret value: usable by the code that needs it, invisible to `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub bind_addr: SocketAddr,
    /// May carry a database password, so it is a secret too.
    pub database_url: Secret,
    pub wechat: WeChatSettings,
    /// The WeChat apps people sign in from; at least one is configured.
    pub apps: AppSettings,
    pub web: WebSettings,
    pub qr_login: QrLoginSettings,
    pub jwt: JwtSettings,
    pub sessions: SessionSettings,
    pub max_body_bytes: usize,
    /// Requests per minute per client IP on login and on refresh; `None` disables.
    pub rate_limit_per_min: Option<u32>,
    /// Peers whose `X-Forwarded-For` is believed (the load balancers in front of us).
    pub trusted_proxies: Vec<IpNet>,
    pub events: EventSettings,
    pub sms: SmsSettings,
    pub http: HttpSettings,
}

/// Phone verification by SMS (`SMS_*`).
#[derive(Debug, Clone)]
pub struct SmsSettings {
    /// `None`: the phone-binding endpoints answer 404 `app_not_configured`.
    pub provider: Option<SmsProvider>,
    pub code_ttl: Duration,
}

/// Who delivers the codes (`SMS_PROVIDER`).
#[derive(Debug, Clone)]
pub enum SmsProvider {
    /// Nothing is sent; `/sandbox/sms` shows the code. Only with `WECHAT_SANDBOX=true`.
    Sandbox,
    TencentCloud(TencentCloudSettings),
    /// The code is POSTed to this URL (`SMS_WEBHOOK_URL`); it may carry a token.
    Webhook(Secret),
}

/// Tencent Cloud SMS (`SMS_TENCENTCLOUD_*`).
#[derive(Debug, Clone)]
pub struct TencentCloudSettings {
    pub secret_id: String,
    pub secret_key: Secret,
    pub sdk_app_id: String,
    pub sign_name: String,
    pub template_id: String,
    pub region: String,
    pub endpoint: String,
}

/// How long each phase of a connection may take before it is closed, and how many
/// connections are served at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// From a request's first byte (or the connection's opening) to the end of its headers.
    pub header_timeout: Duration,
    /// From the end of the headers to the end of the body; a request without a body (a
    /// long-poll) is never cut by it.
    pub body_timeout: Duration,
    /// How long a connection with no request in flight is kept open.
    pub idle_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
}

/// An address range such as `10.0.0.0/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    network: std::net::IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(raw: &str) -> Option<Self> {
        let (address, prefix) = match raw.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix.parse::<u8>().ok()?)),
            None => (raw, None),
        };
        let network: std::net::IpAddr = address.parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { network, prefix })
    }

    pub fn contains(&self, address: std::net::IpAddr) -> bool {
        fn masked(bits: u128, prefix: u8, width: u8) -> u128 {
            let shift = u32::from(width - prefix);
            if shift >= 128 { 0 } else { bits >> shift }
        }
        match (self.network, address.to_canonical()) {
            (std::net::IpAddr::V4(net), std::net::IpAddr::V4(ip)) => {
                masked(u128::from(u32::from(net)), self.prefix, 32)
                    == masked(u128::from(u32::from(ip)), self.prefix, 32)
            }
            (std::net::IpAddr::V6(net), std::net::IpAddr::V6(ip)) => {
                masked(u128::from(net), self.prefix, 128)
                    == masked(u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct WeChatSettings {
    /// `None` in sandbox mode: the client is pointed at our own `/sandbox` once the
    /// listener's real address is known.
    pub api_base: Option<String>,
    pub sandbox: bool,
    /// Upper bound on one upstream operation, retries included.
    pub timeout: Duration,
    /// `None`: the watermark timestamp is not checked (the appid always is).
    pub watermark_max_age: Option<Duration>,
}

/// One WeChat app's credentials.
#[derive(Debug, Clone)]
pub struct AppCredentials {
    pub appid: AppId,
    pub secret: Secret,
}

#[derive(Debug, Clone, Default)]
pub struct AppSettings {
    pub miniprogram: Option<AppCredentials>,
    pub official_account: Option<AppCredentials>,
    pub website: Option<AppCredentials>,
}

impl AppSettings {
    pub fn get(&self, app: App) -> Option<&AppCredentials> {
        match app {
            App::Miniprogram => self.miniprogram.as_ref(),
            App::OfficialAccount => self.official_account.as_ref(),
            App::Website => self.website.as_ref(),
        }
    }

    /// Whether a browser app (Official Account or website) is configured.
    pub fn any_web(&self) -> bool {
        self.official_account.is_some() || self.website.is_some()
    }
}

/// Web sign-in: where browsers reach us and where they may be sent back to.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// `None` only in the sandbox, where it is `http://{BIND_ADDR}` once bound.
    pub public_base_url: Option<Url>,
    /// Empty only in the sandbox, where it is `{PUBLIC_BASE_URL}/` once bound.
    pub return_urls: Vec<Url>,
    /// `None` only in the sandbox, where it is `{PUBLIC_BASE_URL}/sandbox` once bound.
    pub open_base: Option<String>,
    pub ticket_ttl: Duration,
    pub oa_verify_file: Option<VerifyFile>,
}

/// Computer sign-in by the mini program.
#[derive(Debug, Clone)]
pub struct QrLoginSettings {
    /// The mini-program page the computer's code opens (`QR_LOGIN_PAGE`).
    pub page: String,
    pub ttl: Duration,
}

/// The Official Account console's domain check file, served at the root byte for byte.
#[derive(Debug, Clone)]
pub struct VerifyFile {
    /// `MP_verify_<token>.txt`
    pub name: String,
    pub contents: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub signing_key: SigningKey,
    /// PEM public keys (file contents) of retired signing keys: they still verify tokens
    /// and are still published in the JWKS until those tokens expire.
    pub retired_public_keys: Vec<KeyFile>,
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl: Duration,
}

/// The key that signs new access tokens (`JWT_ALGORITHM`).
#[derive(Debug, Clone)]
pub enum SigningKey {
    Hs256(Secret),
    Es256(KeyFile),
    EdDsa(KeyFile),
}

/// A key read from a file: where it came from (for error messages) and its PEM text.
#[derive(Debug, Clone)]
pub struct KeyFile {
    pub variable: &'static str,
    pub path: String,
    pub pem: Secret,
}

#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub refresh_token_ttl: Duration,
    /// `None`: a code posted twice is sent to WeChat twice (and the second gets 40163).
    pub login_replay_window: Option<Duration>,
    /// Seals stored session_keys (AES-256-GCM); the first entry seals, all of them open.
    pub session_key_encryption: SessionKeyEncryption,
    /// How long an authenticated session's user is remembered (`AUTH_CACHE_TTL_MS`):
    /// another instance's logout takes up to this long to be seen here. Zero disables.
    pub principal_cache_ttl: Duration,
}

/// 32-byte AEAD keys for session_keys at rest: the current one and retired ones that
/// still open values sealed before a rotation.
#[derive(Clone)]
pub struct SessionKeyEncryption {
    pub current: [u8; 32],
    pub retired: Vec<[u8; 32]>,
}

impl std::fmt::Debug for SessionKeyEncryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeyEncryption([redacted])")
    }
}

/// Events and the server API (contract v1.4).
#[derive(Debug, Clone)]
pub struct EventSettings {
    /// `None`: events are only kept for the feed.
    pub webhook: Option<crate::events::delivery::WebhookTarget>,
    /// How long the feed keeps events (`EVENT_RETENTION_SECS`).
    pub retention: Duration,
    /// `SERVER_API_KEYS`; empty: the server API answers 404 `app_not_configured`.
    pub server_api_keys: Vec<ServerApiKey>,
}

/// One of the team's backends: its name (for logs) and its key.
#[derive(Debug, Clone)]
pub struct ServerApiKey {
    pub name: String,
    pub key: Secret,
}

/// The shortest server API key: guessing one must be hopeless.
const MIN_SERVER_KEY_CHARS: usize = 32;

/// One line naming the setting at fault; never its value, which may be a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {variable}: {reason}")]
pub struct ConfigError {
    pub variable: String,
    pub reason: String,
}

impl ConfigError {
    fn new(variable: &str, reason: impl Into<String>) -> Self {
        Self {
            variable: variable.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Everything wrong with the configuration, found in one pass so that a newcomer fixes it
/// in one go rather than one variable per start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
    /// Nothing at all was configured: the sandbox is probably what the person wants.
    pub suggest_sandbox: bool,
}

impl ConfigErrors {
    /// The variables at fault, in the order they were checked.
    pub fn variables(&self) -> Vec<&str> {
        self.errors.iter().map(|e| e.variable.as_str()).collect()
    }
}

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut lines = self
            .errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>();
        if self.suggest_sandbox {
            lines.push(
                "hint: to try the service without WeChat credentials, set WECHAT_SANDBOX=true"
                    .to_owned(),
            );
        }
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for ConfigErrors {}

/// The appids the sandbox uses when none is configured.
pub const SANDBOX_APPID: &str = "wxsandbox0000000000";
pub const SANDBOX_OA_APPID: &str = "wxsandboxoa00000000";
pub const SANDBOX_WEB_APPID: &str = "wxsandboxweb0000000";
const MIN_JWT_SECRET_BYTES: usize = 32;
/// The sandbox's signing secret when none is set. Public on purpose: the sandbox is for
/// local development only. Being fixed, it keeps tokens and the session_keys sealed under
/// the key derived from it valid across restarts.
const SANDBOX_JWT_SECRET: &str = "wechat-auth-sandbox-only-not-a-secret-0000";
const DEFAULT_DATABASE_URL: &str = "sqlite://data/wechat-auth.db?mode=rwc";
const MP_VERIFY_FILE: &str = "WECHAT_OA_VERIFY_FILE";

/// The variables of one app's credentials, its sandbox placeholder, and whether it is the
/// one whose absence is reported when no app is configured at all.
struct AppVariables {
    appid: &'static str,
    secret: &'static str,
    sandbox_appid: &'static str,
}

const MINIPROGRAM: AppVariables = AppVariables {
    appid: "WECHAT_APPID",
    secret: "WECHAT_SECRET",
    sandbox_appid: SANDBOX_APPID,
};
const OFFICIAL_ACCOUNT: AppVariables = AppVariables {
    appid: "WECHAT_OA_APPID",
    secret: "WECHAT_OA_SECRET",
    sandbox_appid: SANDBOX_OA_APPID,
};
const WEBSITE: AppVariables = AppVariables {
    appid: "WECHAT_WEB_APPID",
    secret: "WECHAT_WEB_SECRET",
    sandbox_appid: SANDBOX_WEB_APPID,
};

impl Settings {
    /// Reads the process environment and, when `WECHAT_AUTH_CONFIG` names one, a TOML
    /// file with the same keys in lower case. The environment wins.
    pub fn load() -> Result<Self, ConfigErrors> {
        let env: HashMap<String, String> = std::env::vars().collect();
        let mut values = match env.get("WECHAT_AUTH_CONFIG") {
            Some(path) => read_toml_file(Path::new(path)).map_err(|error| ConfigErrors {
                errors: vec![error],
                suggest_sandbox: false,
            })?,
            None => HashMap::new(),
        };
        values.extend(env);
        Self::from_values(&values)
    }

    /// Builds settings from already-collected `VARIABLE => value` pairs, reporting every
    /// missing or invalid variable at once.
    pub fn from_values(values: &HashMap<String, String>) -> Result<Self, ConfigErrors> {
        let source = Source {
            values,
            errors: RefCell::new(Vec::new()),
        };
        let settings = source.settings();
        let errors = source.errors.into_inner();
        if errors.is_empty() {
            return Ok(settings);
        }
        let suggest_sandbox = !values
            .keys()
            .any(|key| key.starts_with("WECHAT_") || key.starts_with("JWT_"));
        Err(ConfigErrors {
            errors,
            suggest_sandbox,
        })
    }
}

/// The variables being read and every problem found so far. Each reader records its
/// problem and hands back a stand-in, so reading goes on and all problems are reported;
/// a `Settings` built with a stand-in is never returned.
struct Source<'a> {
    values: &'a HashMap<String, String>,
    errors: RefCell<Vec<ConfigError>>,
}

impl Source<'_> {
    fn settings(&self) -> Settings {
        let sandbox = self.bool("WECHAT_SANDBOX", false);
        let bind_addr = self.parse_with("BIND_ADDR", "127.0.0.1:8080", |raw| {
            raw.parse::<SocketAddr>()
                .map_err(|_| "must be an address such as 127.0.0.1:8080".to_owned())
        });
        let apps = self.apps(sandbox);
        let signing_key = self.signing_key(sandbox);
        let session_key_encryption = self.session_key_encryption(&signing_key);
        Settings {
            bind_addr: bind_addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            database_url: self.database_url(),
            wechat: WeChatSettings {
                api_base: if sandbox {
                    None
                } else {
                    self.base_url("WECHAT_API_BASE", "https://api.weixin.qq.com")
                },
                sandbox,
                timeout: Duration::from_millis(self.u64_in("WECHAT_TIMEOUT_MS", 5000, 100..=9000)),
                watermark_max_age: self.optional_secs(
                    "WECHAT_WATERMARK_MAX_AGE_SECS",
                    600,
                    u64::from(u32::MAX),
                ),
            },
            web: self.web(sandbox, &apps),
            qr_login: QrLoginSettings {
                page: self
                    .parse_with("QR_LOGIN_PAGE", "pages/qr-login/index", parse_page_path)
                    .unwrap_or_default(),
                ttl: Duration::from_secs(self.u64_in("QR_LOGIN_TTL_SECS", 120, 1..=3600)),
            },
            apps,
            jwt: JwtSettings {
                signing_key,
                retired_public_keys: self
                    .list("JWT_RETIRED_PUBLIC_KEY_FILES")
                    .into_iter()
                    .filter_map(|path| {
                        self.recorded(read_key_file("JWT_RETIRED_PUBLIC_KEY_FILES", path))
                    })
                    .collect(),
                issuer: self.get("JWT_ISSUER").unwrap_or("wechat-auth").to_owned(),
                audience: self
                    .get("JWT_AUDIENCE")
                    .unwrap_or("wechat-miniprogram")
                    .to_owned(),
                access_token_ttl: self.secs("ACCESS_TOKEN_TTL_SECS", 7200),
            },
            sessions: SessionSettings {
                refresh_token_ttl: self.secs("REFRESH_TOKEN_TTL_SECS", 2_592_000),
                login_replay_window: self.optional_secs("LOGIN_REPLAY_WINDOW_SECS", 300, 3600),
                session_key_encryption,
                principal_cache_ttl: Duration::from_millis(self.u64_in(
                    "AUTH_CACHE_TTL_MS",
                    1000,
                    0..=60_000,
                )),
            },
            rate_limit_per_min: match self.u64_in("RATE_LIMIT_PER_MIN", 600, 0..=1_000_000) {
                0 => None,
                per_min => Some(u32::try_from(per_min).unwrap_or(u32::MAX)),
            },
            trusted_proxies: self
                .list("TRUSTED_PROXIES")
                .into_iter()
                .filter_map(|entry| {
                    let net = IpNet::parse(entry);
                    if net.is_none() {
                        self.fail(
                            "TRUSTED_PROXIES",
                            format!("{entry} is not an address or CIDR range"),
                        );
                    }
                    net
                })
                .collect(),
            events: self.events(),
            sms: self.sms(sandbox),
            max_body_bytes: usize::try_from(self.u64_in(
                "MAX_BODY_BYTES",
                65536,
                1024..=16 * 1024 * 1024,
            ))
            .unwrap_or(usize::MAX),
            http: self.http(),
        }
    }

    fn http(&self) -> HttpSettings {
        let secs = |key, default| Duration::from_secs(self.u64_in(key, default, 1..=3600));
        HttpSettings {
            header_timeout: secs("HTTP_HEADER_TIMEOUT_SECS", 10),
            body_timeout: secs("HTTP_BODY_TIMEOUT_SECS", 30),
            idle_timeout: secs("HTTP_IDLE_TIMEOUT_SECS", 60),
            max_connections: usize::try_from(self.u64_in("MAX_CONNECTIONS", 20_000, 1..=1_000_000))
                .unwrap_or(usize::MAX),
        }
    }

    fn events(&self) -> EventSettings {
        let retry_base =
            Duration::from_millis(self.u64_in("WEBHOOK_RETRY_BASE_MS", 1000, 1..=600_000));
        let url = self.get("WEBHOOK_URL").and_then(|raw| {
            let parsed = Url::parse(raw)
                .ok()
                .filter(|url| matches!(url.scheme(), "http" | "https"));
            if parsed.is_none() {
                self.fail("WEBHOOK_URL", "must be an http(s) URL");
            }
            parsed
        });
        let secret = self.get("WEBHOOK_SECRET").and_then(|raw| {
            self.recorded(
                crate::events::WebhookSecret::parse(raw)
                    .map_err(|reason| ConfigError::new("WEBHOOK_SECRET", reason)),
            )
        });
        if url.is_some() && secret.is_none() && self.get("WEBHOOK_SECRET").is_none() {
            self.fail("WEBHOOK_SECRET", "is required with WEBHOOK_URL");
        }
        let mut server_api_keys: Vec<ServerApiKey> = Vec::new();
        for entry in self.list("SERVER_API_KEYS") {
            // The key is never echoed: only the entry's name, or its position.
            let Some((name, key)) = entry.split_once(':') else {
                self.fail(
                    "SERVER_API_KEYS",
                    format!("entry {} is not name:key", server_api_keys.len() + 1),
                );
                continue;
            };
            let (name, key) = (name.trim(), key.trim());
            if name.is_empty() || key.chars().count() < MIN_SERVER_KEY_CHARS {
                self.fail(
                    "SERVER_API_KEYS",
                    format!(
                        "entry {name:?} needs a name and a key of at least {MIN_SERVER_KEY_CHARS} characters"
                    ),
                );
                continue;
            }
            server_api_keys.push(ServerApiKey {
                name: name.to_owned(),
                key: Secret::new(key),
            });
        }
        EventSettings {
            webhook: url
                .zip(secret)
                .map(|(url, secret)| crate::events::delivery::WebhookTarget {
                    url,
                    secret,
                    retry_base,
                }),
            retention: self.secs("EVENT_RETENTION_SECS", 604_800),
            server_api_keys,
        }
    }

    /// Each app is configured by its appid and secret together. With no app at all the
    /// mini program's variables are the ones named, as they were before web sign-in.
    fn apps(&self, sandbox: bool) -> AppSettings {
        let apps = AppSettings {
            miniprogram: self.app(&MINIPROGRAM, sandbox),
            official_account: self.app(&OFFICIAL_ACCOUNT, sandbox),
            website: self.app(&WEBSITE, sandbox),
        };
        let any_named = [MINIPROGRAM, OFFICIAL_ACCOUNT, WEBSITE]
            .iter()
            .any(|app| self.get(app.appid).is_some() || self.get(app.secret).is_some());
        if !sandbox && !any_named {
            self.fail(
                MINIPROGRAM.appid,
                "is required (or configure WECHAT_OA_APPID or WECHAT_WEB_APPID)",
            );
            self.fail(MINIPROGRAM.secret, "is required");
        }
        apps
    }

    fn app(&self, variables: &AppVariables, sandbox: bool) -> Option<AppCredentials> {
        let appid = self.get(variables.appid);
        let secret = self.get(variables.secret);
        let (appid, secret) = match (appid, secret) {
            (Some(appid), Some(secret)) => (appid, Secret::new(secret)),
            (None, None) if sandbox => (variables.sandbox_appid, Secret::new("sandbox-secret")),
            (None, None) => return None,
            (Some(_), None) => {
                self.fail(
                    variables.secret,
                    format!("is required with {}", variables.appid),
                );
                return None;
            }
            (None, Some(_)) => {
                self.fail(
                    variables.appid,
                    format!("is required with {}", variables.secret),
                );
                return None;
            }
        };
        let appid =
            self.recorded(AppId::parse(appid).map_err(|e| ConfigError::new(variables.appid, e.0)))?;
        Some(AppCredentials { appid, secret })
    }

    fn web(&self, sandbox: bool, apps: &AppSettings) -> WebSettings {
        let needed = apps.any_web() && !sandbox;
        let public_base_url = match self.get("PUBLIC_BASE_URL") {
            Some(raw) => self.recorded(parse_public_base_url(raw)),
            None if needed => {
                self.fail(
                    "PUBLIC_BASE_URL",
                    "is required when WECHAT_OA_APPID or WECHAT_WEB_APPID is set",
                );
                None
            }
            None => None,
        };
        let return_urls: Vec<Url> = self
            .list("WEB_RETURN_URLS")
            .into_iter()
            .filter_map(|raw| self.recorded(parse_return_url(raw)))
            .collect();
        if return_urls.is_empty() && self.get("WEB_RETURN_URLS").is_none() && needed {
            self.fail(
                "WEB_RETURN_URLS",
                "is required when WECHAT_OA_APPID or WECHAT_WEB_APPID is set",
            );
        }
        let open_base = match self.get("WECHAT_OPEN_BASE") {
            Some(raw) => self.base_url("WECHAT_OPEN_BASE", raw),
            None if sandbox => None,
            None => Some("https://open.weixin.qq.com".to_owned()),
        };
        WebSettings {
            public_base_url,
            return_urls,
            open_base,
            ticket_ttl: self.secs("WEB_TICKET_TTL_SECS", 60),
            oa_verify_file: self
                .get(MP_VERIFY_FILE)
                .and_then(|path| self.recorded(read_verify_file(path))),
        }
    }

    fn sms(&self, sandbox: bool) -> SmsSettings {
        let provider = match self.get("SMS_PROVIDER") {
            None if sandbox => Some(SmsProvider::Sandbox),
            None => None,
            Some("sandbox") if sandbox => Some(SmsProvider::Sandbox),
            Some("sandbox") => {
                self.fail("SMS_PROVIDER", "sandbox needs WECHAT_SANDBOX=true");
                None
            }
            Some("tencentcloud") => self.tencentcloud_sms().map(SmsProvider::TencentCloud),
            Some("webhook") => match self.get("SMS_WEBHOOK_URL") {
                Some(raw) => self
                    .recorded(parse_base_url("SMS_WEBHOOK_URL", raw))
                    .map(|_| SmsProvider::Webhook(Secret::new(raw))),
                None => {
                    self.fail("SMS_WEBHOOK_URL", "is required when SMS_PROVIDER=webhook");
                    None
                }
            },
            Some(_) => {
                self.fail("SMS_PROVIDER", "must be tencentcloud or webhook");
                None
            }
        };
        SmsSettings {
            provider,
            code_ttl: self.secs("SMS_CODE_TTL_SECS", 300),
        }
    }

    fn tencentcloud_sms(&self) -> Option<TencentCloudSettings> {
        let required = |key: &str| {
            let value = self.get(key);
            if value.is_none() {
                self.fail(key, "is required when SMS_PROVIDER=tencentcloud");
            }
            value.map(str::to_owned)
        };
        let secret_id = required("SMS_TENCENTCLOUD_SECRET_ID");
        let secret_key = required("SMS_TENCENTCLOUD_SECRET_KEY");
        let sdk_app_id = required("SMS_TENCENTCLOUD_SDK_APP_ID");
        let sign_name = required("SMS_TENCENTCLOUD_SIGN_NAME");
        let template_id = required("SMS_TENCENTCLOUD_TEMPLATE_ID");
        let endpoint = self.base_url(
            "SMS_TENCENTCLOUD_ENDPOINT",
            "https://sms.tencentcloudapi.com",
        );
        Some(TencentCloudSettings {
            secret_id: secret_id?,
            secret_key: Secret::new(secret_key?),
            sdk_app_id: sdk_app_id?,
            sign_name: sign_name?,
            template_id: template_id?,
            region: self
                .get("SMS_TENCENTCLOUD_REGION")
                .unwrap_or("ap-guangzhou")
                .to_owned(),
            endpoint: endpoint?,
        })
    }

    fn signing_key(&self, sandbox: bool) -> SigningKey {
        let placeholder = || SigningKey::Hs256(Secret::new(""));
        match self.get("JWT_ALGORITHM").unwrap_or("HS256") {
            "HS256" => match self.get("JWT_SECRET") {
                Some(raw) if raw.len() >= MIN_JWT_SECRET_BYTES => {
                    SigningKey::Hs256(Secret::new(raw))
                }
                Some(_) => {
                    self.fail(
                        "JWT_SECRET",
                        format!("must be at least {MIN_JWT_SECRET_BYTES} bytes"),
                    );
                    placeholder()
                }
                None if sandbox => SigningKey::Hs256(Secret::new(SANDBOX_JWT_SECRET)),
                None => {
                    self.fail("JWT_SECRET", "is required");
                    placeholder()
                }
            },
            "ES256" => self
                .key_file("JWT_PRIVATE_KEY_FILE")
                .map_or_else(placeholder, SigningKey::Es256),
            "EdDSA" => self
                .key_file("JWT_PRIVATE_KEY_FILE")
                .map_or_else(placeholder, SigningKey::EdDsa),
            _ => {
                self.fail("JWT_ALGORITHM", "must be HS256, ES256 or EdDSA");
                placeholder()
            }
        }
    }

    fn session_key_encryption(&self, signing_key: &SigningKey) -> SessionKeyEncryption {
        let current = match (self.get("SESSION_KEY_ENCRYPTION_KEY"), signing_key) {
            (Some(raw), _) => self.recorded(parse_aead_key("SESSION_KEY_ENCRYPTION_KEY", raw)),
            (None, SigningKey::Hs256(secret)) => Some(derive_aead_key(secret)),
            (None, _) => {
                self.fail(
                    "SESSION_KEY_ENCRYPTION_KEY",
                    "is required when JWT_ALGORITHM is not HS256",
                );
                None
            }
        };
        SessionKeyEncryption {
            current: current.unwrap_or_default(),
            retired: self
                .list("SESSION_KEY_RETIRED_ENCRYPTION_KEYS")
                .into_iter()
                .filter_map(|key| {
                    self.recorded(parse_aead_key("SESSION_KEY_RETIRED_ENCRYPTION_KEYS", key))
                })
                .collect(),
        }
    }

    /// The scheme is checked here so that a typo fails at start with the variable's name;
    /// the URL itself is never printed, as it may hold a password.
    fn database_url(&self) -> Secret {
        let raw = self.get("DATABASE_URL").unwrap_or(DEFAULT_DATABASE_URL);
        let scheme = raw
            .split_once(':')
            .map(|(scheme, _)| scheme)
            .unwrap_or_default();
        if !matches!(
            scheme,
            "sqlite" | "postgres" | "postgresql" | "mysql" | "mariadb"
        ) {
            let shown = if scheme.len() <= 16
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+')
            {
                format!("`{scheme}`")
            } else {
                "an unknown one".to_owned()
            };
            self.fail(
                "DATABASE_URL",
                format!("the scheme is {shown}; use sqlite://, postgres:// or mysql://"),
            );
        }
        Secret::new(raw.replacen("mariadb://", "mysql://", 1))
    }

    /// An empty variable counts as unset, as shells and compose files tend to produce them.
    fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    fn fail(&self, key: &str, reason: impl Into<String>) {
        self.errors.borrow_mut().push(ConfigError::new(key, reason));
    }

    fn recorded<T>(&self, result: Result<T, ConfigError>) -> Option<T> {
        result
            .map_err(|error| self.errors.borrow_mut().push(error))
            .ok()
    }

    /// The comma-separated entries of a list variable.
    fn list(&self, key: &str) -> Vec<&str> {
        self.get(key)
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn parse_with<T>(
        &self,
        key: &str,
        default: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        self.recorded(
            parse(self.get(key).unwrap_or(default)).map_err(|reason| ConfigError::new(key, reason)),
        )
    }

    fn bool(&self, key: &str, default: bool) -> bool {
        match self.get(key).map(str::to_ascii_lowercase).as_deref() {
            None => default,
            Some("true" | "1" | "yes" | "on") => true,
            Some("false" | "0" | "no" | "off") => false,
            Some(_) => {
                self.fail(key, "must be true or false");
                default
            }
        }
    }

    fn u64_in(&self, key: &str, default: u64, range: std::ops::RangeInclusive<u64>) -> u64 {
        let Some(raw) = self.get(key) else {
            return default;
        };
        match raw.parse::<u64>() {
            Ok(value) if range.contains(&value) => value,
            Ok(_) => {
                self.fail(
                    key,
                    format!("must be between {} and {}", range.start(), range.end()),
                );
                default
            }
            Err(_) => {
                self.fail(key, "must be a whole number");
                default
            }
        }
    }

    /// A `*_TTL_SECS` setting: any whole number of seconds ≥ 1.
    fn secs(&self, key: &str, default: u64) -> Duration {
        Duration::from_secs(self.u64_in(key, default, 1..=u64::from(u32::MAX)))
    }

    /// A setting where 0 switches the feature off.
    fn optional_secs(&self, key: &str, default: u64, max: u64) -> Option<Duration> {
        match self.u64_in(key, default, 0..=max) {
            0 => None,
            secs => Some(Duration::from_secs(secs)),
        }
    }

    fn base_url(&self, key: &str, raw_or_default: &str) -> Option<String> {
        self.recorded(parse_base_url(key, self.get(key).unwrap_or(raw_or_default)))
    }

    fn key_file(&self, key: &'static str) -> Option<KeyFile> {
        match self.get(key) {
            Some(path) => self.recorded(read_key_file(key, path)),
            None => {
                self.fail(key, "is required for this JWT_ALGORITHM");
                None
            }
        }
    }
}

/// A mini-program page path as WeChat takes it: `pages/x/index`, no leading slash, no query.
fn parse_page_path(raw: &str) -> Result<String, String> {
    let well_formed = !raw.starts_with('/')
        && raw.len() <= 256
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'.'));
    if well_formed {
        Ok(raw.to_owned())
    } else {
        Err("must be a mini-program page path such as pages/qr-login/index (no leading slash, no query)".to_owned())
    }
}

fn parse_public_base_url(raw: &str) -> Result<Url, ConfigError> {
    const VARIABLE: &str = "PUBLIC_BASE_URL";
    let url = Url::parse(raw)
        .map_err(|_| ConfigError::new(VARIABLE, "must be an absolute http(s) URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::new(
            VARIABLE,
            "must be an absolute http(s) URL",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(ConfigError::new(
            VARIABLE,
            "must be a plain base URL without query, fragment or credentials",
        ));
    }
    Ok(url)
}

fn parse_return_url(raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw).map_err(|_| {
        ConfigError::new(
            "WEB_RETURN_URLS",
            "every entry must be an absolute http(s) URL",
        )
    })?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(ConfigError::new(
            "WEB_RETURN_URLS",
            "every entry must be an absolute http(s) URL without credentials",
        ));
    }
    Ok(url)
}

fn read_verify_file(path: &str) -> Result<VerifyFile, ConfigError> {
    let name = Path::new(path)
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default();
    let token = name
        .strip_prefix("MP_verify_")
        .and_then(|rest| rest.strip_suffix(".txt"))
        .unwrap_or_default();
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ConfigError::new(
            MP_VERIFY_FILE,
            "the file must be named MP_verify_<letters and digits>.txt",
        ));
    }
    let contents = std::fs::read(path)
        .map_err(|e| ConfigError::new(MP_VERIFY_FILE, format!("cannot read {path}: {e}")))?;
    Ok(VerifyFile {
        name: name.to_owned(),
        contents,
    })
}

fn read_key_file(variable: &'static str, path: &str) -> Result<KeyFile, ConfigError> {
    let pem = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(variable, format!("cannot read {path}: {e}")))?;
    Ok(KeyFile {
        variable,
        path: path.to_owned(),
        pem: Secret::new(pem),
    })
}

fn parse_aead_key(variable: &str, raw: &str) -> Result<[u8; 32], ConfigError> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(raw)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| ConfigError::new(variable, "must be base64 of exactly 32 bytes"))
}

/// Under HS256 the session_key encryption key may be derived from the JWT secret, so a
/// deployment has one secret to manage. HKDF keeps the two keys independent.
fn derive_aead_key(jwt_secret: &Secret) -> [u8; 32] {
    let mut key = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(b"wechat-auth"), jwt_secret.expose().as_bytes())
        .expand(b"session-key-encryption v1", &mut key)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    key
}

fn parse_base_url(key: &str, raw: &str) -> Result<String, ConfigError> {
    let url = reqwest::Url::parse(raw)
        .map_err(|_| ConfigError::new(key, "must be an absolute http(s) URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::new(key, "must be an absolute http(s) URL"));
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

fn read_toml_file(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    const VARIABLE: &str = "WECHAT_AUTH_CONFIG";
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(VARIABLE, format!("cannot read {}: {e}", path.display())))?;
    let table: toml::Table = text
        .parse()
        .map_err(|_| ConfigError::new(VARIABLE, format!("{} is not valid TOML", path.display())))?;
    table
        .into_iter()
        .map(|(key, value)| {
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => {
                    return Err(ConfigError::new(
                        VARIABLE,
                        format!("key {key} must be a string, integer or boolean"),
                    ));
                }
            };
            Ok((key.to_ascii_uppercase(), value))
        })
        .collect()
}

/// `DATABASE_URL` alone (environment, then the `WECHAT_AUTH_CONFIG` file), for
/// `wechat-auth migrate`, which needs nothing else.
pub fn database_url_from_env() -> Result<Secret, ConfigErrors> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let mut values = match env.get("WECHAT_AUTH_CONFIG") {
        Some(path) => read_toml_file(Path::new(path)).map_err(|error| ConfigErrors {
            errors: vec![error],
            suggest_sandbox: false,
        })?,
        None => HashMap::new(),
    };
    values.extend(env);
    let source = Source {
        values: &values,
        errors: RefCell::new(Vec::new()),
    };
    let url = source.database_url();
    let errors = source.errors.into_inner();
    if errors.is_empty() {
        Ok(url)
    } else {
        Err(ConfigErrors {
            errors,
            suggest_sandbox: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn production() -> Vec<(&'static str, &'static str)> {
        vec![
            ("WECHAT_APPID", "wx1234567890abcdef"),
            ("WECHAT_SECRET", "appsecret-value"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ]
    }

    #[test]
    fn defaults_follow_the_contract() {
        let settings = Settings::from_values(&values(&production())).unwrap();
        assert_eq!(settings.bind_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(
            settings.database_url.expose(),
            "sqlite://data/wechat-auth.db?mode=rwc"
        );
        assert_eq!(
            settings.wechat.api_base.as_deref(),
            Some("https://api.weixin.qq.com")
        );
        assert_eq!(
            settings.wechat.watermark_max_age,
            Some(Duration::from_secs(600))
        );
        assert_eq!(settings.jwt.issuer, "wechat-auth");
        assert_eq!(settings.jwt.audience, "wechat-miniprogram");
        assert_eq!(settings.jwt.access_token_ttl, Duration::from_secs(7200));
        assert_eq!(
            settings.sessions.refresh_token_ttl,
            Duration::from_secs(2_592_000)
        );
        assert_eq!(
            settings.sessions.login_replay_window,
            Some(Duration::from_secs(300))
        );
        assert_eq!(settings.rate_limit_per_min, Some(600));
        assert_eq!(settings.max_body_bytes, 65536);
    }

    #[test]
    fn asymmetric_algorithms_need_a_key_file_and_an_explicit_encryption_key() {
        let mut pairs = production();
        pairs.push(("JWT_ALGORITHM", "ES256"));
        assert_eq!(
            Settings::from_values(&values(&pairs))
                .unwrap_err()
                .variables(),
            ["JWT_PRIVATE_KEY_FILE"]
        );
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\n").unwrap();
        let key = key.display().to_string();
        pairs.push(("JWT_PRIVATE_KEY_FILE", &key));
        assert_eq!(
            Settings::from_values(&values(&pairs))
                .unwrap_err()
                .variables(),
            ["SESSION_KEY_ENCRYPTION_KEY"]
        );
        pairs.push((
            "SESSION_KEY_ENCRYPTION_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ));
        assert!(Settings::from_values(&values(&pairs)).is_ok());
    }

    #[test]
    fn the_derived_encryption_key_depends_on_the_jwt_secret() {
        let a = derive_aead_key(&Secret::new("0123456789abcdef0123456789abcdef"));
        let b = derive_aead_key(&Secret::new("0123456789abcdef0123456789abcdeX"));
        assert_ne!(a, b);
        assert_ne!(&a[..], "0123456789abcdef0123456789abcdef".as_bytes());
    }

    #[test]
    fn sms_providers_are_configured_by_their_variables() {
        let settings = Settings::from_values(&values(&production())).unwrap();
        assert!(settings.sms.provider.is_none());
        assert_eq!(settings.sms.code_ttl, Duration::from_secs(300));
        let sandbox = Settings::from_values(&values(&[("WECHAT_SANDBOX", "true")])).unwrap();
        assert!(matches!(sandbox.sms.provider, Some(SmsProvider::Sandbox)));

        let mut pairs = production();
        pairs.extend([
            ("SMS_PROVIDER", "tencentcloud"),
            ("SMS_TENCENTCLOUD_SECRET_ID", "AKIDexample"),
            ("SMS_TENCENTCLOUD_SECRET_KEY", "tc-secret-key-value"),
            ("SMS_TENCENTCLOUD_SDK_APP_ID", "1400000001"),
            ("SMS_TENCENTCLOUD_SIGN_NAME", "签名"),
            ("SMS_TENCENTCLOUD_TEMPLATE_ID", "100001"),
        ]);
        let settings = Settings::from_values(&values(&pairs)).unwrap();
        let Some(SmsProvider::TencentCloud(tencent)) = &settings.sms.provider else {
            panic!("tencentcloud expected");
        };
        assert_eq!(tencent.region, "ap-guangzhou");
        assert_eq!(tencent.endpoint, "https://sms.tencentcloudapi.com");
        assert!(!format!("{settings:?}").contains("tc-secret-key-value"));
    }

    #[test]
    fn a_half_configured_sms_provider_names_what_is_missing() {
        let mut pairs = production();
        pairs.extend([
            ("SMS_PROVIDER", "tencentcloud"),
            ("SMS_TENCENTCLOUD_SECRET_ID", "AKIDexample"),
        ]);
        let err = Settings::from_values(&values(&pairs)).unwrap_err();
        assert_eq!(
            err.variables(),
            [
                "SMS_TENCENTCLOUD_SECRET_KEY",
                "SMS_TENCENTCLOUD_SDK_APP_ID",
                "SMS_TENCENTCLOUD_SIGN_NAME",
                "SMS_TENCENTCLOUD_TEMPLATE_ID",
            ]
        );
        for (provider, named) in [
            ("webhook", "SMS_WEBHOOK_URL"),
            ("sandbox", "SMS_PROVIDER"),
            ("aliyun", "SMS_PROVIDER"),
        ] {
            let mut pairs = production();
            pairs.push(("SMS_PROVIDER", provider));
            let err = Settings::from_values(&values(&pairs)).unwrap_err();
            assert_eq!(err.variables(), [named], "{provider}");
        }
        let mut pairs = production();
        pairs.extend([("SMS_PROVIDER", "webhook"), ("SMS_WEBHOOK_URL", "ftp://x")]);
        let err = Settings::from_values(&values(&pairs)).unwrap_err();
        assert_eq!(err.variables(), ["SMS_WEBHOOK_URL"]);
    }

    #[test]
    fn missing_required_variables_are_named() {
        for missing in ["WECHAT_APPID", "WECHAT_SECRET", "JWT_SECRET"] {
            let pairs: Vec<_> = production()
                .into_iter()
                .filter(|(k, _)| *k != missing)
                .collect();
            let err = Settings::from_values(&values(&pairs)).unwrap_err();
            assert_eq!(err.variables(), [missing]);
        }
    }

    #[test]
    fn a_short_jwt_secret_is_refused_without_echoing_it() {
        let mut pairs = production();
        pairs.push(("JWT_SECRET", "short-but-secret"));
        let err = Settings::from_values(&values(&pairs)).unwrap_err();
        assert_eq!(err.variables(), ["JWT_SECRET"]);
        assert!(!err.to_string().contains("short-but-secret"));
    }

    #[test]
    fn malformed_numbers_and_addresses_are_named() {
        for (key, bad) in [
            ("BIND_ADDR", "localhost"),
            ("ACCESS_TOKEN_TTL_SECS", "two hours"),
            ("ACCESS_TOKEN_TTL_SECS", "0"),
            ("WECHAT_WATERMARK_MAX_AGE_SECS", "-1"),
            ("WECHAT_SANDBOX", "maybe"),
            ("WECHAT_API_BASE", "ftp://example.com"),
            ("JWT_ALGORITHM", "RS256"),
            ("SESSION_KEY_ENCRYPTION_KEY", "c2hvcnQ="),
            ("LOGIN_REPLAY_WINDOW_SECS", "soon"),
            ("RATE_LIMIT_PER_MIN", "-5"),
            ("REFRESH_TOKEN_TTL_SECS", "0"),
            ("WEB_TICKET_TTL_SECS", "0"),
            ("DATABASE_URL", "redis://admin:S3cret@cache:6379"),
            ("TRUSTED_PROXIES", "10.0.0.0/8,proxy.internal"),
        ] {
            let mut pairs = production();
            pairs.push((key, bad));
            assert_eq!(
                Settings::from_values(&values(&pairs))
                    .unwrap_err()
                    .variables(),
                [key]
            );
        }
    }

    #[test]
    fn trusted_proxy_ranges_match_their_addresses() {
        let net = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        let single = IpNet::parse("127.0.0.1").unwrap();
        assert!(single.contains("127.0.0.1".parse().unwrap()));
        assert!(!single.contains("127.0.0.2".parse().unwrap()));
        assert!(
            IpNet::parse("::1/128")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert!(
            IpNet::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(IpNet::parse("10.0.0.0/33").is_none());
        assert!(IpNet::parse("nonsense").is_none());
    }

    #[test]
    fn zero_watermark_age_disables_the_age_check() {
        let mut pairs = production();
        pairs.push(("WECHAT_WATERMARK_MAX_AGE_SECS", "0"));
        assert_eq!(
            Settings::from_values(&values(&pairs))
                .unwrap()
                .wechat
                .watermark_max_age,
            None
        );
    }

    #[test]
    fn sandbox_needs_no_credentials() {
        let settings = Settings::from_values(&values(&[("WECHAT_SANDBOX", "true")])).unwrap();
        assert!(settings.wechat.sandbox);
        let apps = &settings.apps;
        assert_eq!(
            apps.miniprogram.as_ref().unwrap().appid.as_str(),
            SANDBOX_APPID
        );
        assert_eq!(
            apps.official_account.as_ref().unwrap().appid.as_str(),
            SANDBOX_OA_APPID
        );
        assert_eq!(
            apps.website.as_ref().unwrap().appid.as_str(),
            SANDBOX_WEB_APPID
        );
        assert!(
            matches!(&settings.jwt.signing_key, SigningKey::Hs256(secret) if secret.expose().len() >= MIN_JWT_SECRET_BYTES)
        );
    }

    #[test]
    fn the_sandbox_keeps_its_keys_across_restarts() {
        let sandbox = values(&[("WECHAT_SANDBOX", "true")]);
        let first = Settings::from_values(&sandbox).unwrap();
        let second = Settings::from_values(&sandbox).unwrap();
        assert_eq!(
            first.sessions.session_key_encryption.current,
            second.sessions.session_key_encryption.current
        );
    }

    #[test]
    fn debug_output_hides_secrets() {
        let settings = Settings::from_values(&values(&production())).unwrap();
        let printed = format!("{settings:?}");
        assert!(!printed.contains("appsecret-value"));
        assert!(!printed.contains("0123456789abcdef0123456789abcdef"));
    }

    #[test]
    fn the_toml_file_fills_in_and_the_environment_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wechat-auth.toml");
        std::fs::write(
            &path,
            "wechat_appid = \"wxfromfile\"\naccess_token_ttl_secs = 60\n",
        )
        .unwrap();
        let mut values = read_toml_file(&path).unwrap();
        values.extend(super::tests::values(&[
            ("WECHAT_SECRET", "s"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("ACCESS_TOKEN_TTL_SECS", "120"),
        ]));
        let settings = Settings::from_values(&values).unwrap();
        assert_eq!(
            settings.apps.miniprogram.unwrap().appid.as_str(),
            "wxfromfile"
        );
        assert_eq!(settings.jwt.access_token_ttl, Duration::from_secs(120));
    }

    #[test]
    fn a_half_configured_app_names_the_missing_half() {
        for (given, missing) in [
            (("WECHAT_OA_APPID", "wxoa"), "WECHAT_OA_SECRET"),
            (("WECHAT_OA_SECRET", "s"), "WECHAT_OA_APPID"),
            (("WECHAT_WEB_APPID", "wxweb"), "WECHAT_WEB_SECRET"),
            (("WECHAT_WEB_SECRET", "s"), "WECHAT_WEB_APPID"),
        ] {
            let mut pairs = production();
            pairs.push(given);
            pairs.push(("PUBLIC_BASE_URL", "https://auth.example.com"));
            pairs.push(("WEB_RETURN_URLS", "https://app.example.com/"));
            let err = Settings::from_values(&values(&pairs)).unwrap_err();
            assert_eq!(err.variables(), [missing]);
        }
    }

    #[test]
    fn web_apps_alone_are_enough_and_need_where_browsers_go() {
        let pairs = vec![
            ("WECHAT_OA_APPID", "wxoa1234567890abcd"),
            ("WECHAT_OA_SECRET", "oa-secret"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ];
        let err = Settings::from_values(&values(&pairs)).unwrap_err();
        assert_eq!(err.variables(), ["PUBLIC_BASE_URL", "WEB_RETURN_URLS"]);
        let mut pairs = pairs;
        pairs.push(("PUBLIC_BASE_URL", "https://auth.example.com"));
        pairs.push((
            "WEB_RETURN_URLS",
            "https://app.example.com/, https://m.example.com/h5",
        ));
        let settings = Settings::from_values(&values(&pairs)).unwrap();
        assert!(settings.apps.miniprogram.is_none());
        assert_eq!(settings.web.return_urls.len(), 2);
        assert_eq!(
            settings.web.open_base.as_deref(),
            Some("https://open.weixin.qq.com")
        );
        assert_eq!(settings.web.ticket_ttl, Duration::from_secs(60));
    }

    #[test]
    fn every_problem_is_reported_in_one_go() {
        let err = Settings::from_values(&values(&[
            ("JWT_SECRET", "short"),
            ("BIND_ADDR", "nowhere"),
            ("REFRESH_TOKEN_TTL_SECS", "x"),
        ]))
        .unwrap_err();
        assert_eq!(
            err.variables(),
            [
                "BIND_ADDR",
                "WECHAT_APPID",
                "WECHAT_SECRET",
                "JWT_SECRET",
                "REFRESH_TOKEN_TTL_SECS"
            ]
        );
        assert!(!err.suggest_sandbox);
        let nothing = Settings::from_values(&HashMap::new()).unwrap_err();
        assert!(nothing.suggest_sandbox);
        assert!(nothing.to_string().contains("WECHAT_SANDBOX=true"));
    }

    #[test]
    fn short_lifetimes_are_accepted_for_tests() {
        let mut pairs = production();
        pairs.push(("REFRESH_TOKEN_TTL_SECS", "1"));
        pairs.push(("WEB_TICKET_TTL_SECS", "1"));
        let settings = Settings::from_values(&values(&pairs)).unwrap();
        assert_eq!(settings.sessions.refresh_token_ttl, Duration::from_secs(1));
    }

    #[test]
    fn bad_web_settings_are_named() {
        for (key, bad) in [
            ("PUBLIC_BASE_URL", "auth.example.com"),
            ("PUBLIC_BASE_URL", "https://auth.example.com/?x=1"),
            ("WEB_RETURN_URLS", "https://ok.example.com/,not a url"),
            ("WEB_RETURN_URLS", "https://user:pw@ok.example.com/"),
            ("WECHAT_OPEN_BASE", "ftp://open.example.com"),
            ("WECHAT_OA_VERIFY_FILE", "/tmp/verify.txt"),
        ] {
            let mut pairs = production();
            pairs.push((key, bad));
            assert_eq!(
                Settings::from_values(&values(&pairs))
                    .unwrap_err()
                    .variables(),
                [key],
                "{key}={bad}"
            );
        }
    }

    #[test]
    fn the_sandbox_configures_every_app_and_derives_the_web_settings_at_start() {
        let settings = Settings::from_values(&values(&[("WECHAT_SANDBOX", "true")])).unwrap();
        assert!(settings.apps.official_account.is_some() && settings.apps.website.is_some());
        assert!(settings.web.public_base_url.is_none());
        assert!(settings.web.open_base.is_none());
    }

    #[test]
    fn event_settings_default_to_the_contract_and_name_their_problems() {
        let settings = Settings::from_values(&values(&production())).unwrap();
        assert!(settings.events.webhook.is_none());
        assert!(settings.events.server_api_keys.is_empty());
        assert_eq!(settings.events.retention, Duration::from_secs(604_800));

        let key = "k3y-0123456789abcdef0123456789abcdef";
        let mut pairs = production();
        pairs.extend([
            ("WEBHOOK_URL", "https://hooks.example.test/wechat-auth"),
            ("WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            ("SERVER_API_KEYS", "orders:k3y-0123456789abcdef0123456789abcdef, pc : k3y-0123456789abcdef0123456789abcdeF"),
        ]);
        let settings = Settings::from_values(&values(&pairs)).unwrap();
        let webhook = settings.events.webhook.unwrap();
        assert_eq!(webhook.retry_base, Duration::from_secs(1));
        assert_eq!(settings.events.server_api_keys.len(), 2);
        assert_eq!(settings.events.server_api_keys[1].name, "pc");
        assert_eq!(settings.events.server_api_keys[0].key.expose(), key);

        let mut pairs = production();
        pairs.extend([
            ("WEBHOOK_URL", "https://hooks.example.test/"),
            ("SERVER_API_KEYS", "orders:tiny-key-123,nocolon"),
            ("WEBHOOK_RETRY_BASE_MS", "0"),
        ]);
        let errors = Settings::from_values(&values(&pairs)).unwrap_err();
        assert_eq!(
            errors.variables(),
            [
                "WEBHOOK_RETRY_BASE_MS",
                "WEBHOOK_SECRET",
                "SERVER_API_KEYS",
                "SERVER_API_KEYS"
            ]
        );
        let text = errors.to_string();
        assert!(
            !text.contains("tiny-key-123"),
            "keys are never echoed: {text}"
        );

        let mut pairs = production();
        pairs.extend([
            ("WEBHOOK_URL", "ftp://hooks.example.test/"),
            ("WEBHOOK_SECRET", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ]);
        let errors = Settings::from_values(&values(&pairs)).unwrap_err();
        assert_eq!(errors.variables(), ["WEBHOOK_URL", "WEBHOOK_SECRET"]);
    }

    #[test]
    fn connection_limits_have_sane_defaults_and_are_configurable() {
        let settings = Settings::from_values(&values(&production())).unwrap();
        assert_eq!(
            settings.http,
            HttpSettings {
                header_timeout: Duration::from_secs(10),
                body_timeout: Duration::from_secs(30),
                idle_timeout: Duration::from_secs(60),
                max_connections: 20_000,
            }
        );
        let mut pairs = production();
        pairs.extend([
            ("HTTP_HEADER_TIMEOUT_SECS", "2"),
            ("HTTP_BODY_TIMEOUT_SECS", "3"),
            ("HTTP_IDLE_TIMEOUT_SECS", "4"),
            ("MAX_CONNECTIONS", "5"),
        ]);
        let http = Settings::from_values(&values(&pairs)).unwrap().http;
        assert_eq!(http.header_timeout, Duration::from_secs(2));
        assert_eq!(http.body_timeout, Duration::from_secs(3));
        assert_eq!(http.idle_timeout, Duration::from_secs(4));
        assert_eq!(http.max_connections, 5);
    }

    #[test]
    fn unusable_connection_limits_are_named() {
        for (key, bad) in [
            ("HTTP_HEADER_TIMEOUT_SECS", "0"),
            ("HTTP_BODY_TIMEOUT_SECS", "soon"),
            ("HTTP_IDLE_TIMEOUT_SECS", "-1"),
            ("MAX_CONNECTIONS", "0"),
        ] {
            let mut pairs = production();
            pairs.push((key, bad));
            assert_eq!(
                Settings::from_values(&values(&pairs))
                    .unwrap_err()
                    .variables(),
                [key]
            );
        }
    }
}
