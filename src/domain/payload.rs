use base64::{Engine, engine::general_purpose::STANDARD};

use super::ParseError;

/// `encryptedData` + `iv` as the mini program hands them over, decoded and size-checked.
///
/// Base64 is strict standard base64: whitespace is refused rather than stripped, because a
/// JSON client has no reason to insert any and silently repairing input hides client bugs
/// (a `+` turned into a space by form encoding would otherwise decode to garbage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedPayload {
    ciphertext: Vec<u8>,
    iv: [u8; 16],
}

impl EncryptedPayload {
    /// getUserInfo payloads are about 0.5 KiB; 16 KiB of base64 leaves ample room.
    pub const MAX_ENCRYPTED_DATA_LEN: usize = 16 * 1024;
    const MAX_IV_LEN: usize = 64;

    pub fn parse(encrypted_data: &str, iv: &str) -> Result<Self, ParseError> {
        if encrypted_data.is_empty() {
            return Err(ParseError::new("encrypted_data must not be empty"));
        }
        if encrypted_data.len() > Self::MAX_ENCRYPTED_DATA_LEN {
            return Err(ParseError::new(format!(
                "encrypted_data must be at most {} characters",
                Self::MAX_ENCRYPTED_DATA_LEN
            )));
        }
        if iv.len() > Self::MAX_IV_LEN {
            return Err(ParseError::new("iv must be 16 bytes of base64"));
        }
        let ciphertext = STANDARD
            .decode(encrypted_data)
            .map_err(|_| ParseError::new("encrypted_data is not standard base64"))?;
        let iv = STANDARD
            .decode(iv)
            .map_err(|_| ParseError::new("iv is not standard base64"))?
            .try_into()
            .map_err(|_| ParseError::new("iv must be 16 bytes of base64"))?;
        Ok(Self { ciphertext, iv })
    }

    pub fn from_parts(ciphertext: Vec<u8>, iv: [u8; 16]) -> Self {
        Self { ciphertext, iv }
    }

    pub fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }

    pub fn iv(&self) -> &[u8; 16] {
        &self.iv
    }

    pub fn encrypted_data_base64(&self) -> String {
        STANDARD.encode(&self.ciphertext)
    }

    pub fn iv_base64(&self) -> String {
        STANDARD.encode(self.iv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_standard_base64_with_a_16_byte_iv() {
        let payload =
            EncryptedPayload::parse("AAAAAAAAAAAAAAAAAAAAAA==", "r7BXXKkLb8qrSNn05n0qiA==")
                .unwrap();
        assert_eq!(payload.ciphertext().len(), 16);
        assert_eq!(payload.iv_base64(), "r7BXXKkLb8qrSNn05n0qiA==");
    }

    #[test]
    fn refuses_bad_base64_short_iv_whitespace_and_empty_data() {
        let iv = "r7BXXKkLb8qrSNn05n0qiA==";
        assert!(EncryptedPayload::parse("", iv).is_err());
        assert!(EncryptedPayload::parse("!!!!", iv).is_err());
        assert!(EncryptedPayload::parse("AAAA AAAA", iv).is_err());
        assert!(EncryptedPayload::parse("AAAA", "AAAA").is_err());
        assert!(EncryptedPayload::parse("AAAA", "r7BXXKkLb8qrSNn05n0qiA").is_err());
    }

    #[test]
    fn refuses_overlong_data_before_decoding_it() {
        let long = "A".repeat(EncryptedPayload::MAX_ENCRYPTED_DATA_LEN + 4);
        let err = EncryptedPayload::parse(&long, "r7BXXKkLb8qrSNn05n0qiA==").unwrap_err();
        assert!(err.0.contains("at most"));
    }
}
