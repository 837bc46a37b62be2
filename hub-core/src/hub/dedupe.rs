//! Bounded sets of keys with expiry: webhook event ids and replay keys (MACs).
//!
//! Contract §4: "the same `id` delivered again -> duplicate, nothing broadcast twice" and "a
//! captured request replayed within the skew window is never broadcast twice". Ids are kept
//! well beyond the worker's retry horizon ([`ID_TTL_MS`]); MACs for twice the 60 s skew
//! window ([`MAC_TTL_MS`]). Both sets are bounded: at the bound the oldest key is dropped
//! (only reachable at hundreds of deliveries per second for minutes on end).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// How long an event id is remembered: 10 minutes.
pub const ID_TTL_MS: i64 = 10 * 60 * 1000;
/// How long a webhook MAC is remembered: 2 x 60 s skew, plus a margin.
pub const MAC_TTL_MS: i64 = 2 * 60 * 1000 + 5_000;
/// Most keys kept per set.
pub const MAX_KEYS: usize = 100_000;

/// A set of keys that expire, bounded in size.
#[derive(Debug, Clone)]
pub struct ExpiringSet<K> {
    expiry: HashMap<K, i64>,
    order: VecDeque<(K, i64)>,
    max: usize,
}

impl<K: Hash + Eq + Clone> ExpiringSet<K> {
    /// An empty set holding at most `max` keys.
    pub fn new(max: usize) -> Self {
        Self {
            expiry: HashMap::new(),
            order: VecDeque::new(),
            max: max.max(1),
        }
    }

    /// Whether `key` is held and not expired at `now_ms`.
    pub fn contains(&self, key: &K, now_ms: i64) -> bool {
        self.expiry.get(key).is_some_and(|&exp| exp > now_ms)
    }

    /// Remembers `key` until `expires_ms`; drops expired keys and, at the bound, the oldest.
    /// A key already held keeps its first expiry.
    pub fn insert(&mut self, key: K, expires_ms: i64, now_ms: i64) {
        self.purge(now_ms);
        if self.expiry.contains_key(&key) {
            return;
        }
        self.expiry.insert(key.clone(), expires_ms);
        self.order.push_back((key, expires_ms));
        while self.expiry.len() > self.max {
            match self.order.pop_front() {
                Some((k, _)) => {
                    self.expiry.remove(&k);
                }
                None => break,
            }
        }
    }

    /// Drops keys whose expiry has passed (keys are expired in insertion order; callers use
    /// one TTL per set, so that is expiry order too).
    pub fn purge(&mut self, now_ms: i64) {
        while self.order.front().is_some_and(|(_, exp)| *exp <= now_ms) {
            if let Some((key, _)) = self.order.pop_front() {
                self.expiry.remove(&key);
            }
        }
    }

    /// Number of keys held (expired ones included until the next purge).
    pub fn len(&self) -> usize {
        self.expiry.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.expiry.is_empty()
    }

    /// Every live key with its expiry, oldest first (for persistence).
    pub fn entries(&self, now_ms: i64) -> impl Iterator<Item = (&K, i64)> {
        self.order
            .iter()
            .filter(move |(_, e)| *e > now_ms)
            .map(|(k, e)| (k, *e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_expire() {
        let mut s = ExpiringSet::new(10);
        s.insert("a", 100, 0);
        assert!(s.contains(&"a", 99));
        assert!(!s.contains(&"a", 100));
        s.insert("b", 300, 150);
        assert_eq!(s.len(), 1, "a was purged");
        assert!(s.contains(&"b", 299));
    }

    #[test]
    fn bound_drops_the_oldest() {
        let mut s = ExpiringSet::new(3);
        for (i, k) in ["a", "b", "c", "d"].into_iter().enumerate() {
            s.insert(k, 1_000 + i as i64, 0);
        }
        assert_eq!(s.len(), 3);
        assert!(!s.contains(&"a", 0));
        assert!(s.contains(&"d", 0));
    }

    #[test]
    fn a_held_key_keeps_its_first_expiry() {
        let mut s = ExpiringSet::new(10);
        s.insert("a", 100, 0);
        s.insert("a", 500, 50);
        assert_eq!(s.len(), 1);
        assert_eq!(s.entries(0).collect::<Vec<_>>(), vec![(&"a", 100)]);
        s.purge(100);
        assert!(s.is_empty());
    }
}
