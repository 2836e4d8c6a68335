//! ES256 and EdDSA: key selection by `kid`, rotation, the published JWK Set, and the
//! algorithm-confusion attacks that asymmetric keys invite.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, jwk::Jwk};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{AccessTokens, TokenError, tests::claims};
use crate::{
    config::{JwtSettings, KeyFile, Secret, SigningKey},
    domain::{SessionId, UserId},
};

pub(super) fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn key_file(variable: &'static str, name: &str) -> KeyFile {
    KeyFile {
        variable,
        path: format!("/etc/wechat-auth/{name}"),
        pem: Secret::new(fixture(name)),
    }
}

fn es256(name: &str) -> SigningKey {
    SigningKey::Es256(key_file("JWT_PRIVATE_KEY_FILE", name))
}

fn eddsa(name: &str) -> SigningKey {
    SigningKey::EdDsa(key_file("JWT_PRIVATE_KEY_FILE", name))
}

fn settings(signing_key: SigningKey, retired: &[&str]) -> JwtSettings {
    JwtSettings {
        signing_key,
        retired_public_keys: retired
            .iter()
            .map(|name| key_file("JWT_RETIRED_PUBLIC_KEY_FILES", name))
            .collect(),
        issuer: "wechat-auth".to_owned(),
        audience: "wechat-miniprogram".to_owned(),
        access_token_ttl: Duration::from_secs(7200),
    }
}

fn tokens(signing_key: SigningKey, retired: &[&str]) -> AccessTokens {
    AccessTokens::new(&settings(signing_key, retired)).unwrap()
}

fn issue(tokens: &AccessTokens) -> String {
    tokens
        .issue(UserId::generate(), SessionId::generate())
        .unwrap()
        .token
}

fn header(token: &str) -> Header {
    jsonwebtoken::decode_header(token).unwrap()
}

fn kid_of(token: &str) -> String {
    header(token).kid.unwrap()
}

/// Signs fresh, valid claims under an arbitrary header and key, as an attacker would.
fn forge(alg: Algorithm, kid: Option<&str>, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, &claims(chrono::Utc::now().timestamp()), key).unwrap()
}

fn es256_private(name: &str) -> EncodingKey {
    EncodingKey::from_ec_pem(fixture(name).as_bytes()).unwrap()
}

fn ed25519_private(name: &str) -> EncodingKey {
    EncodingKey::from_ed_pem(fixture(name).as_bytes()).unwrap()
}

/// RFC 7638 §3: SHA-256 over the required members in lexicographic order, no whitespace.
fn rfc7638_thumbprint(jwk: &Value) -> String {
    let canonical = match jwk["kty"].as_str() {
        Some("EC") => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["crv"].as_str().unwrap(),
            jwk["x"].as_str().unwrap(),
            jwk["y"].as_str().unwrap()
        ),
        Some("OKP") => format!(
            r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
            jwk["crv"].as_str().unwrap(),
            jwk["x"].as_str().unwrap()
        ),
        other => panic!("unexpected kty {other:?}"),
    };
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

#[test]
fn es256_and_eddsa_tokens_round_trip() {
    for (signing_key, alg) in [
        (es256("es256-a.pem"), Algorithm::ES256),
        (eddsa("ed25519-a.pem"), Algorithm::EdDSA),
    ] {
        let tokens = tokens(signing_key, &[]);
        let user = UserId::generate();
        let session = SessionId::generate();
        let issued = tokens.issue(user, session).unwrap();
        assert_eq!(issued.expires_in, 7200);
        assert_eq!(header(&issued.token).alg, alg);
        let verified = tokens.verify(&issued.token).unwrap();
        assert_eq!(verified.user_id, user);
        assert_eq!(verified.session_id, session);
    }
}

#[test]
fn the_kid_is_the_thumbprint_of_the_published_jwk() {
    for signing_key in [es256("es256-a.pem"), eddsa("ed25519-a.pem")] {
        let tokens = tokens(signing_key, &[]);
        let kid = kid_of(&issue(&tokens));
        let jwks = tokens.jwks();
        let [jwk] = jwks["keys"].as_array().unwrap().as_slice() else {
            panic!("expected one key in {jwks}");
        };
        assert_eq!(jwk["kid"], json!(kid));
        assert_eq!(rfc7638_thumbprint(jwk), kid);
    }
}

#[test]
fn the_jwk_set_has_exactly_the_public_members() {
    let ec = tokens(es256("es256-a.pem"), &[]).jwks();
    let ec = ec["keys"][0].as_object().unwrap();
    let mut members: Vec<_> = ec.keys().map(String::as_str).collect();
    members.sort_unstable();
    assert_eq!(members, ["alg", "crv", "kid", "kty", "use", "x", "y"]);
    assert_eq!(
        (&ec["kty"], &ec["crv"], &ec["alg"], &ec["use"]),
        (
            &json!("EC"),
            &json!("P-256"),
            &json!("ES256"),
            &json!("sig")
        )
    );
    for coordinate in ["x", "y"] {
        let bytes = URL_SAFE_NO_PAD
            .decode(ec[coordinate].as_str().unwrap())
            .unwrap();
        assert_eq!(bytes.len(), 32);
    }

    let okp = tokens(eddsa("ed25519-a.pem"), &[]).jwks();
    let okp = okp["keys"][0].as_object().unwrap();
    let mut members: Vec<_> = okp.keys().map(String::as_str).collect();
    members.sort_unstable();
    assert_eq!(members, ["alg", "crv", "kid", "kty", "use", "x"]);
    assert_eq!(
        (&okp["kty"], &okp["crv"], &okp["alg"], &okp["use"]),
        (
            &json!("OKP"),
            &json!("Ed25519"),
            &json!("EdDSA"),
            &json!("sig")
        )
    );

    let shared = AccessTokens::new(&JwtSettings {
        signing_key: SigningKey::Hs256(Secret::new("0123456789abcdef0123456789abcdef")),
        ..settings(es256("es256-a.pem"), &[])
    })
    .unwrap();
    assert_eq!(shared.jwks(), json!({ "keys": [] }));
}

#[test]
fn a_published_jwk_verifies_our_tokens_elsewhere() {
    for signing_key in [es256("es256-a.pem"), eddsa("ed25519-a.pem")] {
        let tokens = tokens(signing_key, &[]);
        let token = issue(&tokens);
        let jwk: Jwk = serde_json::from_value(tokens.jwks()["keys"][0].clone()).unwrap();
        let alg = header(&token).alg;
        let mut validation = Validation::new(alg);
        validation.set_issuer(&["wechat-auth"]);
        validation.set_audience(&["wechat-miniprogram"]);
        let key = DecodingKey::from_jwk(&jwk).unwrap();
        jsonwebtoken::decode::<Value>(&token, &key, &validation).unwrap();
    }
}

#[test]
fn a_retired_key_verifies_until_it_is_removed() {
    let old = issue(&tokens(es256("es256-a.pem"), &[]));

    let rotated = tokens(es256("es256-b.pem"), &["es256-a.pub.pem"]);
    rotated.verify(&old).unwrap();
    rotated.verify(&issue(&rotated)).unwrap();
    assert_ne!(kid_of(&issue(&rotated)), kid_of(&old));
    let published: Vec<_> = rotated.jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|jwk| jwk["kid"].clone())
        .collect();
    assert_eq!(
        published,
        [json!(kid_of(&issue(&rotated))), json!(kid_of(&old))]
    );

    // The retired key keeps its own algorithm under a new one.
    let switched = tokens(eddsa("ed25519-a.pem"), &["es256-a.pub.pem"]);
    switched.verify(&old).unwrap();
    switched.verify(&issue(&switched)).unwrap();

    let removed = tokens(es256("es256-b.pem"), &[]);
    assert!(matches!(removed.verify(&old), Err(TokenError::Rejected(_))));
}

#[test]
fn a_key_listed_twice_is_published_once() {
    let tokens = tokens(
        es256("es256-a.pem"),
        &["es256-a.pub.pem", "es256-b.pub.pem", "es256-b.pub.pem"],
    );
    assert_eq!(tokens.jwks()["keys"].as_array().unwrap().len(), 2);
}

#[test]
fn tokens_without_a_known_kid_are_rejected() {
    let tokens = tokens(es256("es256-a.pem"), &[]);
    let key = es256_private("es256-a.pem");
    let kid = kid_of(&issue(&tokens));
    assert!(
        tokens
            .verify(&forge(Algorithm::ES256, Some(&kid), &key))
            .is_ok()
    );
    for forged in [
        forge(Algorithm::ES256, None, &key),
        forge(Algorithm::ES256, Some("unknown"), &key),
        forge(Algorithm::ES256, Some(""), &key),
    ] {
        assert!(tokens.verify(&forged).is_err(), "accepted {forged}");
    }
}

#[test]
fn the_claim_checks_still_apply() {
    let tokens = tokens(eddsa("ed25519-a.pem"), &[]);
    let kid = kid_of(&issue(&tokens));
    let key = ed25519_private("ed25519-a.pem");
    let now = chrono::Utc::now().timestamp();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid);
    let sign = |claims: Value| jsonwebtoken::encode(&header, &claims, &key).unwrap();
    assert!(tokens.verify(&sign(claims(now))).is_ok());

    let mut expired = claims(now);
    expired["exp"] = json!(now - 1);
    let mut wrong_aud = claims(now);
    wrong_aud["aud"] = json!("another-app");
    let mut wrong_iss = claims(now);
    wrong_iss["iss"] = json!("someone-else");
    let mut no_sid = claims(now);
    no_sid.as_object_mut().unwrap().remove("sid");
    let mut not_ours = claims(now);
    not_ours["sub"] = json!("admin");
    for claims in [expired, wrong_aud, wrong_iss, no_sid, not_ours] {
        assert!(
            tokens.verify(&sign(claims.clone())).is_err(),
            "accepted {claims}"
        );
    }
}

#[test]
fn hs256_with_the_public_key_as_secret_is_rejected() {
    let tokens = tokens(es256("es256-a.pem"), &[]);
    let kid = kid_of(&issue(&tokens));
    let jwk = &tokens.jwks()["keys"][0];
    let mut sec1 = vec![4];
    for coordinate in ["x", "y"] {
        sec1.extend(
            URL_SAFE_NO_PAD
                .decode(jwk[coordinate].as_str().unwrap())
                .unwrap(),
        );
    }
    let public_pem = fixture("es256-a.pub.pem");
    for secret in [public_pem.as_bytes(), &sec1] {
        let key = EncodingKey::from_secret(secret);
        for kid in [Some(kid.as_str()), None] {
            let forged = forge(Algorithm::HS256, kid, &key);
            assert!(tokens.verify(&forged).is_err(), "accepted {forged}");
        }
    }
}

#[test]
fn a_kid_only_verifies_its_own_algorithm() {
    // Current EdDSA key beside a retired ES256 key: each kid accepts only its key's alg.
    let tokens = tokens(eddsa("ed25519-a.pem"), &["es256-a.pub.pem"]);
    let ed_kid = kid_of(&issue(&tokens));
    let es_kid = kid_of(&issue(&self::tokens(es256("es256-a.pem"), &[])));
    let ed_key = ed25519_private("ed25519-a.pem");
    let es_key = es256_private("es256-a.pem");
    assert!(
        tokens
            .verify(&forge(Algorithm::EdDSA, Some(&ed_kid), &ed_key))
            .is_ok()
    );
    assert!(
        tokens
            .verify(&forge(Algorithm::ES256, Some(&es_kid), &es_key))
            .is_ok()
    );
    for forged in [
        forge(Algorithm::ES256, Some(&ed_kid), &es_key),
        forge(Algorithm::EdDSA, Some(&es_kid), &ed_key),
    ] {
        assert!(tokens.verify(&forged).is_err(), "accepted {forged}");
    }
}

#[test]
fn algorithms_do_not_cross_between_hs256_and_asymmetric_services() {
    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    let shared = AccessTokens::new(&JwtSettings {
        signing_key: SigningKey::Hs256(Secret::new(SECRET)),
        ..settings(es256("es256-a.pem"), &[])
    })
    .unwrap();
    let asymmetric = tokens(es256("es256-a.pem"), &[]);
    let es_token = issue(&asymmetric);
    let hs_token = issue(&shared);
    assert!(shared.verify(&es_token).is_err());
    assert!(asymmetric.verify(&hs_token).is_err());
    let hs_with_kid = forge(
        Algorithm::HS256,
        Some(&kid_of(&es_token)),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    );
    assert!(asymmetric.verify(&hs_with_kid).is_err());
}

#[test]
fn alg_none_with_a_known_kid_is_rejected() {
    let tokens = tokens(es256("es256-a.pem"), &[]);
    let kid = kid_of(&issue(&tokens));
    let header = URL_SAFE_NO_PAD.encode(json!({ "alg": "none", "kid": kid }).to_string());
    let body = URL_SAFE_NO_PAD.encode(claims(chrono::Utc::now().timestamp()).to_string());
    assert!(tokens.verify(&format!("{header}.{body}.")).is_err());
}

#[test]
fn a_key_of_the_wrong_type_names_the_variable_and_file() {
    for signing_key in [
        es256("ed25519-a.pem"),
        eddsa("es256-a.pem"),
        es256("es256-a.pub.pem"),
    ] {
        let Err(TokenError::Key { variable, reason }) =
            AccessTokens::new(&settings(signing_key, &[]))
        else {
            panic!("accepted a private key of the wrong type");
        };
        assert_eq!(variable, "JWT_PRIVATE_KEY_FILE");
        assert!(reason.starts_with("/etc/wechat-auth/"), "{reason}");
        assert!(!reason.contains("BEGIN"), "{reason}");
    }

    let Err(TokenError::Key { variable, reason }) =
        AccessTokens::new(&settings(es256("es256-a.pem"), &["es256-b.pem"]))
    else {
        panic!("accepted a private key as a retired public key");
    };
    assert_eq!(variable, "JWT_RETIRED_PUBLIC_KEY_FILES");
    assert!(
        reason.starts_with("/etc/wechat-auth/es256-b.pem: "),
        "{reason}"
    );

    let Err(TokenError::Key { variable, .. }) = AccessTokens::new(&JwtSettings {
        signing_key: SigningKey::Hs256(Secret::new("0123456789abcdef0123456789abcdef")),
        ..settings(es256("es256-a.pem"), &["es256-a.pub.pem"])
    }) else {
        panic!("accepted retired public keys under HS256");
    };
    assert_eq!(variable, "JWT_RETIRED_PUBLIC_KEY_FILES");
}
