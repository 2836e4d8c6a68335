//! The mini-program code of one computer sign-in, made once and served from here.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "qr_login_images")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub png: Vec<u8>,
}

impl ActiveModelBehavior for ActiveModel {}
