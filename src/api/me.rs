use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{OpenApi, payload::Json};

use super::{
    ApiTags, AppContext, UserView, account::DeletedResponse, problem::ApiError,
    security::BearerAuth,
};

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

    /// Delete the caller's account (账号注销)
    ///
    /// Deletes the user with their identities, sessions, session_keys, phone number and
    /// profile. Their tokens stop working; signing in again later makes a new user.
    #[oai(path = "/api/v1/me", method = "delete", operation_id = "deleteMe")]
    async fn delete_me(
        &self,
        context: Data<&Arc<AppContext>>,
        auth: BearerAuth,
    ) -> Result<DeletedResponse, ApiError> {
        context.accounts.delete(&auth.0).await?;
        Ok(DeletedResponse::Deleted)
    }
}
