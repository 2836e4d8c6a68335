//! A minimal, fast stand-in for `api.weixin.qq.com` for load tests (`scripts/load.sh`).
//!
//! Unlike the test fake (tests/api/helpers.rs) it keeps no state and checks nothing: every
//! code `NAME` or `NAME-ANYTHING` logs in openid `o_NAME`, always with the same, published
//! session_key [`SESSION_KEY`], so the load script can seal phone payloads in advance.
//!
//! ```sh
//! cargo run --release --example fake_wechat -- --port 18081 --appid wxbench0123456789a [--threads 1]
//! ```
//!
//! Routes: `GET /sns/jscode2session`, `POST /cgi-bin/stable_token`,
//! `POST /wxa/business/getuserphonenumber` (code `phone-DIGITS`), and for web sign-in
//! `GET /sns/oauth2/access_token` (code `NAME-…` → openid `ow_NAME`, scope `snsapi_login`) and
//! `GET /sns/userinfo`. Answers are JSON labelled `text/plain`, as WeChat's are.

use std::sync::OnceLock;

use poem::{Request, Response, Route, Server, handler, listener::TcpListener, post, web::Query};
use serde::Deserialize;

/// base64("benchsessionkey1"): 16 bytes. `examples/loadgen_payloads.rs` seals with it.
pub const SESSION_KEY: &str = "YmVuY2hzZXNzaW9ua2V5MQ==";

static APPID: OnceLock<String> = OnceLock::new();

fn text_plain(body: String) -> Response {
    Response::builder().content_type("text/plain").body(body)
}

#[derive(Deserialize)]
struct CodeQuery {
    js_code: Option<String>,
}

#[handler]
fn jscode2session(Query(query): Query<CodeQuery>) -> Response {
    let code = query.js_code.unwrap_or_default();
    let name = code.split('-').next().unwrap_or_default();
    if name.is_empty() {
        return text_plain(r#"{"errcode":40029,"errmsg":"invalid code"}"#.to_owned());
    }
    text_plain(format!(
        r#"{{"openid":"o_{name}","session_key":"{SESSION_KEY}","expires_in":7200}}"#
    ))
}

#[derive(Deserialize)]
struct OAuthQuery {
    code: Option<String>,
    openid: Option<String>,
}

#[handler]
fn oauth_access_token(Query(query): Query<OAuthQuery>) -> Response {
    let code = query.code.unwrap_or_default();
    let name = code.split('-').next().unwrap_or_default();
    if name.is_empty() {
        return text_plain(r#"{"errcode":40029,"errmsg":"invalid code"}"#.to_owned());
    }
    text_plain(format!(
        r#"{{"access_token":"bench-web-token","expires_in":7200,"refresh_token":"r","openid":"ow_{name}","scope":"snsapi_login"}}"#
    ))
}

#[handler]
fn oauth_userinfo(Query(query): Query<OAuthQuery>) -> Response {
    let openid = query.openid.unwrap_or_default();
    text_plain(format!(
        r#"{{"openid":"{openid}","nickname":"bench","sex":0,"province":"","city":"","country":"","headimgurl":"","privilege":[]}}"#
    ))
}

#[handler]
fn stable_token() -> Response {
    text_plain(r#"{"access_token":"fake-bench-access-token","expires_in":7200}"#.to_owned())
}

#[handler]
fn phone_number(body: String) -> Response {
    let request: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let Some(digits) = request["code"]
        .as_str()
        .and_then(|code| code.strip_prefix("phone-"))
    else {
        return text_plain(r#"{"errcode":40029,"errmsg":"invalid code"}"#.to_owned());
    };
    let appid = APPID.get().map(String::as_str).unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    text_plain(
        serde_json::json!({
            "errcode": 0, "errmsg": "ok",
            "phone_info": {
                "phoneNumber": format!("+86{digits}"), "purePhoneNumber": digits,
                "countryCode": 86, "watermark": {"timestamp": now, "appid": appid},
            },
        })
        .to_string(),
    )
}

#[handler]
fn not_found(request: &Request) -> Response {
    Response::builder()
        .status(poem::http::StatusCode::NOT_FOUND)
        .body(format!("no fake for {}", request.uri().path()))
}

fn main() -> std::io::Result<()> {
    let mut port = 18081u16;
    let mut threads = 1usize;
    let mut appid = std::env::var("WECHAT_APPID").unwrap_or_default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        match arg.as_str() {
            "--port" => port = value.parse().expect("--port takes a number"),
            "--threads" => threads = value.parse().expect("--threads takes a number"),
            "--appid" => appid = value,
            other => panic!("unknown argument {other}; see the file's doc comment"),
        }
    }
    APPID.set(appid).expect("set once");
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    let routes = Route::new()
        .at("/sns/jscode2session", poem::get(jscode2session))
        .at("/cgi-bin/stable_token", post(stable_token))
        .at("/wxa/business/getuserphonenumber", post(phone_number))
        .at("/sns/oauth2/access_token", poem::get(oauth_access_token))
        .at("/sns/userinfo", poem::get(oauth_userinfo))
        .at("/*", not_found);
    runtime.block_on(async {
        eprintln!("fake_wechat: listening on 127.0.0.1:{port}");
        Server::new(TcpListener::bind(("127.0.0.1", port)))
            .run(routes)
            .await
    })
}
