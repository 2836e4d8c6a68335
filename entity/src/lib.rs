//! Database models, one module per table. Only `store` in the service uses them.

pub mod event;
pub mod login_code;
pub mod phone_verification;
pub mod qr_login;
pub mod qr_login_image;
pub mod retired_refresh_token;
pub mod session;
pub mod user;
pub mod user_alias;
pub mod web_flow;
pub mod wechat_access_token;
pub mod wechat_identity;
