//! Our access tokens: JWTs we sign at login and check on every authenticated request.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use self::keys::{Curve, SigningKeyPair};
use crate::{
    config::{JwtSettings, SigningKey},
    domain::{SessionId, UserId},
};

mod keys;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The specific reason is for logs at debug level; callers all get the same 401.
    #[error("access token rejected: {0}")]
    Rejected(String),
    #[error("access token could not be signed: {0}")]
    Signing(String),
    /// A configured key is unusable; names the variable and file, never the key.
    #[error("{variable}: {reason}")]
    Key {
        variable: &'static str,
        reason: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    sub: String,
    iat: i64,
    exp: i64,
    jti: String,
    /// The session this token belongs to; logout revokes it.
    sid: String,
}

/// A freshly signed token and its lifetime in seconds.
pub struct IssuedToken {
    pub token: String,
    pub expires_in: u64,
}

/// What a valid token proves.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub token_id: String,
}

#[derive(Clone)]
pub struct AccessTokens {
    encoding_key: EncodingKey,
    /// Carries the `kid` under ES256/EdDSA.
    header: Header,
    verifiers: Verifiers,
    jwks: serde_json::Value,
    issuer: String,
    audience: String,
    ttl: Duration,
}

#[derive(Clone)]
enum Verifiers {
    /// HS256: one shared secret, so tokens need no `kid`. Boxed to keep the enum small.
    Shared(Box<Verifier>),
    /// ES256/EdDSA: the current key first, then the retired ones, each under its `kid`.
    ByKid(Vec<(String, Verifier)>),
}

/// A key with the checks that go with it. The validation allows the key's own algorithm
/// only, so the key, not the token's header, decides how a signature is checked.
#[derive(Clone)]
struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl AccessTokens {
    pub fn new(settings: &JwtSettings) -> Result<Self, TokenError> {
        let (curve, file) = match &settings.signing_key {
            SigningKey::Hs256(secret) => {
                // Retired keys only verify ES256/EdDSA tokens, which HS256 rejects: listing
                // them is a configuration mistake, not something to ignore silently.
                if let Some(file) = settings.retired_public_keys.first() {
                    return Err(keys::key_error(
                        file,
                        "retired public keys need JWT_ALGORITHM ES256 or EdDSA",
                    ));
                }
                let secret = secret.expose().as_bytes();
                let verifier = Verifier {
                    key: DecodingKey::from_secret(secret),
                    validation: validation(settings, Algorithm::HS256),
                };
                return Ok(Self::assemble(
                    settings,
                    EncodingKey::from_secret(secret),
                    Header::new(Algorithm::HS256),
                    Verifiers::Shared(Box::new(verifier)),
                    Vec::new(),
                ));
            }
            SigningKey::Es256(file) => (Curve::P256, file),
            SigningKey::EdDsa(file) => (Curve::Ed25519, file),
        };
        let SigningKeyPair {
            encoding_key,
            public,
        } = keys::load_signing_key(curve, file)?;
        let mut header = Header::new(public.algorithm);
        header.kid = Some(public.kid.clone());
        let mut published = vec![public];
        for file in &settings.retired_public_keys {
            let key = keys::load_retired_key(file)?;
            // A file listed twice, or the current key also listed as retired, is the same
            // key: publish it once.
            if published.iter().all(|known| known.kid != key.kid) {
                published.push(key);
            }
        }
        let mut jwks = Vec::with_capacity(published.len());
        let mut by_kid = Vec::with_capacity(published.len());
        for key in published {
            jwks.push(key.jwk);
            let verifier = Verifier {
                key: key.decoding_key,
                validation: validation(settings, key.algorithm),
            };
            by_kid.push((key.kid, verifier));
        }
        Ok(Self::assemble(
            settings,
            encoding_key,
            header,
            Verifiers::ByKid(by_kid),
            jwks,
        ))
    }

    fn assemble(
        settings: &JwtSettings,
        encoding_key: EncodingKey,
        header: Header,
        verifiers: Verifiers,
        jwks: Vec<serde_json::Value>,
    ) -> Self {
        let jwks =
            serde_json::Map::from_iter([("keys".to_owned(), serde_json::Value::Array(jwks))]);
        Self {
            encoding_key,
            header,
            verifiers,
            jwks: serde_json::Value::Object(jwks),
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            ttl: settings.access_token_ttl,
        }
    }

    pub fn issue(&self, user_id: UserId, session_id: SessionId) -> Result<IssuedToken, TokenError> {
        let now = chrono::Utc::now().timestamp();
        let ttl = self.ttl.as_secs();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_string(),
            iat: now,
            exp: now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
            jti: Uuid::new_v4().to_string(),
            sid: session_id.to_string(),
        };
        let token = jsonwebtoken::encode(&self.header, &claims, &self.encoding_key)
            .map_err(|e| TokenError::Signing(e.to_string()))?;
        Ok(IssuedToken {
            token,
            expires_in: ttl,
        })
    }

    pub fn verify(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        let verifier = self.verifier_for(token)?;
        let data = jsonwebtoken::decode::<Claims>(token, &verifier.key, &verifier.validation)
            .map_err(|e| TokenError::Rejected(e.to_string()))?;
        let user_id = UserId::parse(&data.claims.sub)
            .map_err(|_| TokenError::Rejected("sub is not one of our user ids".to_owned()))?;
        let session_id = SessionId::parse(&data.claims.sid)
            .map_err(|_| TokenError::Rejected("sid is not one of our session ids".to_owned()))?;
        Ok(VerifiedToken {
            user_id,
            session_id,
            token_id: data.claims.jti,
        })
    }

    /// The header is not trusted here: it only names a key, whose own algorithm is then
    /// enforced by `decode`.
    fn verifier_for(&self, token: &str) -> Result<&Verifier, TokenError> {
        let by_kid = match &self.verifiers {
            Verifiers::Shared(verifier) => return Ok(verifier),
            Verifiers::ByKid(by_kid) => by_kid,
        };
        let kid = jsonwebtoken::decode_header(token)
            .map_err(|e| TokenError::Rejected(e.to_string()))?
            .kid
            .ok_or_else(|| TokenError::Rejected("the header has no kid".to_owned()))?;
        by_kid
            .iter()
            .find(|(known, _)| *known == kid)
            .map(|(_, verifier)| verifier)
            .ok_or_else(|| TokenError::Rejected("no key has this kid".to_owned()))
    }

    /// The public keys that verify our tokens, as a JWK Set (empty under HS256).
    pub fn jwks(&self) -> serde_json::Value {
        self.jwks.clone()
    }
}

fn validation(settings: &JwtSettings, algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.set_issuer(&[&settings.issuer]);
    validation.set_audience(&[&settings.audience]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    // Issuer and verifier are the same clock (or NTP-synced instances): no grace.
    validation.leeway = 0;
    validation
}

#[cfg(test)]
mod asymmetric_tests;

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use serde_json::json;

    use super::*;
    use crate::config::Secret;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn settings() -> JwtSettings {
        JwtSettings {
            signing_key: SigningKey::Hs256(Secret::new(SECRET)),
            retired_public_keys: Vec::new(),
            issuer: "wechat-auth".to_owned(),
            audience: "wechat-miniprogram".to_owned(),
            access_token_ttl: Duration::from_secs(7200),
        }
    }

    fn sign(claims: serde_json::Value, secret: &str) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    pub(super) fn claims(now: i64) -> serde_json::Value {
        json!({
            "iss": "wechat-auth", "aud": "wechat-miniprogram",
            "sub": UserId::generate().to_string(),
            "iat": now, "exp": now + 60, "jti": "t1", "sid": SessionId::generate().to_string(),
        })
    }

    #[test]
    fn an_issued_token_verifies_as_its_user() {
        let tokens = AccessTokens::new(&settings()).unwrap();
        let user = UserId::generate();
        let session = SessionId::generate();
        let issued = tokens.issue(user, session).unwrap();
        assert_eq!(issued.expires_in, 7200);
        let verified = tokens.verify(&issued.token).unwrap();
        assert_eq!(verified.user_id, user);
        assert_eq!(verified.session_id, session);
    }

    #[test]
    fn each_token_has_its_own_id() {
        let tokens = AccessTokens::new(&settings()).unwrap();
        let user = UserId::generate();
        let session = SessionId::generate();
        let a = tokens
            .verify(&tokens.issue(user, session).unwrap().token)
            .unwrap();
        let b = tokens
            .verify(&tokens.issue(user, session).unwrap().token)
            .unwrap();
        assert_ne!(a.token_id, b.token_id);
    }

    #[test]
    fn forged_expired_and_misaddressed_tokens_are_rejected() {
        let tokens = AccessTokens::new(&settings()).unwrap();
        let now = chrono::Utc::now().timestamp();
        assert!(tokens.verify(&sign(claims(now), SECRET)).is_ok());

        let wrong_key = sign(claims(now), "another-secret-another-secret-xx");
        let mut expired = claims(now);
        expired["exp"] = json!(now - 1);
        let mut wrong_iss = claims(now);
        wrong_iss["iss"] = json!("someone-else");
        let mut wrong_aud = claims(now);
        wrong_aud["aud"] = json!("another-app");
        let mut no_jti = claims(now);
        no_jti.as_object_mut().unwrap().remove("jti");
        let mut not_ours = claims(now);
        not_ours["sub"] = json!("admin");

        for token in [
            wrong_key,
            sign(expired, SECRET),
            sign(wrong_iss, SECRET),
            sign(wrong_aud, SECRET),
            sign(no_jti, SECRET),
            sign(not_ours, SECRET),
            "not.a.jwt".to_owned(),
            String::new(),
        ] {
            assert!(tokens.verify(&token).is_err(), "accepted {token}");
        }
    }

    #[test]
    fn alg_none_is_rejected() {
        let tokens = AccessTokens::new(&settings()).unwrap();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(claims(chrono::Utc::now().timestamp()).to_string());
        assert!(tokens.verify(&format!("{header}.{body}.")).is_err());
        assert!(tokens.verify(&format!("{header}.{body}")).is_err());
    }
}
