//! Load for the web redirect flow, end to end: each worker loops over
//! `GET /api/v1/web/authorize` → `GET /api/v1/web/callback` (with the cookie and a code the
//! fake WeChat accepts) → `POST /api/v1/auth/ticket`, with its own connection. One flow is
//! one "request" in the RESULT line, which has the format of `scripts/wrk/common.lua`'s.
//!
//! ```sh
//! cargo run --release --example loadgen_web_flow -- --base http://127.0.0.1:18080 \
//!     --return-to http://127.0.0.1:18080/ --connections 64 --seconds 10 --run 1
//! ```

use std::time::{Duration, Instant};

use reqwest::{Client, redirect::Policy};

struct Options {
    base: String,
    return_to: String,
    connections: usize,
    seconds: u64,
    run: String,
}

fn options() -> Options {
    let mut options = Options {
        base: "http://127.0.0.1:18080".to_owned(),
        return_to: "http://127.0.0.1:18080/".to_owned(),
        connections: 64,
        seconds: 10,
        run: "0".to_owned(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        match arg.as_str() {
            "--base" => options.base = value,
            "--return-to" => options.return_to = value,
            "--connections" => options.connections = value.parse().expect("a number"),
            "--seconds" => options.seconds = value.parse().expect("a number"),
            "--run" => options.run = value,
            other => panic!("unknown argument {other}; see the file's doc comment"),
        }
    }
    options
}

fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// One sign-in; `Err` names the step that did not answer as expected.
async fn flow(client: &Client, options: &Options, code: &str) -> Result<(), &'static str> {
    let encoded: String =
        url::form_urlencoded::byte_serialize(options.return_to.as_bytes()).collect();
    let authorize = client
        .get(format!(
            "{}/api/v1/web/authorize?app=website&return_to={encoded}",
            options.base
        ))
        .send()
        .await
        .map_err(|_| "authorize: no answer")?;
    let location = authorize
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or("authorize: no redirect")?
        .replace("#wechat_redirect", "");
    let cookie = authorize
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or("authorize: no cookie")?
        .to_owned();
    let state = query_param(&location, "state").ok_or("authorize: no state")?;
    let callback = client
        .get(format!(
            "{}/api/v1/web/callback?code={code}&state={state}",
            options.base
        ))
        .header("cookie", cookie)
        .send()
        .await
        .map_err(|_| "callback: no answer")?;
    let back = callback
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or("callback: no redirect")?;
    let ticket = query_param(back, "ticket").ok_or("callback: no ticket")?;
    let redeemed = client
        .post(format!("{}/api/v1/auth/ticket", options.base))
        .json(&serde_json::json!({ "ticket": ticket }))
        .send()
        .await
        .map_err(|_| "ticket: no answer")?;
    if redeemed.status().is_success() {
        Ok(())
    } else {
        Err("ticket: not 200")
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let options = std::sync::Arc::new(options());
    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..options.connections {
        let options = options.clone();
        workers.push(tokio::spawn(async move {
            let client = Client::builder()
                .redirect(Policy::none())
                .pool_max_idle_per_host(1)
                .build()
                .expect("an HTTP client");
            let (mut latencies, mut failures) = (Vec::new(), 0u64);
            let mut counter = 0u64;
            while Instant::now() < deadline {
                counter += 1;
                let code = format!("f{}{worker}x{counter}-{counter}", options.run);
                let began = Instant::now();
                match flow(&client, &options, &code).await {
                    Ok(()) => latencies.push(began.elapsed()),
                    Err(step) => {
                        failures += 1;
                        if failures <= 3 {
                            eprintln!("loadgen_web_flow: {step}");
                        }
                    }
                }
            }
            (latencies, failures)
        }));
    }
    let (mut latencies, mut failures) = (Vec::new(), 0);
    for worker in workers {
        let (mine, failed) = worker.await.expect("worker finished");
        latencies.extend(mine);
        failures += failed;
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "RESULT requests={} seconds={seconds:.3} rps={:.1} p50_ms={:.3} p90_ms={:.3} p99_ms={:.3} max_ms={:.3} non2xx={failures} socket_errors=0 timeouts=0",
        latencies.len(),
        latencies.len() as f64 / seconds,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        percentile(&latencies, 0.99),
        latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
    );
}
