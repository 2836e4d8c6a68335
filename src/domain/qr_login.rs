use std::fmt;

use super::ParseError;

/// A computer sign-in's public id: the `scene` of its mini-program code. It is printed in
/// the image, so it names the sign-in and proves nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QrLoginId(String);

impl QrLoginId {
    /// WeChat's `scene` holds at most 32 visible characters, and `%` is not allowed.
    pub const MIN_LEN: usize = 16;
    pub const MAX_LEN: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        if (Self::MIN_LEN..=Self::MAX_LEN).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ParseError::new(
                "a sign-in id is 16 to 32 characters of [A-Za-z0-9]",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QrLoginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a computer sign-in stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrLoginStatus {
    /// Waiting for the mini program to scan the code.
    Pending,
    /// A mini-program user scanned it and is being asked.
    Scanned,
    Confirmed,
    Denied,
    /// Nobody answered in time.
    Expired,
}

impl QrLoginStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Scanned => "scanned",
            Self::Confirmed => "confirmed",
            Self::Denied => "denied",
            Self::Expired => "expired",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Ok(match raw {
            "pending" => Self::Pending,
            "scanned" => Self::Scanned,
            "confirmed" => Self::Confirmed,
            "denied" => Self::Denied,
            "expired" => Self::Expired,
            _ => return Err(ParseError::new("unknown sign-in status")),
        })
    }

    /// Nothing more can happen to a sign-in in this state.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Confirmed | Self::Denied | Self::Expired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_16_to_32_alphanumerics() {
        assert!(QrLoginId::parse("abcdEFGH12345678").is_ok());
        assert!(QrLoginId::parse(&"a".repeat(32)).is_ok());
        for bad in [
            "",
            "short",
            &"a".repeat(33),
            "abcdEFGH1234567%",
            "abcdEFGH 2345678",
        ] {
            assert!(QrLoginId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
