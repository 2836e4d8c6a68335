//! AES-256-GCM for secrets we must store (session_keys, WeChat access tokens), so that a
//! copy of the database alone reveals none of them.

use aes_gcm::{
    Aes256Gcm, Key, Nonce,
    aead::{Aead, KeyInit, Payload},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use rand::RngCore;
use sha2::{Digest, Sha256};

const NONCE_LEN: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("sealed with key {0}, which is not configured")]
    UnknownKey(String),
    #[error("the sealed value is corrupt or was moved from another record")]
    Corrupt,
}

/// A sealed value with the id of the key that sealed it, so keys can rotate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    /// base64(nonce ‖ ciphertext ‖ tag)
    pub value: String,
}

struct SealingKey {
    id: String,
    cipher: Aes256Gcm,
}

impl SealingKey {
    fn new(bytes: &[u8; 32]) -> Self {
        // The id is public (stored beside each value); a hash prefix names the key without
        // revealing it.
        let digest = Sha256::digest(bytes);
        let id = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        Self {
            id,
            cipher: Aes256Gcm::new(&Key::<Aes256Gcm>::from(*bytes)),
        }
    }
}

/// Seals with the current key; opens with the current or any retired key.
pub struct Sealer {
    current: SealingKey,
    retired: Vec<SealingKey>,
}

impl Sealer {
    pub fn new(current: &[u8; 32], retired: &[[u8; 32]]) -> Self {
        Self {
            current: SealingKey::new(current),
            retired: retired.iter().map(SealingKey::new).collect(),
        }
    }

    pub fn current_key_id(&self) -> &str {
        &self.current.id
    }

    /// `context` binds the value to its record (e.g. appid and openid): a sealed value
    /// copied into another row does not open there.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Sealed {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .current
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .expect("AES-GCM encrypts any message shorter than 64 GiB");
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ciphertext);
        Sealed {
            key_id: self.current.id.clone(),
            value: STANDARD.encode(blob),
        }
    }

    pub fn open(&self, sealed: &Sealed, context: &[u8]) -> Result<Vec<u8>, SealError> {
        let key = std::iter::once(&self.current)
            .chain(&self.retired)
            .find(|key| key.id == sealed.key_id)
            .ok_or_else(|| SealError::UnknownKey(sealed.key_id.clone()))?;
        let blob = STANDARD
            .decode(&sealed.value)
            .map_err(|_| SealError::Corrupt)?;
        if blob.len() < NONCE_LEN {
            return Err(SealError::Corrupt);
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError::Corrupt)?;
        key.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| SealError::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: [u8; 32] = [7; 32];
    const KEY_B: [u8; 32] = [9; 32];

    #[test]
    fn sealed_values_open_with_the_same_context_only() {
        let sealer = Sealer::new(&KEY_A, &[]);
        let sealed = sealer.seal(b"tiihtNczf5v6AKRyjwEUhQ==", b"wx1/o_alice");
        assert!(!sealed.value.contains("tiihtNczf5v6AKRyjwEUhQ=="));
        assert_eq!(
            sealer.open(&sealed, b"wx1/o_alice").unwrap(),
            b"tiihtNczf5v6AKRyjwEUhQ=="
        );
        assert_eq!(sealer.open(&sealed, b"wx1/o_bob"), Err(SealError::Corrupt));
    }

    #[test]
    fn sealing_twice_gives_different_values() {
        let sealer = Sealer::new(&KEY_A, &[]);
        assert_ne!(sealer.seal(b"x", b"c").value, sealer.seal(b"x", b"c").value);
    }

    #[test]
    fn a_rotated_key_still_opens_what_the_old_key_sealed() {
        let old = Sealer::new(&KEY_A, &[]).seal(b"secret", b"ctx");
        let rotated = Sealer::new(&KEY_B, &[KEY_A]);
        assert_eq!(rotated.open(&old, b"ctx").unwrap(), b"secret");
        assert_ne!(rotated.current_key_id(), old.key_id);
        let forgotten = Sealer::new(&KEY_B, &[]);
        assert!(matches!(
            forgotten.open(&old, b"ctx"),
            Err(SealError::UnknownKey(_))
        ));
    }

    #[test]
    fn tampered_or_truncated_values_do_not_open() {
        let sealer = Sealer::new(&KEY_A, &[]);
        let mut sealed = sealer.seal(b"secret", b"ctx");
        sealed.value = STANDARD.encode(b"short");
        assert_eq!(sealer.open(&sealed, b"ctx"), Err(SealError::Corrupt));
        sealed.value = "not base64!".to_owned();
        assert_eq!(sealer.open(&sealed, b"ctx"), Err(SealError::Corrupt));
    }
}
