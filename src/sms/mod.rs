//! Sending a verification code to a phone: one trait, and its providers — Tencent Cloud
//! SMS, a team's own gateway behind a webhook, and the sandbox that sends nothing.

pub mod sandbox;
pub mod sandbox_routes;
pub mod tencentcloud;
pub mod webhook;

use std::{future::Future, pin::Pin, time::Duration};

use crate::domain::PhoneNumber;

pub use sandbox::SandboxSms;
pub use tencentcloud::TencentCloudSms;
pub use webhook::WebhookSms;

/// Longest one send may take, connection included: the person is waiting for the answer.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// A verification code on its way to a phone.
pub struct CodeMessage<'a> {
    pub phone: &'a PhoneNumber,
    /// Six digits. A secret until it reaches the phone: never logged.
    pub code: &'a str,
    /// How long the code works.
    pub ttl: Duration,
}

/// Why a code was not sent. The text names the provider's answer, never the code.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SmsError {
    #[error("the SMS provider refused the message: {0}")]
    Refused(String),
    #[error("the SMS provider could not be reached: {0}")]
    Unavailable(String),
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SmsError>> + Send + 'a>>;

/// Sends a code to a number.
pub trait SmsSender: Send + Sync {
    fn send<'a>(&'a self, message: &'a CodeMessage<'a>) -> SendFuture<'a>;
}

fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(SEND_TIMEOUT)
        .connect_timeout(Duration::from_secs(2))
        .build()
}

/// A transport failure, without the URL (a webhook URL may carry a token).
fn unavailable(error: &reqwest::Error) -> SmsError {
    SmsError::Unavailable(if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    })
}
