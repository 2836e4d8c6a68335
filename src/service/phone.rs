use std::{sync::Arc, time::Duration};

use rand::Rng;

use crate::{
    domain::{App, PhoneNumber},
    sms::{CodeMessage, SmsSender},
    store::{PhoneBinding, RESEND_INTERVAL, SendPermit, Store},
};

use super::{Authenticated, LoginOutcome, PrincipalCache, ServiceError, Sessions};

const CODE_DIGITS: usize = 6;

/// A code is on its way.
pub struct VerificationSent {
    /// Seconds the code works.
    pub expires_in: u64,
    /// Seconds until another code may be sent to this number.
    pub resend_after: u64,
}

/// Proving a phone number with an SMS code and binding it to the caller — which, when
/// another user holds the number, makes the two one user.
#[derive(Clone)]
pub struct PhoneService {
    store: Store,
    sessions: Sessions,
    principals: Arc<PrincipalCache>,
    sms: Arc<dyn SmsSender>,
    code_ttl: Duration,
}

fn parse_phone(raw: &str) -> Result<PhoneNumber, ServiceError> {
    PhoneNumber::parse(raw).map_err(|e| ServiceError::InvalidRequest(e.0))
}

fn new_code() -> String {
    let mut rng = rand::rng();
    (0..CODE_DIGITS)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

impl PhoneService {
    pub fn new(
        store: Store,
        sessions: Sessions,
        principals: Arc<PrincipalCache>,
        sms: Arc<dyn SmsSender>,
        code_ttl: Duration,
    ) -> Self {
        Self {
            store,
            sessions,
            principals,
            sms,
            code_ttl,
        }
    }

    /// Sends a fresh code to `raw_phone` for the caller, within the send limits. The code
    /// is kept (as a hash) only once the provider took it.
    pub async fn send_code(
        &self,
        caller: &Authenticated,
        raw_phone: &str,
    ) -> Result<VerificationSent, ServiceError> {
        let phone = parse_phone(raw_phone)?;
        let code = new_code();
        let id = match self
            .store
            .begin_phone_verification(caller.user_id, &phone, &code, self.code_ttl)
            .await?
        {
            SendPermit::Granted(id) => id,
            SendPermit::Limited { retry_after } => {
                return Err(ServiceError::RateLimited {
                    retry_after_secs: retry_after.as_secs().max(1),
                });
            }
        };
        let message = CodeMessage {
            phone: &phone,
            code: &code,
            ttl: self.code_ttl,
        };
        let started = std::time::Instant::now();
        if let Err(error) = self.sms.send(&message).await {
            self.store.phone_code_not_sent(id).await?;
            tracing::warn!(%error, user_id = %caller.user_id, ?phone, "verification code not sent");
            return Err(ServiceError::SmsFailed);
        }
        self.store
            .phone_code_sent(id, caller.user_id, &phone)
            .await?;
        tracing::info!(
            user_id = %caller.user_id,
            ?phone,
            elapsed_ms = started.elapsed().as_millis(),
            "verification code sent"
        );
        Ok(VerificationSent {
            expires_in: self.code_ttl.as_secs(),
            resend_after: RESEND_INTERVAL.as_secs(),
        })
    }

    /// Binds the number the caller proved with `code`. When another user holds it, the
    /// caller's user is joined into that one. Either way the answer is a fresh token pair
    /// for the user who holds the number now, in a new session of the caller's app.
    pub async fn bind(
        &self,
        caller: &Authenticated,
        raw_phone: &str,
        code: &str,
    ) -> Result<LoginOutcome, ServiceError> {
        let phone = parse_phone(raw_phone)?;
        if code.len() != CODE_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ServiceError::InvalidRequest(
                "verification_code must be the 6 digits sent by SMS".to_owned(),
            ));
        }
        if !self
            .store
            .use_phone_code(caller.user_id, &phone, code)
            .await?
        {
            return Err(ServiceError::VerificationFailed);
        }
        let app = self
            .store
            .session_app(caller.session_id)
            .await?
            .unwrap_or(App::Miniprogram);
        let holder = match self.store.bind_phone(caller.user_id, &phone).await? {
            PhoneBinding::Bound => {
                tracing::info!(user_id = %caller.user_id, ?phone, "phone bound");
                caller.user_id
            }
            PhoneBinding::Joined { kept, removed } => {
                self.principals.forget_user(removed);
                tracing::info!(user_id = %kept, removed_user_id = %removed, "joined by phone");
                kept
            }
            PhoneBinding::InUse => return Err(ServiceError::PhoneInUse),
        };
        self.principals.forget_user(holder);
        self.sessions.start(holder, app, false).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_vary() {
        let codes: Vec<String> = (0..20).map(|_| new_code()).collect();
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()))
        );
        assert!(codes.iter().any(|c| c != &codes[0]));
    }
}
