//! What an outside probe tried: huge methods and paths must not grow the metrics or the
//! logs, and every wrong method gets a 405 that says which methods are allowed.

use std::time::Duration;

use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{
    helpers::{FakeWeChat, TestDatabase, assert_problem, spawn_app},
    process::ServiceProcess,
};

/// Sends raw bytes on a new connection and returns the status line of the answer.
async fn raw_request(address: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address.trim_start_matches("http://"))
        .await
        .unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = vec![0u8; 512];
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut answer))
        .await
        .expect("no answer")
        .unwrap_or(0);
    String::from_utf8_lossy(&answer[..read])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn huge_methods_and_paths_do_not_grow_the_metrics_or_the_log_lines() {
    let database = TestDatabase::create().await;
    let wechat = FakeWeChat::start().await;
    let service = ServiceProcess::start(&database.url, &wechat, &[]).await;
    let size_of_metrics = || async {
        service
            .get("/metrics", None)
            .await
            .text()
            .await
            .unwrap()
            .len()
    };
    // One request of each kind first, so that every series below exists already.
    let mut before = 0;
    for round in 0..41 {
        let long = format!("{round:04}").repeat(7_500);
        // A 30 KB made-up method on a real route.
        let method = format!("M{long}");
        let answer = raw_request(
            &service.address,
            format!("{method} /healthz HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
        // Answers produced before routing: 413 by Content-Length, 400 on a bad path.
        let answer = raw_request(
            &service.address,
            format!(
                "POST /{} HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n",
                &long[..3000]
            )
            .as_bytes(),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        let answer = raw_request(
            &service.address,
            format!("GET /%ff%fe{round} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        if round == 0 {
            before = size_of_metrics().await;
        }
    }
    let after = size_of_metrics().await;
    assert!(
        after < before + 4096,
        "/metrics grew from {before} to {after} bytes"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let longest = service
        .log_text()
        .lines()
        .map(str::len)
        .max()
        .unwrap_or_default();
    assert!(longest < 2048, "a log line is {longest} bytes long");
}

#[tokio::test]
async fn every_operation_answers_a_wrong_method_with_405_and_allow() {
    let app = spawn_app().await;
    let spec: Value = app.get_json("/api/openapi.json").await;
    for (path, operations) in spec["paths"].as_object().unwrap() {
        let mut allowed: Vec<String> = operations
            .as_object()
            .unwrap()
            .keys()
            .map(|method| method.to_uppercase())
            .collect();
        if allowed.contains(&"GET".to_owned()) {
            allowed.push("HEAD".to_owned());
        }
        let wrong = if allowed.contains(&"DELETE".to_owned()) {
            "PATCH"
        } else {
            "DELETE"
        };
        let response = app
            .http
            .request(wrong.parse().unwrap(), app.url(path))
            .send()
            .await
            .unwrap();
        let allow = response
            .headers()
            .get("allow")
            .unwrap_or_else(|| panic!("{wrong} {path}: 405 without Allow"))
            .to_str()
            .unwrap()
            .to_owned();
        assert_problem(response, 405, "method_not_allowed").await;
        let mut listed: Vec<String> = allow.split(", ").map(str::to_owned).collect();
        listed.sort();
        allowed.sort();
        assert_eq!(listed, allowed, "{path}");
    }
}

#[tokio::test]
async fn the_docs_routes_answer_only_get_and_head() {
    let app = spawn_app().await;
    for path in ["/api/openapi.json", "/api/openapi.yaml", "/api/docs"] {
        for method in ["DELETE", "POST", "TRACE", "BREW"] {
            let response = app
                .http
                .request(method.parse().unwrap(), app.url(path))
                .send()
                .await
                .unwrap();
            assert_eq!(response.headers()["allow"], "GET, HEAD", "{method} {path}");
            assert_problem(response, 405, "method_not_allowed").await;
        }
        let head = app.http.head(app.url(path)).send().await.unwrap();
        assert_eq!(head.status().as_u16(), 200, "HEAD {path}");
    }
}
