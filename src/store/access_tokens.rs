//! The app's WeChat access_token, one row per appid, shared by every instance. A lease
//! column lets exactly one instance fetch a new token while the others wait for it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::wechat_access_token;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, ExprTrait, QueryFilter, sea_query::Expr,
};

use super::{Store, StoreError, UniqueRow, is_unique_violation};
use crate::{crypto::Sealed, domain::AppId, wechat::AccessToken};

fn seal_context(appid: &AppId) -> Vec<u8> {
    format!("access_token\0{}", appid.as_str()).into_bytes()
}

/// A stored token and when WeChat said it expires.
pub struct StoredAccessToken {
    pub token: AccessToken,
    pub expires_at: DateTime<Utc>,
}

impl Store {
    pub async fn access_token(
        &self,
        appid: &AppId,
    ) -> Result<Option<StoredAccessToken>, StoreError> {
        let Some(row) = wechat_access_token::Entity::find_by_id(appid.as_str().to_owned())
            .unique(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let (Some(value), Some(key_id), Some(expires_at)) =
            (row.sealed_token, row.token_kid, row.expires_at)
        else {
            return Ok(None);
        };
        // A token sealed under a key we no longer hold is simply fetched again.
        let Ok(opened) = self
            .sealer
            .open(&Sealed { key_id, value }, &seal_context(appid))
        else {
            return Ok(None);
        };
        let token = String::from_utf8(opened)
            .map_err(|_| StoreError::Corrupt("access_token".to_owned()))?;
        Ok(Some(StoredAccessToken {
            token: AccessToken::new(token),
            expires_at,
        }))
    }

    /// Takes the right to fetch a new token for `lease`; `false` when another instance
    /// holds it.
    pub async fn lease_access_token_refresh(
        &self,
        appid: &AppId,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let now = Utc::now();
        let created = wechat_access_token::Entity::insert(wechat_access_token::ActiveModel {
            appid: Set(appid.as_str().to_owned()),
            sealed_token: Set(None),
            token_kid: Set(None),
            expires_at: Set(None),
            lease_until: Set(None),
            updated_at: Set(now),
        })
        .exec_without_returning(&self.writer)
        .await;
        match created {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => {}
            Err(error) => return Err(error.into()),
        }
        let until =
            now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(10));
        let taken = wechat_access_token::Entity::update_many()
            .col_expr(wechat_access_token::Column::LeaseUntil, Expr::value(until))
            .filter(wechat_access_token::Column::Appid.eq(appid.as_str()))
            .filter(
                wechat_access_token::Column::LeaseUntil
                    .is_null()
                    .or(wechat_access_token::Column::LeaseUntil.lt(now)),
            )
            .exec(&self.writer)
            .await?;
        Ok(taken.rows_affected == 1)
    }

    /// Stores a fresh token and gives the lease back.
    pub async fn save_access_token(
        &self,
        appid: &AppId,
        token: &AccessToken,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sealed = self
            .sealer
            .seal(token.expose().as_bytes(), &seal_context(appid));
        wechat_access_token::Entity::update_many()
            .col_expr(
                wechat_access_token::Column::SealedToken,
                Expr::value(sealed.value),
            )
            .col_expr(
                wechat_access_token::Column::TokenKid,
                Expr::value(sealed.key_id),
            )
            .col_expr(
                wechat_access_token::Column::ExpiresAt,
                Expr::value(expires_at),
            )
            .col_expr(
                wechat_access_token::Column::LeaseUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                wechat_access_token::Column::UpdatedAt,
                Expr::value(Utc::now()),
            )
            .filter(wechat_access_token::Column::Appid.eq(appid.as_str()))
            .exec(&self.writer)
            .await?;
        Ok(())
    }

    /// Gives the lease back after a failed fetch, so another attempt need not wait it out.
    pub async fn release_access_token_lease(&self, appid: &AppId) -> Result<(), StoreError> {
        wechat_access_token::Entity::update_many()
            .col_expr(
                wechat_access_token::Column::LeaseUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(wechat_access_token::Column::Appid.eq(appid.as_str()))
            .exec(&self.writer)
            .await?;
        Ok(())
    }
}
