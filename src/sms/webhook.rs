//! A team's own SMS gateway: the code is POSTed as JSON to `SMS_WEBHOOK_URL`; any 2xx
//! answer means it was sent.

use serde_json::json;

use super::{CodeMessage, SendFuture, SmsError, SmsSender, http_client, unavailable};

pub struct WebhookSms {
    http: reqwest::Client,
    url: String,
}

impl WebhookSms {
    pub fn new(url: String) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: http_client()?,
            url,
        })
    }
}

impl SmsSender for WebhookSms {
    fn send<'a>(&'a self, message: &'a CodeMessage<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let body = json!({
                "phone_number": message.phone.as_str(),
                "code": message.code,
                "expires_in": message.ttl.as_secs(),
            });
            let answer = self
                .http
                .post(&self.url)
                .json(&body)
                .send()
                .await
                .map_err(|error| unavailable(&error))?;
            let status = answer.status();
            if status.is_success() {
                Ok(())
            } else {
                Err(SmsError::Refused(format!("the webhook answered {status}")))
            }
        })
    }
}
