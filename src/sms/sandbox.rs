//! The sandbox provider: nothing is sent; the last code per number is kept in memory for
//! `GET /sandbox/sms` to show.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use super::{CodeMessage, SendFuture, SmsSender};

/// The sandbox never holds more numbers than this; beyond, it starts over.
const MAX_NUMBERS: usize = 10_000;

#[derive(Clone, Default)]
pub struct SandboxSms {
    last_codes: Arc<Mutex<HashMap<String, String>>>,
}

impl SandboxSms {
    /// The last code "sent" to a number (E.164).
    pub fn last_code(&self, phone_e164: &str) -> Option<String> {
        self.last_codes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(phone_e164)
            .cloned()
    }
}

impl SmsSender for SandboxSms {
    fn send<'a>(&'a self, message: &'a CodeMessage<'a>) -> SendFuture<'a> {
        let mut codes = self
            .last_codes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if codes.len() >= MAX_NUMBERS {
            codes.clear();
        }
        codes.insert(message.phone.as_str().to_owned(), message.code.to_owned());
        Box::pin(async { Ok(()) })
    }
}
