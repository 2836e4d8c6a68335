//! Persistence: the only module that knows sea-orm and the entities. It speaks domain types,
//! and seals every secret it stores.

mod access_tokens;
mod deletion;
mod directory;
pub mod events;
mod login_codes;
mod migrate;
mod phones;
mod qr_logins;
mod sessions;
mod users;
mod web_flows;

use std::{sync::Arc, time::Duration};

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, EntityTrait, Select,
    SqlErr,
};

use crate::{
    crypto::{SealError, Sealer},
    domain::AppId,
};
use sea_orm::sqlx::sqlite::SqliteConnectOptions;

pub use access_tokens::StoredAccessToken;
pub use directory::{Lookup, Toggled};
pub use events::{LeasedEvent, UserChange};
pub use login_codes::CodeClaim;
pub use migrate::{migrate_down, migrate_up, migration_status};
pub use phones::{PhoneBinding, RESEND_INTERVAL, SendPermit};
pub use qr_logins::{NewQrLogin, QrLoginChange, QrLoginRecord};
pub use sessions::{IssuedRefreshToken, RefreshOutcome, SessionRecord};
pub use users::{
    ExchangedKey, IdentityClaim, IdentityRecord, ProfileUpdate, Resolved, SessionKeys, UserRecord,
};
pub use web_flows::{NewWebFlow, RedeemedTicket, SpentFlow};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    #[error("stored data is not well-formed: {0}")]
    Corrupt(String),
    #[error("a stored secret cannot be opened: {0}")]
    Sealed(#[from] SealError),
    #[error("cannot create the database directory: {0}")]
    Directory(String),
    #[error("the operation kept conflicting with concurrent ones")]
    Contended,
    #[error("cannot reach the database server at {address}: {cause}")]
    Unreachable { address: String, cause: String },
}

#[derive(Clone)]
pub struct Store {
    /// For reads.
    db: DatabaseConnection,
    /// For writes. The same pool as `db`, except on SQLite: there it is a pool of one
    /// connection, because SQLite has one writer at a time and writers that contend for
    /// the lock sleep in its busy handler (idle CPU, and a p99 of hundreds of ms under
    /// load); queueing for the one connection is cheap and fair.
    writer: DatabaseConnection,
    sealer: Arc<Sealer>,
    /// The mini program's appid: a user object's `openid` in events is the one there.
    miniprogram: Option<AppId>,
    /// Signalled when a commit wrote events (wakes the webhook worker).
    events_written: Arc<tokio::sync::Notify>,
}

impl Store {
    /// Connects, brings the schema up to date and seals any secret stored before sealing
    /// existed (or under a retired key).
    pub async fn connect(url: &str, sealer: Arc<Sealer>) -> Result<Self, StoreError> {
        create_sqlite_directory(url)?;
        let (db, writer) = if url.starts_with("sqlite:") {
            let writer = Database::connect(connect_options(url, 1)).await?;
            (
                Database::connect(connect_options(url, SQLITE_READERS)).await?,
                writer,
            )
        } else {
            let db = match Database::connect(connect_options(url, POOL_SIZE)).await {
                Ok(db) => db,
                Err(error) => return Err(diagnose_connect_failure(url, error).await),
            };
            (db.clone(), db)
        };
        migrate::up_at_start(url, &writer).await?;
        let store = Self {
            db,
            writer,
            sealer,
            miniprogram: None,
            events_written: Arc::new(tokio::sync::Notify::new()),
        };
        let resealed = store.reseal_session_keys().await?;
        if resealed > 0 {
            tracing::info!(resealed, "sealed stored session_keys under the current key");
        }
        Ok(store)
    }
}

/// Connections to a database server.
const POOL_SIZE: u32 = 16;
/// SQLite reads in WAL mode run beside the writer; more threads than this only add
/// context switches on a small machine.
const SQLITE_READERS: u32 = 4;

fn connect_options(url: &str, max_connections: u32) -> ConnectOptions {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false)
        // sqlx pings a pooled connection before handing it out by default: one extra
        // round trip per statement. A dead connection surfaces as a query error anyway.
        .test_before_acquire(false)
        .map_sqlx_sqlite_opts(sqlite_options);
    options
}

fn sqlite_options(opts: SqliteConnectOptions) -> SqliteConnectOptions {
    use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
    // WAL lets readers run beside the writer; the busy timeout covers other processes
    // (a second instance) writing to the same file.
    opts.journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
}

impl Store {
    /// Names the mini program, whose openid a user object in an event carries.
    pub fn with_miniprogram_appid(mut self, appid: Option<AppId>) -> Self {
        self.miniprogram = appid;
        self
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        Ok(self.db.ping().await?)
    }

    /// (open connections, idle connections, maximum) of the pool.
    pub fn pool_usage(&self) -> (u32, usize, u32) {
        fn usage<DB: sea_orm::sqlx::Database>(pool: &sea_orm::sqlx::Pool<DB>) -> (u32, usize, u32) {
            (
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            )
        }
        match self.db.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => usage(self.db.get_postgres_connection_pool()),
            sea_orm::DatabaseBackend::MySql => usage(self.db.get_mysql_connection_pool()),
            _ => usage(self.db.get_sqlite_connection_pool()),
        }
    }
}

/// Fetching the row a unique key names. Not sea-orm's `.one()`: that binds `LIMIT ?`, and
/// SQLite re-plans a statement whose LIMIT is a bound parameter on every run, defeating its
/// statement cache (a fifth of the CPU of an authenticated request in the profile).
trait UniqueRow<E: EntityTrait> {
    fn unique<C: ConnectionTrait + Sync>(
        self,
        db: &C,
    ) -> impl Future<Output = Result<Option<E::Model>, DbErr>> + Send;
}

impl<E: EntityTrait> UniqueRow<E> for Select<E>
where
    E::Model: Send + Sync,
{
    async fn unique<C: ConnectionTrait + Sync>(self, db: &C) -> Result<Option<E::Model>, DbErr> {
        Ok(self.all(db).await?.into_iter().next())
    }
}

fn is_unique_violation(error: &DbErr) -> bool {
    matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// sqlx retries a refused connection until its pool gives up and then only says "pool
/// timed out". Name the server (never the URL: it may hold a password) and the cause.
async fn diagnose_connect_failure(url: &str, error: DbErr) -> StoreError {
    let Some(address) = url::Url::parse(url).ok().and_then(|url| {
        let host = url.host_str()?.to_owned();
        let port = url
            .port()
            .unwrap_or(if url.scheme().starts_with("postgres") {
                5432
            } else {
                3306
            });
        Some(format!("{host}:{port}"))
    }) else {
        return error.into();
    };
    let probe = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect(address.as_str()),
    )
    .await;
    let cause = match probe {
        Ok(Ok(_)) => return error.into(),
        Ok(Err(io)) => io.to_string(),
        Err(_) => "no answer within 3 s".to_owned(),
    };
    StoreError::Unreachable { address, cause }
}

/// SQLite creates the database file (`mode=rwc`) but not its directory, so the default
/// `sqlite://data/wechat-auth.db` would fail on a fresh checkout without this.
fn create_sqlite_directory(url: &str) -> Result<(), StoreError> {
    let Some(path) = url.strip_prefix("sqlite://") else {
        return Ok(());
    };
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path.starts_with(":memory:") {
        return Ok(());
    }
    match std::path::Path::new(path).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Directory(format!("{}: {e}", dir.display()))),
        _ => Ok(()),
    }
}
