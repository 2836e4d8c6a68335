//! Users and their WeChat identities, with each identity's sealed session_key.

use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::{
    user,
    wechat_identity::{self, StoredSessionKey},
};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, QueryFilter, QuerySelect,
    TransactionTrait,
    sea_query::{Expr, Query, SelectStatement},
};
use uuid::Uuid;

use super::{Store, StoreError, UniqueRow, is_unique_violation};
use crate::{
    crypto::Sealed,
    domain::{AppId, OpenId, SessionKey, UnionId, UserId},
};

/// How long the replaced session_key is still tried: a mini program that calls `wx.login`
/// while a getPhoneNumber popup is open sends data sealed with the old key.
const PREVIOUS_KEY_GRACE: Duration = Duration::from_secs(300);
const RESEAL_BATCH: u64 = 500;

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

/// The caller's identity in one app with the keys their encrypted data may be sealed with:
/// the current session_key, and the one it replaced while the grace period lasts.
pub struct SessionKeys {
    pub openid: OpenId,
    pub current: SessionKey,
    pub previous: Option<SessionKey>,
}

pub struct ProfileUpdate {
    pub nickname: Option<String>,
    pub avatar_url: Option<String>,
    pub unionid: Option<UnionId>,
}

/// Binds a sealed session_key to its identity: a value copied into another row won't open.
fn seal_context(appid: &str, openid: &str) -> Vec<u8> {
    format!("session_key\0{appid}\0{openid}").into_bytes()
}

impl Store {
    /// Remembers a login: creates the user and identity on first sight, otherwise replaces
    /// the stored session_key. Safe under any number of concurrent logins of one openid.
    pub async fn record_login(&self, session: &NewSession<'_>) -> Result<LoginRecord, StoreError> {
        // A lost race to create the identity means it exists now: the next round updates it.
        for _ in 0..3 {
            if self.replace_session_key(session).await? {
                let mut user = self.user_by_openid(session.appid, session.openid).await?;
                if let Some(unionid) = session.unionid
                    && user.unionid.is_none()
                {
                    attach_unionid(&self.writer, user.id, unionid).await?;
                    user = self.user_by_openid(session.appid, session.openid).await?;
                }
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
        let query = user_view(appid)
            .and_where(Expr::col((user::Entity, user::Column::Id)).eq(id.as_uuid()))
            .to_owned();
        self.query_user(&query).await
    }

    async fn user_by_openid(
        &self,
        appid: &AppId,
        openid: &OpenId,
    ) -> Result<UserRecord, StoreError> {
        let query = user_view(appid)
            .and_where(
                Expr::col((wechat_identity::Entity, wechat_identity::Column::Openid))
                    .eq(openid.as_str()),
            )
            .to_owned();
        self.query_user(&query)
            .await?
            .ok_or_else(|| StoreError::Corrupt("identity without a user".to_owned()))
    }

    /// Runs a [`user_view`] query.
    pub(super) async fn query_user(
        &self,
        query: &SelectStatement,
    ) -> Result<Option<UserRecord>, StoreError> {
        // query_all, not query_one: it steps the statement to completion, so on SQLite the
        // connection's read transaction ends with it instead of lingering until the cached
        // statement is next reset. These queries match at most one row.
        let Some(row) = self.db.query_all(query).await?.into_iter().next() else {
            return Ok(None);
        };
        let corrupt = |what: &str| StoreError::Corrupt(format!("stored {what}"));
        Ok(Some(UserRecord {
            id: row.try_get::<Uuid>("", "id")?.into(),
            openid: OpenId::parse(&row.try_get::<String>("", "openid")?)
                .map_err(|_| corrupt("openid"))?,
            unionid: row
                .try_get::<Option<String>>("", "unionid")?
                .as_deref()
                .map(UnionId::parse)
                .transpose()
                .map_err(|_| corrupt("unionid"))?,
            phone_number: row.try_get("", "phone_number")?,
            nickname: row.try_get("", "nickname")?,
            avatar_url: row.try_get("", "avatar_url")?,
        }))
    }

    pub async fn session_keys(
        &self,
        id: UserId,
        appid: &AppId,
    ) -> Result<Option<SessionKeys>, StoreError> {
        let Some(identity) = self.identity_of(id, appid).await? else {
            return Ok(None);
        };
        let context = seal_context(&identity.appid, &identity.openid);
        let current = self.open_session_key(
            &identity.session_key,
            identity.session_key_kid.as_deref(),
            &context,
        )?;
        let in_grace = Utc::now()
            .signed_duration_since(identity.session_key_updated_at)
            .to_std()
            .is_ok_and(|age| age <= PREVIOUS_KEY_GRACE);
        let previous = match (&identity.previous_session_key, in_grace) {
            (Some(sealed), true) => Some(self.open_session_key(
                sealed,
                identity.previous_session_key_kid.as_deref(),
                &context,
            )?),
            _ => None,
        };
        Ok(Some(SessionKeys {
            openid: parse_openid(&identity.openid)?,
            current,
            previous,
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
            .exec(&self.writer)
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
        update.exec(&self.writer).await?;
        if let Some(unionid) = &profile.unionid {
            attach_unionid(&self.writer, id, unionid).await?;
        }
        Ok(())
    }

    /// Seals session_keys stored in plaintext (before sealing existed) or under a retired
    /// key. Returns how many were sealed.
    pub(super) async fn reseal_session_keys(&self) -> Result<u64, StoreError> {
        let current_kid = self.sealer.current_key_id().to_owned();
        let mut resealed = 0;
        loop {
            let batch = wechat_identity::Entity::find()
                .filter(
                    wechat_identity::Column::SessionKeyKid
                        .is_null()
                        .or(wechat_identity::Column::SessionKeyKid.ne(current_kid.as_str())),
                )
                .limit(RESEAL_BATCH)
                .all(&self.db)
                .await?;
            if batch.is_empty() {
                return Ok(resealed);
            }
            for identity in &batch {
                let context = seal_context(&identity.appid, &identity.openid);
                let key = self.open_session_key(
                    &identity.session_key,
                    identity.session_key_kid.as_deref(),
                    &context,
                )?;
                let sealed = self.sealer.seal(key.expose_text().as_bytes(), &context);
                let previous = match &identity.previous_session_key {
                    Some(old) => self
                        .open_session_key(
                            old,
                            identity.previous_session_key_kid.as_deref(),
                            &context,
                        )
                        .ok()
                        .map(|key| self.sealer.seal(key.expose_text().as_bytes(), &context)),
                    None => None,
                };
                wechat_identity::Entity::update_many()
                    .col_expr(
                        wechat_identity::Column::SessionKey,
                        Expr::value(sealed.value),
                    )
                    .col_expr(
                        wechat_identity::Column::SessionKeyKid,
                        Expr::value(sealed.key_id),
                    )
                    .col_expr(
                        wechat_identity::Column::PreviousSessionKey,
                        Expr::value(previous.as_ref().map(|p| p.value.clone())),
                    )
                    .col_expr(
                        wechat_identity::Column::PreviousSessionKeyKid,
                        Expr::value(previous.map(|p| p.key_id)),
                    )
                    .filter(wechat_identity::Column::Id.eq(identity.id))
                    .filter(wechat_identity::Column::SessionKey.eq(identity.session_key.0.as_str()))
                    .exec(&self.writer)
                    .await?;
                resealed += 1;
            }
        }
    }

    fn open_session_key(
        &self,
        stored: &StoredSessionKey,
        key_id: Option<&str>,
        context: &[u8],
    ) -> Result<SessionKey, StoreError> {
        let text = match key_id {
            // Written before sealing existed; sealed at the next start.
            None => stored.0.clone(),
            Some(key_id) => {
                let opened = self.sealer.open(
                    &Sealed {
                        key_id: key_id.to_owned(),
                        value: stored.0.clone(),
                    },
                    context,
                )?;
                String::from_utf8(opened)
                    .map_err(|_| StoreError::Corrupt("session_key".to_owned()))?
            }
        };
        SessionKey::parse(&text).map_err(|_| StoreError::Corrupt("stored session_key".to_owned()))
    }

    fn seal_session_key(&self, session: &NewSession<'_>) -> Sealed {
        self.sealer.seal(
            session.session_key.expose_text().as_bytes(),
            &seal_context(session.appid.as_str(), session.openid.as_str()),
        )
    }

    async fn identity_of(
        &self,
        id: UserId,
        appid: &AppId,
    ) -> Result<Option<wechat_identity::Model>, StoreError> {
        Ok(wechat_identity::Entity::find()
            .filter(wechat_identity::Column::UserId.eq(id.as_uuid()))
            .filter(wechat_identity::Column::Appid.eq(appid.as_str()))
            .unique(&self.db)
            .await?)
    }

    /// Stores a new session_key on an existing identity, keeping the replaced one for the
    /// grace period. `false` when the identity does not exist yet.
    async fn replace_session_key(&self, session: &NewSession<'_>) -> Result<bool, StoreError> {
        let now = Utc::now();
        let sealed = self.seal_session_key(session);
        // The previous-key columns come first: MySQL applies SET assignments left to right,
        // so they must copy the old values before those are overwritten.
        let mut update = wechat_identity::Entity::update_many()
            .col_expr(
                wechat_identity::Column::PreviousSessionKey,
                Expr::col(wechat_identity::Column::SessionKey),
            )
            .col_expr(
                wechat_identity::Column::PreviousSessionKeyKid,
                Expr::col(wechat_identity::Column::SessionKeyKid),
            )
            .col_expr(
                wechat_identity::Column::SessionKey,
                Expr::value(sealed.value),
            )
            .col_expr(
                wechat_identity::Column::SessionKeyKid,
                Expr::value(sealed.key_id),
            )
            .col_expr(
                wechat_identity::Column::SessionKeyUpdatedAt,
                Expr::value(now),
            )
            .col_expr(wechat_identity::Column::UpdatedAt, Expr::value(now))
            .filter(wechat_identity::Column::Appid.eq(session.appid.as_str()))
            .filter(wechat_identity::Column::Openid.eq(session.openid.as_str()));
        if let Some(unionid) = session.unionid {
            update = update.col_expr(
                wechat_identity::Column::Unionid,
                Expr::value(unionid.as_str()),
            );
        }
        // The key always changes, so a matching row always counts as affected (MySQL too).
        Ok(update.exec(&self.writer).await?.rows_affected > 0)
    }

    /// Creates the identity (and, unless its unionid already names one, the user) in one
    /// transaction. `None` when a concurrent login created the identity first.
    async fn try_create_identity(
        &self,
        session: &NewSession<'_>,
    ) -> Result<Option<LoginRecord>, StoreError> {
        let now = Utc::now();
        let sealed = self.seal_session_key(session);
        let txn = self.writer.begin().await?;
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
            session_key: Set(StoredSessionKey(sealed.value)),
            session_key_kid: Set(Some(sealed.key_id)),
            previous_session_key: Set(None),
            previous_session_key_kid: Set(None),
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
        // Read back rather than trust the affected-row count, which MySQL (FOUND_ROWS)
        // reports as 1 for a conflicting `ON DUPLICATE KEY UPDATE`.
        let winner = wechat_identity::Entity::find()
            .filter(wechat_identity::Column::Appid.eq(session.appid.as_str()))
            .filter(wechat_identity::Column::Openid.eq(session.openid.as_str()))
            .unique(&txn)
            .await?;
        if winner.is_none_or(|w| w.id != identity_id) {
            txn.rollback().await?;
            return Ok(None);
        }
        txn.commit().await?;
        let user = self.user_by_openid(session.appid, session.openid).await?;
        Ok(Some(LoginRecord { user, new_user }))
    }
}

/// Users as one app sees them: the user's columns and the openid of their identity in
/// `appid`. Callers add the condition that picks the user.
pub(super) fn user_view(appid: &AppId) -> SelectStatement {
    Query::select()
        .columns([
            (user::Entity, user::Column::Id),
            (user::Entity, user::Column::Unionid),
            (user::Entity, user::Column::PhoneNumber),
            (user::Entity, user::Column::Nickname),
            (user::Entity, user::Column::AvatarUrl),
        ])
        .column((wechat_identity::Entity, wechat_identity::Column::Openid))
        .from(user::Entity)
        .inner_join(
            wechat_identity::Entity,
            Expr::col((wechat_identity::Entity, wechat_identity::Column::UserId))
                .equals((user::Entity, user::Column::Id))
                .and(
                    Expr::col((wechat_identity::Entity, wechat_identity::Column::Appid))
                        .eq(appid.as_str()),
                ),
        )
        .to_owned()
}

fn new_user_row(id: UserId, unionid: Option<&UnionId>, now: DateTime<Utc>) -> user::ActiveModel {
    user::ActiveModel {
        id: Set(id.as_uuid()),
        unionid: Set(unionid.map(|u| u.as_str().to_owned())),
        phone_number: Set(None),
        nickname: Set(None),
        avatar_url: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

async fn insert_user(
    db: &impl ConnectionTrait,
    unionid: Option<&UnionId>,
    now: DateTime<Utc>,
) -> Result<UserId, StoreError> {
    let id = UserId::generate();
    user::Entity::insert(new_user_row(id, unionid, now))
        .exec_without_returning(db)
        .await?;
    Ok(id)
}

/// The user a unionid already belongs to, or a new one holding it.
async fn user_for_unionid(
    db: &impl ConnectionTrait,
    unionid: &UnionId,
    now: DateTime<Utc>,
) -> Result<(UserId, bool), StoreError> {
    let existing = || async {
        user::Entity::find()
            .filter(user::Column::Unionid.eq(unionid.as_str()))
            .unique(db)
            .await
    };
    if let Some(user) = existing().await? {
        return Ok((user.id.into(), false));
    }
    let id = UserId::generate();
    user::Entity::insert(new_user_row(id, Some(unionid), now))
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
        Err(error) if is_unique_violation(&error) => {
            tracing::warn!(user_id = %id, "unionid already belongs to another user; not merging");
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

fn parse_openid(raw: &str) -> Result<OpenId, StoreError> {
    OpenId::parse(raw).map_err(|_| StoreError::Corrupt("stored openid".to_owned()))
}
