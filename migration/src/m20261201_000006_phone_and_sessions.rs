use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Phone binding and sessions people can see (contract v1.3): every user's phone in E.164
/// form (`users.phone_e164`, the one form numbers are compared in), the SMS codes sent to
/// prove a phone (by hash only), and when each session was last used.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(string_len_null(NewUserColumns::PhoneE164, 16))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_users_phone_e164")
                    .table(Users::Table)
                    .col(NewUserColumns::PhoneE164)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .add_column(timestamp_with_time_zone_null(Sessions::LastUsedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PhoneVerifications::Table)
                    .if_not_exists()
                    .col(uuid(PhoneVerifications::Id).primary_key())
                    .col(uuid(PhoneVerifications::UserId))
                    .col(string_len(PhoneVerifications::PhoneE164, 16))
                    .col(string_len(PhoneVerifications::CodeHash, 64))
                    .col(integer(PhoneVerifications::FailedAttempts).default(0))
                    .col(timestamp_with_time_zone(PhoneVerifications::CreatedAt))
                    .col(timestamp_with_time_zone(PhoneVerifications::ExpiresAt))
                    .col(timestamp_with_time_zone_null(PhoneVerifications::SpentAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_phone_verifications_user")
                            .from(PhoneVerifications::Table, PhoneVerifications::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_phone_verifications_phone")
                    .table(PhoneVerifications::Table)
                    .col(PhoneVerifications::PhoneE164)
                    .col(PhoneVerifications::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_phone_verifications_user")
                    .table(PhoneVerifications::Table)
                    .col(PhoneVerifications::UserId)
                    .col(PhoneVerifications::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PhoneVerifications::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .drop_column(Sessions::LastUsedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("ix_users_phone_e164")
                    .table(Users::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(NewUserColumns::PhoneE164)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum NewUserColumns {
    PhoneE164,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum PhoneVerifications {
    Table,
    Id,
    UserId,
    PhoneE164,
    CodeHash,
    FailedAttempts,
    CreatedAt,
    ExpiresAt,
    SpentAt,
}
