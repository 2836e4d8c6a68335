use std::sync::Arc;

use crate::{
    domain::{AppId, OpenId, PhoneNumber, UnionId, UserId},
    events::StoredEvent,
    store::{Lookup, Store, UserRecord},
};

/// The most events one feed page holds.
pub const MAX_FEED_PAGE: u64 = 500;

use super::{PrincipalCache, ServiceError};

/// How the team's backend names the users it asks about, as received.
pub enum UserQuery {
    Identity { appid: String, openid: String },
    Unionid(String),
    PhoneNumber(String),
}

/// What the team's backend may ask about users and do to them (the server API).
#[derive(Clone)]
pub struct ServerUsers {
    store: Store,
    principals: Arc<PrincipalCache>,
}

impl ServerUsers {
    pub fn new(store: Store, principals: Arc<PrincipalCache>) -> Self {
        Self { store, principals }
    }

    /// The user, or the user a join folded this id into (whose id then differs).
    pub async fn get(&self, id: &str) -> Result<UserRecord, ServiceError> {
        let id = parse_user_id(id)?;
        self.store
            .find_user_or_alias(id)
            .await?
            .ok_or(ServiceError::NotFound("user"))
    }

    pub async fn find(&self, query: UserQuery) -> Result<Vec<UserRecord>, ServiceError> {
        let invalid = |what: &str| ServiceError::InvalidRequest(format!("{what} is not valid"));
        Ok(match query {
            UserQuery::Identity { appid, openid } => {
                let appid = AppId::parse(&appid).map_err(|_| invalid("appid"))?;
                let openid = OpenId::parse(&openid).map_err(|_| invalid("openid"))?;
                self.store
                    .lookup_users(Lookup::Identity {
                        appid: &appid,
                        openid: &openid,
                    })
                    .await?
            }
            UserQuery::Unionid(unionid) => {
                let unionid = UnionId::parse(&unionid).map_err(|_| invalid("unionid"))?;
                self.store.lookup_users(Lookup::Unionid(&unionid)).await?
            }
            UserQuery::PhoneNumber(raw) => {
                let phone = PhoneNumber::parse(&raw).map_err(|_| {
                    ServiceError::InvalidRequest(
                        "phone_number must be E.164 (+8613800138000) or an 11-digit mainland \
                         number"
                            .to_owned(),
                    )
                })?;
                self.store.lookup_users(Lookup::PhoneNumber(&phone)).await?
            }
        })
    }

    /// Disables (`true`) or enables the user. Disabling ends every session at once: here
    /// the cached sessions are forgotten, other instances' caches let go within
    /// `AUTH_CACHE_TTL_MS`.
    pub async fn set_disabled(&self, id: &str, disabled: bool) -> Result<UserRecord, ServiceError> {
        let id = parse_user_id(id)?;
        let toggled = self
            .store
            .set_disabled(id, disabled)
            .await?
            .ok_or(ServiceError::NotFound("user"))?;
        self.principals.forget_user(id);
        if toggled.changed {
            tracing::info!(user_id = %id, disabled, "user disabled state changed");
        }
        Ok(toggled.user)
    }

    pub async fn revoke_sessions(&self, id: &str) -> Result<(), ServiceError> {
        let id = parse_user_id(id)?;
        if self.store.find_user(id).await?.is_none() {
            return Err(ServiceError::NotFound("user"));
        }
        self.store.revoke_user_sessions(id).await?;
        self.principals.forget_user(id);
        tracing::info!(user_id = %id, "every session of the user revoked");
        Ok(())
    }
}

impl ServerUsers {
    /// A page of the feed: events after the cursor (an event id; empty for the start),
    /// oldest first, and the cursor for the next page (the last id on this one, or the
    /// given cursor when nothing new has happened).
    pub async fn events(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> Result<(Vec<StoredEvent>, String), ServiceError> {
        if !(1..=MAX_FEED_PAGE).contains(&limit) {
            return Err(ServiceError::InvalidRequest(format!(
                "limit must be between 1 and {MAX_FEED_PAGE}"
            )));
        }
        let after = after.filter(|cursor| !cursor.is_empty());
        if let Some(cursor) = after
            && !is_event_id(cursor)
        {
            return Err(ServiceError::InvalidRequest(
                "after must be an event id or a cursor from an earlier page".to_owned(),
            ));
        }
        let events = self.store.events_after(after, limit).await?;
        let next = events
            .last()
            .map(|event| event.id.clone())
            .or_else(|| after.map(str::to_owned))
            .unwrap_or_default();
        Ok((events, next))
    }
}

fn is_event_id(raw: &str) -> bool {
    raw.strip_prefix("evt_").is_some_and(|rest| {
        rest.len() == 32
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn parse_user_id(raw: &str) -> Result<UserId, ServiceError> {
    raw.parse::<uuid::Uuid>()
        .map(UserId::from)
        .map_err(|_| ServiceError::NotFound("user"))
}
