//! Settings, read once at start from the environment (and an optional TOML file) and
//! validated into types; nothing else in the service reads the environment.

use std::{collections::HashMap, net::SocketAddr, path::Path, time::Duration};

use crate::domain::AppId;

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
    pub jwt: JwtSettings,
    pub sessions: SessionSettings,
    pub max_body_bytes: usize,
    /// Requests per minute per client IP on login and on refresh; `None` disables.
    pub rate_limit_per_min: Option<u32>,
    /// Peers whose `X-Forwarded-For` is believed (the load balancers in front of us).
    pub trusted_proxies: Vec<IpNet>,
    pub http: HttpSettings,
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
    pub appid: AppId,
    pub secret: Secret,
    /// `None` in sandbox mode: the client is pointed at our own `/sandbox` once the
    /// listener's real address is known.
    pub api_base: Option<String>,
    pub sandbox: bool,
    /// Upper bound on one upstream operation, retries included.
    pub timeout: Duration,
    /// `None`: the watermark timestamp is not checked (the appid always is).
    pub watermark_max_age: Option<Duration>,
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

/// The appid the sandbox uses when none is configured.
pub const SANDBOX_APPID: &str = "wxsandbox0000000000";
const MIN_JWT_SECRET_BYTES: usize = 32;
/// The sandbox's signing secret when none is set. Public on purpose: the sandbox is for
/// local development only. Being fixed, it keeps tokens and the session_keys sealed under
/// the key derived from it valid across restarts.
const SANDBOX_JWT_SECRET: &str = "wechat-auth-sandbox-only-not-a-secret-0000";

impl Settings {
    /// Reads the process environment and, when `WECHAT_AUTH_CONFIG` names one, a TOML
    /// file with the same keys in lower case. The environment wins.
    pub fn load() -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        let mut values = match env.get("WECHAT_AUTH_CONFIG") {
            Some(path) => read_toml_file(Path::new(path))?,
            None => HashMap::new(),
        };
        values.extend(env);
        Self::from_values(&values)
    }

    /// Builds settings from already-collected `VARIABLE => value` pairs.
    pub fn from_values(values: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let source = Source(values);
        let sandbox = source.parse_bool("WECHAT_SANDBOX", false)?;

        let appid = match source.get("WECHAT_APPID") {
            Some(raw) => AppId::parse(raw).map_err(|e| ConfigError::new("WECHAT_APPID", e.0))?,
            None if sandbox => {
                AppId::parse(SANDBOX_APPID).map_err(|e| ConfigError::new("WECHAT_APPID", e.0))?
            }
            None => return Err(ConfigError::new("WECHAT_APPID", "is required")),
        };
        let secret = match source.get("WECHAT_SECRET") {
            Some(raw) => Secret::new(raw),
            None if sandbox => Secret::new("sandbox-secret"),
            None => return Err(ConfigError::new("WECHAT_SECRET", "is required")),
        };
        let api_base = if sandbox {
            None
        } else {
            let base = source
                .get("WECHAT_API_BASE")
                .unwrap_or("https://api.weixin.qq.com");
            Some(parse_base_url("WECHAT_API_BASE", base)?)
        };
        let algorithm = source.get("JWT_ALGORITHM").unwrap_or("HS256");
        let signing_key = match algorithm {
            "HS256" => SigningKey::Hs256(match source.get("JWT_SECRET") {
                Some(raw) if raw.len() >= MIN_JWT_SECRET_BYTES => Secret::new(raw),
                Some(_) => {
                    return Err(ConfigError::new(
                        "JWT_SECRET",
                        format!("must be at least {MIN_JWT_SECRET_BYTES} bytes"),
                    ));
                }
                None if sandbox => Secret::new(SANDBOX_JWT_SECRET),
                None => return Err(ConfigError::new("JWT_SECRET", "is required")),
            }),
            "ES256" => SigningKey::Es256(source.key_file("JWT_PRIVATE_KEY_FILE")?),
            "EdDSA" => SigningKey::EdDsa(source.key_file("JWT_PRIVATE_KEY_FILE")?),
            _ => {
                return Err(ConfigError::new(
                    "JWT_ALGORITHM",
                    "must be HS256, ES256 or EdDSA",
                ));
            }
        };
        let retired_public_keys = match source.get("JWT_RETIRED_PUBLIC_KEY_FILES") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|path| !path.is_empty())
                .map(|path| read_key_file("JWT_RETIRED_PUBLIC_KEY_FILES", path))
                .collect::<Result<_, _>>()?,
        };
        let session_key_encryption = SessionKeyEncryption {
            current: match (source.get("SESSION_KEY_ENCRYPTION_KEY"), &signing_key) {
                (Some(raw), _) => parse_aead_key("SESSION_KEY_ENCRYPTION_KEY", raw)?,
                (None, SigningKey::Hs256(secret)) => derive_aead_key(secret),
                (None, _) => {
                    return Err(ConfigError::new(
                        "SESSION_KEY_ENCRYPTION_KEY",
                        "is required when JWT_ALGORITHM is not HS256",
                    ));
                }
            },
            retired: match source.get("SESSION_KEY_RETIRED_ENCRYPTION_KEYS") {
                None => Vec::new(),
                Some(list) => list
                    .split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(|k| parse_aead_key("SESSION_KEY_RETIRED_ENCRYPTION_KEYS", k))
                    .collect::<Result<_, _>>()?,
            },
        };

        Ok(Self {
            bind_addr: source.parse_with("BIND_ADDR", "127.0.0.1:8080", |raw| {
                raw.parse::<SocketAddr>()
                    .map_err(|_| "must be an address such as 127.0.0.1:8080".to_owned())
            })?,
            database_url: Secret::new(
                source
                    .get("DATABASE_URL")
                    .unwrap_or("sqlite://data/wechat-auth.db?mode=rwc"),
            ),
            wechat: WeChatSettings {
                appid,
                secret,
                api_base,
                sandbox,
                timeout: Duration::from_millis(source.parse_u64_in(
                    "WECHAT_TIMEOUT_MS",
                    5000,
                    100..=9000,
                )?),
                watermark_max_age: match source.parse_u64_in(
                    "WECHAT_WATERMARK_MAX_AGE_SECS",
                    600,
                    0..=u64::from(u32::MAX),
                )? {
                    0 => None,
                    secs => Some(Duration::from_secs(secs)),
                },
            },
            jwt: JwtSettings {
                signing_key,
                retired_public_keys,
                issuer: source.non_empty("JWT_ISSUER", "wechat-auth")?,
                audience: source.non_empty("JWT_AUDIENCE", "wechat-miniprogram")?,
                access_token_ttl: Duration::from_secs(source.parse_u64_in(
                    "ACCESS_TOKEN_TTL_SECS",
                    7200,
                    1..=u64::from(u32::MAX),
                )?),
            },
            sessions: SessionSettings {
                refresh_token_ttl: Duration::from_secs(source.parse_u64_in(
                    "REFRESH_TOKEN_TTL_SECS",
                    2_592_000,
                    60..=u64::from(u32::MAX),
                )?),
                login_replay_window: match source.parse_u64_in(
                    "LOGIN_REPLAY_WINDOW_SECS",
                    300,
                    0..=3600,
                )? {
                    0 => None,
                    secs => Some(Duration::from_secs(secs)),
                },
                session_key_encryption,
                principal_cache_ttl: Duration::from_millis(source.parse_u64_in(
                    "AUTH_CACHE_TTL_MS",
                    1000,
                    0..=60_000,
                )?),
            },
            rate_limit_per_min: match source.parse_u64_in(
                "RATE_LIMIT_PER_MIN",
                600,
                0..=1_000_000,
            )? {
                0 => None,
                per_min => Some(u32::try_from(per_min).unwrap_or(u32::MAX)),
            },
            trusted_proxies: match source.get("TRUSTED_PROXIES") {
                None => Vec::new(),
                Some(list) => list
                    .split(',')
                    .map(str::trim)
                    .filter(|entry| !entry.is_empty())
                    .map(|entry| {
                        IpNet::parse(entry).ok_or_else(|| {
                            ConfigError::new(
                                "TRUSTED_PROXIES",
                                format!("{entry} is not an address or CIDR range"),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
            },
            max_body_bytes: usize::try_from(source.parse_u64_in(
                "MAX_BODY_BYTES",
                65536,
                1024..=16 * 1024 * 1024,
            )?)
            .map_err(|_| ConfigError::new("MAX_BODY_BYTES", "is too large for this machine"))?,
            http: HttpSettings::read(&source)?,
        })
    }
}

/// Connection limits: how long a client may take to send a request, how long an idle
/// keep-alive connection is kept, and how many connections are served at once.
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

impl HttpSettings {
    fn read(source: &Source) -> Result<Self, ConfigError> {
        let secs = |key, default| {
            source
                .parse_u64_in(key, default, 1..=3600)
                .map(Duration::from_secs)
        };
        Ok(Self {
            header_timeout: secs("HTTP_HEADER_TIMEOUT_SECS", 10)?,
            body_timeout: secs("HTTP_BODY_TIMEOUT_SECS", 30)?,
            idle_timeout: secs("HTTP_IDLE_TIMEOUT_SECS", 60)?,
            max_connections: usize::try_from(source.parse_u64_in(
                "MAX_CONNECTIONS",
                20_000,
                1..=1_000_000,
            )?)
            .map_err(|_| ConfigError::new("MAX_CONNECTIONS", "is too large for this machine"))?,
        })
    }
}

struct Source<'a>(&'a HashMap<String, String>);

impl Source<'_> {
    /// An empty variable counts as unset, as shells and compose files tend to produce them.
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    fn parse_with<T>(
        &self,
        key: &str,
        default: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        parse(self.get(key).unwrap_or(default)).map_err(|reason| ConfigError::new(key, reason))
    }

    fn parse_bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some("false" | "0" | "no" | "off") => Ok(false),
            Some(_) => Err(ConfigError::new(key, "must be true or false")),
        }
    }

    fn parse_u64_in(
        &self,
        key: &str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        let value = match self.get(key) {
            None => default,
            Some(raw) => raw
                .parse::<u64>()
                .map_err(|_| ConfigError::new(key, "must be a whole number"))?,
        };
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::new(
                key,
                format!("must be between {} and {}", range.start(), range.end()),
            ))
        }
    }

    fn non_empty(&self, key: &str, default: &str) -> Result<String, ConfigError> {
        Ok(self.get(key).unwrap_or(default).to_owned())
    }

    fn key_file(&self, key: &'static str) -> Result<KeyFile, ConfigError> {
        let path = self
            .get(key)
            .ok_or_else(|| ConfigError::new(key, "is required for this JWT_ALGORITHM"))?;
        read_key_file(key, path)
    }
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
pub fn database_url_from_env() -> Result<Secret, ConfigError> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let mut values = match env.get("WECHAT_AUTH_CONFIG") {
        Some(path) => read_toml_file(Path::new(path))?,
        None => HashMap::new(),
    };
    values.extend(env);
    Ok(Secret::new(
        Source(&values)
            .get("DATABASE_URL")
            .unwrap_or("sqlite://data/wechat-auth.db?mode=rwc"),
    ))
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
            Settings::from_values(&values(&pairs)).unwrap_err().variable,
            "JWT_PRIVATE_KEY_FILE"
        );
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\n").unwrap();
        let key = key.display().to_string();
        pairs.push(("JWT_PRIVATE_KEY_FILE", &key));
        assert_eq!(
            Settings::from_values(&values(&pairs)).unwrap_err().variable,
            "SESSION_KEY_ENCRYPTION_KEY"
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
    fn missing_required_variables_are_named() {
        for missing in ["WECHAT_APPID", "WECHAT_SECRET", "JWT_SECRET"] {
            let pairs: Vec<_> = production()
                .into_iter()
                .filter(|(k, _)| *k != missing)
                .collect();
            let err = Settings::from_values(&values(&pairs)).unwrap_err();
            assert_eq!(err.variable, missing);
        }
    }

    #[test]
    fn a_short_jwt_secret_is_refused_without_echoing_it() {
        let mut pairs = production();
        pairs.push(("JWT_SECRET", "short-but-secret"));
        let err = Settings::from_values(&values(&pairs)).unwrap_err();
        assert_eq!(err.variable, "JWT_SECRET");
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
            ("TRUSTED_PROXIES", "10.0.0.0/8,proxy.internal"),
        ] {
            let mut pairs = production();
            pairs.push((key, bad));
            assert_eq!(
                Settings::from_values(&values(&pairs)).unwrap_err().variable,
                key
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
        assert_eq!(settings.wechat.appid.as_str(), SANDBOX_APPID);
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
        assert_eq!(settings.wechat.appid.as_str(), "wxfromfile");
        assert_eq!(settings.jwt.access_token_ttl, Duration::from_secs(120));
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
                Settings::from_values(&values(&pairs)).unwrap_err().variable,
                key
            );
        }
    }
}
