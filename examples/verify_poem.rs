//! A downstream poem service that trusts wechat-auth's access tokens without its secrets:
//! a middleware verifies the Bearer token against the JWKS that wechat-auth publishes
//! (ES256 or EdDSA, keys picked by `kid`), and handlers read the verified claims.
//!
//! ```sh
//! WECHAT_AUTH_URL=http://127.0.0.1:8080 BIND_ADDR=127.0.0.1:3000 cargo run --example verify_poem
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3000/whoami
//! ```
//!
//! `GET /whoami` answers `{"user_id", "session_id"}` for a valid token and 401 otherwise.
//! `JWT_ISSUER` and `JWT_AUDIENCE` default to wechat-auth's defaults. It prints
//! `listening on <address>` once it accepts connections (`BIND_ADDR` may use port 0).
//!
//! The key set is fetched on first use and kept. A token naming a `kid` the cache lacks
//! fetches it again (a key rotation), at most once per [`MIN_REFETCH`], so forged `kid`s
//! cannot make this service hammer wechat-auth; the set is also refetched after
//! [`MAX_AGE`]. Only wechat-auth knows about logouts: a token stays valid here until `exp`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey, Validation, decode, decode_header,
    jwk::{AlgorithmParameters, Jwk, JwkSet},
};
use poem::{
    Endpoint, EndpointExt, IntoResponse, Request, Response, Route, Server, get, handler,
    http::StatusCode,
    listener::{Acceptor, Listener, TcpListener},
    web::{Data, Json},
};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex;

const MIN_REFETCH: Duration = Duration::from_secs(30);
const MAX_AGE: Duration = Duration::from_secs(600);

/// The claims this service uses; `decode` has already checked `iss`, `aud` and `exp`.
#[derive(Debug, Clone, Deserialize)]
struct Claims {
    /// wechat-auth's user id.
    sub: String,
    /// The session, for logs and for asking wechat-auth about it.
    sid: String,
}

struct Cached {
    set: JwkSet,
    fetched_at: Option<Instant>,
}

/// wechat-auth's public keys, fetched lazily and cached.
struct Verifier {
    jwks_url: String,
    issuer: String,
    audience: String,
    http: reqwest::Client,
    // A Mutex, not a RwLock: a miss waits for the one fetch in flight instead of starting
    // its own.
    cache: Mutex<Cached>,
}

#[derive(Debug)]
enum Rejected {
    Token(jsonwebtoken::errors::Error),
    UnknownKey,
    KeySet(reqwest::Error),
}

impl Verifier {
    fn new(auth_url: &str, issuer: String, audience: String) -> Self {
        Self {
            jwks_url: format!("{}/.well-known/jwks.json", auth_url.trim_end_matches('/')),
            issuer,
            audience,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            cache: Mutex::new(Cached {
                set: JwkSet { keys: Vec::new() },
                fetched_at: None,
            }),
        }
    }

    async fn key(&self, kid: &str) -> Result<Jwk, Rejected> {
        let mut cache = self.cache.lock().await;
        let age = cache.fetched_at.map(|at| at.elapsed());
        let stale = age.is_none_or(|age| age >= MAX_AGE);
        let may_refetch = age.is_none_or(|age| age >= MIN_REFETCH);
        if stale || (cache.set.find(kid).is_none() && may_refetch) {
            let set = self
                .http
                .get(&self.jwks_url)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(Rejected::KeySet)?
                .json::<JwkSet>()
                .await
                .map_err(Rejected::KeySet)?;
            *cache = Cached {
                set,
                fetched_at: Some(Instant::now()),
            };
        }
        cache.set.find(kid).cloned().ok_or(Rejected::UnknownKey)
    }

    async fn verify(&self, token: &str) -> Result<Claims, Rejected> {
        let header = decode_header(token).map_err(Rejected::Token)?;
        // HS256 tokens cannot be checked without wechat-auth's secret; `none` never parses.
        if !matches!(header.alg, Algorithm::ES256 | Algorithm::EdDSA) {
            return Err(Rejected::UnknownKey);
        }
        let jwk = self.key(header.kid.as_deref().unwrap_or_default()).await?;
        let key = DecodingKey::from_jwk(&jwk).map_err(Rejected::Token)?;
        // The algorithm comes from the key, not from the token that claims it.
        let algorithm = match &jwk.algorithm {
            AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
            AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
            _ => return Err(Rejected::UnknownKey),
        };
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Ok(decode::<Claims>(token, &key, &validation)
            .map_err(Rejected::Token)?
            .claims)
    }
}

fn unauthorized() -> Response {
    Response::builder()
        .status(StatusCode::UNAUTHORIZED)
        .header("WWW-Authenticate", "Bearer")
        .content_type("application/problem+json")
        .body(
            json!({"type": "about:blank", "title": "Unauthorized", "status": 401, "code": "unauthorized"})
                .to_string(),
        )
}

/// The middleware: a request goes on only with a verified token, its claims attached.
async fn require_token<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    let Some(verifier) = req.data::<Arc<Verifier>>().cloned() else {
        return Ok(StatusCode::INTERNAL_SERVER_ERROR.into_response());
    };
    let token = req
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::to_owned);
    let Some(token) = token else {
        return Ok(unauthorized());
    };
    match verifier.verify(&token).await {
        Ok(claims) => {
            req.set_data(claims);
            Ok(next.call(req).await?.into_response())
        }
        Err(Rejected::KeySet(error)) => {
            // Not the caller's fault: wechat-auth could not be asked for its keys.
            eprintln!("fetching the key set failed: {error}");
            Ok(StatusCode::SERVICE_UNAVAILABLE.into_response())
        }
        Err(Rejected::Token(error)) => {
            // The reason only (expired, wrong audience, bad signature), never the token.
            eprintln!("token refused: {error}");
            Ok(unauthorized())
        }
        Err(Rejected::UnknownKey) => Ok(unauthorized()),
    }
}

#[handler]
fn whoami(Data(claims): Data<&Claims>) -> Json<serde_json::Value> {
    Json(json!({"user_id": claims.sub, "session_id": claims.sid}))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let verifier = Arc::new(Verifier::new(
        &var("WECHAT_AUTH_URL", "http://127.0.0.1:8080"),
        var("JWT_ISSUER", "wechat-auth"),
        var("JWT_AUDIENCE", "wechat-miniprogram"),
    ));
    let app = Route::new()
        .at("/whoami", get(whoami))
        .around(require_token)
        .data(verifier);
    let acceptor = TcpListener::bind(var("BIND_ADDR", "127.0.0.1:3000"))
        .into_acceptor()
        .await?;
    if let Some(address) = acceptor
        .local_addr()
        .first()
        .and_then(|addr| addr.as_socket_addr().copied())
    {
        println!("listening on {address}");
    }
    Server::new_with_acceptor(acceptor).run(app).await?;
    Ok(())
}
