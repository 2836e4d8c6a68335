//! Browser sign-ins through WeChat's authorise page. The `state`, the browser-binding
//! cookie and the ticket are credentials: only their SHA-256 is stored, and each is
//! spent by one conditional update, so of two racing requests exactly one wins — on any
//! instance sharing the database.

use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::web_flow;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, ExprTrait, QueryFilter, sea_query::Expr,
};
use subtle::ConstantTimeEq;

use super::{Store, StoreError, UniqueRow};
use crate::{
    crypto::sha256_hex,
    domain::{App, UserId},
};

/// Spent flows and tickets are kept this long after they expire, then purged.
const KEEP_AFTER_EXPIRY: chrono::Duration = chrono::Duration::hours(1);

pub struct NewWebFlow<'a> {
    pub state: &'a str,
    /// The value of the cookie that binds the flow to one browser.
    pub browser: &'a str,
    pub app: App,
    pub scope: &'a str,
    pub return_to: &'a str,
    pub code_challenge: Option<&'a str>,
    pub ttl: Duration,
}

/// A flow whose state was just spent.
pub struct SpentFlow {
    pub app: App,
    pub scope: String,
    pub return_to: String,
    /// Whether the request came from the browser that started the flow.
    pub same_browser: bool,
}

/// A ticket that was just redeemed.
pub struct RedeemedTicket {
    pub user_id: UserId,
    pub new_user: bool,
    pub app: App,
    pub code_challenge: Option<String>,
}

fn expiry(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|ttl| now.checked_add_signed(ttl))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl Store {
    pub async fn create_web_flow(&self, flow: &NewWebFlow<'_>) -> Result<(), StoreError> {
        let now = Utc::now();
        web_flow::Entity::insert(web_flow::ActiveModel {
            state_hash: Set(sha256_hex(flow.state)),
            browser_hash: Set(sha256_hex(flow.browser)),
            app: Set(flow.app.as_str().to_owned()),
            scope: Set(flow.scope.to_owned()),
            return_to: Set(flow.return_to.to_owned()),
            code_challenge: Set(flow.code_challenge.map(str::to_owned)),
            created_at: Set(now),
            expires_at: Set(expiry(now, flow.ttl)),
            spent_at: Set(None),
            ticket_hash: Set(None),
            user_id: Set(None),
            new_user: Set(None),
            ticket_expires_at: Set(None),
            ticket_redeemed_at: Set(None),
        })
        .exec_without_returning(&self.writer)
        .await?;
        Ok(())
    }

    /// Spends a state: `Some` only for the one request that found it live and unspent.
    /// `browser` is the binding cookie the request carried, if any.
    pub async fn spend_web_flow(
        &self,
        state: &str,
        browser: Option<&str>,
    ) -> Result<Option<SpentFlow>, StoreError> {
        let state_hash = sha256_hex(state);
        let now = Utc::now();
        let spent = web_flow::Entity::update_many()
            .col_expr(web_flow::Column::SpentAt, Expr::value(now))
            .filter(web_flow::Column::StateHash.eq(state_hash.as_str()))
            .filter(web_flow::Column::SpentAt.is_null())
            .filter(web_flow::Column::ExpiresAt.gt(now))
            .exec(&self.writer)
            .await?;
        if spent.rows_affected == 0 {
            return Ok(None);
        }
        let Some(flow) = web_flow::Entity::find_by_id(state_hash)
            .unique(&self.writer)
            .await?
        else {
            return Ok(None);
        };
        let same_browser = browser.is_some_and(|browser| {
            bool::from(
                sha256_hex(browser)
                    .as_bytes()
                    .ct_eq(flow.browser_hash.as_bytes()),
            )
        });
        Ok(Some(SpentFlow {
            app: App::parse(&flow.app).map_err(|_| StoreError::Corrupt("stored app".to_owned()))?,
            scope: flow.scope,
            return_to: flow.return_to,
            same_browser,
        }))
    }

    /// Records the one-time ticket a spent flow ended with.
    pub async fn issue_ticket(
        &self,
        state: &str,
        ticket: &str,
        user_id: UserId,
        new_user: bool,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        web_flow::Entity::update_many()
            .col_expr(
                web_flow::Column::TicketHash,
                Expr::value(sha256_hex(ticket)),
            )
            .col_expr(web_flow::Column::UserId, Expr::value(user_id.as_uuid()))
            .col_expr(web_flow::Column::NewUser, Expr::value(new_user))
            .col_expr(
                web_flow::Column::TicketExpiresAt,
                Expr::value(expiry(Utc::now(), ttl)),
            )
            .filter(web_flow::Column::StateHash.eq(sha256_hex(state)))
            .exec(&self.writer)
            .await?;
        Ok(())
    }

    /// Redeems a ticket: `Some` only for the one request that found it live and unused.
    pub async fn redeem_ticket(&self, ticket: &str) -> Result<Option<RedeemedTicket>, StoreError> {
        let ticket_hash = sha256_hex(ticket);
        let now = Utc::now();
        let redeemed = web_flow::Entity::update_many()
            .col_expr(web_flow::Column::TicketRedeemedAt, Expr::value(now))
            .filter(web_flow::Column::TicketHash.eq(ticket_hash.as_str()))
            .filter(web_flow::Column::TicketRedeemedAt.is_null())
            .filter(web_flow::Column::TicketExpiresAt.gt(now))
            .exec(&self.writer)
            .await?;
        if redeemed.rows_affected == 0 {
            return Ok(None);
        }
        let Some(flow) = web_flow::Entity::find()
            .filter(web_flow::Column::TicketHash.eq(ticket_hash))
            .unique(&self.writer)
            .await?
        else {
            return Ok(None);
        };
        let corrupt = |what: &str| StoreError::Corrupt(format!("stored {what}"));
        Ok(Some(RedeemedTicket {
            user_id: flow
                .user_id
                .ok_or_else(|| corrupt("ticket without a user"))?
                .into(),
            new_user: flow.new_user.unwrap_or(false),
            app: App::parse(&flow.app).map_err(|_| corrupt("app"))?,
            code_challenge: flow.code_challenge,
        }))
    }

    /// Deletes flows whose state and ticket have both been dead for a while.
    pub async fn purge_web_flows(&self) -> Result<u64, StoreError> {
        let cutoff = Utc::now() - KEEP_AFTER_EXPIRY;
        let result = web_flow::Entity::delete_many()
            .filter(web_flow::Column::ExpiresAt.lt(cutoff))
            .filter(
                web_flow::Column::TicketExpiresAt
                    .is_null()
                    .or(web_flow::Column::TicketExpiresAt.lt(cutoff)),
            )
            .exec(&self.writer)
            .await?;
        Ok(result.rows_affected)
    }
}
