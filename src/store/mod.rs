//! Persistence: the only module that knows sea-orm and the entities. It speaks domain types.

use std::time::Duration;

use chrono::Utc;
use entity::{
    user,
    wechat_identity::{self, StoredSessionKey},
};
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DbErr, EntityTrait, QueryFilter, SqlErr, TransactionTrait, sea_query::Expr,
};
use uuid::Uuid;

use crate::domain::{AppId, OpenId, SessionKey, UnionId, UserId};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    #[error("stored data is not well-formed: {0}")]
    Corrupt(String),
    #[error("cannot create the database directory: {0}")]
    Directory(String),
    #[error("the login kept conflicting with concurrent logins")]
    Contended,
}

/// A user as one WeChat app sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: UserId,
    pub openid: OpenId,
    pub unionid: Option<UnionId>,
    pub phone_number: Option<String>,
    pub nickname: Option<String>,
    pub avatar_url: Option<String>,
}

/// What a successful `jscode2session` tells us, ready to be remembered.
pub struct NewSession<'a> {
    pub appid: &'a AppId,
    pub openid: &'a OpenId,
    pub session_key: &'a SessionKey,
    pub unionid: Option<&'a UnionId>,
}

pub struct LoginRecord {
    pub user: UserRecord,
    pub new_user: bool,
}

/// The caller's identity in one app, with the key their encrypted data is sealed with.
pub struct SessionRecord {
    pub openid: OpenId,
    pub session_key: SessionKey,
}

pub struct ProfileUpdate {
    pub nickname: Option<String>,
    pub avatar_url: Option<String>,
    pub unionid: Option<UnionId>,
}

#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    /// Connects and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        create_sqlite_directory(url)?;
        let mut options = ConnectOptions::new(url);
        options
            .max_connections(16)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(5))
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(|opts| {
                use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
                // WAL lets readers run beside the writer; the busy timeout makes
                // concurrent writers queue instead of failing with "database is locked".
                opts.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
            });
        let db = Database::connect(options).await?;
        Migrator::up(&db, None).await?;
        Ok(Self { db })
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        Ok(self.db.ping().await?)
    }

    /// Remembers a login: creates the user and identity on first sight, otherwise replaces
    /// the stored session_key. Safe under any number of concurrent logins of one openid.
    pub async fn record_login(&self, session: &NewSession<'_>) -> Result<LoginRecord, StoreError> {
        // A lost race to create the identity means it exists now: the next round updates it.
        for _ in 0..3 {
            if let Some(identity) = self.find_identity(session.appid, session.openid).await? {
                self.refresh_identity(&identity, session).await?;
                let user = self
                    .expect_user(identity.user_id.into(), session.appid)
                    .await?;
                return Ok(LoginRecord {
                    user,
                    new_user: false,
                });
            }
            if let Some(created) = self.try_create_identity(session).await? {
                return Ok(created);
            }
        }
        Err(StoreError::Contended)
    }

    /// The user as seen from `appid`, or `None` when they have no identity there.
    pub async fn find_user(
        &self,
        id: UserId,
        appid: &AppId,
    ) -> Result<Option<UserRecord>, StoreError> {
        let Some(identity) = self.identity_of(id, appid).await? else {
            return Ok(None);
        };
        let Some(user) = user::Entity::find_by_id(id.as_uuid()).one(&self.db).await? else {
            return Ok(None);
        };
        Ok(Some(to_record(user, &identity)?))
    }

    pub async fn session_of(
        &self,
        id: UserId,
        appid: &AppId,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let Some(identity) = self.identity_of(id, appid).await? else {
            return Ok(None);
        };
        Ok(Some(SessionRecord {
            openid: parse_openid(&identity.openid)?,
            session_key: SessionKey::parse(&identity.session_key.0)
                .map_err(|_| StoreError::Corrupt("stored session_key".to_owned()))?,
        }))
    }

    pub async fn save_phone_number(
        &self,
        id: UserId,
        phone_number: &str,
    ) -> Result<(), StoreError> {
        user::Entity::update_many()
            .col_expr(user::Column::PhoneNumber, Expr::value(phone_number))
            .col_expr(user::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(user::Column::Id.eq(id.as_uuid()))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    pub async fn save_profile(
        &self,
        id: UserId,
        profile: &ProfileUpdate,
    ) -> Result<(), StoreError> {
        let mut update = user::Entity::update_many()
            .col_expr(user::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(user::Column::Id.eq(id.as_uuid()));
        if let Some(nickname) = &profile.nickname {
            update = update.col_expr(user::Column::Nickname, Expr::value(nickname.as_str()));
        }
        if let Some(avatar_url) = &profile.avatar_url {
            update = update.col_expr(user::Column::AvatarUrl, Expr::value(avatar_url.as_str()));
        }
        update.exec(&self.db).await?;
        if let Some(unionid) = &profile.unionid {
            attach_unionid(&self.db, id, unionid).await?;
        }
        Ok(())
    }

    async fn find_identity(
        &self,
        appid: &AppId,
        openid: &OpenId,
    ) -> Result<Option<wechat_identity::Model>, StoreError> {
        Ok(wechat_identity::Entity::find()
            .filter(wechat_identity::Column::Appid.eq(appid.as_str()))
            .filter(wechat_identity::Column::Openid.eq(openid.as_str()))
            .one(&self.db)
            .await?)
    }

    async fn identity_of(
        &self,
        id: UserId,
        appid: &AppId,
    ) -> Result<Option<wechat_identity::Model>, StoreError> {
        Ok(wechat_identity::Entity::find()
            .filter(wechat_identity::Column::UserId.eq(id.as_uuid()))
            .filter(wechat_identity::Column::Appid.eq(appid.as_str()))
            .one(&self.db)
            .await?)
    }

    async fn expect_user(&self, id: UserId, appid: &AppId) -> Result<UserRecord, StoreError> {
        self.find_user(id, appid)
            .await?
            .ok_or_else(|| StoreError::Corrupt("identity without a user".to_owned()))
    }

    async fn refresh_identity(
        &self,
        identity: &wechat_identity::Model,
        session: &NewSession<'_>,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        let mut update = wechat_identity::Entity::update_many()
            .col_expr(
                wechat_identity::Column::SessionKey,
                Expr::value(session.session_key.expose_text()),
            )
            .col_expr(
                wechat_identity::Column::SessionKeyUpdatedAt,
                Expr::value(now),
            )
            .col_expr(wechat_identity::Column::UpdatedAt, Expr::value(now))
            .filter(wechat_identity::Column::Id.eq(identity.id));
        if let Some(unionid) = session.unionid {
            update = update.col_expr(
                wechat_identity::Column::Unionid,
                Expr::value(unionid.as_str()),
            );
        }
        update.exec(&self.db).await?;
        if let Some(unionid) = session.unionid {
            attach_unionid(&self.db, identity.user_id.into(), unionid).await?;
        }
        Ok(())
    }

    /// Creates the identity (and, unless its unionid already names one, the user) in one
    /// transaction. `None` when a concurrent login created the identity first.
    async fn try_create_identity(
        &self,
        session: &NewSession<'_>,
    ) -> Result<Option<LoginRecord>, StoreError> {
        let now = Utc::now();
        let txn = self.db.begin().await?;
        let (user_id, new_user) = match session.unionid {
            Some(unionid) => user_for_unionid(&txn, unionid, now).await?,
            None => (insert_user(&txn, None, now).await?, true),
        };
        let identity_id = Uuid::now_v7();
        wechat_identity::Entity::insert(wechat_identity::ActiveModel {
            id: Set(identity_id),
            user_id: Set(user_id.as_uuid()),
            appid: Set(session.appid.as_str().to_owned()),
            openid: Set(session.openid.as_str().to_owned()),
            unionid: Set(session.unionid.map(|u| u.as_str().to_owned())),
            session_key: Set(StoredSessionKey(
                session.session_key.expose_text().to_owned(),
            )),
            session_key_updated_at: Set(now),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .on_conflict_do_nothing_on([
            wechat_identity::Column::Appid,
            wechat_identity::Column::Openid,
        ])
        .exec_without_returning(&txn)
        .await?;
        // Read back rather than trust the affected-row count, which MySQL reports
        // differently for `ON DUPLICATE KEY UPDATE`.
        let winner = wechat_identity::Entity::find()
            .filter(wechat_identity::Column::Appid.eq(session.appid.as_str()))
            .filter(wechat_identity::Column::Openid.eq(session.openid.as_str()))
            .one(&txn)
            .await?;
        if winner.is_none_or(|w| w.id != identity_id) {
            txn.rollback().await?;
            return Ok(None);
        }
        txn.commit().await?;
        let user = self.expect_user(user_id, session.appid).await?;
        Ok(Some(LoginRecord { user, new_user }))
    }
}

async fn insert_user(
    db: &impl ConnectionTrait,
    unionid: Option<&UnionId>,
    now: chrono::DateTime<Utc>,
) -> Result<UserId, StoreError> {
    let id = UserId::generate();
    user::Entity::insert(user::ActiveModel {
        id: Set(id.as_uuid()),
        unionid: Set(unionid.map(|u| u.as_str().to_owned())),
        phone_number: Set(None),
        nickname: Set(None),
        avatar_url: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    Ok(id)
}

/// The user a unionid already belongs to, or a new one holding it.
async fn user_for_unionid(
    db: &impl ConnectionTrait,
    unionid: &UnionId,
    now: chrono::DateTime<Utc>,
) -> Result<(UserId, bool), StoreError> {
    let existing = || async {
        user::Entity::find()
            .filter(user::Column::Unionid.eq(unionid.as_str()))
            .one(db)
            .await
    };
    if let Some(user) = existing().await? {
        return Ok((user.id.into(), false));
    }
    let id = UserId::generate();
    user::Entity::insert(user::ActiveModel {
        id: Set(id.as_uuid()),
        unionid: Set(Some(unionid.as_str().to_owned())),
        phone_number: Set(None),
        nickname: Set(None),
        avatar_url: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict_do_nothing_on([user::Column::Unionid])
    .exec_without_returning(db)
    .await?;
    let holder = existing()
        .await?
        .ok_or_else(|| StoreError::Corrupt("unionid vanished during login".to_owned()))?;
    Ok((holder.id.into(), holder.id == id.as_uuid()))
}

/// Records a unionid on a user who has none yet. A unionid that already belongs to another
/// user is left where it is: merging two accounts is a decision for a human, not a login.
async fn attach_unionid(
    db: &impl ConnectionTrait,
    id: UserId,
    unionid: &UnionId,
) -> Result<(), StoreError> {
    let result = user::Entity::update_many()
        .col_expr(user::Column::Unionid, Expr::value(unionid.as_str()))
        .filter(user::Column::Id.eq(id.as_uuid()))
        .filter(user::Column::Unionid.is_null())
        .exec(db)
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(error) if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            tracing::warn!(user_id = %id, "unionid already belongs to another user; not merging");
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

/// SQLite creates the database file (`mode=rwc`) but not its directory, so the default
/// `sqlite://data/wechat-auth.db` would fail on a fresh checkout without this.
fn create_sqlite_directory(url: &str) -> Result<(), StoreError> {
    let Some(path) = url.strip_prefix("sqlite://") else {
        return Ok(());
    };
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path.starts_with(":memory:") {
        return Ok(());
    }
    match std::path::Path::new(path).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Directory(format!("{}: {e}", dir.display()))),
        _ => Ok(()),
    }
}

fn parse_openid(raw: &str) -> Result<OpenId, StoreError> {
    OpenId::parse(raw).map_err(|_| StoreError::Corrupt("stored openid".to_owned()))
}

fn to_record(
    user: user::Model,
    identity: &wechat_identity::Model,
) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        id: user.id.into(),
        openid: parse_openid(&identity.openid)?,
        unionid: user
            .unionid
            .as_deref()
            .map(UnionId::parse)
            .transpose()
            .map_err(|_| StoreError::Corrupt("stored unionid".to_owned()))?,
        phone_number: user.phone_number,
        nickname: user.nickname,
        avatar_url: user.avatar_url,
    })
}
