//! A gateway session: its sequence counter and the dispatches kept for RESUME replay.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::Notify;
use tokio::time::{Duration, Instant};

use crate::introspect::{ConnId, SessionInfo, SessionStatus};

/// One dispatch as sent: its sequence number and serialised payload.
#[derive(Debug, Clone)]
pub(crate) struct Dispatch {
    pub(crate) seq: u64,
    pub(crate) frame: Arc<str>,
}

/// Where a session is.
#[derive(Debug, Clone)]
pub(crate) enum Status {
    /// Carried by this connection; `wake` tells it new dispatches are buffered.
    Connected { conn: ConnId, wake: Arc<Notify> },
    /// No connection since `since`.
    Disconnected { since: Instant },
    /// Cannot be resumed any more.
    Invalid { reason: String },
}

/// A session created by a successful IDENTIFY.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) id: String,
    pub(crate) seq: u64,
    pub(crate) intents: u64,
    /// Bounded by `replay_capacity`: the oldest dispatch is dropped first, and a RESUME
    /// from before it can no longer be served.
    pub(crate) buffer: VecDeque<Dispatch>,
    capacity: usize,
    pub(crate) status: Status,
}

impl Session {
    pub(crate) fn new(
        id: String,
        intents: u64,
        capacity: usize,
        conn: ConnId,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            id,
            seq: 0,
            intents,
            buffer: VecDeque::new(),
            capacity: capacity.max(1),
            status: Status::Connected { conn, wake },
        }
    }

    /// Whether dispatches still go to this session: it is connected, or disconnected for
    /// less than `resume_timeout` (gateway.mdx "Initiating a Disconnect": the session
    /// "will remain active and timeout after a few minutes"). Expiry is applied lazily.
    pub(crate) fn is_live(&mut self, now: Instant, resume_timeout: Duration) -> bool {
        match &self.status {
            Status::Connected { .. } => true,
            Status::Disconnected { since } => {
                if now.saturating_duration_since(*since) >= resume_timeout {
                    self.status = Status::Invalid {
                        reason: "resume timeout elapsed".to_owned(),
                    };
                    false
                } else {
                    true
                }
            }
            Status::Invalid { .. } => false,
        }
    }

    /// Appends a dispatch with the next sequence number (gateway-events.mdx "Payload
    /// Structure": `s` is the sequence number of op 0 events) and wakes the connection.
    pub(crate) fn push(&mut self, event: &str, d: &serde_json::Value) -> u64 {
        self.seq += 1;
        let frame = serde_json::json!({"op": crate::gateway::codes::OP_DISPATCH, "t": event, "s": self.seq, "d": d}).to_string();
        if self.buffer.len() >= self.capacity {
            self.buffer.pop_front();
        }
        self.buffer.push_back(Dispatch {
            seq: self.seq,
            frame: frame.into(),
        });
        if let Status::Connected { wake, .. } = &self.status {
            wake.notify_one();
        }
        self.seq
    }

    /// The dispatches after `after`, or `None` when some of them were already dropped.
    pub(crate) fn since(&self, after: u64) -> Option<Vec<Dispatch>> {
        if after >= self.seq {
            return Some(Vec::new());
        }
        let first = self.buffer.front()?.seq;
        if first > after + 1 {
            return None;
        }
        Some(
            self.buffer
                .iter()
                .filter(|d| d.seq > after)
                .cloned()
                .collect(),
        )
    }

    /// The connection carrying this session, if any.
    pub(crate) fn conn(&self) -> Option<ConnId> {
        match &self.status {
            Status::Connected { conn, .. } => Some(*conn),
            _ => None,
        }
    }

    pub(crate) fn info(&self) -> SessionInfo {
        SessionInfo {
            session_id: self.id.clone(),
            seq: self.seq,
            intents: self.intents,
            status: match &self.status {
                Status::Connected { conn, .. } => SessionStatus::Connected { conn: *conn },
                Status::Disconnected { .. } => SessionStatus::Disconnected,
                Status::Invalid { reason } => SessionStatus::Invalid {
                    reason: reason.clone(),
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn session(cap: usize) -> Session {
        Session::new("s".into(), 1, cap, ConnId(1), Arc::new(Notify::new()))
    }

    #[test]
    fn sequence_increases_by_one() {
        let mut s = session(10);
        assert_eq!(s.push("A", &json!({})), 1);
        assert_eq!(s.push("B", &json!({})), 2);
        let replay = s.since(0).unwrap_or_default();
        assert_eq!(replay.iter().map(|d| d.seq).collect::<Vec<_>>(), vec![1, 2]);
        assert!(replay[0].frame.contains("\"s\":1"));
    }

    #[test]
    fn replay_from_before_the_buffer_is_refused() {
        let mut s = session(2);
        for _ in 0..4 {
            s.push("A", &json!({}));
        }
        assert!(s.since(1).is_none());
        assert_eq!(s.since(2).map(|v| v.len()), Some(2));
        assert_eq!(s.since(4).map(|v| v.len()), Some(0));
    }

    #[tokio::test(start_paused = true)]
    async fn disconnected_session_expires_after_timeout() {
        let mut s = session(2);
        let since = Instant::now();
        s.status = Status::Disconnected { since };
        assert!(s.is_live(since + Duration::from_secs(59), Duration::from_secs(60)));
        assert!(!s.is_live(since + Duration::from_secs(60), Duration::from_secs(60)));
        assert!(matches!(s.status, Status::Invalid { .. }));
    }
}
