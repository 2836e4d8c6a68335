//! Proving a phone number: the SMS codes sent (by hash only) with the send limits they
//! count towards, and binding a proven number to a user — joining the user who already
//! holds it through the same merge a unionid join uses.

use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::{phone_verification, user, wechat_identity};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, ExprTrait, Order, QueryFilter, QueryOrder,
    QuerySelect, sea_query::Expr,
};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::{Store, StoreError, UniqueRow, UserChange, users::join_users};
use crate::{
    crypto,
    domain::{PhoneNumber, UserId},
    events::{JoinReason, UserEvent},
};

/// One code per phone per this long.
pub const RESEND_INTERVAL: Duration = Duration::from_secs(60);
/// Codes per phone (whoever asks) and per user in any 24 hours: SMS costs money, and a
/// phone must not be bombed with codes.
const PER_PHONE_PER_DAY: usize = 10;
const PER_USER_PER_DAY: usize = 20;
const DAY: Duration = Duration::from_secs(24 * 3600);
/// Wrong tries that spend a code: 5 guesses of a million.
const MAX_FAILED_ATTEMPTS: i32 = 5;

/// Whether a code may be sent now.
pub enum SendPermit {
    /// The code is stored (by hash) under this id; it counts once it was sent.
    Granted(Uuid),
    /// A limit is reached; asking again helps after this long.
    Limited { retry_after: Duration },
}

/// What binding a proven phone number did.
pub enum PhoneBinding {
    /// The number is now the caller's.
    Bound,
    /// Another user held the number: the caller's user was joined into it.
    Joined { kept: UserId, removed: UserId },
    /// Another user holds the number and both have an identity of the same app.
    InUse,
}

/// The stored form of a code: bound to its row, its user and its number, so a hash copied
/// elsewhere proves nothing.
fn code_hash(id: Uuid, user: UserId, phone: &PhoneNumber, code: &str) -> String {
    crypto::sha256_hex(&format!(
        "phone-code\0{id}\0{user}\0{}\0{code}",
        phone.as_str()
    ))
}

fn ago(now: DateTime<Utc>, span: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(span)
        .ok()
        .and_then(|span| now.checked_sub_signed(span))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// How long until `since + span` has passed, at least a second.
fn wait_until(since: DateTime<Utc>, span: Duration, now: DateTime<Utc>) -> Duration {
    let elapsed = now
        .signed_duration_since(since)
        .to_std()
        .unwrap_or_default();
    span.saturating_sub(elapsed).max(Duration::from_secs(1))
}

impl Store {
    /// Stores a new code for `user` and `phone` unless a send limit says no. Limits count
    /// every code sent in the last 24 hours, whoever asked for it.
    ///
    /// Safe under concurrent sends on any database without locks: the code is stored
    /// first, then the limits are checked against every other stored code; of requests
    /// racing for the same number each sees the others' rows, so at most one goes on (all
    /// may back off — a 429 is the safe side of SMS bombing).
    pub async fn begin_phone_verification(
        &self,
        user: UserId,
        phone: &PhoneNumber,
        code: &str,
        ttl: Duration,
    ) -> Result<SendPermit, StoreError> {
        let now = Utc::now();
        // Most refused sends are refused here, without a write.
        if let Some(retry_after) = self.send_limit(user, phone, now, None).await? {
            return Ok(SendPermit::Limited { retry_after });
        }
        let id = Uuid::now_v7();
        phone_verification::Entity::insert(phone_verification::ActiveModel {
            id: Set(id),
            user_id: Set(user.as_uuid()),
            phone_e164: Set(phone.as_str().to_owned()),
            code_hash: Set(code_hash(id, user, phone, code)),
            failed_attempts: Set(0),
            created_at: Set(now),
            expires_at: Set(
                now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::minutes(5))
            ),
            spent_at: Set(None),
        })
        .exec_without_returning(&self.writer)
        .await?;
        if let Some(retry_after) = self.send_limit(user, phone, now, Some(id)).await? {
            self.phone_code_not_sent(id).await?;
            return Ok(SendPermit::Limited { retry_after });
        }
        Ok(SendPermit::Granted(id))
    }

    /// How long until a code may be sent to `phone` for `user`, judged by the stored codes
    /// other than `own`; `None` when one may be sent now.
    async fn send_limit(
        &self,
        user: UserId,
        phone: &PhoneNumber,
        now: DateTime<Utc>,
        own: Option<Uuid>,
    ) -> Result<Option<Duration>, StoreError> {
        let day_ago = ago(now, DAY);
        let sent_times = |column: phone_verification::Column, value: sea_orm::Value| {
            let mut query = phone_verification::Entity::find()
                .select_only()
                .column(phone_verification::Column::CreatedAt)
                .filter(column.eq(value))
                .filter(phone_verification::Column::CreatedAt.gt(day_ago))
                .order_by(phone_verification::Column::CreatedAt, Order::Asc);
            if let Some(own) = own {
                query = query.filter(phone_verification::Column::Id.ne(own));
            }
            query.into_tuple::<DateTime<Utc>>().all(&self.writer)
        };
        let to_phone =
            sent_times(phone_verification::Column::PhoneE164, phone.as_str().into()).await?;
        let by_user = sent_times(phone_verification::Column::UserId, user.as_uuid().into()).await?;
        // The newest other code, even one stored a moment after ours, holds the number.
        Ok(
            if let Some(last) = to_phone.last()
                && *last > ago(now, RESEND_INTERVAL)
            {
                Some(wait_until(*last, RESEND_INTERVAL, now))
            } else if to_phone.len() >= PER_PHONE_PER_DAY {
                Some(wait_until(
                    to_phone[to_phone.len() - PER_PHONE_PER_DAY],
                    DAY,
                    now,
                ))
            } else if by_user.len() >= PER_USER_PER_DAY {
                Some(wait_until(
                    by_user[by_user.len() - PER_USER_PER_DAY],
                    DAY,
                    now,
                ))
            } else {
                None
            },
        )
    }

    /// The code went out: the codes sent before it to this user and number are spent.
    pub async fn phone_code_sent(
        &self,
        id: Uuid,
        user: UserId,
        phone: &PhoneNumber,
    ) -> Result<(), StoreError> {
        phone_verification::Entity::update_many()
            .col_expr(phone_verification::Column::SpentAt, Expr::value(Utc::now()))
            .filter(phone_verification::Column::UserId.eq(user.as_uuid()))
            .filter(phone_verification::Column::PhoneE164.eq(phone.as_str()))
            .filter(phone_verification::Column::Id.ne(id))
            .filter(phone_verification::Column::SpentAt.is_null())
            .exec(&self.writer)
            .await?;
        Ok(())
    }

    /// The provider did not send the code: nothing of it is kept, and it counts towards no
    /// limit.
    pub async fn phone_code_not_sent(&self, id: Uuid) -> Result<(), StoreError> {
        phone_verification::Entity::delete_by_id(id)
            .exec(&self.writer)
            .await?;
        Ok(())
    }

    /// Whether `code` is the live code of `user` for `phone`. A right code is spent; a
    /// wrong one counts, and the fifth wrong one spends the code.
    pub async fn use_phone_code(
        &self,
        user: UserId,
        phone: &PhoneNumber,
        code: &str,
    ) -> Result<bool, StoreError> {
        let now = Utc::now();
        let Some(live) = phone_verification::Entity::find()
            .filter(phone_verification::Column::UserId.eq(user.as_uuid()))
            .filter(phone_verification::Column::PhoneE164.eq(phone.as_str()))
            .filter(phone_verification::Column::SpentAt.is_null())
            .filter(phone_verification::Column::ExpiresAt.gt(now))
            .order_by(phone_verification::Column::CreatedAt, Order::Desc)
            .unique(&self.writer)
            .await?
        else {
            return Ok(false);
        };
        let expected = code_hash(live.id, user, phone, code);
        if bool::from(expected.as_bytes().ct_eq(live.code_hash.as_bytes())) {
            // Of two requests racing with the right code, one spends it.
            let spent = phone_verification::Entity::update_many()
                .col_expr(phone_verification::Column::SpentAt, Expr::value(now))
                .filter(phone_verification::Column::Id.eq(live.id))
                .filter(phone_verification::Column::SpentAt.is_null())
                .exec(&self.writer)
                .await?;
            return Ok(spent.rows_affected == 1);
        }
        phone_verification::Entity::update_many()
            .col_expr(
                phone_verification::Column::FailedAttempts,
                Expr::col(phone_verification::Column::FailedAttempts).add(1),
            )
            .filter(phone_verification::Column::Id.eq(live.id))
            .exec(&self.writer)
            .await?;
        phone_verification::Entity::update_many()
            .col_expr(phone_verification::Column::SpentAt, Expr::value(now))
            .filter(phone_verification::Column::Id.eq(live.id))
            .filter(phone_verification::Column::SpentAt.is_null())
            .filter(phone_verification::Column::FailedAttempts.gte(MAX_FAILED_ATTEMPTS))
            .exec(&self.writer)
            .await?;
        Ok(false)
    }

    /// Gives `user` the proven number. When another user holds it (the oldest, should
    /// several), the caller is joined into that user — unless both have an identity of
    /// the same app: one person has one identity per app, so those are two people.
    pub async fn bind_phone(
        &self,
        user: UserId,
        phone: &PhoneNumber,
    ) -> Result<PhoneBinding, StoreError> {
        let change = UserChange::begin(self).await?;
        let txn = change.db();
        let holder = user::Entity::find()
            .filter(user::Column::PhoneE164.eq(phone.as_str()))
            .filter(user::Column::Id.ne(user.as_uuid()))
            .order_by(user::Column::CreatedAt, Order::Asc)
            .order_by(user::Column::Id, Order::Asc)
            .unique(txn)
            .await?;
        let Some(holder) = holder else {
            // A number the user already has (as proven, or as WeChat gave it) changes
            // nothing, so it says nothing either.
            let updated = user::Entity::update_many()
                .col_expr(user::Column::PhoneNumber, Expr::value(phone.as_str()))
                .col_expr(user::Column::PhoneE164, Expr::value(phone.as_str()))
                .col_expr(user::Column::UpdatedAt, Expr::value(Utc::now()))
                .filter(user::Column::Id.eq(user.as_uuid()))
                .filter(
                    user::Column::PhoneNumber
                        .is_null()
                        .or(user::Column::PhoneNumber.ne(phone.as_str()))
                        .or(user::Column::PhoneE164.is_null())
                        .or(user::Column::PhoneE164.ne(phone.as_str())),
                )
                .exec(txn)
                .await?;
            let events = if updated.rows_affected > 0 {
                vec![UserEvent::Updated {
                    user: change.user(user).await?,
                    changed: vec!["phone_number"],
                }]
            } else {
                Vec::new()
            };
            change.commit(events).await?;
            return Ok(PhoneBinding::Bound);
        };
        let Some(caller) = user::Entity::find_by_id(user.as_uuid()).unique(txn).await? else {
            return Err(StoreError::Corrupt("the caller's user is gone".to_owned()));
        };
        let apps = |owner: Uuid| {
            wechat_identity::Entity::find()
                .select_only()
                .column(wechat_identity::Column::App)
                .filter(wechat_identity::Column::UserId.eq(owner))
                .into_tuple::<String>()
                .all(txn)
        };
        let (caller_apps, holder_apps) = (apps(caller.id).await?, apps(holder.id).await?);
        if caller_apps.iter().any(|app| holder_apps.contains(app)) {
            change.rollback().await?;
            return Ok(PhoneBinding::InUse);
        }
        // The phone's holder is kept: the number proved them first.
        let (kept, removed) = join_users(&change, holder, caller, None).await?;
        let event = UserEvent::Joined {
            kept: change.user(kept).await?,
            removed_user_id: removed,
            reason: JoinReason::Phone,
        };
        change.commit(vec![event]).await?;
        Ok(PhoneBinding::Joined { kept, removed })
    }

    /// Codes older than a day count towards no limit any more.
    pub async fn purge_phone_verifications(&self) -> Result<(), StoreError> {
        let now = Utc::now();
        phone_verification::Entity::delete_many()
            .filter(phone_verification::Column::CreatedAt.lt(ago(now, DAY)))
            .filter(phone_verification::Column::ExpiresAt.lt(now))
            .exec(&self.writer)
            .await?;
        Ok(())
    }
}
