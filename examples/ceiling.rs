//! The ceiling for `/api/v1/me` in `scripts/load.sh`: a bare poem server (no poem-openapi,
//! no middleware, no database) whose one route verifies the same HS256 JWT the service
//! issues, with the same jsonwebtoken settings, and answers a small JSON document.
//!
//! ```sh
//! JWT_SECRET=... cargo run --release --example ceiling -- --port 18082
//! ```

use std::sync::OnceLock;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use poem::{
    Request, Response, Route, Server, get, handler,
    http::{StatusCode, header},
    listener::TcpListener,
};
use serde::{Deserialize, Serialize};

struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

static VERIFIER: OnceLock<Verifier> = OnceLock::new();

#[derive(Deserialize)]
struct Claims {
    sub: String,
    sid: String,
    jti: String,
}

#[derive(Serialize)]
struct Me<'a> {
    id: &'a str,
    session: &'a str,
    token: &'a str,
    openid: Option<&'a str>,
    phone_number: Option<&'a str>,
}

#[handler]
fn me(request: &Request) -> Response {
    let verifier = VERIFIER.get().expect("set in main");
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let claims = token.and_then(|token| {
        jsonwebtoken::decode::<Claims>(token, &verifier.key, &verifier.validation).ok()
    });
    let Some(data) = claims else {
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header(header::WWW_AUTHENTICATE, "Bearer")
            .body("unauthorized");
    };
    let claims = data.claims;
    let body = serde_json::to_vec(&Me {
        id: &claims.sub,
        session: &claims.sid,
        token: &claims.jti,
        openid: None,
        phone_number: None,
    })
    .unwrap_or_default();
    Response::builder()
        .content_type("application/json")
        .body(body)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut port = 18082u16;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--port", Some(value)) => port = value.parse().expect("--port takes a number"),
            _ => panic!("usage: ceiling --port PORT (JWT_SECRET in the environment)"),
        }
    }
    let secret = std::env::var("JWT_SECRET").expect("JWT_SECRET is required");
    // The same checks as src/token/mod.rs `validation()`.
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[std::env::var("JWT_ISSUER").unwrap_or("wechat-auth".into())]);
    validation
        .set_audience(&[std::env::var("JWT_AUDIENCE").unwrap_or("wechat-miniprogram".into())]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    validation.leeway = 0;
    let verifier = Verifier {
        key: DecodingKey::from_secret(secret.as_bytes()),
        validation,
    };
    if VERIFIER.set(verifier).is_err() {
        unreachable!("set once");
    }
    eprintln!("ceiling: listening on 127.0.0.1:{port}");
    Server::new(TcpListener::bind(("127.0.0.1", port)))
        .run(Route::new().at("/api/v1/me", get(me)))
        .await
}
