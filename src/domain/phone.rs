//! A phone number in E.164 form: the one shape numbers are stored and compared in.

use super::ParseError;

/// `+` and the country code and number, 8 to 15 digits in all (ITU-T E.164).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

const MIN_DIGITS: usize = 8;
const MAX_DIGITS: usize = 15;

impl PhoneNumber {
    /// `+<country><number>`, or an 11-digit mainland China number (meaning `+86`).
    /// Spaces, dashes and anything else are refused rather than guessed at.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let refuse = || {
            ParseError::new(
                "phone_number must be +<country code><number> (E.164) or an 11-digit \
                 mainland China number",
            )
        };
        if let Some(digits) = raw.strip_prefix('+') {
            let well_formed = (MIN_DIGITS..=MAX_DIGITS).contains(&digits.len())
                && digits.bytes().all(|b| b.is_ascii_digit())
                && !digits.starts_with('0');
            return well_formed.then(|| Self(raw.to_owned())).ok_or_else(refuse);
        }
        if raw.len() == 11 && raw.starts_with('1') && raw.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Self(format!("+86{raw}")));
        }
        Err(refuse())
    }

    /// The number WeChat reports (`countryCode` and `purePhoneNumber`), in E.164 form.
    pub fn from_wechat(country_code: &str, pure_phone_number: &str) -> Result<Self, ParseError> {
        let country = country_code.trim_start_matches('+');
        Self::parse(&format!("+{country}{pure_phone_number}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Phone numbers are personal data: logs show only the country code and the last two
/// digits.
impl std::fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tail = &self.0[self.0.len().saturating_sub(2)..];
        write!(f, "PhoneNumber(…{tail})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_numbers_are_kept_as_given() {
        assert_eq!(
            PhoneNumber::parse("+8613800138000").unwrap().as_str(),
            "+8613800138000"
        );
        assert_eq!(
            PhoneNumber::parse("+14155550123").unwrap().as_str(),
            "+14155550123"
        );
    }

    #[test]
    fn eleven_mainland_digits_mean_plus_86() {
        assert_eq!(
            PhoneNumber::parse("13800138000").unwrap(),
            PhoneNumber::parse("+8613800138000").unwrap()
        );
    }

    #[test]
    fn a_wechat_number_equals_the_same_number_proven_by_sms() {
        assert_eq!(
            PhoneNumber::from_wechat("86", "13800138000").unwrap(),
            PhoneNumber::parse("13800138000").unwrap()
        );
        assert_eq!(
            PhoneNumber::from_wechat("1", "4155550123")
                .unwrap()
                .as_str(),
            "+14155550123"
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for raw in [
            "",
            "+",
            "138 0013 8000",
            "138-0013-8000",
            "1380013800",
            "23800138000",
            "+86 13800138000",
            "+0123456789",
            "+1234567",
            "+1234567890123456",
            "0086138001380000",
            "＋8613800138000",
            "13800138000\n",
        ] {
            assert!(PhoneNumber::parse(raw).is_err(), "{raw:?} was accepted");
        }
    }

    #[test]
    fn debug_output_hides_the_number() {
        let phone = PhoneNumber::parse("+8613800138000").unwrap();
        assert_eq!(format!("{phone:?}"), "PhoneNumber(…00)");
    }
}
