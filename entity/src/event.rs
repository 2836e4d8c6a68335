//! The transactional outbox: one row per user change, written in the change's own
//! transaction, with the state of its webhook delivery.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    /// `evt_` + a UUIDv7: sorts in the order events were written.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub event_type: String,
    /// The user the event is about (the kept one for a join): deliveries of one user go
    /// out in order.
    pub user_id: Uuid,
    pub created_at: DateTimeUtc,
    /// The event's `data` object as JSON text.
    #[sea_orm(column_type = "Text")]
    pub data: String,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    /// While in the future, `lease_owner` (one instance's worker) is delivering it.
    pub lease_until: Option<DateTimeUtc>,
    pub lease_owner: Option<String>,
    pub delivered_at: Option<DateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
