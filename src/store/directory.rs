//! What the team's backend asks about users and does to them (the server API): lookups,
//! including ids a join removed, and disabling a user.

use chrono::{DateTime, Utc};
use entity::{session, user, user_alias, wechat_identity};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect, sea_query::Expr};

use super::{Store, StoreError, UniqueRow, UserChange, UserRecord};
use crate::{
    domain::{AppId, OpenId, PhoneNumber, UnionId, UserId},
    events::UserEvent,
};

/// How the team's backend names the users it asks about.
pub enum Lookup<'a> {
    Identity {
        appid: &'a AppId,
        openid: &'a OpenId,
    },
    Unionid(&'a UnionId),
    /// By the number's E.164 form, however WeChat or the SMS proof spelled it.
    PhoneNumber(&'a PhoneNumber),
}

/// Whether disabling or enabling changed the user.
pub struct Toggled {
    pub user: UserRecord,
    pub changed: bool,
}

/// More users than this never share a phone number or unionid; the cap bounds an answer.
const LOOKUP_LIMIT: u64 = 100;

impl Store {
    /// The user with this id, or the user a join folded it into; `None` for an unknown or
    /// deleted id.
    pub async fn find_user_or_alias(&self, id: UserId) -> Result<Option<UserRecord>, StoreError> {
        if let Some(user) = self.find_user(id).await? {
            return Ok(Some(user));
        }
        let Some(alias) = user_alias::Entity::find_by_id(id.as_uuid())
            .unique(&self.db)
            .await?
        else {
            return Ok(None);
        };
        self.find_user(alias.kept_id.into()).await
    }

    pub async fn lookup_users(&self, lookup: Lookup<'_>) -> Result<Vec<UserRecord>, StoreError> {
        let ids: Vec<uuid::Uuid> = match lookup {
            Lookup::Identity { appid, openid } => wechat_identity::Entity::find()
                .filter(wechat_identity::Column::Appid.eq(appid.as_str()))
                .filter(wechat_identity::Column::Openid.eq(openid.as_str()))
                .all(&self.db)
                .await?
                .into_iter()
                .map(|identity| identity.user_id)
                .collect(),
            Lookup::Unionid(unionid) => user::Entity::find()
                .filter(user::Column::Unionid.eq(unionid.as_str()))
                .limit(LOOKUP_LIMIT)
                .all(&self.db)
                .await?
                .into_iter()
                .map(|user| user.id)
                .collect(),
            Lookup::PhoneNumber(phone) => user::Entity::find()
                .filter(user::Column::PhoneE164.eq(phone.as_str()))
                .limit(LOOKUP_LIMIT)
                .all(&self.db)
                .await?
                .into_iter()
                .map(|user| user.id)
                .collect(),
        };
        let mut users = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(user) = self.find_user(id.into()).await? {
                users.push(user);
            }
        }
        users.sort_by_key(|user| (user.created_at, user.id.as_uuid()));
        Ok(users)
    }

    /// Disables (`true`) or enables a user, with `user.disabled` / `user.enabled` in the
    /// same transaction. Disabling also ends every session of the user. `None` for an
    /// unknown user.
    pub async fn set_disabled(
        &self,
        id: UserId,
        disabled: bool,
    ) -> Result<Option<Toggled>, StoreError> {
        let change = UserChange::begin(self).await?;
        let now = Utc::now();
        let update = user::Entity::update_many()
            .col_expr(
                user::Column::DisabledAt,
                Expr::value(disabled.then_some(now)),
            )
            .col_expr(user::Column::UpdatedAt, Expr::value(now))
            .filter(user::Column::Id.eq(id.as_uuid()));
        let update = if disabled {
            update.filter(user::Column::DisabledAt.is_null())
        } else {
            update.filter(user::Column::DisabledAt.is_not_null())
        };
        let changed = update.exec(change.db()).await?.rows_affected > 0;
        if disabled {
            end_sessions(change.db(), id, now).await?;
        }
        let Some(user) = super::users::user_in(change.db(), id).await? else {
            change.rollback().await?;
            return Ok(None);
        };
        let events = match (changed, disabled) {
            (false, _) => Vec::new(),
            (true, true) => vec![UserEvent::Disabled(user.clone())],
            (true, false) => vec![UserEvent::Enabled(user.clone())],
        };
        change.commit(events).await?;
        Ok(Some(Toggled { user, changed }))
    }

    /// Ends every session of a user: refresh tokens stop working everywhere.
    pub async fn revoke_user_sessions(&self, id: UserId) -> Result<(), StoreError> {
        end_sessions(&self.writer, id, Utc::now()).await
    }

    /// Whether the user exists and is disabled.
    pub async fn is_disabled(&self, id: UserId) -> Result<bool, StoreError> {
        Ok(user::Entity::find_by_id(id.as_uuid())
            .unique(&self.db)
            .await?
            .is_some_and(|user| user.disabled_at.is_some()))
    }
}

async fn end_sessions(
    db: &impl sea_orm::ConnectionTrait,
    id: UserId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .filter(session::Column::UserId.eq(id.as_uuid()))
        .filter(session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}
