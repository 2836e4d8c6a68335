//! Standard Webhooks signing: `v1,<base64 HMAC-SHA256("{id}.{timestamp}.{body}")>` keyed
//! with the base64-decoded part of a `whsec_…` secret.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The fewest random bytes a webhook secret may carry (the specification's minimum).
const MIN_SECRET_BYTES: usize = 24;

/// A `whsec_` secret's key bytes; never printed.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let encoded = raw
            .strip_prefix("whsec_")
            .ok_or_else(|| "must start with whsec_".to_owned())?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| "the part after whsec_ must be base64".to_owned())?;
        if key.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "the part after whsec_ must encode at least {MIN_SECRET_BYTES} bytes"
            ));
        }
        Ok(Self(key))
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The `webhook-signature` header value for one delivery attempt.
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &str) -> String {
    // HMAC takes keys of any length; the error arm cannot happen.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(&secret.0) else {
        return String::new();
    };
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_specifications_example() {
        // The example of the Standard Webhooks specification (spec/standard-webhooks.md).
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = sign(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn short_or_foreign_secrets_are_refused() {
        assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(WebhookSecret::parse("whsec_c2hvcnQ=").is_err());
        assert!(WebhookSecret::parse("whsec_not base64!").is_err());
    }
}
