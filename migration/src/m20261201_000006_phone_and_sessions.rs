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
        backfill_phone_e164(manager).await?;
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

/// Numbers saved from WeChat before this migration get their E.164 form, so a number
/// proven by SMS later finds them. WeChat's `phoneNumber` is the bare national number for
/// mainland China and carries the country code otherwise; what does not read as either is
/// left without one (it joins nothing).
async fn backfill_phone_e164(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let connection = manager.get_connection();
    let numbers = connection
        .query_all(
            &Query::select()
                .distinct()
                .column(Users::PhoneNumber)
                .from(Users::Table)
                .and_where(Expr::col(Users::PhoneNumber).is_not_null())
                .to_owned(),
        )
        .await?;
    for row in numbers {
        let number: String = row.try_get("", "phone_number")?;
        let Some(e164) = e164_of_wechat_number(&number) else {
            continue;
        };
        manager
            .exec_stmt(
                Query::update()
                    .table(Users::Table)
                    .value(NewUserColumns::PhoneE164, e164)
                    .and_where(Expr::col(Users::PhoneNumber).eq(number))
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

fn e164_of_wechat_number(number: &str) -> Option<String> {
    let compact: String = number.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let digits = compact.strip_prefix('+').unwrap_or(&compact);
    if !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
        return None;
    }
    if !compact.starts_with('+') && digits.len() == 11 && digits.starts_with('1') {
        return Some(format!("+86{digits}"));
    }
    (compact.starts_with('+') && (8..=15).contains(&digits.len())).then(|| format!("+{digits}"))
}

#[cfg(test)]
mod tests {
    use super::e164_of_wechat_number;

    #[test]
    fn wechat_numbers_get_their_e164_form() {
        assert_eq!(
            e164_of_wechat_number("13800138000").as_deref(),
            Some("+8613800138000")
        );
        assert_eq!(
            e164_of_wechat_number("+1 415-555-0123").as_deref(),
            Some("+14155550123")
        );
        assert_eq!(e164_of_wechat_number("4155550123"), None);
        assert_eq!(e164_of_wechat_number("abc"), None);
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
