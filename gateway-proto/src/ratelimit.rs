//! The outgoing rate limit: a sliding-window log per connection.
//!
//! `events/gateway.mdx`, "Rate Limiting": an app may send 120 gateway events
//! per connection every 60 seconds; more gets the connection closed with
//! 4008. Heartbeats must never be starved, so ordinary commands may only use
//! the slots left after reserving room for every heartbeat due in a window
//! (`ceil(60 s / interval) + 1`) plus one for IDENTIFY/RESUME.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Payloads allowed per window.
pub const SEND_LIMIT: usize = 120;
/// The window length.
pub const SEND_WINDOW: Duration = Duration::from_secs(60);

/// Sliding-window log of the payloads sent on one connection.
#[derive(Debug, Clone)]
pub(crate) struct RateLimiter {
    sent: VecDeque<Instant>,
    reserved: usize,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self {
            sent: VecDeque::with_capacity(SEND_LIMIT),
            // Before HELLO only IDENTIFY/RESUME go out; keep a conservative
            // reserve until the interval is known.
            reserved: 4,
        }
    }
}

impl RateLimiter {
    /// Reserve room for heartbeats once HELLO gave the interval.
    pub(crate) fn set_heartbeat_interval(&mut self, interval: Duration) {
        let interval_ms = interval.as_millis().max(1);
        let window_ms = SEND_WINDOW.as_millis();
        let beats = window_ms.div_ceil(interval_ms);
        let reserved = usize::try_from(beats)
            .unwrap_or(SEND_LIMIT)
            .saturating_add(2);
        self.reserved = reserved.min(SEND_LIMIT);
    }

    fn prune(&mut self, now: Instant) {
        while let Some(&oldest) = self.sent.front() {
            if oldest + SEND_WINDOW <= now {
                self.sent.pop_front();
            } else {
                break;
            }
        }
    }

    /// Whether a payload may be sent at `now`. `priority` payloads
    /// (heartbeats, IDENTIFY, RESUME) may use the reserved slots.
    pub(crate) fn can_send(&mut self, now: Instant, priority: bool) -> bool {
        self.prune(now);
        let limit = if priority {
            SEND_LIMIT
        } else {
            SEND_LIMIT - self.reserved
        };
        self.sent.len() < limit
    }

    /// Record a payload sent at `now`.
    pub(crate) fn record(&mut self, now: Instant) {
        self.prune(now);
        self.sent.push_back(now);
    }

    /// When the oldest entry leaves the window (the next slot frees up).
    pub(crate) fn next_free(&self) -> Option<Instant> {
        self.sent.front().map(|&oldest| oldest + SEND_WINDOW)
    }

    #[cfg(test)]
    pub(crate) const fn reserved(&self) -> usize {
        self.reserved
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{RateLimiter, SEND_LIMIT, SEND_WINDOW};

    #[test]
    fn reserves_heartbeat_room() {
        let mut limiter = RateLimiter::default();
        limiter.set_heartbeat_interval(Duration::from_millis(41_250));
        // ceil(60 / 41.25) = 2 heartbeats, +1, +1 for identify/resume.
        assert_eq!(limiter.reserved(), 4);
        let t0 = crate::test_epoch();
        let mut commands = 0;
        while limiter.can_send(t0, false) {
            limiter.record(t0);
            commands += 1;
        }
        assert_eq!(commands, SEND_LIMIT - 4);
        assert!(limiter.can_send(t0, true), "heartbeats still have room");
        assert_eq!(limiter.next_free(), Some(t0 + SEND_WINDOW));
        assert!(limiter.can_send(t0 + SEND_WINDOW, false));
    }

    #[test]
    fn never_more_than_the_limit() {
        let mut limiter = RateLimiter::default();
        let t0 = crate::test_epoch();
        for _ in 0..SEND_LIMIT {
            assert!(limiter.can_send(t0, true));
            limiter.record(t0);
        }
        assert!(!limiter.can_send(t0, true));
    }
}
