//! Events (contract v1.4): every user change becomes one event, written with the change,
//! delivered as a Standard Webhook to a receiver that checks the signature itself, and
//! listed by the feed.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, KeyInit, Mac};
use poem::{
    EndpointExt, Request, Route, Server, handler,
    http::StatusCode,
    listener::{Acceptor, Listener, TcpListener},
    web::Data,
};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::Notify;

use crate::helpers::{
    APPID, FakeWeChat, OA_APPID, TestApp, TestDatabase, assert_problem, execute_sql, openid_of,
    phone_payload, spawn_app_sharing, spawn_app_with, watermark,
};
use crate::process::ServiceProcess;
use crate::{
    phone::{age_codes, app_with_sms, prove_phone},
    sms_fakes::FakeSms,
};

/// `whsec_` + base64 of 32 bytes, as Standard Webhooks secrets look.
pub const SECRET: &str = "whsec_d2VjaGF0LWF1dGgtd2ViaG9vay10ZXN0LXNlY3JldCE=";
pub const SERVER_KEY: &str = "backend-key-0123456789-abcdefghijklmnop";
const SERVER_KEYS: &str = "orders:backend-key-0123456789-abcdefghijklmnop";

/// What the receiver does with a delivery.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Accept,
    Fail,
    /// Holds the request open until released.
    Stall,
}

#[derive(Default)]
struct ReceiverState {
    mode: Mutex<Option<Mode>>,
    /// Every attempt's `webhook-id`, in arrival order.
    attempts: Mutex<Vec<String>>,
    /// Accepted deliveries, in arrival order.
    delivered: Mutex<Vec<Value>>,
    /// Requests whose signature, timestamp or id did not check out.
    forged: Mutex<Vec<String>>,
    stalled: AtomicUsize,
    release: Notify,
    /// When set, only this user's events stall; the others follow the mode.
    stall_only: Mutex<Option<String>>,
}

/// A webhook receiver as a team would write it from the Standard Webhooks specification:
/// it verifies every request itself.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    state: Arc<ReceiverState>,
}

impl Receiver {
    pub async fn start(mode: Mode) -> Self {
        let state = Arc::new(ReceiverState::default());
        *state.mode.lock().unwrap() = Some(mode);
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let address = *acceptor.local_addr()[0].as_socket_addr().unwrap();
        let routes = Route::new()
            .at("/hooks", poem::post(receive))
            .data(state.clone());
        tokio::spawn(Server::new_with_acceptor(acceptor).run(routes));
        Self {
            url: format!("http://{address}/hooks"),
            state,
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = Some(mode);
        *self.state.stall_only.lock().unwrap() = None;
        if mode != Mode::Stall {
            self.state.release.notify_waiters();
        }
    }

    /// Stalls only the events of `user_id`, until released by `set_mode`.
    pub fn stall_only(&self, user_id: &str) {
        *self.state.stall_only.lock().unwrap() = Some(user_id.to_owned());
    }

    pub fn attempts(&self) -> Vec<String> {
        self.state.attempts.lock().unwrap().clone()
    }

    pub fn delivered(&self) -> Vec<Value> {
        let forged = self.state.forged.lock().unwrap().clone();
        assert!(
            forged.is_empty(),
            "requests that failed verification: {forged:?}"
        );
        self.state.delivered.lock().unwrap().clone()
    }

    pub fn stalled(&self) -> usize {
        self.state.stalled.load(Ordering::SeqCst)
    }

    /// Accepted deliveries of the user with `user_id` (the data's `user.id` or `user_id`).
    pub fn delivered_for(&self, user_id: &str) -> Vec<Value> {
        self.delivered()
            .into_iter()
            .filter(|event| subject(event) == user_id)
            .collect()
    }
}

/// The user an event is about.
pub fn subject(event: &Value) -> String {
    event["data"]["user"]["id"]
        .as_str()
        .or(event["data"]["user_id"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Verification written from the specification, not from the service's code: the
/// signed content is `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the
/// base64-decoded part of the secret after `whsec_`; the header may list several
/// space-separated signatures; the timestamp must be recent.
fn verify(request: &Request, body: &str) -> Result<String, String> {
    let header = |name: &str| {
        request
            .header(name)
            .map(str::to_owned)
            .ok_or(format!("no {name}"))
    };
    let id = header("webhook-id")?;
    let timestamp = header("webhook-timestamp")?;
    let signatures = header("webhook-signature")?;
    let sent_at: i64 = timestamp.parse().map_err(|_| "timestamp".to_owned())?;
    if (chrono::Utc::now().timestamp() - sent_at).abs() > 300 {
        return Err("stale timestamp".to_owned());
    }
    let key = STANDARD
        .decode(SECRET.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    let matches = signatures
        .split(' ')
        .filter_map(|entry| entry.split_once(','))
        .any(|(version, signature)| version == "v1" && signature == expected);
    if !matches {
        return Err(format!("bad signature on {id}"));
    }
    let parsed: Value = serde_json::from_str(body).map_err(|_| "body".to_owned())?;
    if parsed["id"] != id.as_str() {
        return Err("webhook-id differs from the body's id".to_owned());
    }
    Ok(id)
}

#[handler]
async fn receive(request: &Request, body: String, state: Data<&Arc<ReceiverState>>) -> StatusCode {
    let id = match verify(request, &body) {
        Ok(id) => id,
        Err(problem) => {
            state.forged.lock().unwrap().push(problem);
            return StatusCode::BAD_REQUEST;
        }
    };
    state.attempts.lock().unwrap().push(id);
    let mut mode = state.mode.lock().unwrap().unwrap_or(Mode::Accept);
    let parsed: Value = serde_json::from_str(&body).unwrap();
    if let Some(user) = state.stall_only.lock().unwrap().as_deref() {
        mode = if subject(&parsed) == user {
            Mode::Stall
        } else {
            Mode::Accept
        };
    }
    match mode {
        Mode::Accept => {
            state
                .delivered
                .lock()
                .unwrap()
                .push(serde_json::from_str(&body).unwrap());
            StatusCode::NO_CONTENT
        }
        Mode::Fail => StatusCode::INTERNAL_SERVER_ERROR,
        Mode::Stall => {
            let released = state.release.notified();
            state.stalled.fetch_add(1, Ordering::SeqCst);
            released.await;
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

fn webhook_settings(receiver: &Receiver) -> Vec<(&'static str, String)> {
    vec![
        ("WEBHOOK_URL", receiver.url.clone()),
        ("WEBHOOK_SECRET", SECRET.to_owned()),
        ("WEBHOOK_RETRY_BASE_MS", "50".to_owned()),
        ("SERVER_API_KEYS", SERVER_KEYS.to_owned()),
    ]
}

async fn spawn_with_webhook(receiver: &Receiver) -> TestApp {
    let settings = webhook_settings(receiver);
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    spawn_app_with(&pairs).await
}

pub async fn spawn_with_server_keys() -> TestApp {
    spawn_app_with(&[("SERVER_API_KEYS", SERVER_KEYS)]).await
}

/// Polls until `done` holds, for up to a minute (a bound, not an expectation of speed).
pub async fn wait_until<F: AsyncFn() -> bool>(what: &str, done: F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn server_get(app: &TestApp, path: &str) -> reqwest::Response {
    app.http
        .get(app.url(path))
        .bearer_auth(SERVER_KEY)
        .send()
        .await
        .unwrap()
}

pub async fn server_post(app: &TestApp, path: &str) -> reqwest::Response {
    app.http
        .post(app.url(path))
        .bearer_auth(SERVER_KEY)
        .send()
        .await
        .unwrap()
}

/// Every event in the feed, paging `limit` at a time.
pub async fn feed(app: &TestApp, limit: usize) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after = String::new();
    loop {
        let response = server_get(
            app,
            &format!("/api/v1/server/events?after={after}&limit={limit}"),
        )
        .await;
        assert_eq!(response.status().as_u16(), 200);
        let page: Value = response.json().await.unwrap();
        let batch = page["events"].as_array().unwrap().clone();
        let next = page["next"].as_str().unwrap().to_owned();
        if batch.is_empty() {
            assert_eq!(next, after, "an empty page hands the cursor back");
            return events;
        }
        assert!(batch.len() <= limit);
        assert_eq!(next, batch.last().unwrap()["id"].as_str().unwrap());
        events.extend(batch);
        after = next;
    }
}

/// The feed once it lists at least `count` events.
pub async fn feed_with(app: &TestApp, count: usize) -> Vec<Value> {
    wait_until(&format!("the feed lists {count} events"), async || {
        feed(app, 500).await.len() >= count
    })
    .await;
    feed(app, 500).await
}

fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|event| event["type"].as_str().unwrap().to_owned())
        .collect()
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|event| event["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn web_login(app: &TestApp, web_app: &str, code: &str) -> Value {
    let response = app
        .post_json(
            "/api/v1/auth/web/login",
            &json!({ "app": web_app, "code": code }),
            None,
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn every_user_change_is_delivered_as_a_signed_event_in_the_order_it_happened() {
    let receiver = Receiver::start(Mode::Accept).await;
    let app = spawn_with_webhook(&receiver).await;

    // alice: created, her phone, her profile (with a unionid), a second app, disabled, enabled.
    let alice = app.login_ok("alice").await;
    let phone = app
        .post_json(
            "/api/v1/wechat/phone-number",
            &app.seal(&alice.openid, &phone_payload()),
            Some(&alice.token),
        )
        .await;
    assert_eq!(phone.status().as_u16(), 200);
    let profile = json!({
        "openId": alice.openid,
        "nickName": "Alice",
        "avatarUrl": "https://thirdwx.qlogo.cn/alice/132",
        "unionId": "oU_alice",
        "watermark": watermark(APPID),
    });
    let saved = app
        .post_json(
            "/api/v1/wechat/user-info",
            &app.seal(&alice.openid, &profile),
            Some(&alice.token),
        )
        .await;
    assert_eq!(saved.status().as_u16(), 200);
    app.wechat.bind_unionid("alice", "oU_alice");
    let oa = web_login(&app, "official_account", "alice-oa").await;
    assert_eq!(oa["user"]["id"], alice.user_id.as_str());
    let path = format!("/api/v1/server/users/{}", alice.user_id);
    assert_eq!(
        server_post(&app, &format!("{path}/disable")).await.status(),
        200
    );
    assert_eq!(
        server_post(&app, &format!("{path}/enable")).await.status(),
        200
    );

    // carol: two users, then a unionid joins them.
    let carol = app.login_ok("carol-1").await;
    app.wechat.bind_unionid("carol", "oU_carol");
    let newer = web_login(&app, "official_account", "carol-2").await;
    let newer_id = newer["user"]["id"].as_str().unwrap().to_owned();
    let joined: Value = app.login("carol-3").await.json().await.unwrap();
    assert_eq!(joined["user"]["id"], carol.user_id.as_str());

    wait_until("alice's six events arrive", async || {
        receiver.delivered_for(&alice.user_id).len() >= 6
    })
    .await;
    let events = receiver.delivered_for(&alice.user_id);
    assert_eq!(
        types(&events),
        [
            "user.created",
            "user.updated",
            "user.updated",
            "user.updated",
            "user.disabled",
            "user.enabled"
        ]
    );
    assert_eq!(events[1]["data"]["changed"], json!(["phone_number"]));
    assert_eq!(events[1]["data"]["user"]["phone_number"], "13800138000");
    assert_eq!(
        events[2]["data"]["changed"],
        json!(["nickname", "avatar_url", "unionid"])
    );
    let changed = events[3]["data"]["changed"].as_array().unwrap();
    assert_eq!(changed[0], "identities", "{changed:?}");
    assert_eq!(
        events[3]["data"]["user"]["identities"][1]["appid"],
        OA_APPID
    );
    assert_eq!(events[4]["data"]["user"]["disabled"], true);
    assert_eq!(events[5]["data"]["user"]["disabled"], false);
    let created = &events[0];
    assert!(created["id"].as_str().unwrap().starts_with("evt_"));
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(created["data"]["user"]["openid"], openid_of("alice"));
    assert_eq!(created["data"]["user"]["disabled"], false);
    assert!(created["data"]["user"]["created_at"].is_string());

    wait_until("carol's join arrives", async || {
        receiver
            .delivered()
            .iter()
            .any(|event| event["type"] == "user.joined")
    })
    .await;
    let join = receiver
        .delivered()
        .into_iter()
        .find(|event| event["type"] == "user.joined")
        .unwrap();
    assert_eq!(join["data"]["user"]["id"], carol.user_id.as_str());
    assert_eq!(join["data"]["removed_user_id"], newer_id.as_str());
    assert_eq!(join["data"]["reason"], "unionid");
    assert_eq!(join["data"]["user"]["unionid"], "oU_carol");
    let carols = receiver.delivered_for(&carol.user_id);
    assert_eq!(types(&carols), ["user.created", "user.joined"]);
    assert_eq!(types(&receiver.delivered_for(&newer_id)), ["user.created"]);

    // The feed lists the same events, with the same ids.
    let listed = feed_with(&app, 9).await;
    let delivered: HashSet<String> = ids(&receiver.delivered()).into_iter().collect();
    assert_eq!(listed.len(), 9, "{:?}", types(&listed));
    assert!(ids(&listed).iter().all(|id| delivered.contains(id)));
}

#[tokio::test]
async fn a_receiver_that_fails_for_a_while_then_recovers_gets_every_event_in_order_with_the_same_ids()
 {
    let receiver = Receiver::start(Mode::Fail).await;
    let app = spawn_with_webhook(&receiver).await;
    let mut users = Vec::new();
    for name in ["fay", "gus", "hal"] {
        let user = app.login_ok(name).await;
        let phone = app
            .post_json(
                "/api/v1/wechat/phone-number",
                &app.seal(&user.openid, &phone_payload()),
                Some(&user.token),
            )
            .await;
        assert_eq!(phone.status().as_u16(), 200);
        users.push(user);
    }
    wait_until("some event was tried three times", async || {
        let attempts = receiver.attempts();
        attempts
            .iter()
            .any(|id| attempts.iter().filter(|other| *other == id).count() >= 3)
    })
    .await;
    let failed: HashSet<String> = receiver.attempts().into_iter().collect();
    receiver.set_mode(Mode::Accept);

    let listed = feed_with(&app, 6).await;
    assert_eq!(listed.len(), 6);
    wait_until("every event is delivered", async || {
        let delivered: HashSet<String> = ids(&receiver.delivered()).into_iter().collect();
        ids(&listed).iter().all(|id| delivered.contains(id))
    })
    .await;
    let delivered = receiver.delivered();
    let delivered_ids: HashSet<String> = ids(&delivered).into_iter().collect();
    assert!(
        failed.iter().all(|id| delivered_ids.contains(id)),
        "a retried event keeps its webhook-id"
    );
    assert_eq!(delivered_ids.len(), 6, "nothing extra, nothing lost");
    for user in &users {
        let in_feed: Vec<String> = ids(&listed
            .iter()
            .filter(|event| subject(event) == user.user_id)
            .cloned()
            .collect::<Vec<_>>());
        let mut arrived = ids(&receiver.delivered_for(&user.user_id));
        arrived.dedup();
        assert_eq!(arrived, in_feed, "a user's events arrive in order");
        assert_eq!(
            types(&receiver.delivered_for(&user.user_id)),
            ["user.created", "user.updated"]
        );
    }
}

#[tokio::test]
async fn deliveries_pending_when_the_service_stops_arrive_after_it_starts_again() {
    let receiver = Receiver::start(Mode::Fail).await;
    let database = TestDatabase::create().await;
    let wechat = FakeWeChat::start().await;
    let settings = webhook_settings(&receiver);
    let env: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let first = ServiceProcess::start(&database.url, &wechat, &env).await;
    let ivy = first.login("ivy").await;
    let ivy_id = ivy["user"]["id"].as_str().unwrap().to_owned();
    wait_until("the first attempt failed", async || {
        !receiver.attempts().is_empty()
    })
    .await;
    // Killed, not stopped politely: whatever it held, it holds no more.
    drop(first);
    receiver.set_mode(Mode::Accept);

    let _second = ServiceProcess::start(&database.url, &wechat, &env).await;
    wait_until(
        "ivy's event arrives from the restarted service",
        async || !receiver.delivered_for(&ivy_id).is_empty(),
    )
    .await;
    let delivered = receiver.delivered_for(&ivy_id);
    assert_eq!(delivered[0]["type"], "user.created");
    assert_eq!(
        delivered[0]["id"].as_str().unwrap(),
        receiver.attempts()[0],
        "the same event, the same id"
    );
}

#[tokio::test]
async fn two_instances_deliver_every_event_of_both() {
    let receiver = Receiver::start(Mode::Accept).await;
    let one = spawn_with_webhook(&receiver).await;
    let settings = webhook_settings(&receiver);
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let two = spawn_app_sharing(&one, &pairs).await;
    let mut logins = Vec::new();
    for round in 0..8 {
        let (app, name) = if round % 2 == 0 {
            (&one, format!("pat{round}"))
        } else {
            (&two, format!("quinn{round}"))
        };
        logins.push(app.login_ok(&name).await.user_id);
    }
    let listed = feed_with(&one, 8).await;
    assert_eq!(listed.len(), 8);
    wait_until("every event is delivered", async || {
        let delivered: HashSet<String> = ids(&receiver.delivered()).into_iter().collect();
        ids(&listed).iter().all(|id| delivered.contains(id))
    })
    .await;
    let delivered = receiver.delivered();
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for id in ids(&delivered) {
        *per_id.entry(id).or_default() += 1;
    }
    // At least once: a duplicate would only follow a lost lease; the ids are the feed's.
    assert_eq!(per_id.len(), 8);
    assert!(per_id.keys().all(|id| ids(&listed).contains(id)));
    for user in logins {
        assert_eq!(types(&receiver.delivered_for(&user))[0], "user.created");
    }
}

#[tokio::test]
async fn logins_keep_working_while_the_receiver_holds_a_delivery_open() {
    let receiver = Receiver::start(Mode::Stall).await;
    let app = spawn_with_webhook(&receiver).await;
    app.login_ok("rae").await;
    wait_until("the receiver holds a delivery", async || {
        receiver.stalled() > 0
    })
    .await;
    for round in 0..10 {
        app.login_ok(&format!("sam{round}")).await;
        app.login_ok(&format!("rae-{round}")).await;
    }
    assert!(
        receiver.delivered().is_empty(),
        "the stalled delivery is still open while the logins finished"
    );
    receiver.set_mode(Mode::Accept);
    wait_until("the backlog drains", async || {
        ids(&receiver.delivered())
            .into_iter()
            .collect::<HashSet<_>>()
            .len()
            >= 11
    })
    .await;
}

#[tokio::test]
async fn a_receiver_slow_on_one_users_event_still_gets_the_other_users_events() {
    let receiver = Receiver::start(Mode::Fail).await;
    let app = spawn_with_webhook(&receiver).await;
    let slow = app.login_ok("ulla").await;
    receiver.stall_only(&slow.user_id);
    wait_until("ulla's event is held open", async || receiver.stalled() > 0).await;
    let others: Vec<String> = [
        app.login_ok("vera").await.user_id,
        app.login_ok("walt").await.user_id,
    ]
    .into();
    for other in &others {
        wait_until("another user's event arrives", async || {
            !receiver.delivered_for(other).is_empty()
        })
        .await;
    }
    // ulla's later event waits behind her first one: order per user.
    let phone = app
        .post_json(
            "/api/v1/wechat/phone-number",
            &app.seal(&slow.openid, &phone_payload()),
            Some(&slow.token),
        )
        .await;
    assert_eq!(phone.status().as_u16(), 200);
    assert!(receiver.delivered_for(&slow.user_id).is_empty());
    receiver.set_mode(Mode::Accept);
    wait_until("ulla's two events arrive", async || {
        receiver.delivered_for(&slow.user_id).len() >= 2
    })
    .await;
    assert_eq!(
        types(&receiver.delivered_for(&slow.user_id)),
        ["user.created", "user.updated"]
    );
}

#[tokio::test]
async fn the_feed_pages_through_every_event_exactly_once() {
    let app = spawn_with_server_keys().await;
    for round in 0..7 {
        app.login_ok(&format!("tia{round}")).await;
    }
    let all = feed_with(&app, 7).await;
    assert_eq!(all.len(), 7);
    for limit in [1, 2, 3, 7, 500] {
        let paged = feed(&app, limit).await;
        assert_eq!(ids(&paged), ids(&all), "limit {limit}");
    }
    let unique: HashSet<String> = ids(&all).into_iter().collect();
    assert_eq!(unique.len(), 7);
    let mut sorted = ids(&all);
    sorted.sort();
    assert_eq!(sorted, ids(&all), "oldest first");
    // From the middle: the rest, and nothing before.
    let rest = server_get(
        &app,
        &format!("/api/v1/server/events?after={}&limit=500", ids(&all)[3]),
    )
    .await
    .json::<Value>()
    .await
    .unwrap();
    assert_eq!(ids(rest["events"].as_array().unwrap()), ids(&all)[4..]);
    for bad in ["limit=0", "limit=501", "after=not-a-cursor"] {
        assert_problem(
            server_get(&app, &format!("/api/v1/server/events?{bad}")).await,
            400,
            "invalid_request",
        )
        .await;
    }
}

/// A trigger that makes every insert into `events` fail, on the test's database.
async fn refuse_events(url: &str, on: bool) {
    let statements: &[&str] = match (url.split(':').next().unwrap(), on) {
        ("sqlite", true) => &["CREATE TRIGGER refuse_events BEFORE INSERT ON events \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"],
        ("sqlite", false) => &["DROP TRIGGER refuse_events"],
        ("postgres", true) => &[
            "CREATE FUNCTION refuse_events() RETURNS trigger AS $$ \
             BEGIN RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_events BEFORE INSERT ON events \
             FOR EACH ROW EXECUTE FUNCTION refuse_events()",
        ],
        ("postgres", false) => &["DROP TRIGGER refuse_events ON events"],
        (_, true) => &[
            "CREATE TRIGGER refuse_events BEFORE INSERT ON events FOR EACH ROW \
             SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the test'",
        ],
        (_, false) => &["DROP TRIGGER refuse_events"],
    };
    for statement in statements {
        execute_sql(url, statement).await;
    }
}

#[tokio::test]
async fn a_change_whose_event_cannot_be_written_rolls_back_and_leaves_nothing() {
    let app = spawn_with_server_keys().await;
    let uma = app.login_ok("uma").await;
    // The database refuses the event: the change it belongs to must not happen either.
    refuse_events(&app.database_url(), true).await;
    assert_problem(app.login("vic").await, 500, "internal").await;
    let phone = app
        .post_json(
            "/api/v1/wechat/phone-number",
            &app.seal(&uma.openid, &phone_payload()),
            Some(&uma.token),
        )
        .await;
    assert_eq!(phone.status().as_u16(), 500);
    refuse_events(&app.database_url(), false).await;

    let vic = server_get(
        &app,
        &format!(
            "/api/v1/server/users?appid={APPID}&openid={}",
            openid_of("vic")
        ),
    )
    .await
    .json::<Value>()
    .await
    .unwrap();
    assert_eq!(vic["users"], json!([]), "the user was not created");
    let uma_now = server_get(&app, &format!("/api/v1/server/users/{}", uma.user_id))
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        uma_now["user"]["phone_number"],
        Value::Null,
        "the phone was not saved"
    );

    // Once the database accepts events again, the same changes happen with their events.
    let vic = app.login_ok("vic").await;
    let listed = feed_with(&app, 2).await;
    assert_eq!(types(&listed), ["user.created", "user.created"]);
    assert_eq!(subject(&listed[0]), uma.user_id);
    assert_eq!(subject(&listed[1]), vic.user_id);
}

#[tokio::test]
async fn the_sandbox_page_lists_the_latest_events() {
    let app = spawn_app_with(&[("WECHAT_SANDBOX", "true")]).await;
    let alice: Value = app.login("alice").await.json().await.unwrap();
    let page = app
        .http
        .get(app.url("/sandbox/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("user.created"));
    assert!(html.contains(alice["user"]["id"].as_str().unwrap()));
}

async fn app_with_sms_and_feed(sms: &FakeSms) -> TestApp {
    app_with_sms(sms, &[("SERVER_API_KEYS", SERVER_KEYS)]).await
}

/// The feed's events about `user_id`, once a later event (bob's sign-in, made after
/// everything of `user_id`) shows the feed has caught up with them.
async fn events_of(app: &TestApp, user_id: &str) -> Vec<Value> {
    let bob = app.login_ok("bob").await;
    wait_until("the feed lists bob's sign-in", async || {
        feed(app, 500)
            .await
            .iter()
            .any(|event| subject(event) == bob.user_id)
    })
    .await;
    feed(app, 500)
        .await
        .into_iter()
        .filter(|event| subject(event) == user_id)
        .collect()
}

#[tokio::test]
async fn a_phone_bound_by_sms_code_is_one_user_updated_event_naming_the_phone_number() {
    let sms = FakeSms::webhook().await;
    let app = app_with_sms_and_feed(&sms).await;
    let alice = app.login_ok("alice").await;
    prove_phone(&app, &sms, &alice.token, "+8613800138000").await;
    // The same number proven again changes nothing, so it says nothing.
    age_codes(&app, 61).await;
    prove_phone(&app, &sms, &alice.token, "13800138000").await;

    let events = events_of(&app, &alice.user_id).await;
    assert_eq!(types(&events), ["user.created", "user.updated"]);
    let data = &events[1]["data"];
    assert_eq!(data["changed"], json!(["phone_number"]));
    assert_eq!(data["user"]["phone_number"], "+8613800138000");
}

#[tokio::test]
async fn a_join_by_phone_is_a_user_joined_event_keeping_the_phones_holder() {
    let sms = FakeSms::webhook().await;
    let app = app_with_sms_and_feed(&sms).await;
    let alice = app.login_ok("alice").await;
    prove_phone(&app, &sms, &alice.token, "+8613800138000").await;
    // The same person on the Official Account, as a separate user, proves the same number.
    let page = web_login(&app, "official_account", "alice2").await;
    let page_user = page["user"]["id"].as_str().unwrap().to_owned();
    assert_ne!(page_user, alice.user_id);
    age_codes(&app, 61).await;
    prove_phone(
        &app,
        &sms,
        page["access_token"].as_str().unwrap(),
        "13800138000",
    )
    .await;

    let events = events_of(&app, &alice.user_id).await;
    assert_eq!(
        types(&events),
        ["user.created", "user.updated", "user.joined"]
    );
    let data = &events[2]["data"];
    assert_eq!(data["reason"], "phone");
    assert_eq!(data["removed_user_id"], page_user.as_str());
    assert_eq!(data["user"]["phone_number"], "+8613800138000");
    assert_eq!(data["user"]["identities"].as_array().unwrap().len(), 2);
    // The joined-away id answers the kept user in the server API.
    let found: Value = server_get(&app, &format!("/api/v1/server/users/{page_user}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["user"]["id"], alice.user_id.as_str());
}

#[tokio::test]
async fn deleting_an_account_is_a_user_deleted_event_and_its_earlier_events_keep_only_the_id() {
    let sms = FakeSms::webhook().await;
    let app = app_with_sms_and_feed(&sms).await;
    let alice = app.login_ok("alice").await;
    prove_phone(&app, &sms, &alice.token, "+8613800138000").await;
    let deleted = app
        .http
        .delete(app.url("/api/v1/me"))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);

    let events = events_of(&app, &alice.user_id).await;
    assert_eq!(
        types(&events),
        ["user.created", "user.updated", "user.deleted"]
    );
    for event in &events {
        assert_eq!(event["data"], json!({ "user_id": alice.user_id }));
    }
    let text = Value::Array(events).to_string();
    assert!(!text.contains(&alice.openid) && !text.contains("13800138000"));
    assert_problem(
        server_get(&app, &format!("/api/v1/server/users/{}", alice.user_id)).await,
        404,
        "not_found",
    )
    .await;
}
