//! Prepares the inputs of the wrk scripts in `scripts/wrk/` against a running service
//! that logs in through `examples/fake_wechat.rs`:
//!
//! - `tokens.txt`: one access token per line, for `--users` users (`bu0` … `buN`), each
//!   from its own login, so each is a live session;
//! - `refresh.txt`: the refresh token of each of those sessions (the heads of the refresh
//!   chains);
//! - `phone.txt`: `access token <TAB> JSON body` lines; each body is a phone-number payload
//!   sealed with the fake's fixed session_key (the key every login stores) and stamped with
//!   `--appid` and the current time, so it passes the watermark check for
//!   `WECHAT_WATERMARK_MAX_AGE_SECS` (600 s by default) after it was made.
//!
//! ```sh
//! cargo run --release --example loadgen_payloads -- --base http://127.0.0.1:18080 \
//!     --appid wxbench0123456789a --out /tmp/wrk-inputs [--users 256] [--payloads-per-user 4]
//! ```

use std::{fmt::Write as _, path::PathBuf, sync::Arc};

use serde_json::{Value, json};
use wechat_auth::{crypto, domain::SessionKey};

/// The session_key `examples/fake_wechat.rs` hands out for every login.
const SESSION_KEY: &str = "YmVuY2hzZXNzaW9ua2V5MQ==";
const IN_FLIGHT: usize = 8;

struct Args {
    base: String,
    appid: String,
    out: PathBuf,
    users: usize,
    payloads_per_user: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        base: "http://127.0.0.1:18080".to_owned(),
        appid: std::env::var("WECHAT_APPID").unwrap_or_default(),
        out: PathBuf::from("."),
        users: 256,
        payloads_per_user: 4,
    };
    let mut raw = std::env::args().skip(1);
    while let Some(flag) = raw.next() {
        let value = raw.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--base" => args.base = value,
            "--appid" => args.appid = value,
            "--out" => args.out = PathBuf::from(value),
            "--users" => args.users = value.parse().expect("--users takes a number"),
            "--payloads-per-user" => {
                args.payloads_per_user = value.parse().expect("--payloads-per-user takes a number")
            }
            other => panic!("unknown argument {other}; see the file's doc comment"),
        }
    }
    assert!(
        !args.appid.is_empty(),
        "--appid (or WECHAT_APPID) is required"
    );
    args
}

async fn login(http: &reqwest::Client, base: &str, code: &str) -> (String, String) {
    let response = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "code": code }))
        .send()
        .await
        .expect("the service answers");
    let status = response.status();
    let body: Value = response.json().await.unwrap_or_default();
    assert!(status.is_success(), "login {code}: {status} {body}");
    let text = |field: &str| body[field].as_str().expect(field).to_owned();
    (text("access_token"), text("refresh_token"))
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    std::fs::create_dir_all(&args.out).expect("create --out");
    let http = reqwest::Client::new();
    let base = Arc::new(args.base.clone());

    // Log the users in, a few at a time.
    let mut sessions = vec![(String::new(), String::new()); args.users];
    let mut tasks = tokio::task::JoinSet::new();
    for (index, _) in sessions.clone().iter().enumerate() {
        if tasks.len() >= IN_FLIGHT
            && let Some(done) = tasks.join_next().await
        {
            let (i, pair) = done.expect("login task");
            sessions[i] = pair;
        }
        let (http, base) = (http.clone(), base.clone());
        tasks.spawn(async move { (index, login(&http, &base, &format!("bu{index}-prep")).await) });
    }
    while let Some(done) = tasks.join_next().await {
        let (i, pair) = done.expect("login task");
        sessions[i] = pair;
    }

    let key = SessionKey::parse(SESSION_KEY).expect("valid key");
    let now = chrono::Utc::now().timestamp();
    let (mut tokens, mut refresh, mut phone) = (String::new(), String::new(), String::new());
    for (index, (access, refresh_token)) in sessions.iter().enumerate() {
        writeln!(tokens, "{access}").unwrap();
        writeln!(refresh, "{refresh_token}").unwrap();
        for n in 0..args.payloads_per_user {
            let number = format!("138{:08}", index * args.payloads_per_user + n);
            let plaintext = json!({
                "phoneNumber": number, "purePhoneNumber": number, "countryCode": "86",
                "watermark": {"timestamp": now, "appid": args.appid},
            });
            let sealed = crypto::encrypt_payload(&key, plaintext.to_string().as_bytes());
            let body = json!({
                "encrypted_data": sealed.encrypted_data_base64(),
                "iv": sealed.iv_base64(),
            });
            writeln!(phone, "{access}\t{body}").unwrap();
        }
    }
    for (name, text) in [
        ("tokens.txt", &tokens),
        ("refresh.txt", &refresh),
        ("phone.txt", &phone),
    ] {
        std::fs::write(args.out.join(name), text).expect("write an output file");
    }

    // Fail here, not in the middle of a wrk run, when the inputs do not work.
    let (access, _) = &sessions[0];
    let me = http
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(access)
        .send()
        .await
        .expect("the service answers");
    assert!(me.status().is_success(), "/me answered {}", me.status());
    let body: Value =
        serde_json::from_str(phone.lines().next().unwrap().split('\t').nth(1).unwrap())
            .expect("a JSON body");
    let answer = http
        .post(format!("{base}/api/v1/wechat/phone-number"))
        .bearer_auth(access)
        .json(&body)
        .send()
        .await
        .expect("the service answers");
    let status = answer.status();
    assert!(
        status.is_success(),
        "phone-number answered {status}: {}",
        answer.text().await.unwrap_or_default()
    );
    eprintln!(
        "loadgen_payloads: {} users, {} phone payloads in {}",
        args.users,
        args.users * args.payloads_per_user,
        args.out.display()
    );
}
