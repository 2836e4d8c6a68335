//! A `wx.login` code we have exchanged (or are exchanging), known only by its hash, so a
//! code posted again within the replay window reuses the first exchange.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_codes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub code_hash: String,
    /// Set once the exchange succeeded.
    pub user_id: Option<Uuid>,
    pub claimed_at: DateTimeUtc,
    pub completed_at: Option<DateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
