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
#[derive(Debug)]
pub struct TokenCache {
    capacity: usize,
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

#[derive(Debug)]
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
