use std::fmt;

use super::ParseError;

/// The WeChat products a person can sign in from. Their names are part of the contract
/// (query values and JSON everywhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum App {
    /// The mini program (`wx.login` → `jscode2session`).
    Miniprogram,
    /// Official Account pages inside WeChat (网页授权).
    OfficialAccount,
    /// The Open Platform website app (QR login on a computer).
    Website,
}

impl App {
    pub const ALL: [App; 3] = [App::Miniprogram, App::OfficialAccount, App::Website];

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|app| app.as_str() == raw)
            .ok_or_else(|| ParseError::new("app must be miniprogram, official_account or website"))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Miniprogram => "miniprogram",
            Self::OfficialAccount => "official_account",
            Self::Website => "website",
        }
    }
}

impl fmt::Display for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_app_parses_back_from_its_contract_name() {
        for app in App::ALL {
            assert_eq!(App::parse(app.as_str()), Ok(app));
        }
        assert!(App::parse("Website").is_err());
        assert!(App::parse("").is_err());
    }
}
