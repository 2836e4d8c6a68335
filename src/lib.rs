//! wechat-auth: WeChat mini-program login as a service.
//!
//! Read top-down: `startup` wires everything; `api` is the HTTP surface over `service`,
//! which uses `wechat`, `crypto`, `token` and `store`; `domain` holds the parsed values
//! they all share.

/// HTTP surface: poem-openapi operations, problem+json errors, bearer auth.
pub mod api;
/// Settings loaded and validated once at start.
pub mod config;
/// WeChat's payload cipher and signatures, as pure functions.
pub mod crypto;
/// Newtypes parsed at the edge: codes, ids, session keys, encrypted payloads.
pub mod domain;
/// Events about users: what they say, webhook signing and delivery, the sandbox page.
pub mod events;
/// Prometheus metrics.
pub mod metrics;
/// The HTTP server: connection deadlines and the connection cap.
pub mod server;
/// Use cases: login, authentication, decrypting and saving profile data.
pub mod service;
/// Sending phone verification codes: Tencent Cloud SMS, a webhook, the sandbox.
pub mod sms;
/// Building and running the server.
pub mod startup;
/// Persistence through sea-orm; the only module that knows SQL.
pub mod store;
/// Logging set-up.
pub mod telemetry;
/// JWT access tokens.
pub mod token;
/// The WeChat server API client and the built-in sandbox simulator.
pub mod wechat;
