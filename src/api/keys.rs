use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{OpenApi, payload::Json};

use super::{ApiTags, AppContext};

pub struct KeysApi;

#[OpenApi(tag = "ApiTags::Keys")]
impl KeysApi {
    /// Public keys that verify our access tokens (JWK Set)
    ///
    /// The current signing key and retired keys whose tokens may still be live, each with
    /// the `kid` that tokens carry. Empty under HS256, whose secret is not shareable.
    #[oai(path = "/.well-known/jwks.json", method = "get", operation_id = "jwks")]
    async fn jwks(&self, context: Data<&Arc<AppContext>>) -> Json<serde_json::Value> {
        Json(context.sessions.jwks())
    }
}
