//! Cryptography as pure functions: WeChat's payload cipher and signatures, the AEAD that
//! keeps our own secrets sealed at rest, and the random credentials we hand out.

mod at_rest;
mod tokens;
mod wechat;

pub use at_rest::{SealError, Sealed, Sealer};
pub use tokens::{pkce_challenge, pkce_verifies, random_alphanumeric, random_urlsafe, sha256_hex};
pub use wechat::{
    DecryptError, decrypt_payload, encrypt_payload, login_state_signature, raw_data_signature,
    raw_data_signature_matches,
};
