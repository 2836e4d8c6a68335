//! Wiring: database, clients, services and routes, bound to a listener.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use poem::{
    EndpointExt, Response, Route, Server,
    listener::{Acceptor, Listener, TcpAcceptor, TcpListener},
    middleware::CatchPanic,
};

use crate::{
    api::{
        self, AppContext, middleware,
        problem::{ApiError, ProblemCode, problem_response},
        rate_limit::{self, RateLimits},
    },
    config::Settings,
    crypto::Sealer,
    domain::App,
    service::{AuthService, PrincipalCache, ProfileService},
    store::{Store, StoreError},
    token::AccessTokens,
    wechat::{WeChatClient, sandbox},
};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Database(#[from] StoreError),
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("configuration error: {0}")]
    Keys(#[from] crate::token::TokenError),
}

pub struct Application {
    acceptor: TcpAcceptor,
    address: SocketAddr,
    routes: poem::endpoint::BoxEndpoint<'static, Response>,
}

impl Application {
    /// Connects, migrates and binds; `BIND_ADDR` with port 0 picks a free port.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let acceptor = TcpListener::bind(settings.bind_addr)
            .into_acceptor()
            .await
            .map_err(|source| StartupError::Bind {
                addr: settings.bind_addr,
                source,
            })?;
        let address = acceptor
            .local_addr()
            .first()
            .and_then(|addr| addr.as_socket_addr().copied())
            .unwrap_or(settings.bind_addr);

        let encryption = &settings.sessions.session_key_encryption;
        let sealer = Arc::new(Sealer::new(&encryption.current, &encryption.retired));
        let store = Store::connect(settings.database_url.expose(), sealer).await?;
        let host = if address.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], address.port()))
        } else {
            address
        };
        let api_base = match &settings.wechat.api_base {
            Some(base) => base.clone(),
            None => {
                tracing::warn!(
                    "WECHAT_SANDBOX=true: serving a SIMULATED WeChat under /sandbox and logging \
                     users in against it. Never use this in production."
                );
                format!("http://{host}/sandbox")
            }
        };
        let wechat = WeChatClient::new(&settings.wechat, api_base)?;
        spawn_login_code_purge(store.clone(), settings.sessions.login_replay_window);
        let principals = Arc::new(PrincipalCache::new(settings.sessions.principal_cache_ttl));
        let context = Arc::new(AppContext {
            auth: AuthService::new(
                wechat.clone(),
                store.clone(),
                AccessTokens::new(&settings.jwt)?,
                settings.sessions.refresh_token_ttl,
                settings.sessions.login_replay_window,
                principals.clone(),
            ),
            profiles: ProfileService::new(
                store.clone(),
                wechat.clone(),
                settings.wechat.watermark_max_age,
                principals,
            ),
            store,
        });

        let api = api::service();
        crate::metrics::handle();
        let mut routes = Route::new()
            .at("/metrics", poem::get(api::health::metrics))
            .at("/api/openapi.json", api.spec_endpoint())
            .at("/api/openapi.yaml", api.spec_endpoint_yaml())
            .nest("/api/docs", api.swagger_ui());
        if settings.wechat.sandbox {
            routes = routes.nest(
                "/sandbox",
                sandbox::routes(sandbox::SandboxSettings {
                    apps: vec![sandbox::SandboxApp {
                        app: App::Miniprogram,
                        appid: settings.wechat.appid.clone(),
                        secret: settings.wechat.secret.clone(),
                    }],
                    public_base_url: format!("http://{host}"),
                }),
            );
        }
        let max_body_bytes = settings.max_body_bytes;
        let rate_limits = settings.rate_limit_per_min.and_then(RateLimits::per_minute);
        if let Some(limits) = &rate_limits {
            spawn_rate_limit_housekeeping(limits.clone());
        }
        let trusted_proxies = Arc::new(settings.trusted_proxies.clone());
        let routes = routes
            .nest("/", api)
            .data(context)
            .around(move |endpoint, request| {
                middleware::limit_body(endpoint, request, max_body_bytes)
            })
            .around(move |endpoint, request| {
                rate_limit::enforce(
                    endpoint,
                    request,
                    rate_limits.clone(),
                    trusted_proxies.clone(),
                )
            })
            .catch_all_error(|error| async move { ApiError::from_poem_error(error) })
            .with(CatchPanic::new().with_handler(|_| {
                problem_response(
                    ProblemCode::Internal,
                    "the server failed to handle the request",
                )
            }))
            .around(middleware::request_log)
            .boxed();

        Ok(Self {
            acceptor,
            address,
            routes,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves until SIGTERM or Ctrl-C, then lets in-flight requests finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        tracing::info!(address = %self.address, "listening");
        Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(
                self.routes,
                shutdown_signal(),
                Some(Duration::from_secs(10)),
            )
            .await
    }
}

/// Replayable codes are only interesting within their window; WeChat's codes die after
/// five minutes anyway. Each instance purges; the deletes are idempotent.
fn spawn_login_code_purge(store: Store, window: Option<Duration>) {
    let keep = window.unwrap_or_default().max(Duration::from_secs(600));
    tokio::spawn(async move {
        let mut every_minute = tokio::time::interval(Duration::from_secs(60));
        loop {
            every_minute.tick().await;
            if let Err(error) = store.purge_codes(keep).await {
                tracing::warn!(%error, "purging old login codes failed");
            }
        }
    });
}

fn spawn_rate_limit_housekeeping(limits: Arc<RateLimits>) {
    tokio::spawn(async move {
        let mut every_minute = tokio::time::interval(Duration::from_secs(60));
        loop {
            every_minute.tick().await;
            limits.forget_idle_clients();
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; draining in-flight requests");
}
