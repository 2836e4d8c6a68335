//! Slow and greedy clients: connections that send nothing, drip their headers or stop
//! half-way through a body are closed; a request waiting on the server is not; and past
//! `MAX_CONNECTIONS` new connections wait for a free slot.

use std::time::Duration;

use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{
    helpers::{FakeWeChat, Reply, TestDatabase},
    process::ServiceProcess,
};

const SHORT_TIMEOUTS: [(&str, &str); 3] = [
    ("HTTP_HEADER_TIMEOUT_SECS", "1"),
    ("HTTP_BODY_TIMEOUT_SECS", "1"),
    ("HTTP_IDLE_TIMEOUT_SECS", "1"),
];

async fn connect(service: &ServiceProcess) -> TcpStream {
    TcpStream::connect(service.address.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes the connection; what it sent before closing. Panics
/// if it is still open after 20 s (a guard against hanging, far above any timeout here).
async fn read_until_closed(stream: &mut TcpStream, what: &str) -> String {
    let mut received = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server kept the {what} connection open");
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test]
async fn idle_dripping_and_half_sent_connections_are_closed() {
    let database = TestDatabase::create().await;
    let wechat = FakeWeChat::start().await;
    let service = ServiceProcess::start(&database.url, &wechat, &SHORT_TIMEOUTS).await;

    // Connected, never sends a byte.
    let mut idle = connect(&service).await;
    assert_eq!(read_until_closed(&mut idle, "idle").await, "");

    // Sends a header line every 200 ms, never ending the headers; each pause doubles as
    // the check that the server has hung up. At most 100 lines (20 s).
    let mut dripping = connect(&service).await;
    dripping
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut closed = false;
    for line in 0..100 {
        if dripping
            .write_all(format!("X-Drip-{line}: y\r\n").as_bytes())
            .await
            .is_err()
        {
            closed = true;
            break;
        }
        let mut buf = [0u8; 1024];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(200), dripping.read(&mut buf)).await
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "a client dripping its headers was never cut off");

    // Declares 100 bytes of body, sends 10, then waits.
    let mut half_sent = connect(&service).await;
    half_sent
        .write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"code\": \"",
        )
        .await
        .unwrap();
    let answer = read_until_closed(&mut half_sent, "half-sent").await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "unexpected answer: {answer}"
    );

    // A kept-alive connection is closed once idle after its answer.
    let mut kept_alive = connect(&service).await;
    kept_alive
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(
        read_until_closed(&mut kept_alive, "kept-alive")
            .await
            .starts_with("HTTP/1.1 200")
    );
}

#[tokio::test]
async fn a_request_waiting_on_the_server_outlives_every_client_timeout() {
    let database = TestDatabase::create().await;
    let wechat = FakeWeChat::start().await;
    let service = ServiceProcess::start(&database.url, &wechat, &SHORT_TIMEOUTS).await;
    // The server waits 2.5 s for WeChat, longer than each of the 1 s client timeouts:
    // waiting is not the client being slow.
    wechat.script("slow-1", vec![Reply::Slow(Duration::from_millis(2500))]);
    let response = service
        .post("/api/v1/auth/login", &json!({"code": "slow-1"}), None)
        .await;
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test]
async fn connections_over_the_cap_wait_for_a_free_slot() {
    let database = TestDatabase::create().await;
    let wechat = FakeWeChat::start().await;
    let service = ServiceProcess::start(
        &database.url,
        &wechat,
        &[("MAX_CONNECTIONS", "2"), ("HTTP_IDLE_TIMEOUT_SECS", "1")],
    )
    .await;
    let url = |path: &str| format!("{}{path}", service.address);
    let send_alone = |request: reqwest::RequestBuilder| {
        tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
    };
    let fresh_client = || {
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    };

    // Two logins that wait 2 s on WeChat hold both slots (the readiness probe's kept-alive
    // connection is closed after 1 s idle, so it frees its slot).
    let mut holders = Vec::new();
    for code in ["hold-a", "hold-b"] {
        wechat.script(code, vec![Reply::Slow(Duration::from_secs(2))]);
        holders.push(send_alone(
            fresh_client()
                .post(url("/api/v1/auth/login"))
                .json(&json!({ "code": code })),
        ));
    }
    for _ in 0..200 {
        if wechat.calls() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        wechat.calls(),
        2,
        "the two holding logins never reached WeChat"
    );

    let waiting = send_alone(fresh_client().get(url("/healthz")));
    // Not answered while both slots are held. (A slow machine can only make this pass
    // wrongly, never fail wrongly.)
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "a connection over the cap was served"
    );
    for holder in holders {
        assert_eq!(holder.await.unwrap().unwrap(), 200);
    }
    let answered = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("the waiting connection was served once a slot freed");
    assert_eq!(answered.unwrap().unwrap(), 200);
}
