//! Black-box tests: the real service on a random port, a fresh database, and a fake
//! WeChat server, talking HTTP both ways.

mod accounts;
mod at_rest;
mod browser;
mod cli;
mod clients;
mod config;
mod connections;
mod decrypt;
mod docs;
mod events;
mod hardening;
mod helpers;
mod jwks;
mod login;
mod phone;
mod process;
mod qr_login;
mod rate_limits;
mod readiness;
mod replay;
mod repository;
mod sandbox;
mod sandbox_app;
mod sandbox_oauth;
mod sandbox_pages_browser;
mod server_api;
mod server_apis;
mod session_key_order;
mod sessions;
mod sms_fakes;
mod tokens;
mod web;
mod web_client_browser;
mod web_sign_in_browser;
mod wechat_faults;
