use std::sync::Arc;

use poem::{IntoResponse, Response, handler, http::StatusCode, web::Data};
use poem_openapi::{Object, OpenApi, payload::Json};

use super::{
    ApiTags, AppContext,
    problem::{ApiError, ProblemCode},
};

pub struct HealthApi;

#[derive(Object)]
pub struct Status {
    /// `ok`
    status: String,
}

fn ok() -> Json<Status> {
    Json(Status {
        status: "ok".to_owned(),
    })
}

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Liveness: the process serves requests
    #[oai(path = "/healthz", method = "get", operation_id = "healthz")]
    async fn healthz(&self) -> Json<Status> {
        ok()
    }

    /// Readiness: the database answers
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self, context: Data<&Arc<AppContext>>) -> Result<Json<Status>, ApiError> {
        match context.store.ping().await {
            Ok(()) => Ok(ok()),
            Err(error) => {
                tracing::warn!(%error, "readiness check failed");
                Err(ApiError::new(
                    ProblemCode::NotReady,
                    "the database does not answer",
                ))
            }
        }
    }
}

/// Prometheus text format. Not in the OpenAPI document: it is for the operator's
/// scraper, not for API clients.
#[handler]
pub fn metrics(context: Data<&Arc<AppContext>>) -> Response {
    let Some(handle) = crate::metrics::handle() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (open, idle, max) = context.store.pool_usage();
    crate::metrics::db_pool(open, idle, max);
    handle.run_upkeep();
    handle
        .render()
        .with_content_type("text/plain; version=0.0.4")
        .into_response()
}

/// `MP_verify_<token>.txt`: the Official Account console fetches it to verify the domain.
#[handler]
pub async fn verify_file(context: Data<&Arc<AppContext>>) -> Response {
    match &context.oa_verify_file {
        Some((_, contents)) => Response::builder()
            .content_type("text/plain")
            .body(contents.clone()),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
