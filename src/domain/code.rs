use super::{ParseError, check_token_chars};

/// A one-time code WeChat hands the mini program: from `wx.login()`, or getPhoneNumber's
/// `e.detail.code`. WeChat's are 32 characters; we allow some slack but refuse anything
/// that could not be one before spending an upstream call on it.
#[derive(Clone, PartialEq, Eq)]
pub struct JsCode(String);

impl JsCode {
    pub const MAX_LEN: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        check_token_chars("code", raw, Self::MAX_LEN)?;
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A code is a bearer credential for five minutes: keep it out of debug output.
impl std::fmt::Debug for JsCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsCode([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wechat_shaped_code_parses() {
        let code = JsCode::parse("0a3Xy91w3ZqXh63dB83w3Pf5Pl0Xy91W").unwrap();
        assert_eq!(code.as_str(), "0a3Xy91w3ZqXh63dB83w3Pf5Pl0Xy91W");
    }

    #[test]
    fn empty_blank_and_overlong_codes_are_refused() {
        assert!(JsCode::parse("").is_err());
        assert!(JsCode::parse("abc def").is_err());
        assert!(JsCode::parse("abc\n").is_err());
        assert!(JsCode::parse("码").is_err());
        assert!(JsCode::parse(&"a".repeat(JsCode::MAX_LEN + 1)).is_err());
        assert!(JsCode::parse(&"a".repeat(JsCode::MAX_LEN)).is_ok());
    }

    #[test]
    fn debug_output_hides_the_code() {
        let code = JsCode::parse("secretcode").unwrap();
        assert!(!format!("{code:?}").contains("secretcode"));
    }
}
