use std::sync::Arc;

use crate::store::{IdentityClaim, Resolved, Store};

use super::{Authenticated, PrincipalCache, ServiceError};

/// The one way every login path turns what WeChat said about a person into our user: by
/// identity, else by unionid, else a new user; joining two users when a unionid shows
/// they are one person.
#[derive(Clone)]
pub struct Accounts {
    store: Store,
    principals: Arc<PrincipalCache>,
}

impl Accounts {
    pub fn new(store: Store, principals: Arc<PrincipalCache>) -> Self {
        Self { store, principals }
    }

    pub async fn resolve(&self, claim: &IdentityClaim<'_>) -> Result<Resolved, ServiceError> {
        let resolved = self.store.resolve_identity(claim).await?;
        // Cached views of these users are stale: a unionid, a profile or a join.
        self.principals.forget_user(resolved.user_id);
        if let Some(removed) = resolved.removed {
            self.principals.forget_user(removed);
        }
        tracing::info!(
            user_id = %resolved.user_id,
            new_user = resolved.new_user,
            app = %claim.app,
            "identity resolved"
        );
        Ok(resolved)
    }

    /// Deletes the caller's user and everything stored about them (账号注销). Their
    /// tokens stop working; a later login of the same identity makes a new user.
    pub async fn delete(&self, caller: &Authenticated) -> Result<(), ServiceError> {
        self.store.delete_user(caller.user_id).await?;
        self.principals.forget_user(caller.user_id);
        self.principals.forget_session(caller.session_id);
        tracing::info!(user_id = %caller.user_id, "user deleted at their request");
        Ok(())
    }
}
