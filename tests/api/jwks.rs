use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{DecodingKey, Validation, jwk::JwkSet};
use serde_json::Value;

use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_app_sharing, spawn_app_with};

const ENCRYPTION_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn key_file(name: &str) -> String {
    format!("{}/tests/fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn header_of(token: &str) -> Value {
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap()
}

async fn jwks(app: &TestApp) -> JwkSet {
    serde_json::from_value(app.get_json("/.well-known/jwks.json").await).unwrap()
}

/// What a downstream service does: pick the key by `kid` from our JWKS and verify.
fn verify_with_jwks(set: &JwkSet, token: &str) -> Result<Value, jsonwebtoken::errors::Error> {
    let header = jsonwebtoken::decode_header(token)?;
    let jwk = set
        .find(header.kid.as_deref().unwrap_or_default())
        .ok_or(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat)?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&["wechat-auth"]);
    validation.set_audience(&["wechat-miniprogram"]);
    Ok(jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk)?, &validation)?.claims)
}

#[tokio::test]
async fn under_hs256_the_key_set_is_empty() {
    let app = spawn_app().await;
    let body: Value = app.get_json("/.well-known/jwks.json").await;
    assert_eq!(body, serde_json::json!({"keys": []}));
}

#[tokio::test]
async fn es256_tokens_carry_a_kid_and_verify_with_the_published_key() {
    let app = spawn_app_with(&[
        ("JWT_ALGORITHM", "ES256"),
        ("JWT_PRIVATE_KEY_FILE", &key_file("es256-a.pem")),
        ("SESSION_KEY_ENCRYPTION_KEY", ENCRYPTION_KEY),
    ])
    .await;
    let login = app.login_ok("alice-1").await;
    let header = header_of(&login.token);
    assert_eq!(header["alg"], "ES256");
    let set = jwks(&app).await;
    assert_eq!(set.keys.len(), 1);
    assert_eq!(set.keys[0].common.key_id.as_deref(), header["kid"].as_str());
    let claims = verify_with_jwks(&set, &login.token).unwrap();
    assert_eq!(claims["sub"], login.user_id.as_str());
    assert_eq!(app.me(&login.token).await.status().as_u16(), 200);
}

#[tokio::test]
async fn eddsa_tokens_verify_with_the_published_key() {
    let app = spawn_app_with(&[
        ("JWT_ALGORITHM", "EdDSA"),
        ("JWT_PRIVATE_KEY_FILE", &key_file("ed25519-a.pem")),
        ("SESSION_KEY_ENCRYPTION_KEY", ENCRYPTION_KEY),
    ])
    .await;
    let login = app.login_ok("alice-1").await;
    assert_eq!(header_of(&login.token)["alg"], "EdDSA");
    verify_with_jwks(&jwks(&app).await, &login.token).unwrap();
}

#[tokio::test]
async fn after_rotation_old_tokens_verify_until_their_key_is_removed() {
    let old_key = [
        ("JWT_ALGORITHM", "ES256"),
        ("JWT_PRIVATE_KEY_FILE", &key_file("es256-a.pem")),
        ("SESSION_KEY_ENCRYPTION_KEY", ENCRYPTION_KEY),
    ];
    let before = spawn_app_with(&old_key).await;
    let old_token = before.login_ok("alice-1").await.token;

    let retired = key_file("es256-a.pub.pem");
    let rotated = spawn_app_sharing(
        &before,
        &[
            ("JWT_ALGORITHM", "ES256"),
            ("JWT_PRIVATE_KEY_FILE", &key_file("es256-b.pem")),
            ("JWT_RETIRED_PUBLIC_KEY_FILES", &retired),
            ("SESSION_KEY_ENCRYPTION_KEY", ENCRYPTION_KEY),
        ],
    )
    .await;
    let new_token = rotated.login_ok("bob-1").await.token;
    assert_ne!(header_of(&new_token)["kid"], header_of(&old_token)["kid"]);
    assert_eq!(rotated.me(&old_token).await.status().as_u16(), 200);
    assert_eq!(rotated.me(&new_token).await.status().as_u16(), 200);
    let set = jwks(&rotated).await;
    assert_eq!(set.keys.len(), 2);
    verify_with_jwks(&set, &old_token).unwrap();
    verify_with_jwks(&set, &new_token).unwrap();

    let removed = spawn_app_sharing(
        &before,
        &[
            ("JWT_ALGORITHM", "ES256"),
            ("JWT_PRIVATE_KEY_FILE", &key_file("es256-b.pem")),
            ("SESSION_KEY_ENCRYPTION_KEY", ENCRYPTION_KEY),
        ],
    )
    .await;
    assert_problem(removed.me(&old_token).await, 401, "unauthorized").await;
    assert_eq!(removed.me(&new_token).await.status().as_u16(), 200);
    assert!(verify_with_jwks(&jwks(&removed).await, &old_token).is_err());
}

#[tokio::test]
async fn an_hs256_token_is_refused_by_an_es256_service() {
    let app = spawn_app_with(&[
        ("JWT_ALGORITHM", "ES256"),
        ("JWT_PRIVATE_KEY_FILE", &key_file("es256-a.pem")),
        ("SESSION_KEY_ENCRYPTION_KEY", ENCRYPTION_KEY),
    ])
    .await;
    let hs256 = spawn_app_sharing(&app, &[]).await;
    let token = hs256.login_ok("alice-1").await.token;
    assert_problem(app.me(&token).await, 401, "unauthorized").await;
}
