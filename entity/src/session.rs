//! One signed-in device: its current refresh token (by hash) rotates within it, logout
//! revokes it.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    /// The app the session was started from.
    pub app: String,
    pub created_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
    /// SHA-256 of the one refresh token that is valid for this session now.
    #[sea_orm(unique)]
    pub refresh_token_hash: String,
    pub refresh_expires_at: DateTimeUtc,
    /// Updated at most once a minute; `None` before the first use after the start.
    pub last_used_at: Option<DateTimeUtc>,
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "Cascade")]
    pub user: HasOne<super::user::Entity>,
    #[sea_orm(has_many)]
    pub retired_refresh_tokens: HasMany<super::retired_refresh_token::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
