use std::time::Duration;

use crate::{
    domain::{App, AppId, JsCode, UserId},
    store::{CodeClaim, ExchangedKey, IdentityClaim, ProfileUpdate, Resolved, Store},
    wechat::{WeChatClient, WeChatError},
};

use super::{Accounts, LoginOutcome, ServiceError, Sessions};

/// How often a request that found its code mid-exchange looks again.
const PENDING_POLL: Duration = Duration::from_millis(50);

/// One WeChat client per configured app.
#[derive(Clone, Default)]
pub struct AppClients {
    pub miniprogram: Option<WeChatClient>,
    pub official_account: Option<WeChatClient>,
    pub website: Option<WeChatClient>,
}

impl AppClients {
    pub fn get(&self, app: App) -> Result<&WeChatClient, ServiceError> {
        match app {
            App::Miniprogram => self.miniprogram.as_ref(),
            App::OfficialAccount => self.official_account.as_ref(),
            App::Website => self.website.as_ref(),
        }
        .ok_or(ServiceError::AppNotConfigured(app))
    }
}

/// A person identified by a code, and how: by asking WeChat, or by reusing the exchange
/// of the same code within the replay window.
pub struct Identified {
    pub user_id: UserId,
    pub new_user: bool,
    pub replayed: bool,
}

/// Every login path: a code WeChat handed to the mini program or to a browser becomes our
/// user (through [`Accounts`]) and, for a login, a session (through [`Sessions`]). A code
/// is exchanged with WeChat once, whatever instance or how many requests present it.
#[derive(Clone)]
pub struct LoginService {
    clients: AppClients,
    store: Store,
    accounts: Accounts,
    sessions: Sessions,
    replay_window: Option<Duration>,
}

impl LoginService {
    pub fn new(
        clients: AppClients,
        store: Store,
        accounts: Accounts,
        sessions: Sessions,
        replay_window: Option<Duration>,
    ) -> Self {
        Self {
            clients,
            store,
            accounts,
            sessions,
            replay_window,
        }
    }

    /// Whether `app` is configured.
    pub fn serves(&self, app: App) -> bool {
        self.clients.get(app).is_ok()
    }

    /// Signs in with a code from `app`: a new session for the person behind it.
    pub async fn login(&self, app: App, code: &JsCode) -> Result<LoginOutcome, ServiceError> {
        let outcome = async {
            let identified = self.identify(app, code).await?;
            let login = self
                .sessions
                .start(identified.user_id, app, identified.new_user)
                .await?;
            Ok::<_, ServiceError>((login, identified.replayed))
        }
        .await;
        crate::metrics::login(match &outcome {
            Ok((_, true)) => "replayed",
            Ok((login, false)) if login.new_user => "new_user",
            Ok(_) => "returning",
            Err(error) => error.label(),
        });
        outcome.map(|(login, _)| login)
    }

    /// The user behind a code. Within the replay window a code presented again (a retry on
    /// a flaky network, a reloaded page, the same request twice at once, on any instance)
    /// gets the same user without a second call to WeChat.
    pub async fn identify(&self, app: App, code: &JsCode) -> Result<Identified, ServiceError> {
        let client = self.clients.get(app)?;
        let appid = client.appid();
        let Some(window) = self.replay_window else {
            let resolved = self.exchange(app, client, code).await?;
            return Ok(identified(&resolved, false));
        };
        // The first request holds the code at most as long as one WeChat exchange may take.
        let give_up =
            tokio::time::Instant::now() + exchange_budget(client) + Duration::from_secs(1);
        loop {
            match self.store.claim_code(appid, code, window).await? {
                CodeClaim::Claimed => {
                    let resolved = match self.exchange(app, client, code).await {
                        Ok(resolved) => resolved,
                        Err(error) => {
                            self.store.release_code(appid, code).await?;
                            return Err(error);
                        }
                    };
                    self.store
                        .complete_code(appid, code, resolved.user_id)
                        .await?;
                    return Ok(identified(&resolved, false));
                }
                CodeClaim::Completed(user_id) => {
                    tracing::info!(%user_id, %app, "login code replayed within the window");
                    return Ok(Identified {
                        user_id,
                        new_user: false,
                        replayed: true,
                    });
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

    async fn exchange(
        &self,
        app: App,
        client: &WeChatClient,
        code: &JsCode,
    ) -> Result<Resolved, ServiceError> {
        match app {
            App::Miniprogram => {
                let session = client.code_to_session(code).await?;
                self.accounts
                    .resolve(&IdentityClaim {
                        app,
                        appid: client.appid(),
                        openid: &session.openid,
                        unionid: session.unionid.as_ref(),
                        session_key: Some(ExchangedKey {
                            key: &session.session_key,
                            exchanged_us: session.exchanged_us,
                        }),
                        profile: None,
                    })
                    .await
            }
            App::OfficialAccount | App::Website => {
                let grant = client.oauth_access_token(code).await?;
                if grant.is_snapshot_user {
                    return Err(ServiceError::SnapshotUser);
                }
                let profile = if grant.allows_profile() {
                    match client
                        .oauth_userinfo(&grant.access_token, &grant.openid)
                        .await
                    {
                        Ok(profile) => Some(profile),
                        Err(error) => {
                            // The sign-in stands without the profile.
                            tracing::warn!(%error, %app, "sns/userinfo failed; signing in without the profile");
                            None
                        }
                    }
                } else {
                    None
                };
                let unionid = grant
                    .unionid
                    .clone()
                    .or_else(|| profile.as_ref().and_then(|p| p.unionid.clone()));
                let update = profile.map(|profile| ProfileUpdate {
                    nickname: profile.nickname,
                    avatar_url: profile.avatar_url,
                    unionid: None,
                });
                self.accounts
                    .resolve(&IdentityClaim {
                        app,
                        appid: client.appid(),
                        openid: &grant.openid,
                        unionid: unionid.as_ref(),
                        session_key: None,
                        profile: update.as_ref(),
                    })
                    .await
            }
        }
    }

    /// The appid of a configured app.
    pub fn appid(&self, app: App) -> Result<&AppId, ServiceError> {
        Ok(self.clients.get(app)?.appid())
    }
}

fn identified(resolved: &Resolved, replayed: bool) -> Identified {
    Identified {
        user_id: resolved.user_id,
        new_user: resolved.new_user,
        replayed,
    }
}

/// A web exchange is two calls (the token, then the profile).
fn exchange_budget(client: &WeChatClient) -> Duration {
    client.budget() * 2
}
