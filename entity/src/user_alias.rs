//! An id a join removed, and the user it became.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_aliases")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub removed_id: Uuid,
    pub kept_id: Uuid,
    pub created_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
