use sea_orm::{ConnectionTrait, Statement};

use crate::helpers::{APPID, TestDatabase, dump_database, seal_with, spawn_app, spawn_app_on};

#[tokio::test]
async fn a_copy_of_the_database_reveals_no_session_key() {
    let app = spawn_app().await;
    let alice = app.login_ok("alice-1").await;
    app.login_ok("alice-2").await;
    let dump = dump_database(&app.database_url()).await;
    let key = app.wechat.session_key(&alice.openid);
    assert!(
        !dump.contains(key.expose_text()),
        "session_key stored in the clear"
    );
    assert!(!dump.contains(&alice.token));
}

#[tokio::test]
async fn session_keys_stored_before_sealing_are_sealed_at_start_and_still_work() {
    let database = TestDatabase::create().await;
    let legacy_key = "tiihtNczf5v6AKRyjwEUhQ==";
    {
        use migration::MigratorTrait;
        let db = sea_orm::Database::connect(&database.url).await.unwrap();
        // The schema as it was before session_keys were sealed, with one user in it.
        migration::Migrator::up(&db, Some(2)).await.unwrap();
        let backend = db.get_database_backend();
        let now = chrono::Utc::now();
        let user_id = uuid::Uuid::now_v7();
        let sql = |text: &str| match backend {
            sea_orm::DatabaseBackend::Postgres => {
                let mut n = 0;
                text.chars()
                    .map(|c| {
                        if c == '?' {
                            n += 1;
                            format!("${n}")
                        } else {
                            c.to_string()
                        }
                    })
                    .collect()
            }
            _ => text.to_owned(),
        };
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            sql("INSERT INTO users (id, created_at, updated_at) VALUES (?, ?, ?)"),
            [user_id.into(), now.into(), now.into()],
        ))
        .await
        .unwrap();
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            sql("INSERT INTO wechat_identities (id, user_id, appid, openid, session_key, session_key_updated_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
            [
                uuid::Uuid::now_v7().into(),
                user_id.into(),
                APPID.into(),
                "o_alice".into(),
                legacy_key.into(),
                now.into(),
                now.into(),
                now.into(),
            ],
        ))
        .await
        .unwrap();
        db.close().await.unwrap();
    }

    let app = spawn_app_on(database).await;

    assert!(
        !dump_database(&app.database_url())
            .await
            .contains(legacy_key)
    );
    // The migrated key opened correctly: it is now the previous key, and data sealed with
    // it decrypts during the grace period after this login.
    let alice = app.login_ok("alice-1").await;
    let legacy = wechat_auth::domain::SessionKey::parse(legacy_key).unwrap();
    let phone = crate::helpers::phone_payload();
    let response = app
        .post_json(
            "/api/v1/wechat/phone-number",
            &seal_with(&legacy, &phone),
            Some(&alice.token),
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
}
