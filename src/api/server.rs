//! The server API (contract v1.4): the team's own backends look users up, disable and
//! enable them, end their sessions, and page through the events feed. Only with a key from
//! `SERVER_API_KEYS`; user tokens are not keys and keys are not user tokens.

use std::sync::Arc;

use poem::{Request, web::Data};
use poem_openapi::{
    ApiResponse, Object, OpenApi, SecurityScheme,
    auth::Bearer,
    param::{Path, Query},
    payload::Json,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ApiTags, AppContext, UserView, problem::ApiError};
use crate::{config::ServerApiKey, events::StoredEvent, service::UserQuery, store::UserRecord};

/// A key from `SERVER_API_KEYS`, for the team's own backends.
#[derive(SecurityScheme)]
#[oai(
    rename = "ServerKey",
    ty = "bearer",
    bearer_format = "server API key",
    checker = "check_server_key"
)]
pub struct ServerKey(
    /// The key's name from `SERVER_API_KEYS`: what logs show, never the key.
    pub String,
);

async fn check_server_key(req: &Request, bearer: Bearer) -> poem::Result<String> {
    let context = req
        .data::<Arc<AppContext>>()
        .ok_or_else(|| poem::Error::from(ApiError::unauthorized()))?;
    match matching_key(&context.server_keys, &bearer.token) {
        Some(name) => Ok(name),
        None => {
            tracing::info!("server API call with an unknown key");
            Err(ApiError::unauthorized().into())
        }
    }
}

/// The name of the configured key equal to `presented`. Digests are compared, each in
/// constant time and all of them every time, so neither the position of the first
/// differing byte nor a key's length shows in the timing.
fn matching_key(keys: &[ServerApiKey], presented: &str) -> Option<String> {
    let presented = Sha256::digest(presented.as_bytes());
    let mut found = None;
    for key in keys {
        let expected = Sha256::digest(key.key.expose().as_bytes());
        if bool::from(expected.ct_eq(&presented)) {
            found = Some(key.name.clone());
        }
    }
    found
}

/// A user as the team's backend sees them: the user object plus when they were created
/// and whether they are disabled.
#[derive(Object)]
#[oai(rename = "ServerUser")]
pub struct ServerUserView {
    #[oai(flatten)]
    user: UserView,
    /// RFC 3339.
    created_at: String,
    disabled: bool,
}

#[derive(Object)]
#[oai(rename = "ServerUserResponse")]
pub struct UserEnvelope {
    user: ServerUserView,
}

#[derive(Object)]
#[oai(rename = "ServerUsersResponse")]
pub struct UsersEnvelope {
    users: Vec<ServerUserView>,
}

/// One event: the webhook body and a feed entry.
#[derive(Object)]
pub struct Event {
    /// `evt_…`: unique, stable across redeliveries; receivers deduplicate by it.
    id: String,
    /// `user.created`, `user.updated`, `user.joined`, `user.disabled`, `user.enabled`,
    /// `user.deleted`.
    #[oai(rename = "type")]
    event_type: String,
    /// RFC 3339.
    created_at: String,
    /// What the event says; see the README's events section.
    data: serde_json::Value,
}

#[derive(Object)]
#[oai(rename = "EventsPage")]
pub struct EventsPage {
    /// Oldest first.
    events: Vec<Event>,
    /// Pass as `after` for the next page.
    next: String,
}

#[derive(ApiResponse)]
pub enum RevokeResponse {
    /// Every session of the user has ended.
    #[oai(status = 204)]
    Revoked,
}

pub struct ServerApi;

#[OpenApi(tag = "ApiTags::Server")]
impl ServerApi {
    /// A user by id
    ///
    /// An id that a join removed answers the user it was joined into (whose `id` then
    /// differs from the one asked for); an unknown or deleted id is 404 `not_found`.
    #[oai(
        path = "/api/v1/server/users/:id",
        method = "get",
        operation_id = "serverGetUser"
    )]
    async fn get_user(
        &self,
        context: Data<&Arc<AppContext>>,
        auth: ServerKey,
        id: Path<String>,
    ) -> Result<Json<UserEnvelope>, ApiError> {
        tracing::debug!(key = %auth.0, "server API: user by id");
        let user = context.server_users.get(&id.0).await?;
        Ok(Json(UserEnvelope {
            user: server_view(&context, user),
        }))
    }

    /// Users by openid, unionid or phone number
    ///
    /// Exactly one of: `appid` with `openid`, `unionid`, or `phone_number` (E.164 such as
    /// `+8613800138000`, or an 11-digit mainland number; compared in E.164).
    #[oai(
        path = "/api/v1/server/users",
        method = "get",
        operation_id = "serverFindUsers"
    )]
    async fn find_users(
        &self,
        context: Data<&Arc<AppContext>>,
        auth: ServerKey,
        /// The app the `openid` belongs to.
        appid: Query<Option<String>>,
        openid: Query<Option<String>>,
        unionid: Query<Option<String>>,
        phone_number: Query<Option<String>>,
    ) -> Result<Json<UsersEnvelope>, ApiError> {
        tracing::debug!(key = %auth.0, "server API: user lookup");
        let query = match (appid.0, openid.0, unionid.0, phone_number.0) {
            (Some(appid), Some(openid), None, None) => UserQuery::Identity { appid, openid },
            (None, None, Some(unionid), None) => UserQuery::Unionid(unionid),
            (None, None, None, Some(phone)) => UserQuery::PhoneNumber(phone),
            _ => {
                return Err(ApiError::invalid_request(
                    "give exactly one of: appid with openid, unionid, phone_number",
                ));
            }
        };
        let users = context.server_users.find(query).await?;
        Ok(Json(UsersEnvelope {
            users: users
                .into_iter()
                .map(|user| server_view(&context, user))
                .collect(),
        }))
    }

    /// Disable a user
    ///
    /// Every session of the user ends at once, and every login path answers 403
    /// `user_disabled` until the user is enabled. Emits `user.disabled`.
    #[oai(
        path = "/api/v1/server/users/:id/disable",
        method = "post",
        operation_id = "serverDisableUser"
    )]
    async fn disable(
        &self,
        context: Data<&Arc<AppContext>>,
        auth: ServerKey,
        id: Path<String>,
    ) -> Result<Json<UserEnvelope>, ApiError> {
        tracing::info!(key = %auth.0, user_id = %id.0, "server API: disable user");
        let user = context.server_users.set_disabled(&id.0, true).await?;
        Ok(Json(UserEnvelope {
            user: server_view(&context, user),
        }))
    }

    /// Enable a disabled user
    ///
    /// Emits `user.enabled`. The user signs in again; their old sessions stay ended.
    #[oai(
        path = "/api/v1/server/users/:id/enable",
        method = "post",
        operation_id = "serverEnableUser"
    )]
    async fn enable(
        &self,
        context: Data<&Arc<AppContext>>,
        auth: ServerKey,
        id: Path<String>,
    ) -> Result<Json<UserEnvelope>, ApiError> {
        tracing::info!(key = %auth.0, user_id = %id.0, "server API: enable user");
        let user = context.server_users.set_disabled(&id.0, false).await?;
        Ok(Json(UserEnvelope {
            user: server_view(&context, user),
        }))
    }

    /// End every session of a user
    ///
    /// Their refresh tokens fail and their access tokens get 401; they can sign in again.
    #[oai(
        path = "/api/v1/server/users/:id/sessions/revoke",
        method = "post",
        operation_id = "serverRevokeSessions"
    )]
    async fn revoke_sessions(
        &self,
        context: Data<&Arc<AppContext>>,
        auth: ServerKey,
        id: Path<String>,
    ) -> Result<RevokeResponse, ApiError> {
        tracing::info!(key = %auth.0, user_id = %id.0, "server API: revoke sessions");
        context.server_users.revoke_sessions(&id.0).await?;
        Ok(RevokeResponse::Revoked)
    }

    /// The events feed
    ///
    /// Every event, oldest first, for `EVENT_RETENTION_SECS`: the same events the webhook
    /// delivers, for systems that cannot receive webhooks. Page with `after` = the `next`
    /// of the previous answer; an empty page returns the same `next`, to poll with. An
    /// event appears here about two seconds after it was written.
    #[oai(
        path = "/api/v1/server/events",
        method = "get",
        operation_id = "serverEvents"
    )]
    async fn events(
        &self,
        context: Data<&Arc<AppContext>>,
        auth: ServerKey,
        /// An event id or the `next` of an earlier page; empty or absent: from the oldest.
        after: Query<Option<String>>,
        /// 1–500, default 100.
        limit: Query<Option<u64>>,
    ) -> Result<Json<EventsPage>, ApiError> {
        tracing::debug!(key = %auth.0, "server API: events feed");
        let (events, next) = context
            .server_users
            .events(after.0.as_deref(), limit.0.unwrap_or(100))
            .await?;
        Ok(Json(EventsPage {
            events: events.into_iter().map(event_view).collect(),
            next,
        }))
    }
}

fn server_view(context: &AppContext, user: UserRecord) -> ServerUserView {
    let (created_at, disabled) = (crate::events::timestamp(user.created_at), user.disabled);
    ServerUserView {
        user: context.user_view(user),
        created_at,
        disabled,
    }
}

fn event_view(event: StoredEvent) -> Event {
    let json = event.to_json();
    Event {
        created_at: crate::events::timestamp(event.created_at),
        data: json.get("data").cloned().unwrap_or_default(),
        id: event.id,
        event_type: event.event_type,
    }
}
