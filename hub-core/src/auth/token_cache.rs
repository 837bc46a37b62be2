//! A bounded cache of verified tokens, so a reconnect storm costs a hash per token instead of
//! an ECDSA verification.
//!
//! Key: SHA-256 of the token bytes (the token itself is never stored). Value: its claims.
//! A hit still enforces `exp` against the caller's `now` with the same leeway as a full
//! verification; entries past that are dropped. Bounded: when full, expired entries are
//! purged, and if it is still full an arbitrary entry is evicted. The cache is cleared
//! whenever the key set changes, so a key removed from the JWKS stops validating cached
//! tokens too.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

use super::claims::Claims;

/// Default number of cached tokens.
pub const DEFAULT_TOKEN_CACHE_ENTRIES: usize = 16 * 1024;

/// Verified tokens by SHA-256, each valid while `now < valid_until`.
pub struct TokenCache {
    capacity: usize,
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

impl std::fmt::Debug for TokenCache {
    /// Sizes only: the entries (user ids, token hashes) are not for logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

struct Entry {
    valid_until: i64,
    claims: Claims,
}

impl TokenCache {
    /// An empty cache holding at most `capacity` tokens (0 disables caching).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The cache key of a token.
    pub fn key(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    /// The cached claims for `key` if the entry is still valid at `now`.
    pub fn get(&self, key: &[u8; 32], now: i64) -> Option<Claims> {
        let mut entries = self.lock();
        match entries.get(key) {
            Some(entry) if now < entry.valid_until => Some(entry.claims.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Caches verified claims until `valid_until` (exclusive, unix seconds).
    pub fn insert(&self, key: [u8; 32], claims: Claims, valid_until: i64, now: i64) {
        if self.capacity == 0 || valid_until <= now {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, e| now < e.valid_until);
            if entries.len() >= self.capacity
                && let Some(victim) = entries.keys().next().copied()
            {
                entries.remove(&victim);
            }
        }
        entries.insert(
            key,
            Entry {
                valid_until,
                claims,
            },
        );
    }

    /// Drops every entry (called when the key set changes).
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// How many tokens are cached.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        // A panic while holding this lock cannot leave the map inconsistent (single calls).
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: &str) -> Claims {
        Claims {
            sub: sub.into(),
            exp: 100,
            iss: "i".into(),
        }
    }

    #[test]
    fn a_hit_is_only_valid_before_valid_until() {
        let cache = TokenCache::new(4);
        let key = TokenCache::key("t");
        cache.insert(key, claims("a"), 160, 50);
        assert_eq!(cache.get(&key, 159).map(|c| c.sub), Some("a".into()));
        assert_eq!(cache.get(&key, 160), None);
        assert!(cache.is_empty(), "expired entries are dropped on lookup");
        cache.insert(key, claims("a"), 10, 50);
        assert!(cache.is_empty(), "already expired entries are not stored");
    }

    #[test]
    fn size_is_bounded_and_expired_entries_go_first() {
        let cache = TokenCache::new(3);
        for (i, until) in [(0, 20), (1, 1000), (2, 1000)] {
            cache.insert(TokenCache::key(&i.to_string()), claims("x"), until, 10);
        }
        // At now = 30 the first entry is expired: it is the one purged.
        cache.insert(TokenCache::key("3"), claims("y"), 1000, 30);
        assert_eq!(cache.len(), 3);
        assert!(cache.get(&TokenCache::key("1"), 30).is_some());
        assert!(cache.get(&TokenCache::key("2"), 30).is_some());
        // Nothing expired: one arbitrary entry is evicted, the new one is kept.
        cache.insert(TokenCache::key("4"), claims("z"), 1000, 30);
        assert_eq!(cache.len(), 3);
        assert!(cache.get(&TokenCache::key("4"), 30).is_some());
        cache.clear();
        assert!(cache.is_empty());
        let off = TokenCache::new(0);
        off.insert(TokenCache::key("t"), claims("a"), 1000, 0);
        assert!(off.is_empty());
    }
}
