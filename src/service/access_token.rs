use std::{sync::Arc, time::Duration};

use chrono::Utc;
use tokio::sync::Mutex;

use crate::{
    domain::AppId,
    store::{Store, StoredAccessToken},
    wechat::{AccessToken, WeChatClient, WeChatError},
};

use super::ServiceError;

/// WeChat overlaps old and new stable tokens by five minutes: switching this long before
/// expiry never presents an expired one.
const REFRESH_AHEAD: Duration = Duration::from_secs(300);
/// How long one instance may hold the right to fetch before others may take over.
const LEASE: Duration = Duration::from_secs(15);
const WAIT_POLL: Duration = Duration::from_millis(100);

/// The app's access_token for WeChat's server APIs, shared through the database by every
/// instance and fetched by one at a time (in-process by a mutex, across instances by a
/// lease in the database).
#[derive(Clone)]
pub struct WeChatAccessTokens {
    wechat: WeChatClient,
    store: Store,
    cached: Arc<Mutex<Option<StoredAccessToken>>>,
}

impl WeChatAccessTokens {
    pub fn new(wechat: WeChatClient, store: Store) -> Self {
        Self {
            wechat,
            store,
            cached: Arc::new(Mutex::new(None)),
        }
    }

    fn appid(&self) -> &AppId {
        self.wechat.appid()
    }

    /// A token that is valid for a while yet.
    pub async fn current(&self) -> Result<AccessToken, ServiceError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| is_fresh(t)) {
            return Ok(token.token.clone());
        }
        let fresh = self.fetch_shared(false).await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// After WeChat rejected `rejected` (40001/42001): a forced refresh, unless another
    /// request already replaced that token (force refreshes are rationed by WeChat).
    pub async fn replace_rejected(
        &self,
        rejected: &AccessToken,
    ) -> Result<AccessToken, ServiceError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached
            .as_ref()
            .filter(|t| t.token != *rejected && is_fresh(t))
        {
            return Ok(token.token.clone());
        }
        if let Some(stored) = self.store.access_token(self.appid()).await?
            && stored.token != *rejected
            && is_fresh(&stored)
        {
            let token = stored.token.clone();
            *cached = Some(stored);
            return Ok(token);
        }
        let fresh = self.fetch_shared(true).await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// The shared token from the database, or a new one from WeChat when it is missing or
    /// stale (or `force`d) and this instance wins the lease.
    async fn fetch_shared(&self, force: bool) -> Result<StoredAccessToken, ServiceError> {
        let give_up = tokio::time::Instant::now() + self.wechat.budget() + Duration::from_secs(1);
        loop {
            if !force
                && let Some(stored) = self.store.access_token(self.appid()).await?
                && is_fresh(&stored)
            {
                return Ok(stored);
            }
            if self
                .store
                .lease_access_token_refresh(self.appid(), LEASE)
                .await?
            {
                return self.fetch_from_wechat(force).await;
            }
            if tokio::time::Instant::now() >= give_up {
                return Err(WeChatError::Unavailable(
                    "another instance is still fetching the access_token".to_owned(),
                )
                .into());
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
    }

    async fn fetch_from_wechat(&self, force: bool) -> Result<StoredAccessToken, ServiceError> {
        let fresh = match self.wechat.stable_token(force).await {
            Ok(fresh) => fresh,
            Err(error) => {
                self.store.release_access_token_lease(self.appid()).await?;
                return Err(error.into());
            }
        };
        let expires_at = Utc::now()
            + chrono::Duration::from_std(fresh.expires_in)
                .unwrap_or(chrono::Duration::seconds(7200));
        self.store
            .save_access_token(self.appid(), &fresh.token, expires_at)
            .await?;
        tracing::info!(force, "fetched a new WeChat access_token");
        Ok(StoredAccessToken {
            token: fresh.token,
            expires_at,
        })
    }
}

fn is_fresh(token: &StoredAccessToken) -> bool {
    let ahead = chrono::Duration::from_std(REFRESH_AHEAD).unwrap_or_default();
    token.expires_at - ahead > Utc::now()
}
