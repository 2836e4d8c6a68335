use tracing_subscriber::{EnvFilter, fmt};

/// Logs go to stderr so that stdout stays clean for `wechat-auth openapi > openapi.yaml`.
/// `RUST_LOG` overrides the default filter; `LOG_FORMAT=json` switches to JSON lines.
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    // A second initialisation (tests starting several apps) is harmless: keep the first.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
