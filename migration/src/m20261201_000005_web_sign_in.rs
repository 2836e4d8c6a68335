use sea_orm_migration::{prelude::*, schema::*, sea_orm::DatabaseBackend};

use crate::m20261122_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Web sign-in (contract v1.2): identities of the Official Account and the website have no
/// session_key, so the column becomes nullable; each identity and session records which app
/// it belongs to; session_keys are ordered by when WeChat handed them out; browser flows
/// (state, ticket) live in `web_flows` so any instance can finish them.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Sqlite {
            rebuild_identities_on_sqlite(manager).await?;
        } else {
            manager
                .alter_table(
                    Table::alter()
                        .table(WechatIdentities::Table)
                        .modify_column(string_len_null(WechatIdentities::SessionKey, 255))
                        .to_owned(),
                )
                .await?;
            for column in [
                string_len(WechatIdentities::App, 32)
                    .default("miniprogram")
                    .to_owned(),
                big_integer(WechatIdentities::SessionKeyExchangedUs)
                    .default(0)
                    .to_owned(),
                big_integer_null(WechatIdentities::PreviousSessionKeyExchangedUs),
            ] {
                manager
                    .alter_table(
                        Table::alter()
                            .table(WechatIdentities::Table)
                            .add_column(column)
                            .to_owned(),
                    )
                    .await?;
            }
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .add_column(string_len(Sessions::App, 32).default("miniprogram"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebFlows::Table)
                    .if_not_exists()
                    .col(string_len(WebFlows::StateHash, 64).primary_key())
                    .col(string_len(WebFlows::BrowserHash, 64))
                    .col(string_len(WebFlows::App, 32))
                    .col(string_len(WebFlows::Scope, 32))
                    .col(string_len(WebFlows::ReturnTo, 2048))
                    .col(string_len_null(WebFlows::CodeChallenge, 64))
                    .col(timestamp_with_time_zone(WebFlows::CreatedAt))
                    .col(timestamp_with_time_zone(WebFlows::ExpiresAt))
                    .col(timestamp_with_time_zone_null(WebFlows::SpentAt))
                    .col(string_len_null(WebFlows::TicketHash, 64).unique_key())
                    .col(uuid_null(WebFlows::UserId))
                    .col(boolean_null(WebFlows::NewUser))
                    .col(timestamp_with_time_zone_null(WebFlows::TicketExpiresAt))
                    .col(timestamp_with_time_zone_null(WebFlows::TicketRedeemedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_web_flows_user")
                            .from(WebFlows::Table, WebFlows::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_web_flows_expires_at")
                    .table(WebFlows::Table)
                    .col(WebFlows::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebFlows::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .drop_column(Sessions::App)
                    .to_owned(),
            )
            .await?;
        for column in [
            WechatIdentities::App,
            WechatIdentities::SessionKeyExchangedUs,
            WechatIdentities::PreviousSessionKeyExchangedUs,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(WechatIdentities::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// SQLite cannot relax a NOT NULL column in place: build the new table, copy, swap.
async fn rebuild_identities_on_sqlite(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(NewWechatIdentities::Table)
                .col(uuid(WechatIdentities::Id).primary_key())
                .col(uuid(WechatIdentities::UserId))
                .col(string_len(WechatIdentities::App, 32).default("miniprogram"))
                .col(string_len(WechatIdentities::Appid, 64))
                .col(string_len(WechatIdentities::Openid, 128))
                .col(string_len_null(WechatIdentities::Unionid, 64))
                .col(string_len_null(WechatIdentities::SessionKey, 255))
                .col(string_len_null(WechatIdentities::SessionKeyKid, 16))
                .col(big_integer(WechatIdentities::SessionKeyExchangedUs).default(0))
                .col(string_len_null(WechatIdentities::PreviousSessionKey, 255))
                .col(string_len_null(WechatIdentities::PreviousSessionKeyKid, 16))
                .col(big_integer_null(
                    WechatIdentities::PreviousSessionKeyExchangedUs,
                ))
                .col(timestamp_with_time_zone(
                    WechatIdentities::SessionKeyUpdatedAt,
                ))
                .col(timestamp_with_time_zone(WechatIdentities::CreatedAt))
                .col(timestamp_with_time_zone(WechatIdentities::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_wechat_identities_user")
                        .from(NewWechatIdentities::Table, WechatIdentities::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
    let connection = manager.get_connection();
    connection
        .execute_unprepared(
            "INSERT INTO wechat_identities_new (id, user_id, appid, openid, unionid, \
             session_key, session_key_kid, previous_session_key, previous_session_key_kid, \
             session_key_updated_at, created_at, updated_at) \
             SELECT id, user_id, appid, openid, unionid, session_key, session_key_kid, \
             previous_session_key, previous_session_key_kid, session_key_updated_at, \
             created_at, updated_at FROM wechat_identities",
        )
        .await?;
    manager
        .drop_table(Table::drop().table(WechatIdentities::Table).to_owned())
        .await?;
    manager
        .rename_table(
            Table::rename()
                .table(NewWechatIdentities::Table, WechatIdentities::Table)
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

#[derive(DeriveIden)]
enum WechatIdentities {
    Table,
    Id,
    UserId,
    App,
    Appid,
    Openid,
    Unionid,
    SessionKey,
    SessionKeyKid,
    SessionKeyExchangedUs,
    PreviousSessionKey,
    PreviousSessionKeyKid,
    PreviousSessionKeyExchangedUs,
    SessionKeyUpdatedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum NewWechatIdentities {
    #[sea_orm(iden = "wechat_identities_new")]
    Table,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    App,
}

#[derive(DeriveIden)]
enum WebFlows {
    Table,
    StateHash,
    BrowserHash,
    App,
    Scope,
    ReturnTo,
    CodeChallenge,
    CreatedAt,
    ExpiresAt,
    SpentAt,
    TicketHash,
    UserId,
    NewUser,
    TicketExpiresAt,
    TicketRedeemedAt,
}
