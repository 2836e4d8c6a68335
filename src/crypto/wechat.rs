//! WeChat's payload cipher (AES-128-CBC) and its two signature schemes.

use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit, block_padding::Pkcs7};
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha1::{Digest, Sha1};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::domain::{EncryptedPayload, SessionKey};

type Aes128CbcDec = cbc::Decryptor<aes::Aes128>;
type Aes128CbcEnc = cbc::Encryptor<aes::Aes128>;

/// Every way decryption can fail, deliberately collapsed into one value: telling a caller
/// "bad padding" apart from "bad JSON" would make the endpoint a padding oracle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the encrypted data could not be decrypted with the session key")]
pub struct DecryptError;

/// AES-128-CBC/PKCS#7 decryption of `encryptedData`, returning the plaintext only when it is
/// valid UTF-8 (WeChat's payloads are JSON text).
pub fn decrypt_payload(
    key: &SessionKey,
    payload: &EncryptedPayload,
) -> Result<String, DecryptError> {
    let plaintext = Aes128CbcDec::new(key.bytes().into(), payload.iv().into())
        .decrypt_padded_vec::<Pkcs7>(payload.ciphertext())
        .map_err(|_| DecryptError)?;
    String::from_utf8(plaintext).map_err(|_| DecryptError)
}

/// The twin of [`decrypt_payload`] with a fresh random IV: what WeChat does on the client
/// side; used by the sandbox and by tests to produce real payloads.
pub fn encrypt_payload(key: &SessionKey, plaintext: &[u8]) -> EncryptedPayload {
    let mut iv = [0u8; 16];
    rand::rng().fill_bytes(&mut iv);
    let ciphertext =
        Aes128CbcEnc::new(key.bytes().into(), (&iv).into()).encrypt_padded_vec::<Pkcs7>(plaintext);
    EncryptedPayload::from_parts(ciphertext, iv)
}

/// `hex(sha1(raw_data + session_key))` over the bytes exactly as received.
pub fn raw_data_signature(raw_data: &str, key: &SessionKey) -> String {
    let mut hasher = Sha1::new();
    hasher.update(raw_data.as_bytes());
    hasher.update(key.expose_text().as_bytes());
    to_hex(&hasher.finalize())
}

/// Constant-time check of a client-supplied rawData signature (case-insensitive hex).
pub fn raw_data_signature_matches(raw_data: &str, key: &SessionKey, signature: &str) -> bool {
    let expected = raw_data_signature(raw_data, key);
    let given = signature.to_ascii_lowercase();
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// Login-state signature for `wxa/checksession` and friends:
/// `hex(hmac_sha256(key = session_key's base64 text, msg))`.
pub fn login_state_signature(key: &SessionKey, message: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose_text().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(message);
    to_hex(&mac.finalize().into_bytes())
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// WeChat's WXBizDataCrypt demo vector, as embedded in wechatpy and EasyWeChat tests.
    const SAMPLE_KEY: &str = "tiihtNczf5v6AKRyjwEUhQ==";
    const SAMPLE_IV: &str = "r7BXXKkLb8qrSNn05n0qiA==";
    const SAMPLE_DATA: &str = "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew==";
    const SAMPLE_PLAINTEXT: &str = r#"{"openId":"oGZUI0egBJY1zhBYw2KhdUfwVJJE","nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/aSKcBBPpibyKNicHNTMM0qJVh8Kjgiak2AHWr8MHM4WgMEm7GFhsf8OYrySdbvAMvTsw3mo8ibKicsnfN5pRjl1p8HQ/0","unionId":"ocMvos6NjeKLIBqg5Mr9QjxrP1FA","watermark":{"timestamp":1477314187,"appid":"wx4f4bc4dec97d474b"}}"#;

    fn key(text: &str) -> SessionKey {
        SessionKey::parse(text).unwrap()
    }

    #[test]
    fn decrypts_the_official_wechat_sample() {
        let payload = EncryptedPayload::parse(SAMPLE_DATA, SAMPLE_IV).unwrap();
        let plaintext = decrypt_payload(&key(SAMPLE_KEY), &payload).unwrap();
        assert_eq!(plaintext, SAMPLE_PLAINTEXT);
    }

    #[test]
    fn encrypt_then_decrypt_round_trips_with_fresh_ivs() {
        let key = SessionKey::generate();
        let first = encrypt_payload(&key, b"{\"phoneNumber\":\"13800138000\"}");
        let second = encrypt_payload(&key, b"{\"phoneNumber\":\"13800138000\"}");
        assert_ne!(first.iv(), second.iv());
        assert_eq!(
            decrypt_payload(&key, &first).unwrap(),
            "{\"phoneNumber\":\"13800138000\"}"
        );
    }

    #[test]
    fn every_failure_is_the_same_error() {
        let payload = EncryptedPayload::parse(SAMPLE_DATA, SAMPLE_IV).unwrap();
        assert_eq!(
            decrypt_payload(&SessionKey::generate(), &payload),
            Err(DecryptError)
        );
        let truncated =
            EncryptedPayload::from_parts(payload.ciphertext()[..15].to_vec(), *payload.iv());
        assert_eq!(
            decrypt_payload(&key(SAMPLE_KEY), &truncated),
            Err(DecryptError)
        );
        let key = SessionKey::generate();
        let not_utf8 = encrypt_payload(&key, &[0xff, 0xfe, 0x00]);
        assert_eq!(decrypt_payload(&key, &not_utf8), Err(DecryptError));
    }

    #[test]
    fn raw_data_signature_matches_the_official_example() {
        let raw = r#"{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/1vZvI39NWFQ9XM4LtQpFrQJ1xlgZxx3w7bQxKARol6503Iuswjjn6nIGBiaycAjAtpujxyzYsrztuuICqIM5ibXQ/0"}"#;
        let key = key("HyVFkGl5F5OQWJZZaNzBBg==");
        assert_eq!(
            raw_data_signature(raw, &key),
            "75e81ceda165f4ffa64f4068af58c64b8f54b88c"
        );
        assert!(raw_data_signature_matches(
            raw,
            &key,
            "75E81CEDA165F4FFA64F4068AF58C64B8F54B88C"
        ));
        assert!(!raw_data_signature_matches(
            raw,
            &key,
            "75e81ceda165f4ffa64f4068af58c64b8f54b88d"
        ));
        assert!(!raw_data_signature_matches(
            &format!("{raw} "),
            &key,
            "75e81ceda165f4ffa64f4068af58c64b8f54b88c"
        ));
    }

    #[test]
    fn login_state_signature_matches_the_official_example() {
        assert_eq!(
            login_state_signature(&key("o0q0otL8aEzpcZL/FT9WsQ=="), br#"{"foo":"bar"}"#),
            "654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b"
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_inputs_never_panic(data in ".{0,600}", iv in ".{0,40}") {
            if let Ok(payload) = EncryptedPayload::parse(&data, &iv) {
                let _ = decrypt_payload(&key(SAMPLE_KEY), &payload);
            }
        }

        #[test]
        fn arbitrary_base64_ciphertexts_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            use base64::Engine;
            let data = base64::engine::general_purpose::STANDARD.encode(&bytes);
            if let Ok(payload) = EncryptedPayload::parse(&data, SAMPLE_IV) {
                let _ = decrypt_payload(&key(SAMPLE_KEY), &payload);
            }
        }
    }
}
