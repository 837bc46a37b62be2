//! Discord's per-route rate-limit buckets, sans-IO (every method takes `now`).
//!
//! Rules (`developers/topics/rate-limits.mdx`): limits are per route and per top-level
//! resource (the "major parameter": guild id, channel id); routes sharing a limit answer the
//! same `X-RateLimit-Bucket`; `X-RateLimit-Remaining` and `X-RateLimit-Reset-After`
//! (seconds, decimal) say when the bucket refills; a 429 carries `retry_after` (seconds) and
//! `global`. Limits are never hard-coded: only what Discord said is remembered.
//!
//! Memory is bounded: at most [`MAX_ENTRIES`] routes and buckets are kept; beyond that,
//! expired entries are dropped first, then everything (forgetting a limit only risks one 429).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Most route and bucket entries kept.
pub(crate) const MAX_ENTRIES: usize = 4096;

/// Longest wait Discord may ask for that is still honoured (a day): anything beyond is
/// treated as a day, so a garbage header cannot overflow `Instant`.
const MAX_WAIT: Duration = Duration::from_secs(86_400);

/// Whether a request may be sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it.
    Go,
    /// The bucket (or the global limit) is known empty: wait this long first.
    Wait(Duration),
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    remaining: u64,
    reset_at: Instant,
}

/// The known state of Discord's buckets.
#[derive(Debug, Default)]
pub struct RateLimits {
    /// (route, major) -> bucket name from `X-RateLimit-Bucket`.
    routes: HashMap<(&'static str, u64), String>,
    /// (bucket name, major) -> state.
    buckets: HashMap<(String, u64), Bucket>,
    /// Until when the global limit holds.
    global_until: Option<Instant>,
}

/// Parses a seconds value from Discord (`"1.5"`, `"0"`), bounded to a day.
pub(crate) fn parse_seconds(text: &str) -> Option<Duration> {
    let secs: f64 = text.trim().parse().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(secs.min(MAX_WAIT.as_secs_f64())))
}

impl RateLimits {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a request on `route` (a fixed template such as `"DELETE /channels/{id}"`)
    /// for the major parameter `major` may go now. A `Go` on a known bucket takes one of its
    /// remaining requests, so concurrent callers do not overshoot.
    pub fn check(&mut self, route: &'static str, major: u64, now: Instant) -> Verdict {
        if let Some(until) = self.global_until {
            if until > now {
                return Verdict::Wait(until - now);
            }
            self.global_until = None;
        }
        let Some(name) = self.routes.get(&(route, major)) else {
            return Verdict::Go;
        };
        let Some(bucket) = self.buckets.get_mut(&(name.clone(), major)) else {
            return Verdict::Go;
        };
        if bucket.reset_at <= now {
            return Verdict::Go; // Refilled; the next response tells the new state.
        }
        if bucket.remaining == 0 {
            return Verdict::Wait(bucket.reset_at - now);
        }
        bucket.remaining -= 1;
        Verdict::Go
    }

    /// Records the rate-limit headers of a response.
    pub fn observe(
        &mut self,
        route: &'static str,
        major: u64,
        bucket: Option<&str>,
        remaining: Option<u64>,
        reset_after: Option<Duration>,
        now: Instant,
    ) {
        let (Some(name), Some(remaining), Some(reset_after)) = (bucket, remaining, reset_after)
        else {
            return;
        };
        self.make_room(now);
        self.routes.insert((route, major), name.to_owned());
        self.buckets.insert(
            (name.to_owned(), major),
            Bucket {
                remaining,
                reset_at: now + reset_after.min(MAX_WAIT),
            },
        );
    }

    /// Records a 429: the route's bucket (or everything, when `global`) is empty for `wait`.
    pub fn observe_429(
        &mut self,
        route: &'static str,
        major: u64,
        wait: Duration,
        global: bool,
        now: Instant,
    ) {
        let until = now + wait.min(MAX_WAIT);
        if global {
            self.global_until = Some(self.global_until.map_or(until, |u| u.max(until)));
            return;
        }
        self.make_room(now);
        let name = self
            .routes
            .entry((route, major))
            .or_insert_with(|| format!("route:{route}"))
            .clone();
        self.buckets.insert(
            (name, major),
            Bucket {
                remaining: 0,
                reset_at: until,
            },
        );
    }

    /// Keeps the tables under [`MAX_ENTRIES`].
    fn make_room(&mut self, now: Instant) {
        if self.buckets.len() >= MAX_ENTRIES {
            self.buckets.retain(|_, b| b.reset_at > now);
        }
        if self.buckets.len() >= MAX_ENTRIES {
            self.buckets.clear();
        }
        if self.routes.len() >= MAX_ENTRIES {
            self.routes.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &str = "DELETE /channels/{id}";

    #[test]
    fn unknown_bucket_goes() {
        let mut l = RateLimits::new();
        assert_eq!(l.check(R, 1, Instant::now()), Verdict::Go);
    }

    #[test]
    fn empty_bucket_waits_until_reset() {
        let mut l = RateLimits::new();
        let t0 = Instant::now();
        l.observe(R, 1, Some("abc"), Some(1), Some(Duration::from_secs(2)), t0);
        assert_eq!(l.check(R, 1, t0), Verdict::Go); // takes the last one
        assert_eq!(l.check(R, 1, t0), Verdict::Wait(Duration::from_secs(2)));
        // Another major parameter is another bucket.
        assert_eq!(l.check(R, 2, t0), Verdict::Go);
        assert_eq!(l.check(R, 1, t0 + Duration::from_secs(2)), Verdict::Go);
    }

    #[test]
    fn a_429_blocks_the_route_and_global_blocks_all() {
        let mut l = RateLimits::new();
        let t0 = Instant::now();
        l.observe_429(R, 1, Duration::from_millis(1500), false, t0);
        assert_eq!(
            l.check(R, 1, t0),
            Verdict::Wait(Duration::from_millis(1500))
        );
        assert_eq!(l.check("POST /guilds/{id}/channels", 1, t0), Verdict::Go);
        l.observe_429(R, 1, Duration::from_secs(3), true, t0);
        assert_eq!(
            l.check("POST /guilds/{id}/channels", 9, t0),
            Verdict::Wait(Duration::from_secs(3))
        );
        assert_eq!(
            l.check("POST /guilds/{id}/channels", 9, t0 + Duration::from_secs(3)),
            Verdict::Go
        );
    }

    #[test]
    fn seconds_parsing_is_bounded() {
        assert_eq!(parse_seconds("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_seconds("-1"), None);
        assert_eq!(parse_seconds("NaN"), None);
        assert_eq!(parse_seconds("1e300"), Some(MAX_WAIT));
    }

    #[test]
    fn tables_stay_bounded() {
        let mut l = RateLimits::new();
        let t0 = Instant::now();
        for i in 0..(MAX_ENTRIES as u64 * 2) {
            l.observe(R, i, Some("b"), Some(5), Some(Duration::from_secs(60)), t0);
        }
        assert!(l.buckets.len() <= MAX_ENTRIES && l.routes.len() <= MAX_ENTRIES);
    }
}
