//! The machine's timers: one small table, its minimum is `poll_timeout`.

use std::time::Instant;

/// Something that happens at a point in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// The current phase's deadline (connect, HELLO, READY/RESUMED, close).
    Phase = 0,
    /// The next heartbeat is due (and the ACK watchdog checks).
    Heartbeat = 1,
    /// Time to open the next connection (backoff, identify budget).
    Reconnect = 2,
    /// The rate limiter frees a slot for a queued payload.
    SendQueue = 3,
}

const TIMER_COUNT: usize = 4;
const ALL: [Timer; TIMER_COUNT] = [
    Timer::Phase,
    Timer::Heartbeat,
    Timer::Reconnect,
    Timer::SendQueue,
];

/// A fixed table of optional deadlines.
#[derive(Debug, Clone, Default)]
pub(crate) struct TimerTable {
    data: [Option<Instant>; TIMER_COUNT],
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.data[timer as usize] = Some(at);
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.data[timer as usize] = None;
    }

    pub(crate) fn stop_all(&mut self) {
        self.data = [None; TIMER_COUNT];
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.data.iter().flatten().min().copied()
    }

    /// Whether `timer` is set and due at `now`; if so it is cleared.
    pub(crate) fn take_expired(&mut self, timer: Timer, now: Instant) -> bool {
        match self.data[timer as usize] {
            Some(at) if at <= now => {
                self.data[timer as usize] = None;
                true
            }
            _ => false,
        }
    }

    /// The timers in the order they are handled when several are due.
    pub(crate) const fn all() -> [Timer; TIMER_COUNT] {
        ALL
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Timer, TimerTable};

    #[test]
    fn next_is_the_minimum() {
        let t0 = crate::test_epoch();
        let mut table = TimerTable::default();
        assert_eq!(table.next(), None);
        table.set(Timer::Heartbeat, t0 + Duration::from_secs(5));
        table.set(Timer::Phase, t0 + Duration::from_secs(2));
        assert_eq!(table.next(), Some(t0 + Duration::from_secs(2)));
        assert!(!table.take_expired(Timer::Phase, t0));
        assert!(table.take_expired(Timer::Phase, t0 + Duration::from_secs(2)));
        assert_eq!(table.next(), Some(t0 + Duration::from_secs(5)));
        table.stop_all();
        assert_eq!(table.next(), None);
    }
}
