use std::{sync::Arc, time::Duration};

use crate::{
    domain::{AppId, JsCode, SessionId, UserId},
    store::{CodeClaim, IssuedRefreshToken, NewSession, RefreshOutcome, Store, UserRecord},
    token::{AccessTokens, IssuedToken},
    wechat::{WeChatClient, WeChatError},
};

use super::{PrincipalCache, ServiceError};

/// How often a request that found its code mid-exchange looks again.
const PENDING_POLL: Duration = Duration::from_millis(50);
/// Longest a refresh token we issue can be; anything longer is not one of ours.
const MAX_REFRESH_TOKEN_LEN: usize = 128;

/// Login, refresh, logout and authentication: turns a `wx.login` code into our tokens,
/// and our tokens back into a user.
#[derive(Clone)]
pub struct AuthService {
    wechat: WeChatClient,
    store: Store,
    tokens: AccessTokens,
    refresh_ttl: Duration,
    replay_window: Option<Duration>,
    principals: Arc<PrincipalCache>,
}

/// A fresh token pair and the user it speaks for.
pub struct LoginOutcome {
    pub access_token: IssuedToken,
    pub refresh_token: IssuedRefreshToken,
    pub new_user: bool,
    pub user: UserRecord,
}

/// Whether a login asked WeChat, or reused an exchange of the same code.
enum Exchange {
    Performed,
    Replayed,
}

/// Who a valid access token speaks for, within which session, and the user as they are.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub user: UserRecord,
}

impl AuthService {
    pub fn new(
        wechat: WeChatClient,
        store: Store,
        tokens: AccessTokens,
        refresh_ttl: Duration,
        replay_window: Option<Duration>,
        principals: Arc<PrincipalCache>,
    ) -> Self {
        Self {
            wechat,
            store,
            tokens,
            refresh_ttl,
            replay_window,
            principals,
        }
    }

    fn appid(&self) -> &AppId {
        self.wechat.appid()
    }

    /// Exchanges a code for a new session. Within the replay window a code posted again
    /// (a retry on a flaky network, or the same request twice at once, on any instance)
    /// gets a new session for the same user without a second `jscode2session`.
    pub async fn login(&self, code: &JsCode) -> Result<LoginOutcome, ServiceError> {
        let outcome = self.login_once_per_code(code).await;
        crate::metrics::login(match &outcome {
            Ok((_, Exchange::Replayed)) => "replayed",
            Ok((login, Exchange::Performed)) if login.new_user => "new_user",
            Ok((_, Exchange::Performed)) => "returning",
            Err(error) => error.label(),
        });
        outcome.map(|(login, _)| login)
    }

    async fn login_once_per_code(
        &self,
        code: &JsCode,
    ) -> Result<(LoginOutcome, Exchange), ServiceError> {
        let Some(window) = self.replay_window else {
            let record = self.exchange(code).await?;
            let login = self.start_session(record.user, record.new_user).await?;
            return Ok((login, Exchange::Performed));
        };
        // The first request holds the code at most as long as one WeChat call may take.
        let give_up = tokio::time::Instant::now() + self.wechat.budget() + Duration::from_secs(1);
        loop {
            match self.store.claim_code(self.appid(), code, window).await? {
                CodeClaim::Claimed => {
                    let record = match self.exchange(code).await {
                        Ok(record) => record,
                        Err(error) => {
                            self.store.release_code(self.appid(), code).await?;
                            return Err(error);
                        }
                    };
                    self.store
                        .complete_code(self.appid(), code, record.user.id)
                        .await?;
                    let login = self.start_session(record.user, record.new_user).await?;
                    return Ok((login, Exchange::Performed));
                }
                CodeClaim::Completed(user_id) => {
                    tracing::info!(%user_id, "login code replayed within the window");
                    let user = self.current_user(user_id).await?;
                    let login = self.start_session(user, false).await?;
                    return Ok((login, Exchange::Replayed));
                }
                CodeClaim::Pending if tokio::time::Instant::now() >= give_up => {
                    return Err(WeChatError::Unavailable(
                        "another request is still exchanging this code".to_owned(),
                    )
                    .into());
                }
                CodeClaim::Pending => tokio::time::sleep(PENDING_POLL).await,
            }
        }
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
                    .active_session_user(session_id, user_id, self.appid())
                    .await?
                    .ok_or_else(|| {
                        ServiceError::Unauthenticated("the session has ended".to_owned())
                    })?;
                self.principals.put(session_id, user.clone());
                user
            }
        };
        Ok(Authenticated {
            user_id,
            session_id,
            user,
        })
    }

    pub async fn current_user(&self, id: UserId) -> Result<UserRecord, ServiceError> {
        self.store
            .find_user(id, self.appid())
            .await?
            .ok_or_else(|| {
                ServiceError::Unauthenticated("the token's user no longer exists".to_owned())
            })
    }

    /// The public keys other services verify our access tokens with.
    pub fn jwks(&self) -> serde_json::Value {
        self.tokens.jwks()
    }

    async fn exchange(&self, code: &JsCode) -> Result<crate::store::LoginRecord, ServiceError> {
        let session = self.wechat.code_to_session(code).await?;
        let record = self
            .store
            .record_login(&NewSession {
                appid: self.appid(),
                openid: &session.openid,
                session_key: &session.session_key,
                unionid: session.unionid.as_ref(),
            })
            .await?;
        // A login may have attached a unionid: cached views of this user are stale.
        self.principals.forget_user(record.user.id);
        tracing::info!(user_id = %record.user.id, new_user = record.new_user, "login");
        Ok(record)
    }

    async fn start_session(
        &self,
        user: UserRecord,
        new_user: bool,
    ) -> Result<LoginOutcome, ServiceError> {
        let (session_id, refresh_token) =
            self.store.start_session(user.id, self.refresh_ttl).await?;
        let access_token = self.tokens.issue(user.id, session_id)?;
        Ok(LoginOutcome {
            access_token,
            refresh_token,
            new_user,
            user,
        })
    }
}
