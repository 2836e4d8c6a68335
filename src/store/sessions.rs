//! Sessions and their rotating refresh tokens, stored only as SHA-256 hashes.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use entity::{refresh_token, session, user};
use rand::RngCore;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, QueryFilter, TransactionTrait,
    sea_query::Expr,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Store, StoreError, UniqueRow, UserRecord, users::user_view};
use crate::domain::{AppId, SessionId, UserId};

/// 256 bits: guessing one is not a strategy.
const REFRESH_TOKEN_BYTES: usize = 32;

/// A refresh token as handed to the client once; only its hash is kept.
pub struct IssuedRefreshToken {
    pub token: String,
    pub expires_in: u64,
}

pub enum RefreshOutcome {
    /// The presented token is retired; here is its successor in the same session.
    Rotated {
        user_id: UserId,
        session_id: SessionId,
        refresh_token: IssuedRefreshToken,
    },
    /// The token had been used before: someone holds a copy. The session is now revoked.
    Reused(SessionId),
    /// Unknown, expired, or its session is revoked.
    Invalid,
}

fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Store {
    /// Starts a session for a user and issues its first refresh token.
    pub async fn start_session(
        &self,
        user_id: UserId,
        refresh_ttl: Duration,
    ) -> Result<(SessionId, IssuedRefreshToken), StoreError> {
        let session_id = SessionId::generate();
        // One transaction: one commit (on SQLite, one trip through the single writer).
        let txn = self.writer.begin().await?;
        session::Entity::insert(session::ActiveModel {
            id: Set(session_id.as_uuid()),
            user_id: Set(user_id.as_uuid()),
            created_at: Set(Utc::now()),
            revoked_at: Set(None),
        })
        .exec_without_returning(&txn)
        .await?;
        let refresh_token = issue_refresh_token(&txn, session_id, refresh_ttl).await?;
        txn.commit().await?;
        Ok((session_id, refresh_token))
    }

    /// The user behind an active session, as `appid` sees them, in one query: what every
    /// authenticated request needs.
    pub async fn active_session_user(
        &self,
        session_id: SessionId,
        user_id: UserId,
        appid: &AppId,
    ) -> Result<Option<UserRecord>, StoreError> {
        let query = user_view(appid)
            .inner_join(
                session::Entity,
                Expr::col((session::Entity, session::Column::UserId)).equals((user::Entity, user::Column::Id)),
            )
            .and_where(Expr::col((session::Entity, session::Column::Id)).eq(session_id.as_uuid()))
            .and_where(Expr::col((session::Entity, session::Column::UserId)).eq(user_id.as_uuid()))
            .and_where(Expr::col((session::Entity, session::Column::RevokedAt)).is_null())
            .to_owned();
        self.query_user(&query).await
    }

    pub async fn revoke_session(&self, session_id: SessionId) -> Result<(), StoreError> {
        session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(Utc::now()))
            .filter(session::Column::Id.eq(session_id.as_uuid()))
            .filter(session::Column::RevokedAt.is_null())
            .exec(&self.writer)
            .await?;
        Ok(())
    }

    /// Rotates a refresh token. Of two requests racing with one token exactly one wins;
    /// the other counts as reuse, as a replayed stolen token would.
    pub async fn rotate_refresh_token(
        &self,
        presented: &str,
        refresh_ttl: Duration,
    ) -> Result<RefreshOutcome, StoreError> {
        let Some(token) = refresh_token::Entity::find()
            .filter(refresh_token::Column::TokenHash.eq(hash_token(presented)))
            .unique(&self.db)
            .await?
        else {
            return Ok(RefreshOutcome::Invalid);
        };
        let Some(session) = session::Entity::find_by_id(token.session_id)
            .unique(&self.db)
            .await?
        else {
            return Ok(RefreshOutcome::Invalid);
        };
        let session_id = SessionId::from(session.id);
        if session.revoked_at.is_some() {
            return Ok(RefreshOutcome::Invalid);
        }
        if token.used_at.is_some() {
            self.revoke_session(session_id).await?;
            return Ok(RefreshOutcome::Reused(session_id));
        }
        let now = Utc::now();
        if token.expires_at <= now {
            return Ok(RefreshOutcome::Invalid);
        }
        // The conditional update is the arbiter: only one request can flip used_at.
        let claimed = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::UsedAt, Expr::value(now))
            .filter(refresh_token::Column::Id.eq(token.id))
            .filter(refresh_token::Column::UsedAt.is_null())
            .exec(&self.writer)
            .await?;
        if claimed.rows_affected != 1 {
            self.revoke_session(session_id).await?;
            return Ok(RefreshOutcome::Reused(session_id));
        }
        let refresh_token = issue_refresh_token(&self.writer, session_id, refresh_ttl).await?;
        Ok(RefreshOutcome::Rotated {
            user_id: session.user_id.into(),
            session_id,
            refresh_token,
        })
    }
}

async fn issue_refresh_token(
    db: &impl ConnectionTrait,
    session_id: SessionId,
    ttl: Duration,
) -> Result<IssuedRefreshToken, StoreError> {
    let mut bytes = [0u8; REFRESH_TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let now = Utc::now();
    refresh_token::Entity::insert(refresh_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        session_id: Set(session_id.as_uuid()),
        token_hash: Set(hash_token(&token)),
        issued_at: Set(now),
        expires_at: Set(expiry(now, ttl)),
        used_at: Set(None),
    })
    .exec_without_returning(db)
    .await?;
    Ok(IssuedRefreshToken {
        token,
        expires_in: ttl.as_secs(),
    })
}

fn expiry(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|ttl| now.checked_add_signed(ttl))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
