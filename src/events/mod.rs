//! Events about users for the team's own systems (contract v1.4): what each change says
//! ([`UserEvent`]), how a webhook is signed (Standard Webhooks), the worker that delivers
//! them, and the sandbox page that lists them. The outbox itself lives in `store::events`.

pub mod delivery;
pub mod sandbox;
mod signature;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

pub use signature::{WebhookSecret, sign};

use crate::{
    domain::{AppId, UserId},
    store::UserRecord,
};

/// Why two users became one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinReason {
    /// A unionid showed two users are one person.
    Unionid,
    /// A proven shared phone number did (contract v1.3).
    Phone,
}

impl JoinReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unionid => "unionid",
            Self::Phone => "phone",
        }
    }
}

/// One change to a user, as the contract's event table names it. The user objects are the
/// user as they are after the change, read inside the change's transaction.
#[derive(Debug, Clone)]
pub enum UserEvent {
    Created(UserRecord),
    /// `changed` names the fields that changed: `phone_number`, `nickname`, `avatar_url`,
    /// `identities`, `unionid`.
    Updated {
        user: UserRecord,
        changed: Vec<&'static str>,
    },
    Joined {
        kept: UserRecord,
        removed_user_id: UserId,
        reason: JoinReason,
    },
    Disabled(UserRecord),
    Enabled(UserRecord),
    Deleted(UserId),
}

impl UserEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::Created(_) => "user.created",
            Self::Updated { .. } => "user.updated",
            Self::Joined { .. } => "user.joined",
            Self::Disabled(_) => "user.disabled",
            Self::Enabled(_) => "user.enabled",
            Self::Deleted(_) => "user.deleted",
        }
    }

    /// The user whose events are delivered in order: for a join, the kept one.
    pub fn user_id(&self) -> UserId {
        match self {
            Self::Created(user)
            | Self::Updated { user, .. }
            | Self::Disabled(user)
            | Self::Enabled(user) => user.id,
            Self::Joined { kept, .. } => kept.id,
            Self::Deleted(id) => *id,
        }
    }

    /// The event's `data` object. `miniprogram` is the mini program's appid: a user
    /// object's `openid` is the user's openid there, as clients see it.
    pub fn data(&self, miniprogram: Option<&AppId>) -> Value {
        match self {
            Self::Created(user) | Self::Disabled(user) | Self::Enabled(user) => {
                json!({ "user": user_json(user, miniprogram) })
            }
            Self::Updated { user, changed } => {
                json!({ "user": user_json(user, miniprogram), "changed": changed })
            }
            Self::Joined {
                kept,
                removed_user_id,
                reason,
            } => json!({
                "user": user_json(kept, miniprogram),
                "removed_user_id": removed_user_id.to_string(),
                "reason": reason.as_str(),
            }),
            Self::Deleted(id) => json!({ "user_id": id.to_string() }),
        }
    }
}

/// The user object of the contract plus `created_at` and `disabled`: what events carry and
/// what the server API answers.
pub fn user_json(user: &UserRecord, miniprogram: Option<&AppId>) -> Value {
    json!({
        "id": user.id.to_string(),
        "openid": miniprogram.and_then(|appid| user.openid_in(appid)).map(|o| o.as_str()),
        "unionid": user.unionid.as_ref().map(|u| u.as_str()),
        "phone_number": user.phone_number,
        "nickname": user.nickname,
        "avatar_url": user.avatar_url,
        "identities": user.identities.iter().map(|identity| json!({
            "app": identity.app.as_str(),
            "appid": identity.appid.as_str(),
            "openid": identity.openid.as_str(),
        })).collect::<Vec<_>>(),
        "created_at": timestamp(user.created_at),
        "disabled": user.disabled,
    })
}

/// RFC 3339 in UTC with milliseconds, as every timestamp we publish.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A stored event as receivers see it.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub id: String,
    pub event_type: String,
    pub created_at: DateTime<Utc>,
    /// The `data` object as JSON text.
    pub data: String,
}

impl StoredEvent {
    /// `{"id", "type", "created_at", "data"}`: the webhook body and a feed entry.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "type": self.event_type,
            "created_at": timestamp(self.created_at),
            // Written by us from a `Value`; unparseable text would be a corrupt row.
            "data": serde_json::from_str::<Value>(&self.data).unwrap_or(Value::Null),
        })
    }
}
