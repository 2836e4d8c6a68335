//! The app's WeChat access_token, shared by all instances; `lease_until` lets exactly one
//! instance refresh it at a time.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "wechat_access_tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub appid: String,
    /// Sealed like session_keys: the token is a credential for the app's server APIs.
    pub sealed_token: Option<String>,
    pub token_kid: Option<String>,
    pub expires_at: Option<DateTimeUtc>,
    pub lease_until: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
