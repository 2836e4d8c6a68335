use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Adds the key id beside each stored session_key (NULL marks a value written before
/// sealing; the service seals those at start, since only it holds the key), the previous
/// session_key for the grace period after a re-login, and the shared WeChat access token.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite cannot add several in one ALTER TABLE.
        for column in [
            string_len_null(WechatIdentities::SessionKeyKid, 16),
            string_len_null(WechatIdentities::PreviousSessionKey, 255),
            string_len_null(WechatIdentities::PreviousSessionKeyKid, 16),
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
        manager
            .create_table(
                Table::create()
                    .table(WechatAccessTokens::Table)
                    .if_not_exists()
                    .col(string_len(WechatAccessTokens::Appid, 64).primary_key())
                    .col(string_len_null(WechatAccessTokens::SealedToken, 1024))
                    .col(string_len_null(WechatAccessTokens::TokenKid, 16))
                    .col(timestamp_with_time_zone_null(WechatAccessTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(
                        WechatAccessTokens::LeaseUntil,
                    ))
                    .col(timestamp_with_time_zone(WechatAccessTokens::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WechatAccessTokens::Table).to_owned())
            .await?;
        for column in [
            WechatIdentities::PreviousSessionKeyKid,
            WechatIdentities::PreviousSessionKey,
            WechatIdentities::SessionKeyKid,
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

#[derive(DeriveIden)]
enum WechatIdentities {
    Table,
    SessionKeyKid,
    PreviousSessionKey,
    PreviousSessionKeyKid,
}

#[derive(DeriveIden)]
enum WechatAccessTokens {
    Table,
    Appid,
    SealedToken,
    TokenKid,
    ExpiresAt,
    LeaseUntil,
    UpdatedAt,
}
