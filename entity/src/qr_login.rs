//! A computer's sign-in by the mini program: its public id (the code's `scene`), the hash
//! of the secret only the computer knows, where it stands, and who scanned it.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "qr_logins")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub secret_hash: String,
    pub status: String,
    pub version: i64,
    pub requested_ip: Option<String>,
    pub requested_user_agent: Option<String>,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub scanned_by: Option<Uuid>,
    pub scanned_at: Option<DateTimeUtc>,
    pub answered_at: Option<DateTimeUtc>,
    pub handed_out_at: Option<DateTimeUtc>,
    #[sea_orm(belongs_to, from = "scanned_by", to = "id", on_delete = "Cascade")]
    pub user: HasOne<super::user::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
