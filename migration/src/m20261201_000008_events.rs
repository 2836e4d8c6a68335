use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Events and the server API (contract v1.4): `events` is the transactional outbox (one row
/// per user change, written in the change's transaction, with its webhook delivery state);
/// `user_aliases` remembers which user a join kept for every id it removed; a user can be
/// disabled.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .if_not_exists()
                    .col(string_len(Events::Id, 40).primary_key())
                    .col(string_len(Events::EventType, 32))
                    .col(uuid(Events::UserId))
                    .col(timestamp_with_time_zone(Events::CreatedAt))
                    .col(text(Events::Data))
                    .col(integer(Events::Attempts).default(0))
                    .col(timestamp_with_time_zone(Events::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(Events::LeaseUntil))
                    .col(string_len_null(Events::LeaseOwner, 40))
                    .col(timestamp_with_time_zone_null(Events::DeliveredAt))
                    .to_owned(),
            )
            .await?;
        // The worker's scan: undelivered events in order, and a user's earlier pending ones.
        manager
            .create_index(
                Index::create()
                    .name("ix_events_pending")
                    .table(Events::Table)
                    .col(Events::DeliveredAt)
                    .col(Events::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_events_user")
                    .table(Events::Table)
                    .col(Events::UserId)
                    .col(Events::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_events_created_at")
                    .table(Events::Table)
                    .col(Events::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UserAliases::Table)
                    .if_not_exists()
                    .col(uuid(UserAliases::RemovedId).primary_key())
                    .col(uuid(UserAliases::KeptId))
                    .col(timestamp_with_time_zone(UserAliases::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_user_aliases_kept")
                    .table(UserAliases::Table)
                    .col(UserAliases::KeptId)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(timestamp_with_time_zone_null(UsersV14::DisabledAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(UsersV14::DisabledAt)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(UserAliases::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Events::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    /// `type` is a keyword in some dialects' tooling; the column says what it holds.
    EventType,
    UserId,
    CreatedAt,
    Data,
    Attempts,
    NextAttemptAt,
    LeaseUntil,
    LeaseOwner,
    DeliveredAt,
}

#[derive(DeriveIden)]
enum UserAliases {
    Table,
    RemovedId,
    KeptId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum UsersV14 {
    DisabledAt,
}
