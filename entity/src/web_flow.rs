//! A browser sign-in through WeChat's authorise page: its single-use `state` (by hash), the
//! browser it is bound to (the cookie's hash), and, once WeChat sent the browser back, the
//! one-time ticket (by hash) the page trades for tokens.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "web_flows")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub state_hash: String,
    pub browser_hash: String,
    pub app: String,
    pub scope: String,
    pub return_to: String,
    pub code_challenge: Option<String>,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub spent_at: Option<DateTimeUtc>,
    #[sea_orm(unique)]
    pub ticket_hash: Option<String>,
    pub user_id: Option<Uuid>,
    pub new_user: Option<bool>,
    pub ticket_expires_at: Option<DateTimeUtc>,
    pub ticket_redeemed_at: Option<DateTimeUtc>,
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "Cascade")]
    pub user: HasOne<super::user::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
