use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::{JWT_SECRET, assert_problem, openid_of, spawn_app};

fn claims(sub: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "iss": "wechat-auth", "aud": "wechat-miniprogram", "sub": sub,
        "iat": now, "exp": now + 600, "jti": "test-token",
        "sid": uuid::Uuid::now_v7().to_string(),
    })
}

/// The claims of a token we issued.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn sign(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn me_returns_the_caller_with_the_login_user_shape() {
    let app = spawn_app().await;
    let login: Value = app.login("alice-1").await.json().await.unwrap();
    let token = login["access_token"].as_str().unwrap();

    let response = app.me(token).await;

    assert_eq!(response.status().as_u16(), 200);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me, login["user"]);
    assert_eq!(me["openid"], openid_of("alice"));
}

#[tokio::test]
async fn the_access_token_carries_the_contract_claims() {
    let app = spawn_app().await;
    let login = app.login_ok("alice-1").await;
    let mut parts = login.token.split('.');
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
    let payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["alg"], "HS256");
    assert_eq!(payload["iss"], "wechat-auth");
    assert_eq!(payload["aud"], "wechat-miniprogram");
    assert_eq!(payload["sub"], login.user_id.as_str());
    assert!(payload["jti"].is_string());
    assert_eq!(
        payload["exp"].as_i64().unwrap() - payload["iat"].as_i64().unwrap(),
        7200
    );
}

#[tokio::test]
async fn a_token_signed_with_our_secret_for_a_real_user_is_accepted() {
    let app = spawn_app().await;
    let login = app.login_ok("alice-1").await;
    let mut ours = claims(&login.user_id);
    ours["sid"] = claims_of(&login.token)["sid"].clone();
    let response = app.me(&sign(&ours, JWT_SECRET)).await;
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test]
async fn forged_expired_and_misaddressed_tokens_get_401_with_a_bearer_challenge() {
    let app = spawn_app().await;
    let login = app.login_ok("alice-1").await;
    let user = login.user_id.as_str();

    let mut expired = claims(user);
    expired["iat"] = json!(chrono::Utc::now().timestamp() - 7200);
    expired["exp"] = json!(chrono::Utc::now().timestamp() - 5);
    let mut wrong_issuer = claims(user);
    wrong_issuer["iss"] = json!("evil");
    let mut wrong_audience = claims(user);
    wrong_audience["aud"] = json!("another-app");
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let none_body = URL_SAFE_NO_PAD.encode(claims(user).to_string());
    let mut tampered = login.token.clone();
    tampered.pop();
    tampered.push(if login.token.ends_with('A') { 'B' } else { 'A' });

    let cases = [
        (
            "wrong secret",
            sign(&claims(user), "a-completely-different-secret-0123456789"),
        ),
        ("expired", sign(&expired, JWT_SECRET)),
        ("wrong issuer", sign(&wrong_issuer, JWT_SECRET)),
        ("wrong audience", sign(&wrong_audience, JWT_SECRET)),
        ("alg none", format!("{none_header}.{none_body}.")),
        ("tampered signature", tampered),
        ("garbage", "not-a-jwt".to_owned()),
        (
            "unknown user",
            sign(&claims(&uuid::Uuid::now_v7().to_string()), JWT_SECRET),
        ),
    ];
    for (case, token) in cases {
        let response = app.me(&token).await;
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap()),
            Some("Bearer"),
            "{case}"
        );
        assert_problem(response, 401, "unauthorized").await;
    }
}

#[tokio::test]
async fn a_missing_or_non_bearer_authorization_gets_401() {
    let app = spawn_app().await;
    let missing = app.http.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    assert_problem(missing, 401, "unauthorized").await;
    let basic = app
        .http
        .get(app.url("/api/v1/me"))
        .header("authorization", "Basic YWxpY2U6c2VjcmV0")
        .send()
        .await
        .unwrap();
    assert_problem(basic, 401, "unauthorized").await;
}

#[tokio::test]
async fn the_decrypt_endpoints_require_a_token() {
    let app = spawn_app().await;
    for path in ["/api/v1/wechat/phone-number", "/api/v1/wechat/user-info"] {
        let response = app
            .post_json(path, &json!({"encrypted_data": "AAAA", "iv": "AAAA"}), None)
            .await;
        assert_problem(response, 401, "unauthorized").await;
    }
}
