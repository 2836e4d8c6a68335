//! Prometheus metrics: one process-wide recorder, rendered at `GET /metrics`.

use std::{sync::OnceLock, time::Duration};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds: from a cached `/me` to a WeChat call near its time budget.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder on first use. The recorder is global to the process, so several
/// applications in one process (the tests) share it. `None` when another recorder was
/// installed by someone else: metrics are then simply not rendered here.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(&LATENCY_BUCKETS)
                .and_then(PrometheusBuilder::install_recorder)
                .map_err(|error| tracing::warn!(%error, "metrics recorder not installed"))
                .ok()
        })
        .as_ref()
}

/// One answered HTTP request. `route` must come from a bounded set (see the caller).
pub fn http_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let labels = [
        ("method", method.to_owned()),
        ("route", route.to_owned()),
        ("status", status.to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!(
        "http_request_duration_seconds",
        "method" => method.to_owned(),
        "route" => route.to_owned()
    )
    .record(elapsed.as_secs_f64());
}

/// One attempt at a WeChat API; `outcome` is the errcode, or what went wrong on the wire.
pub fn wechat_call(api: &'static str, outcome: &str, elapsed: Duration) {
    metrics::counter!("wechat_api_calls_total", "api" => api, "outcome" => outcome.to_owned())
        .increment(1);
    metrics::histogram!("wechat_api_duration_seconds", "api" => api).record(elapsed.as_secs_f64());
}

/// How a login ended: `new_user`, `returning`, `replayed`, or a problem code.
pub fn login(outcome: &str) {
    metrics::counter!("logins_total", "outcome" => outcome.to_owned()).increment(1);
}

pub fn db_pool(size: u32, idle: usize, max: u32) {
    metrics::gauge!("db_pool_connections", "state" => "open").set(f64::from(size));
    metrics::gauge!("db_pool_connections", "state" => "idle").set(idle as f64);
    metrics::gauge!("db_pool_max_connections").set(f64::from(max));
}

/// One webhook delivery attempt: `delivered`, `rejected` (a non-2xx answer), `timeout` or
/// `unreachable`.
pub fn webhook_attempt(outcome: &'static str, elapsed: Duration) {
    metrics::counter!("webhook_deliveries_total", "outcome" => outcome).increment(1);
    metrics::histogram!("webhook_delivery_duration_seconds").record(elapsed.as_secs_f64());
}

/// Webhook deliveries this instance has in flight.
pub fn webhook_in_flight(count: usize) {
    metrics::gauge!("webhook_deliveries_in_flight").set(count as f64);
}
