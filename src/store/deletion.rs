//! Deleting a user (账号注销): everything stored about them, in one transaction.

use entity::{
    event, login_code, phone_verification, retired_refresh_token, session, user, user_alias,
    web_flow, wechat_identity,
};
use sea_orm::{
    ColumnTrait, EntityTrait, ExprTrait, QueryFilter, QuerySelect,
    sea_query::{Expr, Query},
};

use super::{Store, StoreError, UserChange};
use crate::{domain::UserId, events::UserEvent};

impl Store {
    /// Deletes the user with their identities (and sealed session_keys), sessions and
    /// retired refresh tokens, phone verifications, web sign-ins and replayable login
    /// codes, and the ids earlier joins folded into them. Explicit deletes rather than
    /// trusting foreign-key cascades: login codes have none, and a table added later must
    /// be named here to be forgotten. Commits with the `user.deleted` event. `false` when
    /// there was no such user.
    ///
    /// The user's earlier events (also those of ids joined into them) are redacted, not
    /// deleted: their data becomes `{"user_id"}`, so no phone number, openid or nickname
    /// of the person stays behind, while the events themselves keep their ids and order —
    /// an undelivered one is still delivered (receivers deduplicate and order by them, and
    /// the feed's cursors stay valid), now saying only whose it was.
    pub async fn delete_user(&self, user_id: UserId) -> Result<bool, StoreError> {
        let id = user_id.as_uuid();
        let change = UserChange::begin(self).await?;
        let txn = change.db();
        let exists = user::Entity::find_by_id(id)
            .select_only()
            .column(user::Column::Id)
            .into_tuple::<uuid::Uuid>()
            .one(txn)
            .await?
            .is_some();
        if !exists {
            change.rollback().await?;
            return Ok(false);
        }
        let folded: Vec<uuid::Uuid> = user_alias::Entity::find()
            .select_only()
            .column(user_alias::Column::RemovedId)
            .filter(user_alias::Column::KeptId.eq(id))
            .into_tuple()
            .all(txn)
            .await?;
        for owner in std::iter::once(id).chain(folded) {
            let redacted = serde_json::json!({ "user_id": UserId::from(owner).to_string() });
            event::Entity::update_many()
                .col_expr(event::Column::Data, Expr::value(redacted.to_string()))
                .filter(event::Column::UserId.eq(owner))
                .exec(txn)
                .await?;
        }
        user_alias::Entity::delete_many()
            .filter(user_alias::Column::KeptId.eq(id))
            .exec(txn)
            .await?;
        let sessions_of_user = Query::select()
            .column(session::Column::Id)
            .from(session::Entity)
            .and_where(Expr::col(session::Column::UserId).eq(id))
            .to_owned();
        retired_refresh_token::Entity::delete_many()
            .filter(retired_refresh_token::Column::SessionId.in_subquery(sessions_of_user))
            .exec(txn)
            .await?;
        session::Entity::delete_many()
            .filter(session::Column::UserId.eq(id))
            .exec(txn)
            .await?;
        wechat_identity::Entity::delete_many()
            .filter(wechat_identity::Column::UserId.eq(id))
            .exec(txn)
            .await?;
        phone_verification::Entity::delete_many()
            .filter(phone_verification::Column::UserId.eq(id))
            .exec(txn)
            .await?;
        web_flow::Entity::delete_many()
            .filter(web_flow::Column::UserId.eq(id))
            .exec(txn)
            .await?;
        login_code::Entity::delete_many()
            .filter(login_code::Column::UserId.eq(id))
            .exec(txn)
            .await?;
        user::Entity::delete_by_id(id).exec(txn).await?;
        change.commit(vec![UserEvent::Deleted(user_id)]).await?;
        Ok(true)
    }
}
