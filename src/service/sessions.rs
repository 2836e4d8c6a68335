use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};

use crate::{
    domain::{App, SessionId, UserId},
    store::{IssuedRefreshToken, RefreshOutcome, Store, UserRecord},
    token::{AccessTokens, IssuedToken},
};

use super::{PrincipalCache, ServiceError};

/// Longest a refresh token we issue can be; anything longer is not one of ours.
const MAX_REFRESH_TOKEN_LEN: usize = 128;
/// `last_used_at` is written at most this often per session (the contract lets it lag a
/// minute), so a busy session costs at most one extra write a minute.
const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// Sessions this instance remembers having touched; beyond, it starts over.
const MAX_TOUCHED: usize = 50_000;

/// Sessions and their tokens: starting one for a user, refreshing, ending, and turning an
/// access token back into the caller.
#[derive(Clone)]
pub struct Sessions {
    store: Store,
    tokens: AccessTokens,
    refresh_ttl: Duration,
    principals: Arc<PrincipalCache>,
    /// When this instance last recorded each session's use.
    touched: Arc<Mutex<HashMap<SessionId, Instant>>>,
}

/// One of the caller's live sessions, as their list shows it.
pub struct SessionView {
    pub id: SessionId,
    pub app: App,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    /// The session the request came with.
    pub current: bool,
}

/// A fresh token pair and the user it speaks for.
pub struct LoginOutcome {
    pub access_token: IssuedToken,
    pub refresh_token: IssuedRefreshToken,
    pub new_user: bool,
    pub user: UserRecord,
}

/// Who a valid access token speaks for, within which session, and the user as they are.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub user: UserRecord,
}

impl Sessions {
    pub fn new(
        store: Store,
        tokens: AccessTokens,
        refresh_ttl: Duration,
        principals: Arc<PrincipalCache>,
    ) -> Self {
        Self {
            store,
            tokens,
            refresh_ttl,
            principals,
            touched: Arc::default(),
        }
    }

    /// Starts a session for `user` signed in from `app`: a new token pair.
    pub async fn start(
        &self,
        user: UserId,
        app: App,
        new_user: bool,
    ) -> Result<LoginOutcome, ServiceError> {
        let user = self.current_user(user).await?;
        if user.disabled {
            return Err(ServiceError::UserDisabled);
        }
        let (session_id, refresh_token) = self
            .store
            .start_session(user.id, app, self.refresh_ttl)
            .await?;
        let access_token = self.tokens.issue(user.id, session_id)?;
        Ok(LoginOutcome {
            access_token,
            refresh_token,
            new_user,
            user,
        })
    }

    /// Trades a refresh token for a new pair, retiring it. Reuse revokes the session.
    pub async fn refresh(&self, presented: &str) -> Result<LoginOutcome, ServiceError> {
        if presented.is_empty() || presented.len() > MAX_REFRESH_TOKEN_LEN {
            return Err(ServiceError::InvalidGrant);
        }
        match self
            .store
            .rotate_refresh_token(presented, self.refresh_ttl)
            .await?
        {
            RefreshOutcome::Rotated {
                user_id,
                session_id,
                refresh_token,
            } => {
                let user = self.current_user(user_id).await?;
                // A session that a disable raced past ends here at the latest.
                if user.disabled {
                    return Err(ServiceError::UserDisabled);
                }
                let access_token = self.tokens.issue(user_id, session_id)?;
                Ok(LoginOutcome {
                    access_token,
                    refresh_token,
                    new_user: false,
                    user,
                })
            }
            RefreshOutcome::Reused(session_id) => {
                self.principals.forget_session(session_id);
                tracing::warn!("a retired refresh token was presented again; session revoked");
                Err(ServiceError::InvalidGrant)
            }
            RefreshOutcome::Invalid => Err(ServiceError::InvalidGrant),
            RefreshOutcome::UserDisabled => Err(ServiceError::UserDisabled),
        }
    }

    /// Ends the caller's session: its access tokens stop working here at once and its
    /// refresh token everywhere.
    pub async fn logout(&self, caller: &Authenticated) -> Result<(), ServiceError> {
        self.store.revoke_session(caller.session_id).await?;
        self.principals.forget_session(caller.session_id);
        tracing::info!(user_id = %caller.user_id, "logout");
        Ok(())
    }

    /// The caller a bearer token speaks for. Every failure is the same `Unauthenticated`.
    pub async fn authenticate(&self, bearer_token: &str) -> Result<Authenticated, ServiceError> {
        let verified = self.tokens.verify(bearer_token)?;
        let (user_id, session_id) = (verified.user_id, verified.session_id);
        let user = match self.principals.get(session_id, user_id) {
            Some(user) => user,
            None => {
                let user = self
                    .store
                    .active_session_user(session_id, user_id)
                    .await?
                    .ok_or_else(|| {
                        ServiceError::Unauthenticated("the session has ended".to_owned())
                    })?;
                self.principals.put(session_id, user.clone());
                self.touch(session_id);
                user
            }
        };
        Ok(Authenticated {
            user_id,
            session_id,
            user,
        })
    }

    /// Records the session's use off the request's path: only when the principal cache
    /// missed, and at most once a minute per session from this instance.
    fn touch(&self, session_id: SessionId) {
        {
            let mut touched = self.touched.lock().unwrap_or_else(PoisonError::into_inner);
            if touched
                .get(&session_id)
                .is_some_and(|at| at.elapsed() < TOUCH_EVERY)
            {
                return;
            }
            if touched.len() >= MAX_TOUCHED {
                touched.clear();
            }
            touched.insert(session_id, Instant::now());
        }
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(error) = store.touch_session(session_id, TOUCH_EVERY).await {
                tracing::warn!(%error, "recording a session's last use failed");
            }
        });
    }

    /// The caller's live sessions, newest first.
    pub async fn list(&self, caller: &Authenticated) -> Result<Vec<SessionView>, ServiceError> {
        Ok(self
            .store
            .live_sessions(caller.user_id)
            .await?
            .into_iter()
            .map(|session| SessionView {
                current: session.id == caller.session_id,
                id: session.id,
                app: session.app,
                created_at: session.created_at,
                last_used_at: session.last_used_at,
            })
            .collect())
    }

    /// Ends one of the caller's own sessions; anyone else's is `NotFound`.
    pub async fn end(&self, caller: &Authenticated, raw_id: &str) -> Result<(), ServiceError> {
        let id = raw_id
            .parse::<uuid::Uuid>()
            .map(SessionId::from)
            .map_err(|_| ServiceError::NotFound("session"))?;
        if !self.store.revoke_user_session(caller.user_id, id).await? {
            return Err(ServiceError::NotFound("session"));
        }
        self.principals.forget_session(id);
        tracing::info!(user_id = %caller.user_id, "session ended by its owner");
        Ok(())
    }

    pub async fn current_user(&self, id: UserId) -> Result<UserRecord, ServiceError> {
        self.store.find_user(id).await?.ok_or_else(|| {
            ServiceError::Unauthenticated("the token's user no longer exists".to_owned())
        })
    }

    /// The public keys other services verify our access tokens with.
    pub fn jwks(&self) -> serde_json::Value {
        self.tokens.jwks()
    }
}
