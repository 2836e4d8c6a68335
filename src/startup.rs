//! Wiring: database, clients, services and routes, bound to a listener.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use poem::{EndpointExt, Response, Route, middleware::CatchPanic};
use tokio::net::TcpListener;

use crate::{
    api::{
        self, AppContext, middleware,
        problem::{ApiError, ProblemCode, problem_response},
        rate_limit::{self, RateLimits},
        routes::RouteTable,
    },
    config::{HttpSettings, Settings, SmsProvider},
    crypto::Sealer,
    domain::App,
    service::{
        Accounts, AppClients, LoginService, PhoneService, PrincipalCache, ProfileService,
        QrLoginOptions, QrLogins, ServerUsers, Sessions, WebLogin, WebSignIn,
    },
    sms::{self, SandboxSms, SmsSender},
    store::{Store, StoreError},
    token::AccessTokens,
    wechat::{WeChatClient, sandbox, sandbox_qr},
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
    #[error("configuration error: PUBLIC_BASE_URL: cannot be derived from BIND_ADDR")]
    PublicBaseUrl,
}

pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    http: HttpSettings,
    routes: poem::endpoint::BoxEndpoint<'static, Response>,
}

impl Application {
    /// Connects, migrates and binds; `BIND_ADDR` with port 0 picks a free port.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let listener = TcpListener::bind(settings.bind_addr)
            .await
            .map_err(|source| StartupError::Bind {
                addr: settings.bind_addr,
                source,
            })?;
        let address = listener.local_addr().unwrap_or(settings.bind_addr);

        let encryption = &settings.sessions.session_key_encryption;
        let sealer = Arc::new(Sealer::new(&encryption.current, &encryption.retired));
        let store = Store::connect(settings.database_url.expose(), sealer)
            .await?
            .with_miniprogram_appid(
                settings
                    .apps
                    .miniprogram
                    .as_ref()
                    .map(|app| app.appid.clone()),
            );
        // In the sandbox everything WeChat-facing points back at this listener.
        let own_base = {
            let host = if address.ip().is_unspecified() {
                SocketAddr::from(([127, 0, 0, 1], address.port()))
            } else {
                address
            };
            format!("http://{host}")
        };
        let api_base = match &settings.wechat.api_base {
            Some(base) => base.clone(),
            None => {
                tracing::warn!(
                    "WECHAT_SANDBOX=true: serving a SIMULATED WeChat under /sandbox and logging \
                     users in against it. Never use this in production."
                );
                format!("{own_base}/sandbox")
            }
        };
        let public_base_url = match &settings.web.public_base_url {
            Some(url) => url.clone(),
            None => url::Url::parse(&own_base).map_err(|_| StartupError::PublicBaseUrl)?,
        };
        let return_urls = if settings.web.return_urls.is_empty() {
            vec![public_base_url.clone()]
        } else {
            settings.web.return_urls.clone()
        };
        let open_base = settings.web.open_base.clone().unwrap_or_else(|| {
            format!("{}/sandbox", public_base_url.as_str().trim_end_matches('/'))
        });

        let apps = &settings.apps;
        let client_for = |app: Option<&crate::config::AppCredentials>| {
            app.map(|app| WeChatClient::new(settings.wechat.timeout, api_base.clone(), app))
                .transpose()
        };
        let clients = AppClients {
            miniprogram: client_for(apps.miniprogram.as_ref())?,
            official_account: client_for(apps.official_account.as_ref())?,
            website: client_for(apps.website.as_ref())?,
        };
        spawn_purges(store.clone(), settings.sessions.login_replay_window);
        let events = &settings.events;
        spawn_event_purge(store.clone(), events.retention, events.webhook.is_some());
        if let Some(target) = &events.webhook {
            crate::events::delivery::spawn(store.clone(), target.clone())?;
        }
        let principals = Arc::new(PrincipalCache::new(settings.sessions.principal_cache_ttl));
        let sessions = Sessions::new(
            store.clone(),
            AccessTokens::new(&settings.jwt)?,
            settings.sessions.refresh_token_ttl,
            principals.clone(),
        );
        let accounts = Accounts::new(store.clone(), principals.clone());
        let server_users = ServerUsers::new(store.clone(), principals.clone());
        let (sms_sender, sandbox_sms) = sms_provider(&settings.sms.provider)?;
        let phones = sms_sender.map(|sender| {
            PhoneService::new(
                store.clone(),
                sessions.clone(),
                principals.clone(),
                sender,
                settings.sms.code_ttl,
            )
        });
        let login = LoginService::new(
            clients.clone(),
            store.clone(),
            accounts.clone(),
            sessions.clone(),
            settings.sessions.login_replay_window,
        );
        let web = WebLogin::new(
            login.clone(),
            sessions.clone(),
            store.clone(),
            WebSignIn::new(
                &public_base_url,
                return_urls,
                open_base,
                settings.web.ticket_ttl,
            ),
        );
        let profiles = clients.miniprogram.clone().map(|wechat| {
            ProfileService::new(
                store.clone(),
                wechat,
                settings.wechat.watermark_max_age,
                principals,
            )
        });
        // Computer sign-in shows a code of the mini program, made with its access_token.
        let qr_logins =
            profiles
                .as_ref()
                .zip(clients.miniprogram.clone())
                .map(|(profiles, wechat)| {
                    QrLogins::new(
                        store.clone(),
                        sessions.clone(),
                        wechat,
                        profiles.access_tokens(),
                        QrLoginOptions {
                            page: settings.qr_login.page.clone(),
                            ttl: settings.qr_login.ttl,
                            public_base_url: public_base_url
                                .as_str()
                                .trim_end_matches('/')
                                .to_owned(),
                        },
                    )
                });
        let context = Arc::new(AppContext {
            sessions,
            login,
            web,
            profiles,
            miniprogram_appid: apps.miniprogram.as_ref().map(|app| app.appid.clone()),
            oa_verify_file: settings
                .web
                .oa_verify_file
                .as_ref()
                .map(|file| (file.name.clone(), file.contents.clone())),
            qr_logins,
            store: store.clone(),
            server_users,
            server_keys: events.server_api_keys.clone(),
            accounts,
            phones,
        });

        let api = api::service();
        crate::metrics::handle();
        let mut routes = Route::new()
            .at("/metrics", poem::get(api::health::metrics))
            .at("/api/openapi.json", poem::get(api.spec_endpoint()))
            .at("/api/openapi.yaml", poem::get(api.spec_endpoint_yaml()))
            .nest("/api/docs", poem::get(api.swagger_ui()));
        let route_table = Arc::new(RouteTable::new(settings.wechat.sandbox));
        if let Some(file) = &settings.web.oa_verify_file {
            routes = routes.at(
                format!("/{}", file.name),
                poem::get(api::health::verify_file),
            );
        }
        if settings.wechat.sandbox {
            routes = routes.nest(
                "/sandbox",
                crate::events::sandbox::add_routes(
                    sandbox_qr::add_routes(
                        sms::sandbox_routes::add_routes(
                            sandbox::routes(sandbox::SandboxSettings {
                                apps: App::ALL
                                    .into_iter()
                                    .filter_map(|app| {
                                        apps.get(app).map(|credentials| sandbox::SandboxApp {
                                            app,
                                            appid: credentials.appid.clone(),
                                            secret: credentials.secret.clone(),
                                        })
                                    })
                                    .collect(),
                                public_base_url: public_base_url
                                    .as_str()
                                    .trim_end_matches('/')
                                    .to_owned(),
                            }),
                            sandbox_sms,
                        ),
                        public_base_url.as_str(),
                    ),
                    store.clone(),
                ),
            );
        }
        if settings.events.server_api_keys.is_empty() {
            // Every server API path, whatever the credentials; a method the path never
            // answers still gets 405 with `Allow`, as everywhere else.
            let known = route_table.clone();
            routes = routes.nest(
                "/api/v1/server",
                poem::endpoint::make_sync(move |request| {
                    // Nesting strips the prefix; the table knows full paths.
                    let path = request.original_uri().path();
                    match known.find(path) {
                        Some(route) if !route.allows(request.method()) => problem_response(
                            ProblemCode::MethodNotAllowed,
                            "this method is not allowed on this path",
                        ),
                        _ => problem_response(
                            ProblemCode::AppNotConfigured,
                            "the server API is not configured on this service (SERVER_API_KEYS)",
                        ),
                    }
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
            .around(move |endpoint, request| {
                middleware::request_log(endpoint, request, route_table.clone())
            })
            .boxed();

        Ok(Self {
            listener,
            address,
            http: settings.http.clone(),
            routes,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves until SIGTERM or Ctrl-C, then lets in-flight requests finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        tracing::info!(address = %self.address, "listening");
        crate::server::serve(
            self.listener,
            self.routes,
            self.http,
            shutdown_signal(),
            Duration::from_secs(10),
        )
        .await
    }
}

/// Replayable codes are only interesting within their window (WeChat's codes die after
/// five minutes anyway), and web flows once their state and ticket are dead. Each instance
/// purges; the deletes are idempotent.
fn spawn_purges(store: Store, window: Option<Duration>) {
    let keep = window.unwrap_or_default().max(Duration::from_secs(600));
    tokio::spawn(async move {
        let mut every_minute = tokio::time::interval(Duration::from_secs(60));
        loop {
            every_minute.tick().await;
            if let Err(error) = store.purge_codes(keep).await {
                tracing::warn!(%error, "purging old login codes failed");
            }
            if let Err(error) = store.purge_web_flows().await {
                tracing::warn!(%error, "purging finished web sign-ins failed");
            }
            if let Err(error) = store.purge_phone_verifications().await {
                tracing::warn!(%error, "purging old phone verification codes failed");
            }
            if let Err(error) = store.purge_qr_logins().await {
                tracing::warn!(%error, "purging finished computer sign-ins failed");
            }
        }
    });
}

/// Events past `EVENT_RETENTION_SECS` leave the feed; with webhooks configured an
/// undelivered one stays until it is delivered.
fn spawn_event_purge(store: Store, retention: Duration, webhooks: bool) {
    tokio::spawn(async move {
        let mut every_minute = tokio::time::interval(Duration::from_secs(60));
        loop {
            every_minute.tick().await;
            match store.purge_events(retention, webhooks).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "purged events past their retention"),
                Err(error) => tracing::warn!(%error, "purging old events failed"),
            }
        }
    });
}

/// The configured SMS provider, and the sandbox's outbox when it is the sandbox.
type SmsProviders = (Option<Arc<dyn SmsSender>>, Option<SandboxSms>);

fn sms_provider(provider: &Option<SmsProvider>) -> Result<SmsProviders, StartupError> {
    Ok(match provider {
        None => (None, None),
        Some(SmsProvider::Sandbox) => {
            let outbox = SandboxSms::default();
            (Some(Arc::new(outbox.clone())), Some(outbox))
        }
        Some(SmsProvider::TencentCloud(settings)) => (
            Some(Arc::new(sms::TencentCloudSms::new(settings.clone())?)),
            None,
        ),
        Some(SmsProvider::Webhook(url)) => (
            Some(Arc::new(sms::WebhookSms::new(url.expose().to_owned())?)),
            None,
        ),
    })
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
