//! `ROOM_CREATE_PER_MINUTE`: a sliding one-minute window per user (`sub`), on an explicit
//! clock. Memory is bounded: at most `per_minute` instants per user and
//! [`MAX_USERS`] users (idle users are dropped first).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// The window.
const WINDOW: Duration = Duration::from_secs(60);
/// Most users tracked at once.
pub(crate) const MAX_USERS: usize = 100_000;

/// Per-user room-creation limiter.
#[derive(Debug)]
pub struct CreateRateLimiter {
    per_minute: usize,
    users: HashMap<String, VecDeque<Instant>>,
}

impl CreateRateLimiter {
    /// Allows `per_minute` creations per user in any 60-second window.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1) as usize,
            users: HashMap::new(),
        }
    }

    /// Takes one creation for `sub` at `now`.
    ///
    /// # Errors
    /// The time to wait until the oldest creation in the window leaves it.
    pub fn check(&mut self, sub: &str, now: Instant) -> Result<(), Duration> {
        if !self.users.contains_key(sub) && self.users.len() >= MAX_USERS {
            self.users.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|&t| now.saturating_duration_since(t) < WINDOW)
            });
            if self.users.len() >= MAX_USERS {
                return Err(WINDOW); // Under a flood of distinct users, refuse new ones.
            }
        }
        let times = self.users.entry(sub.to_owned()).or_default();
        while times
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= WINDOW)
        {
            times.pop_front();
        }
        if times.len() >= self.per_minute {
            let oldest = times.front().copied().unwrap_or(now);
            return Err(WINDOW.saturating_sub(now.saturating_duration_since(oldest)));
        }
        times.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_user_with_retry_after() {
        let mut l = CreateRateLimiter::new(2);
        let t0 = Instant::now();
        assert!(l.check("a", t0).is_ok());
        assert!(l.check("a", t0 + Duration::from_secs(10)).is_ok());
        assert_eq!(
            l.check("a", t0 + Duration::from_secs(20)),
            Err(Duration::from_secs(40))
        );
        assert!(
            l.check("b", t0 + Duration::from_secs(20)).is_ok(),
            "per user"
        );
        assert!(
            l.check("a", t0 + Duration::from_secs(60)).is_ok(),
            "window slid"
        );
        assert!(l.check("a", t0 + Duration::from_secs(61)).is_err());
    }
}
