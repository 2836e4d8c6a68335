//! Black-box tests: the real service on a random port, a fresh database, and a fake
//! WeChat server, talking HTTP both ways.

mod at_rest;
mod clients;
mod config;
mod decrypt;
mod docs;
mod events;
mod helpers;
mod jwks;
mod login;
mod process;
mod rate_limits;
mod readiness;
mod replay;
mod sandbox;
mod server_api;
mod server_apis;
mod session_key_order;
mod sessions;
mod tokens;
mod web;
mod wechat_faults;
