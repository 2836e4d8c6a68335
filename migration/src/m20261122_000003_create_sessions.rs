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
                    .table(Sessions::Table)
                    .if_not_exists()
                    .col(uuid(Sessions::Id).primary_key())
                    .col(uuid(Sessions::UserId))
                    .col(timestamp_with_time_zone(Sessions::CreatedAt))
                    .col(timestamp_with_time_zone_null(Sessions::RevokedAt))
                    .col(string_len_uniq(Sessions::RefreshTokenHash, 64))
                    .col(timestamp_with_time_zone(Sessions::RefreshExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sessions_user")
                            .from(Sessions::Table, Sessions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_sessions_user_id")
                    .table(Sessions::Table)
                    .col(Sessions::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RetiredRefreshTokens::Table)
                    .if_not_exists()
                    .col(string_len(RetiredRefreshTokens::TokenHash, 64).primary_key())
                    .col(uuid(RetiredRefreshTokens::SessionId))
                    .col(timestamp_with_time_zone(RetiredRefreshTokens::RetiredAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_retired_refresh_tokens_session")
                            .from(RetiredRefreshTokens::Table, RetiredRefreshTokens::SessionId)
                            .to(Sessions::Table, Sessions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LoginCodes::Table)
                    .if_not_exists()
                    .col(string_len(LoginCodes::CodeHash, 64).primary_key())
                    .col(uuid_null(LoginCodes::UserId))
                    .col(timestamp_with_time_zone(LoginCodes::ClaimedAt))
                    .col(timestamp_with_time_zone_null(LoginCodes::CompletedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_login_codes_claimed_at")
                    .table(LoginCodes::Table)
                    .col(LoginCodes::ClaimedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            LoginCodes::Table.into_iden(),
            RetiredRefreshTokens::Table.into_iden(),
            Sessions::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    UserId,
    CreatedAt,
    RevokedAt,
    RefreshTokenHash,
    RefreshExpiresAt,
}

#[derive(DeriveIden)]
enum RetiredRefreshTokens {
    Table,
    TokenHash,
    SessionId,
    RetiredAt,
}

#[derive(DeriveIden)]
enum LoginCodes {
    Table,
    CodeHash,
    UserId,
    ClaimedAt,
    CompletedAt,
}
