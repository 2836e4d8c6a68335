//! Per-client-IP limits on the unauthenticated write endpoints, and who the client is.

use std::{net::IpAddr, num::NonZeroU32, sync::Arc, time::Duration};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};
use poem::{Endpoint, IntoResponse, Request, Response, http::Method, web::RemoteAddr};

use super::problem::ApiError;
use crate::config::IpNet;

/// Every way in shares the login bucket: each spends a WeChat call or writes a row.
const LOGIN_PATHS: [(Method, &str); 4] = [
    (Method::POST, "/api/v1/auth/login"),
    (Method::POST, "/api/v1/auth/web/login"),
    (Method::POST, "/api/v1/auth/ticket"),
    (Method::GET, "/api/v1/web/authorize"),
];
const REFRESH_PATH: &str = "/api/v1/auth/refresh";

/// Separate buckets for login and refresh, so a burst of logins cannot lock signed-in
/// users out of refreshing.
pub struct RateLimits {
    login: DefaultKeyedRateLimiter<IpAddr>,
    refresh: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl RateLimits {
    pub fn per_minute(limit: u32) -> Option<Arc<Self>> {
        let quota = Quota::per_minute(NonZeroU32::new(limit)?);
        Some(Arc::new(Self {
            login: RateLimiter::keyed(quota),
            refresh: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }))
    }

    /// Forgets clients whose buckets are full again, so the maps do not grow forever.
    pub fn forget_idle_clients(&self) {
        self.login.retain_recent();
        self.refresh.retain_recent();
    }

    /// `Some(wait)` when the client is over its limit for this request.
    fn check(&self, method: &Method, path: &str, client: IpAddr) -> Option<Duration> {
        let limiter = if LOGIN_PATHS.iter().any(|(m, p)| m == method && *p == path) {
            &self.login
        } else if method == Method::POST && path == REFRESH_PATH {
            &self.refresh
        } else {
            return None;
        };
        limiter
            .check_key(&client)
            .err()
            .map(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

/// The client's address: the peer's, unless the peer is a trusted proxy, in which case the
/// nearest `X-Forwarded-For` hop that is not itself a trusted proxy. Anyone can send the
/// header, so it is believed only from the proxies we were told about.
pub fn client_ip(request: &Request, trusted_proxies: &[IpNet]) -> Option<IpAddr> {
    let RemoteAddr(remote) = request.remote_addr();
    let peer = remote.as_socket_addr()?.ip().to_canonical();
    let trusted = |ip: IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|hop| !trusted(*hop))
            .unwrap_or(peer),
    )
}

/// The client address, stored on the request for the limiter and the access log.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

pub async fn enforce<E: Endpoint>(
    endpoint: Arc<E>,
    mut request: Request,
    limits: Option<Arc<RateLimits>>,
    trusted_proxies: Arc<Vec<IpNet>>,
) -> poem::Result<Response> {
    let client = client_ip(&request, &trusted_proxies);
    request.extensions_mut().insert(ClientIp(client));
    if let (Some(limits), Some(client)) = (&limits, client)
        && let Some(wait) = limits.check(request.method(), request.uri().path(), client)
    {
        // Whole seconds, rounded up: "Retry-After: 0" would invite an immediate retry.
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        return Ok(ApiError::rate_limited(seconds.max(1)).into_response());
    }
    Ok(endpoint.call(request).await?.into_response())
}
