//! Database models, one module per table. Only `store` in the service uses them.

pub mod user;
pub mod wechat_identity;
