//! Sessions and their rotating refresh tokens, stored only as SHA-256 hashes: the session
//! row holds its one current token; retired ones are kept to recognise reuse.

use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::{retired_refresh_token, session, user};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, ExprTrait, Order, QueryFilter, QueryOrder,
    sea_query::Expr,
};

use super::{Store, StoreError, UniqueRow, UserRecord, is_unique_violation, users::user_view};
use crate::{
    crypto,
    domain::{App, SessionId, UserId},
};

/// 256 bits: guessing one is not a strategy.
const REFRESH_TOKEN_BYTES: usize = 32;

/// A live session as its owner sees it in their list.
pub struct SessionRecord {
    pub id: SessionId,
    pub app: App,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
}

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
    /// The session's user is disabled (which ended the session).
    UserDisabled,
}

/// A new random refresh token and the hash that is stored for it.
fn new_refresh_token() -> (String, String) {
    let token = crypto::random_urlsafe(REFRESH_TOKEN_BYTES);
    let hash = crypto::sha256_hex(&token);
    (token, hash)
}

impl Store {
    /// Starts a session for a user with its first refresh token: one insert.
    pub async fn start_session(
        &self,
        user_id: UserId,
        app: App,
        refresh_ttl: Duration,
    ) -> Result<(SessionId, IssuedRefreshToken), StoreError> {
        let session_id = SessionId::generate();
        let (token, hash) = new_refresh_token();
        let now = Utc::now();
        session::Entity::insert(session::ActiveModel {
            id: Set(session_id.as_uuid()),
            user_id: Set(user_id.as_uuid()),
            app: Set(app.as_str().to_owned()),
            created_at: Set(now),
            revoked_at: Set(None),
            refresh_token_hash: Set(hash),
            refresh_expires_at: Set(expiry(now, refresh_ttl)),
            last_used_at: Set(Some(now)),
        })
        .exec_without_returning(&self.writer)
        .await?;
        Ok((
            session_id,
            IssuedRefreshToken {
                token,
                expires_in: refresh_ttl.as_secs(),
            },
        ))
    }

    /// The user behind an active session, with their identities, in one query: what every
    /// authenticated request needs.
    pub async fn active_session_user(
        &self,
        session_id: SessionId,
        user_id: UserId,
    ) -> Result<Option<UserRecord>, StoreError> {
        let query = user_view()
            .inner_join(
                session::Entity,
                Expr::col((session::Entity, session::Column::UserId))
                    .equals((user::Entity, user::Column::Id)),
            )
            .and_where(Expr::col((session::Entity, session::Column::Id)).eq(session_id.as_uuid()))
            .and_where(Expr::col((session::Entity, session::Column::UserId)).eq(user_id.as_uuid()))
            .and_where(Expr::col((session::Entity, session::Column::RevokedAt)).is_null())
            // Disabling ends the sessions too; this also covers a login that raced it.
            .and_where(Expr::col((user::Entity, user::Column::DisabledAt)).is_null())
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
        let presented_hash = crypto::sha256_hex(presented);
        let Some(session) = session::Entity::find()
            .filter(session::Column::RefreshTokenHash.eq(presented_hash.as_str()))
            .unique(&self.db)
            .await?
        else {
            return self.check_retired(&presented_hash).await;
        };
        let session_id = SessionId::from(session.id);
        let now = Utc::now();
        if session.revoked_at.is_some() || session.refresh_expires_at <= now {
            if self.is_disabled(session.user_id.into()).await? {
                return Ok(RefreshOutcome::UserDisabled);
            }
            return Ok(RefreshOutcome::Invalid);
        }
        // Retiring the presented token first makes its primary key the arbiter: of two
        // requests racing with it exactly one inserts, and from that moment on any further
        // presentation of it is recognised as reuse.
        let retired = retired_refresh_token::Entity::insert(retired_refresh_token::ActiveModel {
            token_hash: Set(presented_hash.clone()),
            session_id: Set(session.id),
            retired_at: Set(now),
        })
        .exec_without_returning(&self.writer)
        .await;
        match retired {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => {
                self.revoke_session(session_id).await?;
                return Ok(RefreshOutcome::Reused(session_id));
            }
            Err(error) => return Err(error.into()),
        }
        let (token, hash) = new_refresh_token();
        let rotated = session::Entity::update_many()
            .col_expr(session::Column::RefreshTokenHash, Expr::value(hash))
            .col_expr(
                session::Column::RefreshExpiresAt,
                Expr::value(expiry(now, refresh_ttl)),
            )
            .col_expr(session::Column::LastUsedAt, Expr::value(now))
            .filter(session::Column::Id.eq(session.id))
            .filter(session::Column::RefreshTokenHash.eq(presented_hash.as_str()))
            .exec(&self.writer)
            .await?;
        if rotated.rows_affected != 1 {
            // Only the request that retired the token moves the session on; this cannot
            // happen, but if it did the session's token state would be unknown.
            self.revoke_session(session_id).await?;
            return Ok(RefreshOutcome::Reused(session_id));
        }
        Ok(RefreshOutcome::Rotated {
            user_id: session.user_id.into(),
            session_id,
            refresh_token: IssuedRefreshToken {
                token,
                expires_in: refresh_ttl.as_secs(),
            },
        })
    }

    /// The user's live sessions (neither revoked nor expired), newest first.
    pub async fn live_sessions(&self, user_id: UserId) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = session::Entity::find()
            .filter(session::Column::UserId.eq(user_id.as_uuid()))
            .filter(session::Column::RevokedAt.is_null())
            .filter(session::Column::RefreshExpiresAt.gt(Utc::now()))
            .order_by(session::Column::CreatedAt, Order::Desc)
            .order_by(session::Column::Id, Order::Desc)
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(SessionRecord {
                    id: row.id.into(),
                    app: App::parse(&row.app)
                        .map_err(|_| StoreError::Corrupt("stored session app".to_owned()))?,
                    created_at: row.created_at,
                    last_used_at: row.last_used_at.unwrap_or(row.created_at),
                })
            })
            .collect()
    }

    /// The app a session was started from, while it is live.
    pub async fn session_app(&self, session_id: SessionId) -> Result<Option<App>, StoreError> {
        let Some(row) = session::Entity::find_by_id(session_id.as_uuid())
            .unique(&self.db)
            .await?
        else {
            return Ok(None);
        };
        App::parse(&row.app)
            .map(Some)
            .map_err(|_| StoreError::Corrupt("stored session app".to_owned()))
    }

    /// Ends one of the user's sessions; `false` when the user has no such live session.
    pub async fn revoke_user_session(
        &self,
        user_id: UserId,
        session_id: SessionId,
    ) -> Result<bool, StoreError> {
        let revoked = session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(Utc::now()))
            .filter(session::Column::Id.eq(session_id.as_uuid()))
            .filter(session::Column::UserId.eq(user_id.as_uuid()))
            .filter(session::Column::RevokedAt.is_null())
            .exec(&self.writer)
            .await?;
        Ok(revoked.rows_affected == 1)
    }

    /// Records that the session was used now, unless that was recorded less than `every`
    /// ago: the list of sessions may lag by that much, and a busy session costs one write
    /// per `every` at most.
    pub async fn touch_session(
        &self,
        session_id: SessionId,
        every: Duration,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        let stale = chrono::Duration::from_std(every)
            .ok()
            .and_then(|every| now.checked_sub_signed(every))
            .unwrap_or(now);
        session::Entity::update_many()
            .col_expr(session::Column::LastUsedAt, Expr::value(now))
            .filter(session::Column::Id.eq(session_id.as_uuid()))
            .filter(
                session::Column::LastUsedAt
                    .is_null()
                    .or(session::Column::LastUsedAt.lt(stale)),
            )
            .exec(&self.writer)
            .await?;
        Ok(())
    }

    /// A token that is no session's current one: a retired token means reuse.
    async fn check_retired(&self, presented_hash: &str) -> Result<RefreshOutcome, StoreError> {
        let Some(retired) = retired_refresh_token::Entity::find_by_id(presented_hash.to_owned())
            .unique(&self.db)
            .await?
        else {
            return Ok(RefreshOutcome::Invalid);
        };
        let session_id = SessionId::from(retired.session_id);
        self.revoke_session(session_id).await?;
        Ok(RefreshOutcome::Reused(session_id))
    }
}

fn expiry(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|ttl| now.checked_add_signed(ttl))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
