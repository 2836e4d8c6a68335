use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use crate::{
    domain::{SessionId, UserId},
    store::UserRecord,
};

/// Beyond this many sessions the cache starts over rather than grow without bound.
const MAX_ENTRIES: usize = 50_000;

/// Who an access token's session belongs to, remembered for a moment so that a burst of
/// authenticated requests costs one database query instead of one each.
///
/// Every write this instance makes to a user or session drops the affected entries at
/// once; another instance's write is seen here within the TTL. `AUTH_CACHE_TTL_MS=0`
/// turns the cache off for deployments that need logout to bite everywhere instantly.
pub struct PrincipalCache {
    ttl: Duration,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    by_session: HashMap<SessionId, (UserRecord, Instant)>,
    sessions_of: HashMap<UserId, Vec<SessionId>>,
}

impl PrincipalCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(Entries::default()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get(&self, session: SessionId, user: UserId) -> Option<UserRecord> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries();
        let (record, cached_at) = entries.by_session.get(&session)?;
        (record.id == user && cached_at.elapsed() < self.ttl).then(|| record.clone())
    }

    pub fn put(&self, session: SessionId, record: UserRecord) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries();
        if entries.by_session.len() >= MAX_ENTRIES {
            *entries = Entries::default();
        }
        let user = record.id;
        entries.by_session.insert(session, (record, Instant::now()));
        let sessions = entries.sessions_of.entry(user).or_default();
        if !sessions.contains(&session) {
            sessions.push(session);
        }
    }

    pub fn forget_session(&self, session: SessionId) {
        self.entries().by_session.remove(&session);
    }

    pub fn forget_user(&self, user: UserId) {
        let mut entries = self.entries();
        for session in entries.sessions_of.remove(&user).unwrap_or_default() {
            entries.by_session.remove(&session);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(user: UserId) -> UserRecord {
        UserRecord {
            id: user,
            identities: Vec::new(),
            unionid: None,
            phone_number: None,
            nickname: None,
            avatar_url: None,
            created_at: chrono::DateTime::UNIX_EPOCH,
            disabled: false,
        }
    }

    #[test]
    fn remembers_within_the_ttl_and_forgets_on_writes() {
        let cache = PrincipalCache::new(Duration::from_secs(60));
        let (user, session, other) = (
            UserId::generate(),
            SessionId::generate(),
            SessionId::generate(),
        );
        cache.put(session, record(user));
        cache.put(other, record(user));
        assert_eq!(cache.get(session, user), Some(record(user)));
        assert_eq!(
            cache.get(session, UserId::generate()),
            None,
            "keyed by session and user"
        );
        cache.forget_session(session);
        assert_eq!(cache.get(session, user), None);
        assert!(cache.get(other, user).is_some());
        cache.forget_user(user);
        assert_eq!(cache.get(other, user), None);
    }

    #[test]
    fn entries_expire_and_a_zero_ttl_caches_nothing() {
        let (user, session) = (UserId::generate(), SessionId::generate());
        let expiring = PrincipalCache::new(Duration::from_millis(1));
        expiring.put(session, record(user));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(expiring.get(session, user), None);
        let off = PrincipalCache::new(Duration::ZERO);
        off.put(session, record(user));
        assert_eq!(off.get(session, user), None);
    }
}
