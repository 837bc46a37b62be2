//! The session machine's states.
//!
//! ```text
//!            start                    transport open          HELLO (session)
//!   Idle ───────────► Connecting ─────────────────► AwaitingHello ──────────► Resuming
//!    ▲                  │    ▲                           │ HELLO (none)          │ RESUMED
//!    │ (never)          │    │ backoff / identify        ▼                       ▼
//!    │                  │    │ budget elapsed        Identifying ──READY──► Connected
//!    │                  │    │                                                   │
//!    │   connect failed,│  WaitingToReconnect ◄── close / drop / deadline / ─────┘
//!    │   deadline       └──────►  ▲    ▲          zombie / op 7 / op 9 (any state
//!    │                            │    │          with a transport)
//!    │                            │    └── close handshake done or timed out ──┐
//!    │                            │                                           Closing
//!    │   shutdown (any live state) ─────────────────────────────────────────► │
//!    └── Closed ◄─────────────────────────────────── close done (shutdown) ───┘
//!          │ start: connect again (resumes the kept session)
//!
//!   Fatal: terminal, entered from any state with a transport on a fatal
//!   close code (4004, 4010–4014).
//! ```

use std::fmt;
use std::time::Instant;

use crate::error::FatalError;

/// What happens once the close handshake finishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AfterClose {
    /// Reconnect at the given instant.
    Reconnect { at: Instant },
    /// Stop: the application asked for a shutdown.
    Shutdown,
}

/// The machine's state; each variant holds only what its phase needs.
/// Timers live in the timer table, per-connection data in the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum State {
    /// Not started.
    Idle,
    /// Waiting for the backoff (or the identify budget) before connecting.
    WaitingToReconnect,
    /// A `Connect` was handed out; waiting for the transport to open.
    Connecting,
    /// Transport open; waiting for HELLO.
    AwaitingHello,
    /// IDENTIFY sent; waiting for READY.
    Identifying,
    /// RESUME sent; receiving the replay until RESUMED.
    Resuming {
        /// Dispatches replayed so far.
        replayed: u64,
    },
    /// The session is live.
    Connected {
        /// When READY or RESUMED arrived (for the backoff reset).
        since: Instant,
    },
    /// We sent a close frame; waiting for the peer's.
    Closing {
        /// What to do afterwards.
        then: AfterClose,
    },
    /// Stopped after a shutdown; `start` connects again.
    Closed,
    /// Stopped for good.
    Fatal(FatalError),
}

impl State {
    pub(crate) const fn kind(&self) -> StateKind {
        match self {
            Self::Idle => StateKind::Idle,
            Self::WaitingToReconnect => StateKind::WaitingToReconnect,
            Self::Connecting => StateKind::Connecting,
            Self::AwaitingHello => StateKind::AwaitingHello,
            Self::Identifying => StateKind::Identifying,
            Self::Resuming { .. } => StateKind::Resuming,
            Self::Connected { .. } => StateKind::Connected,
            Self::Closing { .. } => StateKind::Closing,
            Self::Closed => StateKind::Closed,
            Self::Fatal(_) => StateKind::Fatal,
        }
    }

    /// Whether a transport is open (frames may arrive).
    pub(crate) const fn has_transport(&self) -> bool {
        matches!(
            self,
            Self::AwaitingHello
                | Self::Identifying
                | Self::Resuming { .. }
                | Self::Connected { .. }
                | Self::Closing { .. }
        )
    }
}

/// The machine's state without its data, for inspection and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StateKind {
    /// Not started.
    Idle,
    /// Waiting for the backoff (or the identify budget) before connecting.
    WaitingToReconnect,
    /// Waiting for the transport to open.
    Connecting,
    /// Waiting for HELLO.
    AwaitingHello,
    /// Waiting for READY.
    Identifying,
    /// Receiving a resume's replay.
    Resuming,
    /// The session is live.
    Connected,
    /// Close handshake in progress.
    Closing,
    /// Stopped after a shutdown.
    Closed,
    /// Stopped for good after a fatal close code.
    Fatal,
}

impl StateKind {
    /// A lowercase name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::WaitingToReconnect => "waiting_to_reconnect",
            Self::Connecting => "connecting",
            Self::AwaitingHello => "awaiting_hello",
            Self::Identifying => "identifying",
            Self::Resuming => "resuming",
            Self::Connected => "connected",
            Self::Closing => "closing",
            Self::Closed => "closed",
            Self::Fatal => "fatal",
        }
    }
}

impl fmt::Display for StateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
