//! Schema migrations, applied by the service at start and by `cargo run -p migration`.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_users;
mod m20261122_000002_create_wechat_identities;
mod m20261122_000003_create_sessions;
mod m20261122_000004_seal_secrets;
mod m20261201_000005_web_sign_in;
mod m20261201_000006_phone_and_sessions;
mod m20261201_000007_qr_logins;
mod m20261201_000008_events;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_users::Migration),
            Box::new(m20261122_000002_create_wechat_identities::Migration),
            Box::new(m20261122_000003_create_sessions::Migration),
            Box::new(m20261122_000004_seal_secrets::Migration),
            Box::new(m20261201_000005_web_sign_in::Migration),
            Box::new(m20261201_000006_phone_and_sessions::Migration),
            Box::new(m20261201_000007_qr_logins::Migration),
            Box::new(m20261201_000008_events::Migration),
        ]
    }
}
