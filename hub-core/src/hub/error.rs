//! Errors of the hub: ingest (mapped to HTTP statuses by the router) and start-up.

use std::fmt;

/// Why an event was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IngestError {
    /// The event name is none of `room.created`, `room.deleted`, `voice.joined`, `voice.left`,
    /// `guild.sync` (-> 400).
    UnknownEvent(String),
    /// The payload is malformed: a field missing or not a snowflake string (-> 400).
    BadPayload(String),
    /// The stream backend cannot take events right now (-> 503; the worker retries).
    Unavailable,
}

impl fmt::Display for IngestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownEvent(name) => write!(f, "unknown event {name:?}"),
            Self::BadPayload(why) => write!(f, "bad payload: {why}"),
            Self::Unavailable => f.write_str("event stream unavailable"),
        }
    }
}

impl std::error::Error for IngestError {}

/// Why the hub could not start or persist its state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HubError {
    /// Reading or writing a state file failed.
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A state file exists but cannot be understood; move it aside to start fresh.
    CorruptState {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The configuration is unusable (e.g. a zero replay bound).
    Config(String),
}

impl fmt::Display for HubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, reason } => write!(f, "hub state file {path}: {reason}"),
            Self::CorruptState { path, reason } => write!(
                f,
                "hub state file {path} is corrupt ({reason}); move it aside to start with an empty stream"
            ),
            Self::Config(why) => write!(f, "hub configuration: {why}"),
        }
    }
}

impl std::error::Error for HubError {}

/// A failure of the stream backend (see [`super::Backend`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendError {
    /// The backend cannot be reached or refused the operation.
    Unavailable(String),
    /// Persisting state failed.
    Persist(HubError),
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable(why) => write!(f, "stream backend unavailable: {why}"),
            Self::Persist(e) => write!(f, "persisting the stream failed: {e}"),
        }
    }
}

impl std::error::Error for BackendError {}
