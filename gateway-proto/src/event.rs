//! Events for the application, from
//! [`Gateway::poll_event`](crate::Gateway::poll_event).

use std::fmt;
use std::time::Duration;

use crate::close_code::CloseCode;
use crate::dispatch::Dispatch;
use crate::error::FatalError;

/// Something the application should know about.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A dispatch (op 0), typed or raw as the event filter says.
    Dispatch(Dispatch),
    /// READY arrived: a *new* session is live. State the application built
    /// from an earlier session may have diverged (events were lost); this is
    /// the moment to reconcile it. Emitted just before the READY dispatch.
    Ready {
        /// The new session's id.
        session_id: String,
    },
    /// RESUMED arrived: the replay is complete and the session continues
    /// without loss.
    Resumed {
        /// How many dispatches were replayed.
        replayed: u64,
    },
    /// The connection ended (or never opened) and the machine will connect
    /// again after `delay`.
    Reconnecting {
        /// Why.
        reason: ReconnectReason,
        /// Whether the next connection resumes (`true`) or identifies a new
        /// session (`false`).
        resume: bool,
        /// How long the machine waits before connecting.
        delay: Duration,
    },
    /// The shutdown the application asked for is complete.
    Shutdown,
    /// Discord closed the session with a fatal code; the machine has
    /// stopped. The error says what an operator must fix.
    Fatal(FatalError),
}

/// Why the machine reconnects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReconnectReason {
    /// Discord (or the network) closed the connection.
    Closed(CloseCode),
    /// The transport could not be opened.
    ConnectFailed,
    /// Discord sent Reconnect (op 7).
    Reconnect,
    /// Discord sent Invalid Session (op 9).
    InvalidSession {
        /// Its `d`: whether the session may be resumed.
        resumable: bool,
    },
    /// No Heartbeat ACK arrived in time: the connection is zombied.
    Zombie,
    /// A phase missed its deadline.
    Deadline(Phase),
    /// A frame could not be decoded or decompressed.
    BadFrame,
    /// The next IDENTIFY must wait for the session start limit
    /// (`session_start_limit` of `GET /gateway/bot`).
    SessionStartLimit,
}

impl fmt::Display for ReconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed(code) => write!(f, "connection closed: {code}"),
            Self::ConnectFailed => f.write_str("connect failed"),
            Self::Reconnect => f.write_str("discord asked to reconnect"),
            Self::InvalidSession { resumable: true } => f.write_str("invalid session (resumable)"),
            Self::InvalidSession { resumable: false } => f.write_str("invalid session"),
            Self::Zombie => f.write_str("no heartbeat ack: zombied connection"),
            Self::Deadline(phase) => write!(f, "{phase} deadline missed"),
            Self::BadFrame => f.write_str("bad frame"),
            Self::SessionStartLimit => f.write_str("waiting for the session start limit"),
        }
    }
}

/// A phase with a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Opening the transport.
    Connect,
    /// Waiting for HELLO.
    Hello,
    /// Waiting for READY after IDENTIFY.
    Ready,
    /// Waiting for RESUMED after RESUME.
    Resumed,
    /// Waiting for the peer's close frame.
    Close,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect",
            Self::Hello => "hello",
            Self::Ready => "ready",
            Self::Resumed => "resumed",
            Self::Close => "close",
        })
    }
}
