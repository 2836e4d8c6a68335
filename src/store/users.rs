//! Users and their WeChat identities, with each mini-program identity's sealed
//! session_key. The one way an identity finds or creates its user, and the one way two
//! users become one, live here: every login path and every join goes through them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::{
    event, login_code, phone_verification, session, user, user_alias, web_flow,
    wechat_identity::{self, StoredSessionKey},
};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, Order, QueryFilter, QuerySelect,
    sea_query::{Expr, Query, SelectStatement},
};
use uuid::Uuid;

use super::{Store, StoreError, UniqueRow, UserChange, is_unique_violation};
use crate::{
    crypto::Sealed,
    domain::{App, AppId, OpenId, PhoneNumber, SessionKey, UnionId, UserId},
    events::{JoinReason, UserEvent},
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
    pub created_at: DateTime<Utc>,
    /// Disabled by the team's backend: no login path lets them in.
    pub disabled: bool,
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
    /// any number of concurrent logins of one identity. Every change it makes to a user
    /// commits with its event.
    pub async fn resolve_identity(
        &self,
        claim: &IdentityClaim<'_>,
    ) -> Result<Resolved, StoreError> {
        // A lost race (to create the identity, or to give a user the unionid) means the
        // winner's row exists now: the next round finds it.
        for _ in 0..3 {
            let resolved = match self.identity(claim.appid, claim.openid).await? {
                Some(identity) => self.update_identity(&identity, claim).await?,
                None => self.try_create_identity(claim).await?,
            };
            if let Some(resolved) = resolved {
                return Ok(resolved);
            }
        }
        Err(StoreError::Contended)
    }

    /// `None` when a concurrent login gave another user the unionid meanwhile.
    async fn update_identity(
        &self,
        identity: &wechat_identity::Model,
        claim: &IdentityClaim<'_>,
    ) -> Result<Option<Resolved>, StoreError> {
        if let Some(key) = &claim.session_key {
            self.store_session_key(identity.id, claim, key).await?;
        }
        let user_id = UserId::from(identity.user_id);
        // An identity that already carries this unionid had it attached to its user then.
        let unionid = claim
            .unionid
            .filter(|unionid| identity.unionid.as_deref() != Some(unionid.as_str()));
        if unionid.is_none() && claim.profile.is_none() {
            return Ok(Some(Resolved {
                user_id,
                new_user: false,
                removed: None,
            }));
        }
        let change = UserChange::begin(self).await?;
        if let Some(unionid) = unionid {
            wechat_identity::Entity::update_many()
                .col_expr(
                    wechat_identity::Column::Unionid,
                    Expr::value(unionid.as_str()),
                )
                .filter(wechat_identity::Column::Id.eq(identity.id))
                .exec(change.db())
                .await?;
        }
        let Some(changed) =
            change_user(&change, user_id, unionid, claim.profile, Vec::new()).await?
        else {
            return Ok(None);
        };
        let resolved = Resolved {
            user_id: changed.user_id,
            new_user: false,
            removed: changed.removed,
        };
        change.commit(changed.events).await?;
        Ok(Some(resolved))
    }

    /// The user with their identities, or `None` when there is no such user.
    pub async fn find_user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError> {
        user_in(&self.db, id).await
    }

    /// Runs a [`user_view`] query that matches one user.
    pub(super) async fn query_user(
        &self,
        query: &SelectStatement,
    ) -> Result<Option<UserRecord>, StoreError> {
        query_user_on(&self.db, query).await
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
    /// country code and number do not make one) that phone joins compare; a number the
    /// user already has changes nothing.
    pub async fn save_phone_number(
        &self,
        id: UserId,
        phone_number: &str,
        e164: Option<&PhoneNumber>,
    ) -> Result<(), StoreError> {
        let change = UserChange::begin(self).await?;
        let updated = user::Entity::update_many()
            .col_expr(user::Column::PhoneNumber, Expr::value(phone_number))
            .col_expr(
                user::Column::PhoneE164,
                Expr::value(e164.map(|phone| phone.as_str().to_owned())),
            )
            .col_expr(user::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(user::Column::Id.eq(id.as_uuid()))
            .filter(
                user::Column::PhoneNumber
                    .is_null()
                    .or(user::Column::PhoneNumber.ne(phone_number)),
            )
            .exec(change.db())
            .await?;
        let events = if updated.rows_affected > 0 {
            vec![UserEvent::Updated {
                user: change.user(id).await?,
                changed: vec!["phone_number"],
            }]
        } else {
            Vec::new()
        };
        change.commit(events).await
    }

    /// Saves the given profile fields; a unionid may join this user with another. Returns
    /// the user the profile now belongs to and the id a join removed.
    pub async fn save_profile(
        &self,
        id: UserId,
        profile: &ProfileUpdate,
    ) -> Result<(UserId, Option<UserId>), StoreError> {
        // A lost race to give a user the unionid: the next round joins with the winner.
        for _ in 0..3 {
            let change = UserChange::begin(self).await?;
            let Some(changed) = change_user(
                &change,
                id,
                profile.unionid.as_ref(),
                Some(profile),
                Vec::new(),
            )
            .await?
            else {
                continue;
            };
            let outcome = (changed.user_id, changed.removed);
            change.commit(changed.events).await?;
            return Ok(outcome);
        }
        Err(StoreError::Contended)
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
    /// change: `user.created` for a new user, `user.updated` (`identities`) for one that
    /// gained it. `None` when a concurrent login created the identity first.
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
        let change = UserChange::begin(self).await?;
        let (user_id, new_user) = match claim.unionid {
            Some(unionid) => user_for_unionid(&change, unionid, now).await?,
            None => (insert_user(&change, None, now).await?, true),
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
        .exec_without_returning(change.db())
        .await?;
        // Read back rather than trust the affected-row count, which MySQL (FOUND_ROWS)
        // reports as 1 for a conflicting `ON DUPLICATE KEY UPDATE`.
        let winner = wechat_identity::Entity::find()
            .filter(wechat_identity::Column::Appid.eq(claim.appid.as_str()))
            .filter(wechat_identity::Column::Openid.eq(claim.openid.as_str()))
            .unique(change.db())
            .await?;
        if winner.is_none_or(|w| w.id != identity_id) {
            change.rollback().await?;
            return Ok(None);
        }
        let mut changed = if new_user {
            Vec::new()
        } else {
            vec!["identities"]
        };
        if let Some(profile) = claim.profile {
            changed.extend(apply_profile(&change, user_id, profile).await?);
        }
        let user = change.user(user_id).await?;
        let event = if new_user {
            UserEvent::Created(user)
        } else {
            UserEvent::Updated { user, changed }
        };
        change.commit(vec![event]).await?;
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
            (user::Entity, user::Column::CreatedAt),
            (user::Entity, user::Column::DisabledAt),
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

/// The user with their identities as `db` sees them (inside a change: as the change left
/// them), or `None`.
pub(super) async fn user_in(
    db: &impl ConnectionTrait,
    id: UserId,
) -> Result<Option<UserRecord>, StoreError> {
    let query = user_view()
        .and_where(Expr::col((user::Entity, user::Column::Id)).eq(id.as_uuid()))
        .to_owned();
    query_user_on(db, &query).await
}

async fn query_user_on(
    db: &impl ConnectionTrait,
    query: &SelectStatement,
) -> Result<Option<UserRecord>, StoreError> {
    // query_all steps the statement to completion, so on SQLite the connection's read
    // transaction ends with it instead of lingering until the cached statement is next
    // reset. One row per identity of the one user.
    let rows = db.query_all(query).await?;
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
        created_at: first.try_get("", "created_at")?,
        disabled: first
            .try_get::<Option<DateTime<Utc>>>("", "disabled_at")?
            .is_some(),
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

/// What [`change_user`] did: the user the change ended on, the id a join removed, and the
/// events that describe it.
struct Changed {
    user_id: UserId,
    removed: Option<UserId>,
    events: Vec<UserEvent>,
}

/// Saves a profile and a unionid on `user` inside `change`: `user.joined` when the unionid
/// belongs to another user (the join's event tells the whole story), else `user.updated`
/// naming what changed (with `changed`, fields changed earlier in the same change), else
/// nothing. `None` when a concurrent change gave another user the unionid: the statement
/// failed, so the change must be dropped and tried again.
async fn change_user(
    change: &UserChange,
    user: UserId,
    unionid: Option<&UnionId>,
    profile: Option<&ProfileUpdate>,
    mut changed: Vec<&'static str>,
) -> Result<Option<Changed>, StoreError> {
    if let Some(profile) = profile {
        changed.extend(apply_profile(change, user, profile).await?);
    }
    let mut removed = None;
    let mut kept = user;
    if let Some(unionid) = unionid {
        let Some(current) = user::Entity::find_by_id(user.as_uuid())
            .unique(change.db())
            .await?
        else {
            return Err(StoreError::Corrupt("identity without a user".to_owned()));
        };
        // A user keeps the unionid they have: WeChat never changes one.
        if current.unionid.is_none() {
            let holder = user::Entity::find()
                .filter(user::Column::Unionid.eq(unionid.as_str()))
                .unique(change.db())
                .await?;
            match holder {
                Some(holder) => {
                    let (keep, remove) = older_first(current, holder);
                    let (k, r) = join_users(change, keep, remove, Some(unionid)).await?;
                    (kept, removed) = (k, Some(r));
                }
                None => {
                    let set = user::Entity::update_many()
                        .col_expr(user::Column::Unionid, Expr::value(unionid.as_str()))
                        .col_expr(user::Column::UpdatedAt, Expr::value(Utc::now()))
                        .filter(user::Column::Id.eq(user.as_uuid()))
                        .filter(user::Column::Unionid.is_null())
                        .exec(change.db())
                        .await;
                    match set {
                        Ok(_) => changed.push("unionid"),
                        Err(error) if is_unique_violation(&error) => return Ok(None),
                        Err(error) => return Err(error.into()),
                    }
                }
            }
        }
    }
    let events = match removed {
        Some(removed_user_id) => vec![UserEvent::Joined {
            kept: change.user(kept).await?,
            removed_user_id,
            reason: JoinReason::Unionid,
        }],
        None if changed.is_empty() => Vec::new(),
        None => vec![UserEvent::Updated {
            user: change.user(kept).await?,
            changed,
        }],
    };
    Ok(Some(Changed {
        user_id: kept,
        removed,
        events,
    }))
}

/// Saves the profile fields that differ from the stored ones; returns their names.
async fn apply_profile(
    change: &UserChange,
    id: UserId,
    profile: &ProfileUpdate,
) -> Result<Vec<&'static str>, StoreError> {
    let Some(current) = user::Entity::find_by_id(id.as_uuid())
        .unique(change.db())
        .await?
    else {
        return Err(StoreError::Corrupt("a changed user vanished".to_owned()));
    };
    let nickname = profile
        .nickname
        .as_ref()
        .filter(|new| current.nickname.as_ref() != Some(*new));
    let avatar_url = profile
        .avatar_url
        .as_ref()
        .filter(|new| current.avatar_url.as_ref() != Some(*new));
    let mut changed = Vec::new();
    let mut update = user::Entity::update_many()
        .col_expr(user::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(user::Column::Id.eq(id.as_uuid()));
    if let Some(nickname) = nickname {
        update = update.col_expr(user::Column::Nickname, Expr::value(nickname.as_str()));
        changed.push("nickname");
    }
    if let Some(avatar_url) = avatar_url {
        update = update.col_expr(user::Column::AvatarUrl, Expr::value(avatar_url.as_str()));
        changed.push("avatar_url");
    }
    if !changed.is_empty() {
        update.exec(change.db()).await?;
    }
    Ok(changed)
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
/// proven phone number), inside `change`: `remove`'s identities, sessions, pending
/// sign-ins, phone verifications and undelivered events move to `keep`, and so do its
/// phone number and profile where `keep` has none; the removed id is remembered as an
/// alias of the kept one; then `remove` is deleted. `unionid`, when given, ends up on the
/// kept user. The caller picks which user is kept and commits the `user.joined` event.
/// Returns (kept, removed).
pub(super) async fn join_users(
    change: &UserChange,
    keep: user::Model,
    remove: user::Model,
    unionid: Option<&UnionId>,
) -> Result<(UserId, UserId), StoreError> {
    let txn = change.db();
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
    // The removed user's undelivered events join the kept user's queue: they are older
    // than the join's event, so they still go out before it.
    event::Entity::update_many()
        .col_expr(event::Column::UserId, Expr::value(keep.id))
        .filter(event::Column::UserId.eq(remove.id))
        .filter(event::Column::DeliveredAt.is_null())
        .exec(txn)
        .await?;
    // Ids that earlier joins folded into the removed user now answer the kept one.
    user_alias::Entity::update_many()
        .col_expr(user_alias::Column::KeptId, Expr::value(keep.id))
        .filter(user_alias::Column::KeptId.eq(remove.id))
        .exec(txn)
        .await?;
    user_alias::Entity::insert(user_alias::ActiveModel {
        removed_id: Set(remove.id),
        kept_id: Set(keep.id),
        created_at: Set(Utc::now()),
    })
    .exec_without_returning(txn)
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
        disabled_at: Set(None),
    }
}

async fn insert_user(
    change: &UserChange,
    unionid: Option<&UnionId>,
    now: DateTime<Utc>,
) -> Result<UserId, StoreError> {
    let id = UserId::generate();
    user::Entity::insert(new_user_row(id, unionid, now))
        .exec_without_returning(change.db())
        .await?;
    Ok(id)
}

/// The user a unionid already belongs to, or a new one holding it.
async fn user_for_unionid(
    change: &UserChange,
    unionid: &UnionId,
    now: DateTime<Utc>,
) -> Result<(UserId, bool), StoreError> {
    let db = change.db();
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
