//! Users and their WeChat identities, with each mini-program identity's sealed
//! session_key. The one way an identity finds or creates its user, and the one way two
//! users become one, live here: every login path and every join goes through them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::{
    login_code, phone_verification, session, user, web_flow,
    wechat_identity::{self, StoredSessionKey},
};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, ExprTrait, Order, QueryFilter,
    QuerySelect, TransactionTrait,
    sea_query::{Expr, Query, SelectStatement},
};
use uuid::Uuid;

use super::{Store, StoreError, UniqueRow, is_unique_violation};
use crate::{
    crypto::Sealed,
    domain::{App, AppId, OpenId, PhoneNumber, SessionKey, UnionId, UserId},
};

/// How long the replaced session_key is still tried: a mini program that calls `wx.login`
/// while a getPhoneNumber popup is open sends data sealed with the old key.
const PREVIOUS_KEY_GRACE: Duration = Duration::from_secs(300);
const RESEAL_BATCH: u64 = 500;

/// One (appid, openid) of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRecord {
    pub app: App,
    pub appid: AppId,
    pub openid: OpenId,
}

/// A user with their identities, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: UserId,
    pub unionid: Option<UnionId>,
    pub phone_number: Option<String>,
    pub nickname: Option<String>,
    pub avatar_url: Option<String>,
    pub identities: Vec<IdentityRecord>,
}

impl UserRecord {
    /// The user's openid in the app `appid` names, if they have signed in there.
    pub fn openid_in(&self, appid: &AppId) -> Option<&OpenId> {
        self.identities
            .iter()
            .find(|identity| &identity.appid == appid)
            .map(|identity| &identity.openid)
    }
}

/// A session_key from `jscode2session`, stamped with when WeChat handed it out.
pub struct ExchangedKey<'a> {
    pub key: &'a SessionKey,
    /// Microseconds since the epoch, strictly increasing within this process.
    pub exchanged_us: i64,
}

/// What a login learned about a person from WeChat, ready to be matched to a user.
pub struct IdentityClaim<'a> {
    pub app: App,
    pub appid: &'a AppId,
    pub openid: &'a OpenId,
    pub unionid: Option<&'a UnionId>,
    /// Only the mini program has one.
    pub session_key: Option<ExchangedKey<'a>>,
    pub profile: Option<&'a ProfileUpdate>,
}

/// The user an identity belongs to after a login.
pub struct Resolved {
    pub user_id: UserId,
    pub new_user: bool,
    /// A user this login joined into `user_id`; that id no longer exists.
    pub removed: Option<UserId>,
}

/// The caller's identity in one app with the keys their encrypted data may be sealed with:
/// the current session_key, and the one it replaced while the grace period lasts.
pub struct SessionKeys {
    pub openid: OpenId,
    pub current: SessionKey,
    pub previous: Option<SessionKey>,
}

/// Profile fields to save; `None` leaves a field as it is.
#[derive(Default)]
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
    /// Finds the user an identity belongs to: by the identity itself, else by its unionid
    /// (adding the identity to that user), else a new user. A unionid that arrives for a
    /// user who has none, and that another user already holds, joins the two. Safe under
    /// any number of concurrent logins of one identity.
    pub async fn resolve_identity(
        &self,
        claim: &IdentityClaim<'_>,
    ) -> Result<Resolved, StoreError> {
        // A lost race to create the identity means it exists now: the next round finds it.
        for _ in 0..3 {
            let resolved = match self.identity(claim.appid, claim.openid).await? {
                Some(identity) => Some(self.update_identity(&identity, claim).await?),
                None => self.try_create_identity(claim).await?,
            };
            if let Some(resolved) = resolved {
                if let Some(profile) = claim.profile {
                    self.save_profile_fields(resolved.user_id, profile).await?;
                }
                return Ok(resolved);
            }
        }
        Err(StoreError::Contended)
    }

    async fn update_identity(
        &self,
        identity: &wechat_identity::Model,
        claim: &IdentityClaim<'_>,
    ) -> Result<Resolved, StoreError> {
        if let Some(key) = &claim.session_key {
            self.store_session_key(identity.id, claim, key).await?;
        }
        let user_id = UserId::from(identity.user_id);
        // An identity that already carries this unionid had it attached to its user then.
        let Some(unionid) = claim
            .unionid
            .filter(|unionid| identity.unionid.as_deref() != Some(unionid.as_str()))
        else {
            return Ok(Resolved {
                user_id,
                new_user: false,
                removed: None,
            });
        };
        wechat_identity::Entity::update_many()
            .col_expr(
                wechat_identity::Column::Unionid,
                Expr::value(unionid.as_str()),
            )
            .filter(wechat_identity::Column::Id.eq(identity.id))
            .exec(&self.writer)
            .await?;
        let (user_id, removed) = self.attach_unionid(user_id, unionid).await?;
        Ok(Resolved {
            user_id,
            new_user: false,
            removed,
        })
    }

    /// Gives `user` the unionid unless they already have one. When another user holds it,
    /// the two are one person: they are joined, and the kept user's id is returned with
    /// the one that is gone.
    pub async fn attach_unionid(
        &self,
        user: UserId,
        unionid: &UnionId,
    ) -> Result<(UserId, Option<UserId>), StoreError> {
        for _ in 0..3 {
            let txn = self.writer.begin().await?;
            let Some(current) = user::Entity::find_by_id(user.as_uuid())
                .unique(&txn)
                .await?
            else {
                return Err(StoreError::Corrupt("identity without a user".to_owned()));
            };
            if current.unionid.is_some() {
                // A user keeps the unionid they have: WeChat never changes one.
                return Ok((user, None));
            }
            let holder = user::Entity::find()
                .filter(user::Column::Unionid.eq(unionid.as_str()))
                .unique(&txn)
                .await?;
            let outcome = match holder {
                Some(holder) => {
                    let (keep, remove) = older_first(current, holder);
                    let (kept, removed) = join_users(&txn, keep, remove, Some(unionid)).await?;
                    (kept, Some(removed))
                }
                None => {
                    let set = user::Entity::update_many()
                        .col_expr(user::Column::Unionid, Expr::value(unionid.as_str()))
                        .col_expr(user::Column::UpdatedAt, Expr::value(Utc::now()))
                        .filter(user::Column::Id.eq(user.as_uuid()))
                        .filter(user::Column::Unionid.is_null())
                        .exec(&txn)
                        .await;
                    match set {
                        Ok(_) => (user, None),
                        // Another login gave a user this unionid meanwhile: join next round.
                        Err(error) if is_unique_violation(&error) => continue,
                        Err(error) => return Err(error.into()),
                    }
                }
            };
            txn.commit().await?;
            return Ok(outcome);
        }
        Err(StoreError::Contended)
    }

    /// Makes two users one, as a proven shared phone number or unionid says they are.
    pub async fn join(&self, a: UserId, b: UserId) -> Result<(UserId, UserId), StoreError> {
        let txn = self.writer.begin().await?;
        let (Some(a), Some(b)) = (
            user::Entity::find_by_id(a.as_uuid()).unique(&txn).await?,
            user::Entity::find_by_id(b.as_uuid()).unique(&txn).await?,
        ) else {
            return Err(StoreError::Corrupt(
                "a user to join does not exist".to_owned(),
            ));
        };
        let (keep, remove) = older_first(a, b);
        let joined = join_users(&txn, keep, remove, None).await?;
        txn.commit().await?;
        Ok(joined)
    }

    /// The user with their identities, or `None` when there is no such user.
    pub async fn find_user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError> {
        let query = user_view()
            .and_where(Expr::col((user::Entity, user::Column::Id)).eq(id.as_uuid()))
            .to_owned();
        self.query_user(&query).await
    }

    /// Runs a [`user_view`] query that matches one user.
    pub(super) async fn query_user(
        &self,
        query: &SelectStatement,
    ) -> Result<Option<UserRecord>, StoreError> {
        // query_all steps the statement to completion, so on SQLite the connection's read
        // transaction ends with it instead of lingering until the cached statement is next
        // reset. One row per identity of the one user.
        let rows = self.db.query_all(query).await?;
        let corrupt = |what: &str| StoreError::Corrupt(format!("stored {what}"));
        let mut rows = rows.into_iter();
        let Some(first) = rows.next() else {
            return Ok(None);
        };
        let mut user = UserRecord {
            id: first.try_get::<Uuid>("", "id")?.into(),
            unionid: first
                .try_get::<Option<String>>("", "unionid")?
                .as_deref()
                .map(UnionId::parse)
                .transpose()
                .map_err(|_| corrupt("unionid"))?,
            phone_number: first.try_get("", "phone_number")?,
            nickname: first.try_get("", "nickname")?,
            avatar_url: first.try_get("", "avatar_url")?,
            identities: Vec::new(),
        };
        for row in std::iter::once(first).chain(rows) {
            let (Some(app), Some(appid), Some(openid)) = (
                row.try_get::<Option<String>>("", "identity_app")?,
                row.try_get::<Option<String>>("", "identity_appid")?,
                row.try_get::<Option<String>>("", "identity_openid")?,
            ) else {
                continue;
            };
            user.identities.push(IdentityRecord {
                app: App::parse(&app).map_err(|_| corrupt("app"))?,
                appid: AppId::parse(&appid).map_err(|_| corrupt("appid"))?,
                openid: OpenId::parse(&openid).map_err(|_| corrupt("openid"))?,
            });
        }
        Ok(Some(user))
    }

    pub async fn session_keys(
        &self,
        id: UserId,
        appid: &AppId,
    ) -> Result<Option<SessionKeys>, StoreError> {
        let Some(identity) = self.identity_of(id, appid).await? else {
            return Ok(None);
        };
        let Some(sealed_current) = &identity.session_key else {
            return Ok(None);
        };
        let context = seal_context(&identity.appid, &identity.openid);
        let current = self.open_session_key(
            sealed_current,
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

    /// Saves the phone number as WeChat gave it, with its E.164 form (`None` when WeChat's
    /// country code and number do not make one) that phone joins compare.
    pub async fn save_phone_number(
        &self,
        id: UserId,
        phone_number: &str,
        e164: Option<&PhoneNumber>,
    ) -> Result<(), StoreError> {
        user::Entity::update_many()
            .col_expr(user::Column::PhoneNumber, Expr::value(phone_number))
            .col_expr(
                user::Column::PhoneE164,
                Expr::value(e164.map(|phone| phone.as_str().to_owned())),
            )
            .col_expr(user::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(user::Column::Id.eq(id.as_uuid()))
            .exec(&self.writer)
            .await?;
        Ok(())
    }

    /// Saves the given profile fields; a unionid may join this user with another. Returns
    /// the user the profile now belongs to and the id a join removed.
    pub async fn save_profile(
        &self,
        id: UserId,
        profile: &ProfileUpdate,
    ) -> Result<(UserId, Option<UserId>), StoreError> {
        self.save_profile_fields(id, profile).await?;
        match &profile.unionid {
            Some(unionid) => self.attach_unionid(id, unionid).await,
            None => Ok((id, None)),
        }
    }

    async fn save_profile_fields(
        &self,
        id: UserId,
        profile: &ProfileUpdate,
    ) -> Result<(), StoreError> {
        if profile.nickname.is_none() && profile.avatar_url.is_none() {
            return Ok(());
        }
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
        Ok(())
    }

    /// Seals session_keys stored in plaintext (before sealing existed) or under a retired
    /// key. Returns how many were sealed.
    pub(super) async fn reseal_session_keys(&self) -> Result<u64, StoreError> {
        let current_kid = self.sealer.current_key_id().to_owned();
        let mut resealed = 0;
        loop {
            let batch = wechat_identity::Entity::find()
                .filter(wechat_identity::Column::SessionKey.is_not_null())
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
                let Some(stored) = &identity.session_key else {
                    continue;
                };
                let context = seal_context(&identity.appid, &identity.openid);
                let key =
                    self.open_session_key(stored, identity.session_key_kid.as_deref(), &context)?;
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
                    .filter(wechat_identity::Column::SessionKey.eq(stored.0.as_str()))
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

    fn seal_session_key(&self, claim: &IdentityClaim<'_>, key: &SessionKey) -> Sealed {
        self.sealer.seal(
            key.expose_text().as_bytes(),
            &seal_context(claim.appid.as_str(), claim.openid.as_str()),
        )
    }

    async fn identity(
        &self,
        appid: &AppId,
        openid: &OpenId,
    ) -> Result<Option<wechat_identity::Model>, StoreError> {
        Ok(wechat_identity::Entity::find()
            .filter(wechat_identity::Column::Appid.eq(appid.as_str()))
            .filter(wechat_identity::Column::Openid.eq(openid.as_str()))
            .unique(&self.db)
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
            .unique(&self.db)
            .await?)
    }

    /// Stores a session_key in the order WeChat handed keys out, whatever order the
    /// exchanges finish in here: a key newer than the stored one replaces it (which
    /// becomes the grace-period key); an older one can at most become the grace-period
    /// key, if it is newer than that.
    async fn store_session_key(
        &self,
        identity_id: Uuid,
        claim: &IdentityClaim<'_>,
        exchanged: &ExchangedKey<'_>,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        let sealed = self.seal_session_key(claim, exchanged.key);
        // The previous-key columns come first: MySQL applies SET assignments left to right,
        // so they must copy the old values before those are overwritten.
        let newer = wechat_identity::Entity::update_many()
            .col_expr(
                wechat_identity::Column::PreviousSessionKey,
                Expr::col(wechat_identity::Column::SessionKey),
            )
            .col_expr(
                wechat_identity::Column::PreviousSessionKeyKid,
                Expr::col(wechat_identity::Column::SessionKeyKid),
            )
            .col_expr(
                wechat_identity::Column::PreviousSessionKeyExchangedUs,
                Expr::col(wechat_identity::Column::SessionKeyExchangedUs),
            )
            .col_expr(
                wechat_identity::Column::SessionKey,
                Expr::value(sealed.value.clone()),
            )
            .col_expr(
                wechat_identity::Column::SessionKeyKid,
                Expr::value(sealed.key_id.clone()),
            )
            .col_expr(
                wechat_identity::Column::SessionKeyExchangedUs,
                Expr::value(exchanged.exchanged_us),
            )
            .col_expr(
                wechat_identity::Column::SessionKeyUpdatedAt,
                Expr::value(now),
            )
            .col_expr(wechat_identity::Column::UpdatedAt, Expr::value(now))
            .filter(wechat_identity::Column::Id.eq(identity_id))
            .filter(wechat_identity::Column::SessionKeyExchangedUs.lt(exchanged.exchanged_us))
            .exec(&self.writer)
            .await?;
        if newer.rows_affected > 0 {
            return Ok(());
        }
        wechat_identity::Entity::update_many()
            .col_expr(
                wechat_identity::Column::PreviousSessionKey,
                Expr::value(sealed.value),
            )
            .col_expr(
                wechat_identity::Column::PreviousSessionKeyKid,
                Expr::value(sealed.key_id),
            )
            .col_expr(
                wechat_identity::Column::PreviousSessionKeyExchangedUs,
                Expr::value(exchanged.exchanged_us),
            )
            .filter(wechat_identity::Column::Id.eq(identity_id))
            .filter(wechat_identity::Column::SessionKeyExchangedUs.gt(exchanged.exchanged_us))
            .filter(
                wechat_identity::Column::PreviousSessionKeyExchangedUs
                    .is_null()
                    .or(wechat_identity::Column::PreviousSessionKeyExchangedUs
                        .lt(exchanged.exchanged_us)),
            )
            .exec(&self.writer)
            .await?;
        Ok(())
    }

    /// Creates the identity (and, unless its unionid already names one, the user) in one
    /// transaction. `None` when a concurrent login created the identity first.
    async fn try_create_identity(
        &self,
        claim: &IdentityClaim<'_>,
    ) -> Result<Option<Resolved>, StoreError> {
        let now = Utc::now();
        let sealed = claim.session_key.as_ref().map(|exchanged| {
            (
                self.seal_session_key(claim, exchanged.key),
                exchanged.exchanged_us,
            )
        });
        let txn = self.writer.begin().await?;
        let (user_id, new_user) = match claim.unionid {
            Some(unionid) => user_for_unionid(&txn, unionid, now).await?,
            None => (insert_user(&txn, None, now).await?, true),
        };
        let identity_id = Uuid::now_v7();
        wechat_identity::Entity::insert(wechat_identity::ActiveModel {
            id: Set(identity_id),
            user_id: Set(user_id.as_uuid()),
            app: Set(claim.app.as_str().to_owned()),
            appid: Set(claim.appid.as_str().to_owned()),
            openid: Set(claim.openid.as_str().to_owned()),
            unionid: Set(claim.unionid.map(|u| u.as_str().to_owned())),
            session_key: Set(sealed
                .as_ref()
                .map(|(s, _)| StoredSessionKey(s.value.clone()))),
            session_key_kid: Set(sealed.as_ref().map(|(s, _)| s.key_id.clone())),
            session_key_exchanged_us: Set(sealed.as_ref().map_or(0, |(_, us)| *us)),
            previous_session_key: Set(None),
            previous_session_key_kid: Set(None),
            previous_session_key_exchanged_us: Set(None),
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
            .filter(wechat_identity::Column::Appid.eq(claim.appid.as_str()))
            .filter(wechat_identity::Column::Openid.eq(claim.openid.as_str()))
            .unique(&txn)
            .await?;
        if winner.is_none_or(|w| w.id != identity_id) {
            txn.rollback().await?;
            return Ok(None);
        }
        txn.commit().await?;
        Ok(Some(Resolved {
            user_id,
            new_user,
            removed: None,
        }))
    }
}

/// Users with their identities: one row per identity (or one row with NULL identity
/// columns for a user without any), oldest identity first. Callers add the condition
/// that picks the user.
pub(super) fn user_view() -> SelectStatement {
    Query::select()
        .columns([
            (user::Entity, user::Column::Id),
            (user::Entity, user::Column::Unionid),
            (user::Entity, user::Column::PhoneNumber),
            (user::Entity, user::Column::Nickname),
            (user::Entity, user::Column::AvatarUrl),
        ])
        .expr_as(
            Expr::col((wechat_identity::Entity, wechat_identity::Column::App)),
            "identity_app",
        )
        .expr_as(
            Expr::col((wechat_identity::Entity, wechat_identity::Column::Appid)),
            "identity_appid",
        )
        .expr_as(
            Expr::col((wechat_identity::Entity, wechat_identity::Column::Openid)),
            "identity_openid",
        )
        .from(user::Entity)
        .left_join(
            wechat_identity::Entity,
            Expr::col((wechat_identity::Entity, wechat_identity::Column::UserId))
                .equals((user::Entity, user::Column::Id)),
        )
        .order_by(
            (wechat_identity::Entity, wechat_identity::Column::CreatedAt),
            Order::Asc,
        )
        .order_by(
            (wechat_identity::Entity, wechat_identity::Column::Id),
            Order::Asc,
        )
        .to_owned()
}

/// Of two users a unionid shows are one person, the one created first is kept.
fn older_first(a: user::Model, b: user::Model) -> (user::Model, user::Model) {
    if (a.created_at, a.id) <= (b.created_at, b.id) {
        (a, b)
    } else {
        (b, a)
    }
}

/// The one way two users become one, whatever showed they are one person (a unionid, a
/// proven phone number), inside `txn`: `remove`'s identities, sessions, pending sign-ins
/// and phone verifications move to `keep`, and so do its phone number and profile where
/// `keep` has none; then `remove` is deleted. `unionid`, when given, ends up on the kept
/// user. The caller picks which user is kept. Returns (kept, removed).
pub(super) async fn join_users(
    txn: &DatabaseTransaction,
    keep: user::Model,
    remove: user::Model,
    unionid: Option<&UnionId>,
) -> Result<(UserId, UserId), StoreError> {
    wechat_identity::Entity::update_many()
        .col_expr(wechat_identity::Column::UserId, Expr::value(keep.id))
        .filter(wechat_identity::Column::UserId.eq(remove.id))
        .exec(txn)
        .await?;
    session::Entity::update_many()
        .col_expr(session::Column::UserId, Expr::value(keep.id))
        .filter(session::Column::UserId.eq(remove.id))
        .exec(txn)
        .await?;
    web_flow::Entity::update_many()
        .col_expr(web_flow::Column::UserId, Expr::value(keep.id))
        .filter(web_flow::Column::UserId.eq(remove.id))
        .exec(txn)
        .await?;
    login_code::Entity::update_many()
        .col_expr(login_code::Column::UserId, Expr::value(keep.id))
        .filter(login_code::Column::UserId.eq(remove.id))
        .exec(txn)
        .await?;
    phone_verification::Entity::update_many()
        .col_expr(phone_verification::Column::UserId, Expr::value(keep.id))
        .filter(phone_verification::Column::UserId.eq(remove.id))
        .exec(txn)
        .await?;
    // Deleted before the kept user takes its unionid: the column is unique.
    user::Entity::delete_by_id(remove.id).exec(txn).await?;
    let unionid = keep
        .unionid
        .clone()
        .or(remove.unionid.clone())
        .or(unionid.map(|u| u.as_str().to_owned()));
    // The number and its E.164 form travel together.
    let (phone_number, phone_e164) = if keep.phone_number.is_some() {
        (keep.phone_number, keep.phone_e164)
    } else {
        (remove.phone_number, remove.phone_e164)
    };
    user::Entity::update_many()
        .col_expr(user::Column::Unionid, Expr::value(unionid))
        .col_expr(user::Column::PhoneNumber, Expr::value(phone_number))
        .col_expr(user::Column::PhoneE164, Expr::value(phone_e164))
        .col_expr(
            user::Column::Nickname,
            Expr::value(keep.nickname.or(remove.nickname)),
        )
        .col_expr(
            user::Column::AvatarUrl,
            Expr::value(keep.avatar_url.or(remove.avatar_url)),
        )
        .col_expr(user::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(user::Column::Id.eq(keep.id))
        .exec(txn)
        .await?;
    let (kept, removed) = (UserId::from(keep.id), UserId::from(remove.id));
    tracing::info!(user_id = %kept, removed_user_id = %removed, "joined two users into one");
    Ok((kept, removed))
}

fn new_user_row(id: UserId, unionid: Option<&UnionId>, now: DateTime<Utc>) -> user::ActiveModel {
    user::ActiveModel {
        id: Set(id.as_uuid()),
        unionid: Set(unionid.map(|u| u.as_str().to_owned())),
        phone_number: Set(None),
        phone_e164: Set(None),
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

fn parse_openid(raw: &str) -> Result<OpenId, StoreError> {
    OpenId::parse(raw).map_err(|_| StoreError::Corrupt("stored openid".to_owned()))
}
