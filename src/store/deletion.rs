//! Deleting a user (账号注销): everything stored about them, in one transaction.

use entity::{
    login_code, phone_verification, retired_refresh_token, session, user, web_flow, wechat_identity,
};
use sea_orm::{
    ColumnTrait, EntityTrait, ExprTrait, QueryFilter, TransactionTrait,
    sea_query::{Expr, Query},
};

use super::{Store, StoreError};
use crate::domain::UserId;

impl Store {
    /// Deletes the user with their identities (and sealed session_keys), sessions and
    /// retired refresh tokens, phone verifications, web sign-ins and replayable login
    /// codes. Explicit deletes rather than trusting foreign-key cascades: login codes have
    /// none, and a table added later must be named here to be forgotten. `false` when
    /// there was no such user.
    pub async fn delete_user(&self, id: UserId) -> Result<bool, StoreError> {
        let id = id.as_uuid();
        let txn = self.writer.begin().await?;
        let sessions_of_user = Query::select()
            .column(session::Column::Id)
            .from(session::Entity)
            .and_where(Expr::col(session::Column::UserId).eq(id))
            .to_owned();
        retired_refresh_token::Entity::delete_many()
            .filter(retired_refresh_token::Column::SessionId.in_subquery(sessions_of_user))
            .exec(&txn)
            .await?;
        session::Entity::delete_many()
            .filter(session::Column::UserId.eq(id))
            .exec(&txn)
            .await?;
        wechat_identity::Entity::delete_many()
            .filter(wechat_identity::Column::UserId.eq(id))
            .exec(&txn)
            .await?;
        phone_verification::Entity::delete_many()
            .filter(phone_verification::Column::UserId.eq(id))
            .exec(&txn)
            .await?;
        web_flow::Entity::delete_many()
            .filter(web_flow::Column::UserId.eq(id))
            .exec(&txn)
            .await?;
        login_code::Entity::delete_many()
            .filter(login_code::Column::UserId.eq(id))
            .exec(&txn)
            .await?;
        let deleted = user::Entity::delete_by_id(id).exec(&txn).await?;
        txn.commit().await?;
        Ok(deleted.rows_affected == 1)
    }
}
