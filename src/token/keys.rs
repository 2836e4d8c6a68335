//! Key files for ES256 and EdDSA access tokens. They are parsed strictly at start, so a
//! wrong or damaged file stops the service instead of failing every login later. Each
//! public key is published as a JWK whose RFC 7638 thumbprint is its `kid`.

use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey,
    jwk::{Jwk, PublicKeyUse, ThumbprintHash},
};
use p256::{
    elliptic_curve::sec1::ToEncodedPoint,
    pkcs8::{DecodePrivateKey, DecodePublicKey},
};

use super::TokenError;
use crate::config::KeyFile;

/// The curves we sign with; each has exactly one JWS algorithm.
#[derive(Debug, Clone, Copy)]
pub(super) enum Curve {
    P256,
    Ed25519,
}

impl Curve {
    fn algorithm(self) -> Algorithm {
        match self {
            Self::P256 => Algorithm::ES256,
            Self::Ed25519 => Algorithm::EdDSA,
        }
    }
}

/// A public key that verifies our tokens, found by the `kid` in their header.
pub(super) struct PublishedKey {
    pub(super) kid: String,
    pub(super) algorithm: Algorithm,
    pub(super) decoding_key: DecodingKey,
    /// As served in the JWK Set.
    pub(super) jwk: serde_json::Value,
}

impl PublishedKey {
    fn new(curve: Curve, decoding_key: DecodingKey) -> Result<Self, &'static str> {
        let algorithm = curve.algorithm();
        let mut jwk = Jwk::from_decoding_key(&decoding_key, Some(algorithm))
            .map_err(|_| "its public key has no JWK form")?;
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|_| "its JWK has no thumbprint")?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let jwk = serde_json::to_value(&jwk).map_err(|_| "its JWK does not serialize")?;
        Ok(Self {
            kid,
            algorithm,
            decoding_key,
            jwk,
        })
    }
}

/// The private key that signs new tokens, and the public key that verifies them.
pub(super) struct SigningKeyPair {
    pub(super) encoding_key: EncodingKey,
    pub(super) public: PublishedKey,
}

pub(super) fn load_signing_key(curve: Curve, file: &KeyFile) -> Result<SigningKeyPair, TokenError> {
    let pem = file.pem.expose();
    let (public, encoding_key) = match curve {
        Curve::P256 => (
            p256::SecretKey::from_pkcs8_pem(pem)
                .map(|key| p256_decoding_key(&key.public_key()))
                .map_err(|_| {
                    key_error(
                        file,
                        "is not a PKCS#8 P-256 private key (PEM \"PRIVATE KEY\"), as JWT_ALGORITHM=ES256 needs",
                    )
                })?,
            EncodingKey::from_ec_pem(pem.as_bytes()),
        ),
        Curve::Ed25519 => (
            ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
                .map(|key| DecodingKey::from_ed_der(key.verifying_key().as_bytes()))
                .map_err(|_| {
                    key_error(
                        file,
                        "is not a PKCS#8 Ed25519 private key (PEM \"PRIVATE KEY\"), as JWT_ALGORITHM=EdDSA needs",
                    )
                })?,
            EncodingKey::from_ed_pem(pem.as_bytes()),
        ),
    };
    let encoding_key =
        encoding_key.map_err(|_| key_error(file, "is not a private key jsonwebtoken can use"))?;
    let public = PublishedKey::new(curve, public).map_err(|reason| key_error(file, reason))?;
    // The curve crate and jsonwebtoken parse the file separately; one signature proves
    // that the key we publish is the key we sign with, before any token goes out.
    let algorithm = curve.algorithm();
    let probe = b"wechat-auth signing key check";
    let matches = jsonwebtoken::crypto::sign(probe, &encoding_key, algorithm)
        .and_then(|signature| {
            jsonwebtoken::crypto::verify(&signature, probe, &public.decoding_key, algorithm)
        })
        .unwrap_or(false);
    if !matches {
        return Err(key_error(file, "does not verify its own signature"));
    }
    Ok(SigningKeyPair {
        encoding_key,
        public,
    })
}

/// A retired key is only ever a public key; its curve, not `JWT_ALGORITHM`, decides the
/// algorithm it verifies, so keys survive a change of algorithm.
pub(super) fn load_retired_key(file: &KeyFile) -> Result<PublishedKey, TokenError> {
    let pem = file.pem.expose();
    let (curve, decoding_key) = if let Ok(key) = p256::PublicKey::from_public_key_pem(pem) {
        (Curve::P256, p256_decoding_key(&key))
    } else if let Ok(key) = ed25519_dalek::VerifyingKey::from_public_key_pem(pem) {
        (Curve::Ed25519, DecodingKey::from_ed_der(key.as_bytes()))
    } else {
        return Err(key_error(
            file,
            "is not a P-256 or Ed25519 public key (PEM \"PUBLIC KEY\")",
        ));
    };
    PublishedKey::new(curve, decoding_key).map_err(|reason| key_error(file, reason))
}

/// jsonwebtoken's EC "DER" key is the uncompressed SEC1 point, as its PEM reader yields.
fn p256_decoding_key(key: &p256::PublicKey) -> DecodingKey {
    DecodingKey::from_ec_der(key.to_encoded_point(false).as_bytes())
}

pub(super) fn key_error(file: &KeyFile, reason: &str) -> TokenError {
    TokenError::Key {
        variable: file.variable,
        reason: format!("{}: {reason}", file.path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config::Secret, token::asymmetric_tests::fixture};

    fn file(variable: &'static str, name: &str, pem: &str) -> KeyFile {
        KeyFile {
            variable,
            path: format!("/keys/{name}"),
            pem: Secret::new(pem),
        }
    }

    /// RFC 8037 appendix A.2/A.3: the Ed25519 example key and its published thumbprint.
    #[test]
    fn the_kid_is_the_rfc_7638_thumbprint() {
        let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        let key =
            PublishedKey::new(Curve::Ed25519, DecodingKey::from_ed_components(x).unwrap()).unwrap();
        assert_eq!(key.kid, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        assert_eq!(
            key.jwk,
            serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "x": x,
                "kid": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
                "alg": "EdDSA", "use": "sig",
            })
        );
    }

    #[test]
    fn unusable_files_are_named_without_their_contents() {
        let garbage = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n";
        for (curve, pem) in [
            (Curve::P256, garbage),
            (Curve::Ed25519, garbage),
            (Curve::P256, ""),
            (Curve::P256, &fixture("es256-a.pub.pem")),
        ] {
            let Err(TokenError::Key { variable, reason }) =
                load_signing_key(curve, &file("JWT_PRIVATE_KEY_FILE", "bad.pem", pem))
            else {
                panic!("accepted a bad private key for {curve:?}");
            };
            assert_eq!(variable, "JWT_PRIVATE_KEY_FILE");
            assert!(reason.starts_with("/keys/bad.pem: "), "{reason}");
            assert!(!reason.contains("bm90IGEga2V5"), "{reason}");
        }
    }

    #[test]
    fn a_retired_key_must_be_public() {
        for pem in [
            &fixture("es256-a.pem"),
            &fixture("ed25519-a.pem"),
            "not a pem",
        ] {
            let Err(TokenError::Key { variable, reason }) =
                load_retired_key(&file("JWT_RETIRED_PUBLIC_KEY_FILES", "old.pem", pem))
            else {
                panic!("accepted a retired key that is not a public key");
            };
            assert_eq!(variable, "JWT_RETIRED_PUBLIC_KEY_FILES");
            assert!(reason.starts_with("/keys/old.pem: "), "{reason}");
        }
    }

    #[test]
    fn a_retired_key_verifies_with_its_own_algorithm() {
        let es = load_retired_key(&file(
            "JWT_RETIRED_PUBLIC_KEY_FILES",
            "es.pem",
            &fixture("es256-a.pub.pem"),
        ))
        .unwrap();
        let ed = load_retired_key(&file(
            "JWT_RETIRED_PUBLIC_KEY_FILES",
            "ed.pem",
            &fixture("ed25519-a.pub.pem"),
        ))
        .unwrap();
        assert_eq!(es.algorithm, Algorithm::ES256);
        assert_eq!(ed.algorithm, Algorithm::EdDSA);
    }
}
