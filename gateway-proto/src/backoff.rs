//! Reconnect backoff: exponential with full jitter, capped.
//!
//! Used for every reconnect, whatever its cause (server closes included), so
//! a peer that keeps closing cannot make the machine spin. The attempt count
//! resets once a session has stayed connected for a while.

use std::time::Duration;

/// Backoff state.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    base: Duration,
    cap: Duration,
    attempts: u32,
}

impl Backoff {
    pub(crate) const fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            attempts: 0,
        }
    }

    /// The ceiling of the next delay: `min(cap, base * 2^attempts)`.
    pub(crate) fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempts.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The next delay, uniformly random in `[0, ceiling]` ("full jitter").
    pub(crate) fn next_delay(&mut self, rng: &mut fastrand::Rng) -> Duration {
        let ceiling = self.ceiling();
        self.attempts = self.attempts.saturating_add(1);
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rng.u64(0..=ceiling_ms))
    }

    pub(crate) const fn reset(&mut self) {
        self.attempts = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Backoff;

    #[test]
    fn grows_then_caps_and_resets() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let mut ceilings = Vec::new();
        for _ in 0..10 {
            let ceiling = backoff.ceiling();
            let delay = backoff.next_delay(&mut rng);
            assert!(delay <= ceiling);
            ceilings.push(ceiling.as_secs());
        }
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
        backoff.reset();
        assert_eq!(backoff.ceiling(), Duration::from_secs(1));
    }

    #[test]
    fn huge_attempt_counts_do_not_overflow() {
        let mut rng = fastrand::Rng::with_seed(1);
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        for _ in 0..100 {
            assert!(backoff.next_delay(&mut rng) <= Duration::from_secs(60));
        }
    }
}
