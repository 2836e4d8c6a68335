use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{OpenApi, payload::Json};

use super::{ApiTags, AppContext, UserView, problem::ApiError, security::BearerAuth};

pub struct MeApi;

#[OpenApi(tag = "ApiTags::Users")]
impl MeApi {
    /// The signed-in user
    #[oai(path = "/api/v1/me", method = "get", operation_id = "me")]
    async fn me(
        &self,
        context: Data<&Arc<AppContext>>,
        auth: BearerAuth,
    ) -> Result<Json<UserView>, ApiError> {
        // Authentication already loaded the user along with the session.
        Ok(Json(context.user_view(auth.0.user)))
    }
}
