//! Computer sign-ins by the mini program. The row is the truth for every instance: each
//! change is one conditional update on the version the caller read, so of two racing
//! changes exactly one wins, and the tokens of a confirmed sign-in are claimed by one
//! update, so exactly one poll hands them out. The secret is stored only as its SHA-256.

use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::{qr_login, qr_login_image};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QuerySelect, sea_query::Expr,
};

use super::{Store, StoreError, UniqueRow, is_unique_violation};
use crate::{
    crypto::sha256_hex,
    domain::{QrLoginId, QrLoginStatus, UserId},
};

/// Finished and expired sign-ins are kept this long (a late poll still learns `expired`),
/// then purged.
const KEEP_AFTER_EXPIRY: chrono::Duration = chrono::Duration::hours(1);
/// Sign-ins purged per run; the purge runs every minute, so a backlog drains quickly.
const PURGE_BATCH: u64 = 1000;
/// Longest stored User-Agent; browsers send a few hundred characters at most.
const MAX_USER_AGENT_CHARS: usize = 512;

pub struct NewQrLogin<'a> {
    pub id: &'a QrLoginId,
    pub secret: &'a str,
    pub requested_ip: Option<String>,
    pub requested_user_agent: Option<&'a str>,
    pub ttl: Duration,
}

/// A sign-in as stored. `status` is the stored one: whether it has expired by now is the
/// service's call.
#[derive(Debug, Clone)]
pub struct QrLoginRecord {
    pub id: QrLoginId,
    pub secret_hash: String,
    pub status: QrLoginStatus,
    pub version: i64,
    pub requested_ip: Option<String>,
    pub requested_user_agent: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub scanned_by: Option<UserId>,
    pub handed_out: bool,
}

/// The change a transition makes, applied only if the row is still at the version read.
pub struct QrLoginChange {
    pub status: QrLoginStatus,
    pub scanned_by: Option<UserId>,
    pub expires_at: DateTime<Utc>,
}

fn expiry(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|ttl| now.checked_add_signed(ttl))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn record(row: qr_login::Model) -> Result<QrLoginRecord, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("stored sign-in {what}"));
    Ok(QrLoginRecord {
        id: QrLoginId::parse(&row.id).map_err(|_| corrupt("id"))?,
        secret_hash: row.secret_hash,
        status: QrLoginStatus::parse(&row.status).map_err(|_| corrupt("status"))?,
        version: row.version,
        requested_ip: row.requested_ip,
        requested_user_agent: row.requested_user_agent,
        expires_at: row.expires_at,
        scanned_by: row.scanned_by.map(UserId::from),
        handed_out: row.handed_out_at.is_some(),
    })
}

impl Store {
    pub async fn create_qr_login(&self, new: &NewQrLogin<'_>) -> Result<(), StoreError> {
        let now = Utc::now();
        qr_login::Entity::insert(qr_login::ActiveModel {
            id: Set(new.id.as_str().to_owned()),
            secret_hash: Set(sha256_hex(new.secret)),
            status: Set(QrLoginStatus::Pending.as_str().to_owned()),
            version: Set(0),
            requested_ip: Set(new.requested_ip.clone()),
            requested_user_agent: Set(new
                .requested_user_agent
                .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect())),
            created_at: Set(now),
            expires_at: Set(expiry(now, new.ttl)),
            scanned_by: Set(None),
            scanned_at: Set(None),
            answered_at: Set(None),
            handed_out_at: Set(None),
        })
        .exec_without_returning(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn qr_login(&self, id: &QrLoginId) -> Result<Option<QrLoginRecord>, StoreError> {
        qr_login::Entity::find_by_id(id.as_str().to_owned())
            .unique(&self.db)
            .await?
            .map(record)
            .transpose()
    }

    /// Applies `change` if the sign-in is still at `version`; `false` when another change
    /// came first.
    pub async fn change_qr_login(
        &self,
        id: &QrLoginId,
        version: i64,
        change: &QrLoginChange,
    ) -> Result<bool, StoreError> {
        let now = Utc::now();
        let mut update = qr_login::Entity::update_many()
            .col_expr(
                qr_login::Column::Status,
                Expr::value(change.status.as_str()),
            )
            .col_expr(qr_login::Column::Version, Expr::value(version + 1))
            .col_expr(qr_login::Column::ExpiresAt, Expr::value(change.expires_at));
        update = match change.status {
            QrLoginStatus::Scanned => update
                .col_expr(
                    qr_login::Column::ScannedBy,
                    Expr::value(change.scanned_by.map(|user| user.as_uuid())),
                )
                .col_expr(qr_login::Column::ScannedAt, Expr::value(now)),
            _ => update.col_expr(qr_login::Column::AnsweredAt, Expr::value(now)),
        };
        let changed = update
            .filter(qr_login::Column::Id.eq(id.as_str()))
            .filter(qr_login::Column::Version.eq(version))
            .exec(&self.writer)
            .await?;
        Ok(changed.rows_affected == 1)
    }

    /// Claims the tokens of a confirmed sign-in: the user to start a session for, for the
    /// one caller that claimed them; `None` for everyone else.
    pub async fn claim_qr_login_tokens(
        &self,
        id: &QrLoginId,
    ) -> Result<Option<UserId>, StoreError> {
        let claimed = qr_login::Entity::update_many()
            .col_expr(qr_login::Column::HandedOutAt, Expr::value(Utc::now()))
            .filter(qr_login::Column::Id.eq(id.as_str()))
            .filter(qr_login::Column::Status.eq(QrLoginStatus::Confirmed.as_str()))
            .filter(qr_login::Column::HandedOutAt.is_null())
            .exec(&self.writer)
            .await?;
        if claimed.rows_affected == 0 {
            return Ok(None);
        }
        let row = qr_login::Entity::find_by_id(id.as_str().to_owned())
            .unique(&self.writer)
            .await?;
        Ok(row.and_then(|row| row.scanned_by).map(UserId::from))
    }

    /// Gives a claim back when the session could not be started, so a later poll can.
    pub async fn release_qr_login_tokens(&self, id: &QrLoginId) -> Result<(), StoreError> {
        qr_login::Entity::update_many()
            .col_expr(
                qr_login::Column::HandedOutAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(qr_login::Column::Id.eq(id.as_str()))
            .exec(&self.writer)
            .await?;
        Ok(())
    }

    /// The current versions of the named sign-ins (those that still exist).
    pub async fn qr_login_versions(
        &self,
        ids: &[String],
    ) -> Result<Vec<(String, i64)>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(qr_login::Entity::find()
            .select_only()
            .column(qr_login::Column::Id)
            .column(qr_login::Column::Version)
            .filter(qr_login::Column::Id.is_in(ids.iter().map(String::as_str)))
            .into_tuple::<(String, i64)>()
            .all(&self.db)
            .await?)
    }

    pub async fn qr_login_image(&self, id: &QrLoginId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(qr_login_image::Entity::find_by_id(id.as_str().to_owned())
            .unique(&self.db)
            .await?
            .map(|row| row.png))
    }

    /// Keeps the image; when another instance saved one first, theirs stays.
    pub async fn save_qr_login_image(&self, id: &QrLoginId, png: &[u8]) -> Result<(), StoreError> {
        let inserted = qr_login_image::Entity::insert(qr_login_image::ActiveModel {
            id: Set(id.as_str().to_owned()),
            png: Set(png.to_vec()),
        })
        .exec_without_returning(&self.writer)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(error) if is_unique_violation(&error) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Deletes sign-ins (and their images) that have been over for a while.
    pub async fn purge_qr_logins(&self) -> Result<u64, StoreError> {
        let cutoff = Utc::now() - KEEP_AFTER_EXPIRY;
        let expired: Vec<String> = qr_login::Entity::find()
            .select_only()
            .column(qr_login::Column::Id)
            .filter(qr_login::Column::ExpiresAt.lt(cutoff))
            .limit(PURGE_BATCH)
            .into_tuple()
            .all(&self.db)
            .await?;
        if expired.is_empty() {
            return Ok(0);
        }
        // Images first: not every backend enforces the cascade (SQLite needs its pragma).
        qr_login_image::Entity::delete_many()
            .filter(qr_login_image::Column::Id.is_in(expired.iter().map(String::as_str)))
            .exec(&self.writer)
            .await?;
        let result = qr_login::Entity::delete_many()
            .filter(qr_login::Column::Id.is_in(expired.iter().map(String::as_str)))
            .exec(&self.writer)
            .await?;
        Ok(result.rows_affected)
    }
}
