use sea_orm_migration::{prelude::*, schema::*, sea_orm::DatabaseBackend};

use crate::m20261122_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Computer sign-in by the mini program (contract v1.3): one row per sign-in a computer
/// started, shared by every instance (the database is the truth; each instance only keeps
/// wake-ups in memory), and the mini-program code image, made once per sign-in.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(QrLogins::Table)
                    .if_not_exists()
                    .col(string_len(QrLogins::Id, 32).primary_key())
                    .col(string_len(QrLogins::SecretHash, 64))
                    .col(string_len(QrLogins::Status, 16))
                    // Bumped by every change, so a poll can tell that something happened.
                    .col(big_integer(QrLogins::Version).default(0))
                    .col(string_len_null(QrLogins::RequestedIp, 64))
                    .col(string_len_null(QrLogins::RequestedUserAgent, 512))
                    .col(timestamp_with_time_zone(QrLogins::CreatedAt))
                    .col(timestamp_with_time_zone(QrLogins::ExpiresAt))
                    .col(uuid_null(QrLogins::ScannedBy))
                    .col(timestamp_with_time_zone_null(QrLogins::ScannedAt))
                    .col(timestamp_with_time_zone_null(QrLogins::AnsweredAt))
                    .col(timestamp_with_time_zone_null(QrLogins::HandedOutAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_qr_logins_scanned_by")
                            .from(QrLogins::Table, QrLogins::ScannedBy)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_qr_logins_expires_at")
                    .table(QrLogins::Table)
                    .col(QrLogins::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        // WeChat's codes run to a few hundred KB at large widths: MySQL's BLOB stops at 64 KB.
        let mut png = ColumnDef::new(QrLoginImages::Png);
        png.not_null();
        if manager.get_database_backend() == DatabaseBackend::MySql {
            png.custom(Alias::new("MEDIUMBLOB"));
        } else {
            png.blob();
        }
        manager
            .create_table(
                Table::create()
                    .table(QrLoginImages::Table)
                    .if_not_exists()
                    .col(string_len(QrLoginImages::Id, 32).primary_key())
                    .col(png)
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_qr_login_images_qr_login")
                            .from(QrLoginImages::Table, QrLoginImages::Id)
                            .to(QrLogins::Table, QrLogins::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(QrLoginImages::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(QrLogins::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum QrLogins {
    Table,
    Id,
    SecretHash,
    Status,
    Version,
    RequestedIp,
    RequestedUserAgent,
    CreatedAt,
    ExpiresAt,
    ScannedBy,
    ScannedAt,
    AnsweredAt,
    HandedOutAt,
}

#[derive(DeriveIden)]
enum QrLoginImages {
    Table,
    Id,
    Png,
}
