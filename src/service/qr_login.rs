//! Computer sign-in by the mini program: a computer starts a sign-in and shows its
//! mini-program code; the mini-program user scans it, sees which browser asks, and
//! confirms or denies; the computer's long-poll hands out the new session once.
//!
//! The database is the truth. Waiting polls hold no connection: each waits on an
//! in-process `watch` channel per sign-in, woken at once by changes made on this
//! instance and, within [`RECHECK`], by changes made on others (one batched query per
//! interval for every sign-in being waited on here, however many polls wait).

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use chrono::{DateTime, Utc};
use subtle::ConstantTimeEq;
use tokio::sync::watch;

use crate::{
    crypto,
    domain::{App, QrLoginId, QrLoginStatus, UserId},
    store::{NewQrLogin, QrLoginChange, QrLoginRecord, Store},
    wechat::{WeChatClient, WeChatError},
};

use super::{LoginOutcome, ServiceError, Sessions, access_token::WeChatAccessTokens};

/// The contract's longest wait of one poll.
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// A scanned sign-in nobody answers expires this long after the scan.
const ANSWER_WINDOW: Duration = Duration::from_secs(30);
/// How often waiting polls learn of changes made on other instances.
const RECHECK: Duration = Duration::from_millis(500);
/// Sign-ins asked about per query of the re-check.
const RECHECK_BATCH: usize = 500;
/// 24 base62 characters: 142 bits, within WeChat's 32-character `scene`.
const ID_LEN: usize = 24;
/// ≥ 128 bits, as the contract asks; we give 256.
const SECRET_BYTES: usize = 32;
/// Transitions retried when another change to the same sign-in came first.
const MAX_RACES: usize = 5;

/// What the computer gets when it starts a sign-in.
pub struct StartedQrLogin {
    pub id: QrLoginId,
    /// Known only to this computer; never in the image.
    pub secret: String,
    pub expires_in: Duration,
    pub image_url: String,
}

/// Who started a sign-in, as the phone is shown it.
pub struct RequestedBy {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A poll's answer: the status and, for the one poll that claimed them, the tokens.
pub struct QrLoginPoll {
    pub status: QrLoginStatus,
    pub login: Option<LoginOutcome>,
}

/// The settings of computer sign-in.
#[derive(Clone)]
pub struct QrLoginOptions {
    /// The mini-program page the code opens (`QR_LOGIN_PAGE`).
    pub page: String,
    pub ttl: Duration,
    /// `{PUBLIC_BASE_URL}` without a trailing slash.
    pub public_base_url: String,
}

#[derive(Clone)]
pub struct QrLogins {
    store: Store,
    sessions: Sessions,
    wechat: WeChatClient,
    access_tokens: WeChatAccessTokens,
    settings: QrLoginOptions,
    waiters: Arc<Waiters>,
    /// One image being made per sign-in at a time on this instance.
    making: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl QrLogins {
    /// Also starts this instance's re-check of sign-ins being waited on.
    pub fn new(
        store: Store,
        sessions: Sessions,
        wechat: WeChatClient,
        access_tokens: WeChatAccessTokens,
        settings: QrLoginOptions,
    ) -> Self {
        let waiters = Arc::new(Waiters::default());
        spawn_recheck(store.clone(), Arc::downgrade(&waiters));
        Self {
            store,
            sessions,
            wechat,
            access_tokens,
            settings,
            waiters,
            making: Arc::default(),
        }
    }

    /// A computer starts a sign-in.
    pub async fn start(
        &self,
        requested_ip: Option<IpAddr>,
        requested_user_agent: Option<&str>,
    ) -> Result<StartedQrLogin, ServiceError> {
        let id = QrLoginId::parse(&crypto::random_alphanumeric(ID_LEN))
            .map_err(|e| ServiceError::InvalidRequest(e.0))?;
        let secret = crypto::random_urlsafe(SECRET_BYTES);
        self.store
            .create_qr_login(&NewQrLogin {
                id: &id,
                secret: &secret,
                requested_ip: requested_ip.map(|ip| ip.to_string()),
                requested_user_agent,
                ttl: self.settings.ttl,
            })
            .await?;
        tracing::info!(qr_login = %id, "computer sign-in started");
        Ok(StartedQrLogin {
            image_url: format!(
                "{}/api/v1/qr-login/{id}/image",
                self.settings.public_base_url
            ),
            id,
            secret,
            expires_in: self.settings.ttl,
        })
    }

    /// The mini-program code of a live sign-in: made once by WeChat, then served from the
    /// database.
    pub async fn image(&self, id: &str) -> Result<Vec<u8>, ServiceError> {
        let record = self.live(id).await?;
        if let Some(png) = self.store.qr_login_image(&record.id).await? {
            return Ok(png);
        }
        let lock = {
            let mut making = self.making.lock().unwrap_or_else(PoisonError::into_inner);
            making.entry(id.to_owned()).or_default().clone()
        };
        let made = async {
            let _one_at_a_time = lock.lock().await;
            if let Some(png) = self.store.qr_login_image(&record.id).await? {
                return Ok(png);
            }
            let png = self.make_image(&record.id).await?;
            self.store.save_qr_login_image(&record.id, &png).await?;
            Ok::<_, ServiceError>(png)
        }
        .await;
        {
            let mut making = self.making.lock().unwrap_or_else(PoisonError::into_inner);
            if making
                .get(id)
                .is_some_and(|entry| Arc::strong_count(entry) <= 2)
            {
                making.remove(id);
            }
        }
        made
    }

    /// `wxa/getwxacodeunlimit` with the shared access_token; a token WeChat rejects
    /// (40001, 42001) is replaced once and the call repeated.
    async fn make_image(&self, id: &QrLoginId) -> Result<Vec<u8>, ServiceError> {
        let token = self.access_tokens.current().await?;
        let page = self.settings.page.as_str();
        match self
            .wechat
            .mini_program_code(&token, id.as_str(), page)
            .await
        {
            Err(WeChatError::AccessTokenRejected(errcode)) => {
                tracing::warn!(errcode, "WeChat rejected the access_token; refreshing once");
                let replacement = self.access_tokens.replace_rejected(&token).await?;
                Ok(self
                    .wechat
                    .mini_program_code(&replacement, id.as_str(), page)
                    .await?)
            }
            other => Ok(other?),
        }
    }

    /// The computer asks where its sign-in stands, waiting up to `wait` for a change from
    /// what it is now. A confirmed sign-in's tokens go to exactly one poll.
    pub async fn poll(
        &self,
        id: &str,
        secret: &str,
        wait: Duration,
    ) -> Result<QrLoginPoll, ServiceError> {
        let id = QrLoginId::parse(id).map_err(|_| ServiceError::QrLoginNotFound)?;
        // Subscribed before the first read, so no change after that read goes unnoticed.
        let mut subscription = self.waiters.subscribe(&id);
        let record = self.read(&id).await?;
        let mut record = record
            .filter(|record| secret_matches(record, secret))
            .ok_or(ServiceError::QrLoginNotFound)?;
        let found = effective_status(&record, Utc::now());
        let give_up = tokio::time::Instant::now() + wait.min(MAX_WAIT);
        loop {
            let now = Utc::now();
            let status = effective_status(&record, now);
            if status != found || status.is_final() || tokio::time::Instant::now() >= give_up {
                return Box::pin(self.answer(&record, status)).await;
            }
            let until_expiry = (record.expires_at - now).to_std().unwrap_or_default();
            let wake_at = give_up.min(tokio::time::Instant::now() + until_expiry);
            let version = record.version;
            tokio::select! {
                () = subscription.changed_beyond(version) => {}
                () = tokio::time::sleep_until(wake_at) => {}
            }
            record = self.read(&id).await?.ok_or(ServiceError::QrLoginNotFound)?;
        }
    }

    /// One read of a sign-in. Boxed: a database call's future is many times the size of
    /// everything else a waiting poll holds, and boxing it keeps it off the poll's state
    /// for the seconds the poll waits.
    async fn read(&self, id: &QrLoginId) -> Result<Option<QrLoginRecord>, ServiceError> {
        Ok(Box::pin(self.store.qr_login(id)).await?)
    }

    async fn answer(
        &self,
        record: &QrLoginRecord,
        status: QrLoginStatus,
    ) -> Result<QrLoginPoll, ServiceError> {
        if status != QrLoginStatus::Confirmed || record.handed_out {
            return Ok(QrLoginPoll {
                status,
                login: None,
            });
        }
        let Some(user) = self.store.claim_qr_login_tokens(&record.id).await? else {
            return Ok(QrLoginPoll {
                status,
                login: None,
            });
        };
        // The computer is a web browser: its session is a website session, whichever app
        // the person confirmed from.
        match self.sessions.start(user, App::Website, false).await {
            Ok(login) => {
                tracing::info!(qr_login = %record.id, user_id = %user, "computer signed in");
                Ok(QrLoginPoll {
                    status,
                    login: Some(login),
                })
            }
            Err(error) => {
                self.store.release_qr_login_tokens(&record.id).await?;
                Err(error)
            }
        }
    }

    /// The mini program saw the code: the sign-in is now this user's to answer, within
    /// [`ANSWER_WINDOW`]. Scanning again by the same user changes nothing.
    pub async fn scan(&self, id: &str, user: UserId) -> Result<RequestedBy, ServiceError> {
        let record = self
            .transition(id, |record, now| match effective_status(record, now) {
                QrLoginStatus::Pending => {
                    let answer_by =
                        now + chrono::Duration::from_std(ANSWER_WINDOW).unwrap_or_default();
                    Ok(Some(QrLoginChange {
                        status: QrLoginStatus::Scanned,
                        scanned_by: Some(user),
                        expires_at: record.expires_at.min(answer_by),
                    }))
                }
                QrLoginStatus::Scanned if record.scanned_by == Some(user) => Ok(None),
                QrLoginStatus::Scanned => Err(ServiceError::QrLoginClosed(
                    "another user scanned this code first",
                )),
                _ => Err(closed()),
            })
            .await?;
        tracing::info!(qr_login = %record.id, user_id = %user, "computer sign-in scanned");
        Ok(RequestedBy {
            ip: record.requested_ip,
            user_agent: record.requested_user_agent,
        })
    }

    /// The scanning user's answer.
    pub async fn answer_scan(
        &self,
        id: &str,
        user: UserId,
        confirm: bool,
    ) -> Result<QrLoginStatus, ServiceError> {
        let status = if confirm {
            QrLoginStatus::Confirmed
        } else {
            QrLoginStatus::Denied
        };
        let record = self
            .transition(id, |record, now| match effective_status(record, now) {
                QrLoginStatus::Pending => Err(ServiceError::InvalidRequest(
                    "scan the code first: the phone must show who is asking before an answer"
                        .to_owned(),
                )),
                QrLoginStatus::Scanned if record.scanned_by == Some(user) => {
                    Ok(Some(QrLoginChange {
                        status,
                        scanned_by: record.scanned_by,
                        expires_at: record.expires_at,
                    }))
                }
                QrLoginStatus::Scanned => Err(ServiceError::QrLoginClosed(
                    "another user scanned this code",
                )),
                _ => Err(closed()),
            })
            .await?;
        tracing::info!(qr_login = %record.id, user_id = %user, status = status.as_str(), "computer sign-in answered");
        Ok(status)
    }

    /// Reads the sign-in, lets `decide` pick the change, and applies it if nobody changed
    /// the sign-in meanwhile (else reads again). Wakes this instance's polls at once.
    async fn transition(
        &self,
        id: &str,
        decide: impl Fn(&QrLoginRecord, DateTime<Utc>) -> Result<Option<QrLoginChange>, ServiceError>,
    ) -> Result<QrLoginRecord, ServiceError> {
        let id = QrLoginId::parse(id).map_err(|_| ServiceError::QrLoginNotFound)?;
        for _ in 0..MAX_RACES {
            let record = self
                .store
                .qr_login(&id)
                .await?
                .ok_or(ServiceError::QrLoginNotFound)?;
            let Some(change) = decide(&record, Utc::now())? else {
                return Ok(record);
            };
            if self
                .store
                .change_qr_login(&id, record.version, &change)
                .await?
            {
                self.waiters.notify(id.as_str(), record.version + 1);
                return Ok(record);
            }
        }
        Err(crate::store::StoreError::Contended.into())
    }

    /// A sign-in that can still be scanned or answered.
    async fn live(&self, id: &str) -> Result<QrLoginRecord, ServiceError> {
        let id = QrLoginId::parse(id).map_err(|_| ServiceError::QrLoginNotFound)?;
        let record = self
            .store
            .qr_login(&id)
            .await?
            .ok_or(ServiceError::QrLoginNotFound)?;
        if effective_status(&record, Utc::now()).is_final() {
            return Err(closed());
        }
        Ok(record)
    }
}

fn closed() -> ServiceError {
    ServiceError::QrLoginClosed("this sign-in has expired or is already finished")
}

fn secret_matches(record: &QrLoginRecord, secret: &str) -> bool {
    !secret.is_empty()
        && bool::from(
            crypto::sha256_hex(secret)
                .as_bytes()
                .ct_eq(record.secret_hash.as_bytes()),
        )
}

/// The stored status, or `expired` once an unfinished sign-in's time is up.
fn effective_status(record: &QrLoginRecord, now: DateTime<Utc>) -> QrLoginStatus {
    match record.status {
        QrLoginStatus::Pending | QrLoginStatus::Scanned if record.expires_at <= now => {
            QrLoginStatus::Expired
        }
        status => status,
    }
}

/// The sign-ins polls wait on in this process: one `watch` channel each, carrying the
/// newest version known here. An entry lives while someone waits on it.
#[derive(Default)]
struct Waiters {
    channels: Mutex<HashMap<String, watch::Sender<i64>>>,
}

impl Waiters {
    fn subscribe(self: &Arc<Self>, id: &QrLoginId) -> Subscription {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        let receiver = channels
            .entry(id.as_str().to_owned())
            .or_insert_with(|| watch::channel(i64::MIN).0)
            .subscribe();
        Subscription {
            waiters: self.clone(),
            id: id.as_str().to_owned(),
            receiver: Some(receiver),
        }
    }

    /// Wakes the polls of `id` if `version` is newer than what they know.
    fn notify(&self, id: &str, version: i64) {
        let channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = channels.get(id) {
            sender.send_if_modified(|known| {
                let newer = version > *known;
                if newer {
                    *known = version;
                }
                newer
            });
        }
    }

    fn ids(&self) -> Vec<String> {
        self.channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }
}

/// One poll's wait on a sign-in; dropping the last one of a sign-in forgets it.
struct Subscription {
    waiters: Arc<Waiters>,
    id: String,
    receiver: Option<watch::Receiver<i64>>,
}

impl Subscription {
    /// Returns once a version newer than `version` is known here.
    async fn changed_beyond(&mut self, version: i64) {
        match self.receiver.as_mut() {
            Some(receiver) => {
                if receiver.wait_for(|known| *known > version).await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending::<()>().await,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        drop(self.receiver.take());
        let mut channels = self
            .waiters
            .channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if channels
            .get(&self.id)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            channels.remove(&self.id);
        }
    }
}

/// Every [`RECHECK`], asks the database for the versions of the sign-ins being waited on
/// here and wakes those another instance changed. Idle (no query) while nobody waits; ends
/// with the service.
fn spawn_recheck(store: Store, waiters: std::sync::Weak<Waiters>) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(RECHECK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let Some(waiters) = waiters.upgrade() else {
                return;
            };
            let ids = waiters.ids();
            for batch in ids.chunks(RECHECK_BATCH) {
                match store.qr_login_versions(batch).await {
                    Ok(versions) => {
                        for (id, version) in versions {
                            waiters.notify(&id, version);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "re-checking waited-on sign-ins failed");
                    }
                }
            }
        }
    });
}
