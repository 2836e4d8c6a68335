//! The WeChat server API as we use it: one client, its wire formats, its errcodes.

mod client;
pub mod sandbox;

pub use client::{
    AccessToken, CodeSession, FreshAccessToken, PhoneInfo, WeChatClient, WeChatError,
};
