//! Values parsed once at the edge; holding one means it is well-formed.

mod app;
mod code;
mod ids;
mod payload;
mod phone;
mod return_to;
mod session_key;

pub use app::App;
pub use code::JsCode;
pub use ids::{AppId, OpenId, SessionId, UnionId, UserId};
pub use payload::EncryptedPayload;
pub use phone::PhoneNumber;
pub use return_to::ReturnTo;
pub use session_key::SessionKey;

/// Why a raw input was refused. The text is safe to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl ParseError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Shared rule for identifiers that travel in URLs and logs: printable ASCII, no spaces.
fn check_token_chars(field: &str, value: &str, max_len: usize) -> Result<(), ParseError> {
    if value.is_empty() {
        return Err(ParseError::new(format!("{field} must not be empty")));
    }
    if value.len() > max_len {
        return Err(ParseError::new(format!(
            "{field} must be at most {max_len} characters"
        )));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ParseError::new(format!(
            "{field} must contain only printable ASCII characters without spaces"
        )));
    }
    Ok(())
}
