//! The webhook worker: one per instance, off the request path. It leases due events in the
//! database (so of several instances only one holds an event at a time, and a crashed
//! instance's lease runs out for another to take over), POSTs each signed as Standard
//! Webhooks says, and records the outcome: any 2xx is delivered, anything else is tried
//! again after a delay that doubles from the base up to ten minutes, for as long as it
//! takes. A user's events go out one at a time, in the order they happened.

use std::{sync::Arc, time::Duration};

use tokio::task::JoinSet;
use url::Url;

use super::{WebhookSecret, sign};
use crate::store::{LeasedEvent, Store};

/// WeChat-independent: the receiver has this long to answer.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longer than an attempt, so a live worker never loses its lease mid-delivery.
const LEASE: Duration = Duration::from_secs(30);
/// The longest wait between two attempts at one event.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(600);
/// Deliveries in flight at once per instance (at most one per user).
const BATCH: u64 = 32;
/// How often an idle worker looks for events other instances wrote or retries that fell
/// due; a commit in this process wakes it at once.
const MAX_POLL: Duration = Duration::from_secs(1);

/// Where and how events are delivered.
#[derive(Clone)]
pub struct WebhookTarget {
    pub url: Url,
    pub secret: WebhookSecret,
    pub retry_base: Duration,
}

impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTarget")
            // A URL may carry a token in its path or query: only where it points.
            .field("host", &self.url.host_str())
            .field("retry_base", &self.retry_base)
            .finish_non_exhaustive()
    }
}

/// The delay before the attempt after `failed` failed attempts: base, 2×base, 4×base, …,
/// capped at ten minutes.
pub fn retry_delay(base: Duration, failed: u32) -> Duration {
    let factor = 2u32.saturating_pow(failed.saturating_sub(1));
    base.saturating_mul(factor).min(MAX_RETRY_DELAY)
}

/// Starts this instance's worker.
pub fn spawn(store: Store, target: WebhookTarget) -> Result<(), reqwest::Error> {
    let http = reqwest::Client::builder()
        .timeout(DELIVERY_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let owner = format!("worker_{}", uuid::Uuid::new_v4().simple());
    let worker = Arc::new(Worker {
        store,
        target,
        http,
        owner,
    });
    tokio::spawn(worker.run());
    Ok(())
}

struct Worker {
    store: Store,
    target: WebhookTarget,
    http: reqwest::Client,
    /// This instance's lease owner name.
    owner: String,
}

impl Worker {
    /// Keeps up to [`BATCH`] deliveries in flight: a slow receiver answer holds up only
    /// its own user's later events, not everyone's.
    async fn run(self: Arc<Self>) {
        let written = self.store.events_written();
        let idle = self.target.retry_base.min(MAX_POLL);
        let mut in_flight = JoinSet::new();
        loop {
            let room = BATCH.saturating_sub(in_flight.len() as u64);
            if room > 0 {
                match self.store.lease_events(&self.owner, LEASE, room).await {
                    Ok(leased) => {
                        for event in leased {
                            in_flight.spawn(self.clone().attempt(event));
                        }
                    }
                    Err(error) => tracing::warn!(%error, "leasing webhook deliveries failed"),
                }
            }
            crate::metrics::webhook_in_flight(in_flight.len());
            tokio::select! {
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {},
                () = written.notified() => {},
                () = tokio::time::sleep(idle) => {},
            }
        }
    }

    async fn attempt(self: Arc<Self>, leased: LeasedEvent) {
        let event = &leased.event;
        let body = event.to_json().to_string();
        let timestamp = chrono::Utc::now().timestamp();
        let started = std::time::Instant::now();
        let sent = self
            .http
            .post(self.target.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", &event.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                sign(&self.target.secret, &event.id, timestamp, &body),
            )
            .body(body)
            .send()
            .await;
        let outcome = match &sent {
            Ok(response) if response.status().is_success() => "delivered",
            Ok(_) => "rejected",
            Err(error) if error.is_timeout() => "timeout",
            Err(_) => "unreachable",
        };
        crate::metrics::webhook_attempt(outcome, started.elapsed());
        let recorded = if outcome == "delivered" {
            self.store.mark_delivered(&event.id, &self.owner).await
        } else {
            let failed = leased.attempts.saturating_add(1);
            let delay = retry_delay(self.target.retry_base, failed);
            let status = sent.as_ref().ok().map(|r| r.status().as_u16());
            tracing::info!(
                event_id = %event.id,
                outcome,
                status,
                attempts = failed,
                retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "webhook delivery failed; will retry"
            );
            self.store.retry_event(&event.id, &self.owner, delay).await
        };
        if let Err(error) = recorded {
            // The lease runs out and the event is delivered again: at least once.
            tracing::warn!(%error, event_id = %event.id, "recording a webhook attempt failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_from_the_base_up_to_ten_minutes() {
        let base = Duration::from_secs(1);
        assert_eq!(retry_delay(base, 1), Duration::from_secs(1));
        assert_eq!(retry_delay(base, 2), Duration::from_secs(2));
        assert_eq!(retry_delay(base, 5), Duration::from_secs(16));
        assert_eq!(retry_delay(base, 10), Duration::from_secs(512));
        assert_eq!(retry_delay(base, 11), MAX_RETRY_DELAY);
        assert_eq!(retry_delay(base, 400), MAX_RETRY_DELAY);
        // Ten minutes between attempts from the 11th on: a day of outage is ~150 attempts.
    }
}
