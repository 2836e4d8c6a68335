use base64::{Engine, engine::general_purpose::STANDARD};
use rand::RngCore;

use super::ParseError;

/// WeChat's per-user session_key: 16 bytes, handled as its base64 text because the rawData
/// and login-state signatures are computed over that text, not over the bytes.
///
/// Deliberately not `Debug`/`Display`: the key must never reach a log line or a response.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKey {
    text: String,
    bytes: [u8; 16],
}

impl SessionKey {
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let decoded = STANDARD
            .decode(text)
            .map_err(|_| ParseError::new("session_key is not base64"))?;
        let bytes: [u8; 16] = decoded
            .try_into()
            .map_err(|_| ParseError::new("session_key is not 16 bytes"))?;
        Ok(Self {
            text: text.to_owned(),
            bytes,
        })
    }

    /// A fresh random key, as WeChat issues on every `wx.login` (used by the sandbox).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        Self {
            text: STANDARD.encode(bytes),
            bytes,
        }
    }

    pub fn bytes(&self) -> &[u8; 16] {
        &self.bytes
    }

    /// The base64 text, for signatures and for storage. Callers must not log it.
    pub fn expose_text(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_official_sample_key() {
        let key = SessionKey::parse("tiihtNczf5v6AKRyjwEUhQ==").unwrap();
        assert_eq!(key.bytes().len(), 16);
        assert_eq!(key.expose_text(), "tiihtNczf5v6AKRyjwEUhQ==");
    }

    #[test]
    fn refuses_keys_that_are_not_16_bytes_of_base64() {
        assert!(SessionKey::parse("not base64!").is_err());
        assert!(SessionKey::parse("AAAA").is_err());
    }

    #[test]
    fn generated_keys_differ_and_never_print() {
        let (a, b) = (SessionKey::generate(), SessionKey::generate());
        assert_ne!(a.bytes(), b.bytes());
        assert!(!format!("{a:?}").contains(a.expose_text()));
        assert_eq!(SessionKey::parse(a.expose_text()).unwrap(), a);
    }
}
