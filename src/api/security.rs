//! The bearer scheme: every authenticated operation takes a [`BearerAuth`].

use std::sync::Arc;

use poem::Request;
use poem_openapi::{SecurityScheme, auth::Bearer};

use super::{AppContext, problem::ApiError};
use crate::service::Authenticated;

/// A JWT access token from `POST /api/v1/auth/login`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "authenticate")]
pub struct BearerAuth(pub Authenticated);

async fn authenticate(req: &Request, bearer: Bearer) -> poem::Result<Authenticated> {
    let context = req
        .data::<Arc<AppContext>>()
        .ok_or_else(|| poem::Error::from(ApiError::unauthorized()))?;
    context
        .sessions
        .authenticate(&bearer.token)
        .await
        .map_err(|error| ApiError::from(error).into())
}
