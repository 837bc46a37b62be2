//! REST rate limits as in `developers/topics/rate-limits.mdx`: per-route buckets keyed
//! by the route and its major parameter, and a global per-second limit.

use std::collections::HashMap;

use tokio::time::{Duration, Instant};

use crate::config::RestRateLimit;

/// A fixed window: `used` requests since `start`.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    used: u32,
}

impl Window {
    fn current(&mut self, now: Instant, len: Duration) -> Duration {
        let elapsed = now.saturating_duration_since(self.start);
        if elapsed >= len {
            self.start = now;
            self.used = 0;
            len
        } else {
            len - elapsed
        }
    }
}

/// What the `X-RateLimit-*` headers report for one bucket.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BucketState {
    pub(crate) bucket: String,
    pub(crate) limit: u32,
    pub(crate) remaining: u32,
    pub(crate) reset_after: Duration,
}

/// The verdict for one request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    /// Go ahead; report these headers.
    Allow(BucketState),
    /// The route's bucket is exhausted: 429, scope `user`.
    Bucket(BucketState),
    /// The global limit is hit: 429, `global: true`, scope `global`.
    Global { retry_after: Duration },
}

/// All buckets of one sim. Bounded by the routes it serves times the ids used as major
/// parameters; expired windows are swept on each check once the map grows.
#[derive(Debug)]
pub(crate) struct RestLimiter {
    cfg: RestRateLimit,
    buckets: HashMap<(String, String), Window>,
    global: Option<Window>,
}

/// A stable, opaque bucket id for a route, like Discord's hashes.
pub(crate) fn bucket_hash(route: &str) -> String {
    // FNV-1a, 64 bit: deterministic across runs.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in route.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

impl RestLimiter {
    pub(crate) fn new(cfg: RestRateLimit) -> Self {
        Self {
            cfg,
            buckets: HashMap::new(),
            global: None,
        }
    }

    /// Counts one request on `route` (a template such as `POST /guilds/{id}/channels`)
    /// with major parameter `major`.
    pub(crate) fn check(&mut self, route: &str, major: &str, now: Instant) -> Decision {
        // rate-limits.mdx "Global Rate Limit": 50 requests per second across routes.
        let global = self.global.get_or_insert(Window {
            start: now,
            used: 0,
        });
        let global_left = global.current(now, Duration::from_secs(1));
        if global.used >= self.cfg.global_per_second {
            return Decision::Global {
                retry_after: global_left,
            };
        }
        if self.buckets.len() > 10_000 {
            let len = self.cfg.bucket_reset_after;
            self.buckets
                .retain(|_, w| now.saturating_duration_since(w.start) < len);
        }
        let hash = bucket_hash(route);
        let window = self
            .buckets
            .entry((hash.clone(), major.to_owned()))
            .or_insert(Window {
                start: now,
                used: 0,
            });
        let reset_after = window.current(now, self.cfg.bucket_reset_after);
        let limit = self.cfg.bucket_limit;
        if window.used >= limit {
            return Decision::Bucket(BucketState {
                bucket: hash,
                limit,
                remaining: 0,
                reset_after,
            });
        }
        window.used += 1;
        global.used += 1;
        Decision::Allow(BucketState {
            bucket: hash,
            limit,
            remaining: limit - window.used,
            reset_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(limit: u32, global: u32) -> RestLimiter {
        RestLimiter::new(RestRateLimit {
            bucket_limit: limit,
            bucket_reset_after: Duration::from_secs(5),
            global_per_second: global,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_exhausts_then_resets() {
        let mut l = limiter(2, 50);
        let now = Instant::now();
        assert!(matches!(
            l.check("r", "1", now),
            Decision::Allow(BucketState { remaining: 1, .. })
        ));
        assert!(matches!(
            l.check("r", "1", now),
            Decision::Allow(BucketState { remaining: 0, .. })
        ));
        assert!(matches!(l.check("r", "1", now), Decision::Bucket(_)));
        // Another major parameter has its own bucket.
        assert!(matches!(l.check("r", "2", now), Decision::Allow(_)));
        let later = now + Duration::from_secs(5);
        assert!(matches!(
            l.check("r", "1", later),
            Decision::Allow(BucketState { remaining: 1, .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn global_limit_applies_across_routes() {
        let mut l = limiter(100, 3);
        let now = Instant::now();
        for i in 0..3 {
            assert!(matches!(
                l.check("r", &i.to_string(), now),
                Decision::Allow(_)
            ));
        }
        assert!(matches!(l.check("q", "x", now), Decision::Global { .. }));
        assert!(matches!(
            l.check("q", "x", now + Duration::from_secs(1)),
            Decision::Allow(_)
        ));
    }

    #[test]
    fn bucket_hash_is_stable() {
        assert_eq!(bucket_hash("a"), bucket_hash("a"));
        assert_ne!(bucket_hash("a"), bucket_hash("b"));
    }
}
