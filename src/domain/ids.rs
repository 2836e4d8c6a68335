use std::fmt;

use uuid::Uuid;

use super::{ParseError, check_token_chars};

macro_rules! wechat_identifier {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, ParseError> {
                check_token_chars($field, raw, $max)?;
                Ok(Self(raw.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

wechat_identifier!(
    /// A WeChat app id (`wx…`), the tenant key of every identity.
    AppId, "appid", 64
);
wechat_identifier!(
    /// A user's id within one WeChat app.
    OpenId, "openid", 128
);
wechat_identifier!(
    /// A user's id across all apps bound to one Open Platform account.
    UnionId, "unionid", 64
);

/// Our own user id: opaque to clients, time-ordered so inserts do not scatter an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserId(Uuid);

impl UserId {
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Uuid::try_parse(raw)
            .map(Self)
            .map_err(|_| ParseError::new("user id is not a UUID"))
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

/// One signed-in device: the unit that refresh tokens rotate within and logout ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(Uuid);

impl SessionId {
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Uuid::try_parse(raw)
            .map(Self)
            .map_err(|_| ParseError::new("session id is not a UUID"))
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for SessionId {
    fn from(value: Uuid) -> Self {
        Self(value)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.as_hyphenated().fmt(f)
    }
}

impl From<Uuid> for UserId {
    fn from(value: Uuid) -> Self {
        Self(value)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.as_hyphenated().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_refuse_blank_and_whitespace() {
        assert!(OpenId::parse("o6_bmjrPTlm6_2sgVt7hMZOPfL2M").is_ok());
        assert!(OpenId::parse("").is_err());
        assert!(OpenId::parse("o6 bm").is_err());
        assert!(AppId::parse(&"w".repeat(65)).is_err());
    }

    #[test]
    fn user_ids_round_trip_through_text() {
        let id = UserId::generate();
        assert_eq!(UserId::parse(&id.to_string()).unwrap(), id);
        assert!(UserId::parse("not-a-uuid").is_err());
    }
}
