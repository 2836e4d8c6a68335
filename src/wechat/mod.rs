//! The WeChat server API as we use it: one client per app, its wire formats, its errcodes.
//! `client` holds the call machinery and the mini program's APIs; `oauth` the web
//! authorisation shared by the Official Account and the website.

mod client;
mod miniprogram_code;
mod oauth;
pub mod sandbox;
pub mod sandbox_qr;

pub use client::{
    AccessToken, CodeSession, FreshAccessToken, PhoneInfo, WeChatClient, WeChatError,
};
pub use miniprogram_code::PNG_SIGNATURE;
pub use oauth::{OAuthGrant, OAuthProfile, WebAccessToken, authorize_url};
