//! Heartbeating and the ACK watchdog.
//!
//! Rules (`events/gateway.mdx`, "Sending Heartbeats"): after HELLO, wait
//! `heartbeat_interval * jitter` (jitter in [0, 1)) for the first heartbeat,
//! then send one every `heartbeat_interval`.
//!
//! **Zombie rule.** The docs: "If a client does not receive a heartbeat ACK
//! between its attempts at sending heartbeats, this may be due to a failed or
//! 'zombied' connection. The client should immediately terminate the
//! connection with any close code besides 1000 or 1001, then reconnect and
//! attempt to Resume." We check this when the next heartbeat is due.
//!
//! **Deliberate deviation (burst tolerance).** An ACK can sit in the socket
//! behind a large burst (a big GUILD_CREATE, a resume replay) and be read
//! after the next heartbeat is due, which would make a strict reading
//! declare a healthy connection dead (disgord #415). So when the ACK is
//! missing but at least one frame arrived *after* our last heartbeat, the
//! connection is demonstrably alive: we send the next heartbeat and give it
//! one more interval (a single grace period). If that heartbeat is not
//! acknowledged either, the connection is a zombie, traffic or not. Unlike
//! twilight (any traffic counts as liveness forever) a peer that keeps
//! sending but never ACKs is still caught within two intervals.

use std::time::{Duration, Instant};

/// What to do when the heartbeat timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Beat {
    /// Send a heartbeat now; the next one is due at the given instant.
    Send { next: Instant },
    /// No ACK since the last heartbeat: the connection is zombied.
    Zombie,
}

/// Heartbeat state of one connection.
#[derive(Debug, Clone)]
pub(crate) struct Heartbeat {
    interval: Duration,
    /// When the last scheduled heartbeat was sent, `None` before the first.
    last_sent: Option<Instant>,
    /// Whether an ACK arrived since `last_sent`.
    acked: bool,
    /// Whether any frame arrived since `last_sent`.
    traffic_since_beat: bool,
    /// Whether the current missing ACK already used its grace period.
    grace_used: bool,
    /// Round trip of the last acknowledged heartbeat.
    latency: Option<Duration>,
}

impl Heartbeat {
    /// Start heartbeating at HELLO; returns the state and when the first
    /// heartbeat is due (`interval * jitter`, `jitter` in [0, 1)).
    pub(crate) fn start(interval: Duration, jitter: f64, now: Instant) -> (Self, Instant) {
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let first = now + interval.mul_f64(jitter).min(interval);
        let heartbeat = Self {
            interval,
            last_sent: None,
            acked: true,
            traffic_since_beat: false,
            grace_used: false,
            latency: None,
        };
        (heartbeat, first)
    }

    pub(crate) const fn latency(&self) -> Option<Duration> {
        self.latency
    }

    /// The heartbeat timer fired at `now`.
    pub(crate) fn due(&mut self, now: Instant) -> Beat {
        if !self.acked {
            // Zombie rule, with the single burst grace (see module docs).
            if self.traffic_since_beat && !self.grace_used {
                self.grace_used = true;
            } else {
                return Beat::Zombie;
            }
        } else {
            self.grace_used = false;
        }
        self.last_sent = Some(now);
        self.acked = false;
        self.traffic_since_beat = false;
        Beat::Send {
            next: now + self.interval,
        }
    }

    /// Any frame arrived.
    pub(crate) const fn on_frame(&mut self) {
        self.traffic_since_beat = true;
    }

    /// A Heartbeat ACK (op 11) arrived.
    pub(crate) fn on_ack(&mut self, now: Instant) {
        if !self.acked {
            if let Some(sent) = self.last_sent {
                self.latency = Some(now.saturating_duration_since(sent));
            }
        }
        self.acked = true;
        self.grace_used = false;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Beat, Heartbeat};

    const I: Duration = Duration::from_millis(41_250);

    #[test]
    fn first_beat_is_jittered_within_interval() {
        let t0 = crate::test_epoch();
        for jitter in [0.0, 0.25, 0.999_999] {
            let (_, first) = Heartbeat::start(I, jitter, t0);
            assert!(first >= t0 && first < t0 + I);
        }
    }

    #[test]
    fn missing_ack_is_zombie() {
        let t0 = crate::test_epoch();
        let (mut hb, first) = Heartbeat::start(I, 0.0, t0);
        let Beat::Send { next } = hb.due(first) else {
            panic!("first beat must be sent");
        };
        assert_eq!(hb.due(next), Beat::Zombie);
    }

    #[test]
    fn ack_keeps_it_alive_and_measures_latency() {
        let t0 = crate::test_epoch();
        let (mut hb, first) = Heartbeat::start(I, 0.0, t0);
        let Beat::Send { next } = hb.due(first) else {
            panic!()
        };
        hb.on_ack(first + Duration::from_millis(80));
        assert_eq!(hb.latency(), Some(Duration::from_millis(80)));
        assert!(matches!(hb.due(next), Beat::Send { .. }));
    }

    #[test]
    fn traffic_after_beat_gives_one_grace_interval() {
        let t0 = crate::test_epoch();
        let (mut hb, first) = Heartbeat::start(I, 0.0, t0);
        let Beat::Send { next } = hb.due(first) else {
            panic!()
        };
        hb.on_frame();
        let Beat::Send { next } = hb.due(next) else {
            panic!("burst before ack must not be a zombie");
        };
        hb.on_frame();
        assert_eq!(hb.due(next), Beat::Zombie, "only one grace interval");
    }
}
