use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WechatIdentities::Table)
                    .if_not_exists()
                    .col(uuid(WechatIdentities::Id).primary_key())
                    .col(uuid(WechatIdentities::UserId))
                    .col(string_len(WechatIdentities::Appid, 64))
                    .col(string_len(WechatIdentities::Openid, 128))
                    .col(string_len_null(WechatIdentities::Unionid, 64))
                    .col(string_len(WechatIdentities::SessionKey, 255))
                    .col(timestamp_with_time_zone(
                        WechatIdentities::SessionKeyUpdatedAt,
                    ))
                    .col(timestamp_with_time_zone(WechatIdentities::CreatedAt))
                    .col(timestamp_with_time_zone(WechatIdentities::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_wechat_identities_user")
                            .from(WechatIdentities::Table, WechatIdentities::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_wechat_identities_appid_openid")
                    .table(WechatIdentities::Table)
                    .col(WechatIdentities::Appid)
                    .col(WechatIdentities::Openid)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_wechat_identities_user_id")
                    .table(WechatIdentities::Table)
                    .col(WechatIdentities::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WechatIdentities::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum WechatIdentities {
    Table,
    Id,
    UserId,
    Appid,
    Openid,
    Unionid,
    SessionKey,
    SessionKeyUpdatedAt,
    CreatedAt,
    UpdatedAt,
}
