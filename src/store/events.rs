//! The transactional outbox. A change to a user happens in a [`UserChange`], and the only
//! way to commit one is with the events that describe it: they are written in the same
//! transaction, so a change that rolls back leaves no event and a committed change always
//! has its event. The webhook worker leases pending deliveries here, so of several
//! instances only one delivers an event at a time.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use entity::event;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, DatabaseTransaction, EntityTrait, ExprTrait, Order, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
    sea_query::{Alias, Expr, Query},
};
use tokio::sync::Notify;
use uuid::Uuid;

use super::{Store, StoreError, UserRecord, users::user_in};
use crate::{
    domain::{AppId, UserId},
    events::{StoredEvent, UserEvent},
};

/// A transaction that changes users. Dropping it rolls back; [`UserChange::commit`] is
/// the only way to commit, and it takes the change's events.
pub struct UserChange {
    txn: DatabaseTransaction,
    miniprogram: Option<AppId>,
    written: Arc<Notify>,
}

impl UserChange {
    pub(super) async fn begin(store: &Store) -> Result<Self, StoreError> {
        Ok(Self {
            txn: store.writer.begin().await?,
            miniprogram: store.miniprogram.clone(),
            written: store.events_written.clone(),
        })
    }

    /// The transaction, for the statements of the change.
    pub(super) fn db(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// The user as they are inside this change.
    pub(super) async fn user(&self, id: UserId) -> Result<UserRecord, StoreError> {
        user_in(&self.txn, id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a changed user vanished".to_owned()))
    }

    /// Gives the change up: nothing of it happened.
    pub(super) async fn rollback(self) -> Result<(), StoreError> {
        Ok(self.txn.rollback().await?)
    }

    /// Writes the events and commits them with the change, then wakes this instance's
    /// webhook worker. A change that turned out to change nothing commits with no events.
    pub(super) async fn commit(self, events: Vec<UserEvent>) -> Result<(), StoreError> {
        for event in &events {
            append(&self.txn, event, self.miniprogram.as_ref()).await?;
        }
        self.txn.commit().await?;
        if !events.is_empty() {
            self.written.notify_one();
        }
        Ok(())
    }
}

/// Writes one event inside the transaction of the change it describes. Store code that
/// changes a user goes through [`UserChange::commit`], which calls this.
pub(super) async fn append(
    txn: &DatabaseTransaction,
    event: &UserEvent,
    miniprogram: Option<&AppId>,
) -> Result<String, StoreError> {
    let now = Utc::now();
    let id = format!("evt_{}", Uuid::now_v7().simple());
    event::Entity::insert(event::ActiveModel {
        id: Set(id.clone()),
        event_type: Set(event.event_type().to_owned()),
        user_id: Set(event.user_id().as_uuid()),
        created_at: Set(now),
        data: Set(event.data(miniprogram).to_string()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        lease_until: Set(None),
        lease_owner: Set(None),
        delivered_at: Set(None),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(id)
}

/// A pending delivery this instance holds the lease of.
pub struct LeasedEvent {
    pub event: StoredEvent,
    /// Deliveries tried before this one.
    pub attempts: u32,
}

/// The feed holds back events younger than this: a transaction that took its event id
/// earlier may still be committing, and a reader that paged past that id would never see
/// it. Transactions here last milliseconds; instances' clocks are assumed within a second.
const FEED_SETTLE: Duration = Duration::from_secs(2);

fn stored(model: event::Model) -> StoredEvent {
    StoredEvent {
        id: model.id,
        event_type: model.event_type,
        created_at: model.created_at,
        data: model.data,
    }
}

fn later(now: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(by)
        .ok()
        .and_then(|by| now.checked_add_signed(by))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn earlier(now: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(by)
        .ok()
        .and_then(|by| now.checked_sub_signed(by))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl Store {
    /// Signalled after a commit that wrote events in this process.
    pub fn events_written(&self) -> Arc<Notify> {
        self.events_written.clone()
    }

    /// Leases up to `limit` events that are due for delivery to `owner` for `lease`. An
    /// event is due when it is undelivered, its retry time has come, nobody holds a live
    /// lease on it, and no earlier event of the same user is still undelivered (so a
    /// user's events go out in order).
    pub async fn lease_events(
        &self,
        owner: &str,
        lease: Duration,
        limit: u64,
    ) -> Result<Vec<LeasedEvent>, StoreError> {
        let now = Utc::now();
        let earlier_pending = Alias::new("earlier_pending");
        let blocked = Query::select()
            .expr(Expr::val(1))
            .from_as(event::Entity, earlier_pending.clone())
            .and_where(
                Expr::col((earlier_pending.clone(), event::Column::UserId))
                    .equals((event::Entity, event::Column::UserId)),
            )
            .and_where(Expr::col((earlier_pending.clone(), event::Column::DeliveredAt)).is_null())
            .and_where(
                Expr::col((earlier_pending, event::Column::Id))
                    .lt(Expr::col((event::Entity, event::Column::Id))),
            )
            .to_owned();
        let due = event::Entity::find()
            .filter(event::Column::DeliveredAt.is_null())
            .filter(event::Column::NextAttemptAt.lte(now))
            .filter(
                event::Column::LeaseUntil
                    .is_null()
                    .or(event::Column::LeaseUntil.lt(now)),
            )
            .filter(Expr::not_exists(blocked))
            .order_by(event::Column::Id, Order::Asc)
            .limit(limit)
            .all(&self.db)
            .await?;
        let mut leased = Vec::with_capacity(due.len());
        for candidate in due {
            // The conditional update is the arbiter between instances: it matches only
            // while nobody else holds a live lease.
            let taken = event::Entity::update_many()
                .col_expr(event::Column::LeaseOwner, Expr::value(owner))
                .col_expr(event::Column::LeaseUntil, Expr::value(later(now, lease)))
                .filter(event::Column::Id.eq(candidate.id.as_str()))
                .filter(event::Column::DeliveredAt.is_null())
                .filter(
                    event::Column::LeaseUntil
                        .is_null()
                        .or(event::Column::LeaseUntil.lt(now)),
                )
                .exec(&self.writer)
                .await?;
            if taken.rows_affected == 1 {
                leased.push(LeasedEvent {
                    attempts: u32::try_from(candidate.attempts).unwrap_or(0),
                    event: stored(candidate),
                });
            }
        }
        Ok(leased)
    }

    /// The receiver took the event. Only the lease holder records it.
    pub async fn mark_delivered(&self, id: &str, owner: &str) -> Result<(), StoreError> {
        event::Entity::update_many()
            .col_expr(event::Column::DeliveredAt, Expr::value(Utc::now()))
            .col_expr(
                event::Column::Attempts,
                Expr::col(event::Column::Attempts).add(1),
            )
            .col_expr(
                event::Column::LeaseUntil,
                Expr::value(None::<DateTime<Utc>>),
            )
            .col_expr(event::Column::LeaseOwner, Expr::value(None::<String>))
            .filter(event::Column::Id.eq(id))
            .filter(event::Column::LeaseOwner.eq(owner))
            .exec(&self.writer)
            .await?;
        Ok(())
    }

    /// The attempt failed: try again after `delay`, from any instance.
    pub async fn retry_event(
        &self,
        id: &str,
        owner: &str,
        delay: Duration,
    ) -> Result<(), StoreError> {
        event::Entity::update_many()
            .col_expr(
                event::Column::NextAttemptAt,
                Expr::value(later(Utc::now(), delay)),
            )
            .col_expr(
                event::Column::Attempts,
                Expr::col(event::Column::Attempts).add(1),
            )
            .col_expr(
                event::Column::LeaseUntil,
                Expr::value(None::<DateTime<Utc>>),
            )
            .col_expr(event::Column::LeaseOwner, Expr::value(None::<String>))
            .filter(event::Column::Id.eq(id))
            .filter(event::Column::LeaseOwner.eq(owner))
            .exec(&self.writer)
            .await?;
        Ok(())
    }

    /// Events after the one `after` names, oldest first: the feed. Ids sort in the order
    /// events were written, so paging by the last id seen covers every event once.
    pub async fn events_after(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut query = event::Entity::find()
            .filter(event::Column::CreatedAt.lte(earlier(Utc::now(), FEED_SETTLE)))
            .order_by(event::Column::Id, Order::Asc)
            .limit(limit);
        if let Some(after) = after {
            query = query.filter(event::Column::Id.gt(after));
        }
        Ok(query.all(&self.db).await?.into_iter().map(stored).collect())
    }

    /// The latest events, newest first (the sandbox page).
    pub async fn latest_events(&self, limit: u64) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(event::Entity::find()
            .order_by(event::Column::Id, Order::Desc)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(stored)
            .collect())
    }

    /// Deletes events older than `retention`. While webhooks are configured an
    /// undelivered event stays until it is delivered: nothing is lost to a long outage.
    pub async fn purge_events(
        &self,
        retention: Duration,
        webhooks: bool,
    ) -> Result<u64, StoreError> {
        let mut delete = event::Entity::delete_many()
            .filter(event::Column::CreatedAt.lt(earlier(Utc::now(), retention)));
        if webhooks {
            delete = delete.filter(event::Column::DeliveredAt.is_not_null());
        }
        Ok(delete.exec(&self.writer).await?.rows_affected)
    }
}
