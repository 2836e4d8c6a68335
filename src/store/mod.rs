//! Persistence: the only module that knows sea-orm and the entities. It speaks domain types,
//! and seals every secret it stores.

mod access_tokens;
mod login_codes;
mod sessions;
mod users;

use std::{sync::Arc, time::Duration};

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr, SqlErr};

use crate::crypto::{SealError, Sealer};

pub use access_tokens::StoredAccessToken;
pub use login_codes::CodeClaim;
pub use sessions::{IssuedRefreshToken, RefreshOutcome};
pub use users::{LoginRecord, NewSession, ProfileUpdate, SessionKeys, UserRecord};

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
}

#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    sealer: Arc<Sealer>,
}

impl Store {
    /// Connects, brings the schema up to date and seals any secret stored before sealing
    /// existed (or under a retired key).
    pub async fn connect(url: &str, sealer: Arc<Sealer>) -> Result<Self, StoreError> {
        create_sqlite_directory(url)?;
        let mut options = ConnectOptions::new(url);
        options
            .max_connections(16)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(5))
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(|opts| {
                use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
                // WAL lets readers run beside the writer; the busy timeout makes
                // concurrent writers queue instead of failing with "database is locked".
                opts.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
            });
        let db = Database::connect(options).await?;
        Migrator::up(&db, None).await?;
        let store = Self { db, sealer };
        let resealed = store.reseal_session_keys().await?;
        if resealed > 0 {
            tracing::info!(resealed, "sealed stored session_keys under the current key");
        }
        Ok(store)
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

fn is_unique_violation(error: &DbErr) -> bool {
    matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
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
