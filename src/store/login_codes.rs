//! Codes we have exchanged with WeChat, by hash, so that a code posted twice is
//! exchanged once — also across instances sharing the database.

use std::time::Duration;

use chrono::Utc;
use entity::login_code;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use sha2::{Digest, Sha256};

use super::{Store, StoreError, UniqueRow, is_unique_violation};
use crate::domain::{AppId, JsCode, UserId};

/// The state of a code when we tried to claim it.
pub enum CodeClaim {
    /// Ours: nobody exchanged it within the window. We must exchange it, then
    /// `complete_code` or `release_code`.
    Claimed,
    /// Another request is exchanging it right now.
    Pending,
    /// Already exchanged within the window, for this user.
    Completed(UserId),
}

/// Only a hash is stored: a code is a credential for its five minutes. The appid is mixed
/// in so that two apps sharing a database cannot collide.
fn code_hash(appid: &AppId, code: &JsCode) -> String {
    let mut hasher = Sha256::new();
    hasher.update(appid.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(code.as_str().as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Store {
    pub async fn claim_code(
        &self,
        appid: &AppId,
        code: &JsCode,
        window: Duration,
    ) -> Result<CodeClaim, StoreError> {
        let hash = code_hash(appid, code);
        for _ in 0..3 {
            let inserted = login_code::Entity::insert(login_code::ActiveModel {
                code_hash: Set(hash.clone()),
                user_id: Set(None),
                claimed_at: Set(Utc::now()),
                completed_at: Set(None),
            })
            .exec_without_returning(&self.writer)
            .await;
            match inserted {
                Ok(_) => return Ok(CodeClaim::Claimed),
                Err(error) if is_unique_violation(&error) => {}
                Err(error) => return Err(error.into()),
            }
            let Some(existing) = login_code::Entity::find_by_id(hash.clone())
                .unique(&self.db)
                .await?
            else {
                continue;
            };
            let age = Utc::now()
                .signed_duration_since(existing.claimed_at)
                .to_std()
                .unwrap_or_default();
            if age > window {
                // Outside the window the code is WeChat's business again (it will say 40163).
                self.forget_code(&hash, Some(existing.claimed_at)).await?;
                continue;
            }
            return Ok(match existing.user_id {
                Some(user_id) => CodeClaim::Completed(user_id.into()),
                None => CodeClaim::Pending,
            });
        }
        Err(StoreError::Contended)
    }

    pub async fn complete_code(
        &self,
        appid: &AppId,
        code: &JsCode,
        user_id: UserId,
    ) -> Result<(), StoreError> {
        login_code::Entity::update_many()
            .col_expr(login_code::Column::UserId, Expr::value(user_id.as_uuid()))
            .col_expr(login_code::Column::CompletedAt, Expr::value(Utc::now()))
            .filter(login_code::Column::CodeHash.eq(code_hash(appid, code)))
            .exec(&self.writer)
            .await?;
        Ok(())
    }

    /// Gives a claimed code up after a failed exchange, so a retry asks WeChat itself.
    pub async fn release_code(&self, appid: &AppId, code: &JsCode) -> Result<(), StoreError> {
        self.forget_code(&code_hash(appid, code), None).await
    }

    /// Deletes codes claimed longer ago than `older_than`; returns how many.
    pub async fn purge_codes(&self, older_than: Duration) -> Result<u64, StoreError> {
        let cutoff =
            Utc::now() - chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::MAX);
        let result = login_code::Entity::delete_many()
            .filter(login_code::Column::ClaimedAt.lt(cutoff))
            .exec(&self.writer)
            .await?;
        Ok(result.rows_affected)
    }

    async fn forget_code(
        &self,
        hash: &str,
        claimed_at: Option<chrono::DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let mut delete =
            login_code::Entity::delete_many().filter(login_code::Column::CodeHash.eq(hash));
        if let Some(claimed_at) = claimed_at {
            delete = delete.filter(login_code::Column::ClaimedAt.eq(claimed_at));
        }
        delete.exec(&self.writer).await?;
        Ok(())
    }
}
