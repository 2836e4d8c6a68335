//! A person, whatever WeChat apps they signed in through.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Open Platform id shared by all apps bound to one account; joins identities.
    #[sea_orm(unique)]
    pub unionid: Option<String>,
    pub phone_number: Option<String>,
    /// `phone_number` in E.164 form, the form numbers are compared in (phone joins).
    pub phone_e164: Option<String>,
    pub nickname: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub avatar_url: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Set while the team's backend has disabled the user: no login path lets them in.
    pub disabled_at: Option<DateTimeUtc>,
    #[sea_orm(has_many)]
    pub wechat_identities: HasMany<super::wechat_identity::Entity>,
    #[sea_orm(has_many)]
    pub sessions: HasMany<super::session::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
