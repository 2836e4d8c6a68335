//! Schema migrations, safe to start from several instances at once: each takes a database
//! lock around them, so a second instance waits and then finds nothing left to do.
//!
//! PostgreSQL: a session advisory lock. MariaDB/MySQL: a named `GET_LOCK`. SQLite: one
//! `BEGIN IMMEDIATE` transaction around all of them (SQLite's DDL is transactional, and
//! its file lock alone is not enough: two processes both see a migration as pending and
//! both apply it).

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DbErr,
    Statement,
};

use super::{StoreError, create_sqlite_directory};

/// The PostgreSQL advisory lock key: "wechat-a" in ASCII, so it is recognisable in
/// `pg_locks`.
const PG_LOCK_KEY: i64 = 0x7765_6368_6174_2d61;
/// The MariaDB/MySQL named lock.
const MYSQL_LOCK_NAME: &str = "wechat-auth-migrations";
/// How long one `GET_LOCK` waits before asking again.
const MYSQL_LOCK_WAIT_SECS: u32 = 10;

#[derive(Clone, Copy)]
enum Direction {
    Up,
    Down,
}

/// At start: SQLite migrates on the store's own writer, a pool of one connection (an
/// in-memory database exists only on it); database servers on a dedicated connection.
pub(super) async fn up_at_start(url: &str, writer: &DatabaseConnection) -> Result<(), StoreError> {
    if writer.get_database_backend() == DatabaseBackend::Sqlite {
        Ok(under_lock(writer, Direction::Up).await?)
    } else {
        locked(url, Direction::Up).await
    }
}

/// Applies every pending migration.
pub async fn migrate_up(url: &str) -> Result<(), StoreError> {
    create_sqlite_directory(url)?;
    locked(url, Direction::Up).await
}

/// Rolls back the most recent migration.
pub async fn migrate_down(url: &str) -> Result<(), StoreError> {
    create_sqlite_directory(url)?;
    locked(url, Direction::Down).await
}

/// Every migration by name, and whether it is applied.
pub async fn migration_status(url: &str) -> Result<Vec<(String, bool)>, StoreError> {
    create_sqlite_directory(url)?;
    let db = Database::connect(dedicated(url)).await?;
    let migrations = Migrator::get_migration_with_status(&db).await;
    let _ = db.close().await;
    Ok(migrations?
        .iter()
        .map(|migration| {
            (
                migration.name().to_owned(),
                // The migration crate does not re-export the status enum; its text is stable.
                migration.status().to_string() == "Applied",
            )
        })
        .collect())
}

/// Runs the migrations on one dedicated connection holding the lock, so the lock and the
/// schema changes are in the same session.
async fn locked(url: &str, direction: Direction) -> Result<(), StoreError> {
    let db = Database::connect(dedicated(url)).await?;
    let result = under_lock(&db, direction).await;
    // Closing ends the session, which also releases the lock if unlocking failed.
    let _ = db.close().await;
    Ok(result?)
}

/// `db` must be a pool of exactly one connection: the lock belongs to a session.
async fn under_lock(db: &DatabaseConnection, direction: Direction) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    lock(db, backend).await?;
    let migrated = match direction {
        Direction::Up => Migrator::up(db, None).await,
        Direction::Down => Migrator::down(db, Some(1)).await,
    };
    if migrated.is_err() && backend == DatabaseBackend::Sqlite {
        let _ = db.execute_unprepared("ROLLBACK").await;
        return migrated;
    }
    let unlocked = unlock(db, backend).await;
    migrated.and(unlocked)
}

fn dedicated(url: &str) -> ConnectOptions {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(1)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        // Waiting for another instance's migrations is part of acquiring.
        .acquire_timeout(Duration::from_secs(300))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|opts| opts.busy_timeout(Duration::from_secs(60)));
    options
}

async fn lock(db: &DatabaseConnection, backend: DatabaseBackend) -> Result<(), DbErr> {
    match backend {
        DatabaseBackend::Postgres => {
            db.execute_unprepared(&format!("SELECT pg_advisory_lock({PG_LOCK_KEY})"))
                .await?;
        }
        DatabaseBackend::MySql => loop {
            let granted = db
                .query_one_raw(Statement::from_string(
                    backend,
                    format!("SELECT GET_LOCK('{MYSQL_LOCK_NAME}', {MYSQL_LOCK_WAIT_SECS})"),
                ))
                .await?
                .and_then(|row| row.try_get_by_index::<Option<i64>>(0).ok().flatten());
            match granted {
                Some(1) => break,
                Some(_) => tracing::info!("waiting for another instance's migrations"),
                None => return Err(DbErr::Custom("GET_LOCK failed".to_owned())),
            }
        },
        // Waits up to the busy timeout for another writer.
        DatabaseBackend::Sqlite => {
            db.execute_unprepared("BEGIN IMMEDIATE").await?;
        }
        _ => {}
    }
    Ok(())
}

async fn unlock(db: &DatabaseConnection, backend: DatabaseBackend) -> Result<(), DbErr> {
    match backend {
        DatabaseBackend::Postgres => {
            db.execute_unprepared(&format!("SELECT pg_advisory_unlock({PG_LOCK_KEY})"))
                .await?;
        }
        DatabaseBackend::MySql => {
            db.execute_unprepared(&format!("SELECT RELEASE_LOCK('{MYSQL_LOCK_NAME}')"))
                .await?;
        }
        DatabaseBackend::Sqlite => {
            db.execute_unprepared("COMMIT").await?;
        }
        _ => {}
    }
    Ok(())
}
