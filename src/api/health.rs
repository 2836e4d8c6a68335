use std::sync::Arc;

use poem::web::Data;
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
