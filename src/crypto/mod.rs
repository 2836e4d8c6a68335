//! Cryptography as pure functions: WeChat's payload cipher and signatures, and the AEAD
//! that keeps our own secrets sealed at rest.

mod at_rest;
mod wechat;

pub use at_rest::{SealError, Sealed, Sealer};
pub use wechat::{
    DecryptError, decrypt_payload, encrypt_payload, login_state_signature, raw_data_signature,
    raw_data_signature_matches,
};
