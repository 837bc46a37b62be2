//! The seam between the hub and where its stream state lives.
//!
//! A [`Backend`] owns, per guild: the seq counter and replay buffer, the presence state, and
//! the webhook dedupe keys. [`super::MemoryBackend`] keeps them in this process (persisted to
//! `DATA_DIR`). The Redis stream ([`super::RedisStream`], `REDIS_URL`) is networked and shared
//! by replicas, so it plugs in one level up, behind the async [`super::Hub`] API (its
//! fan-out is driven by a tail of the shared stream, not by the local ingest). The [`super::Hub`] calls a backend under one lock, so a backend
//! needs no locking of its own, and "read the replay, then subscribe" is atomic with respect
//! to "append, then publish".

use bytes::Bytes;

use super::error::BackendError;
use super::event::Change;
use super::stream::{Replay, StoredEvent};

/// A key that marks a webhook delivery as already seen.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DedupeKey {
    /// The worker's event `id` (catches retries).
    EventId(String),
    /// The request's HMAC (catches a captured request replayed within the skew window).
    Mac([u8; 32]),
}

/// Stream state storage: append with seq, replay since, presence snapshot, dedupe keys.
pub trait Backend: Send {
    /// Seq of the latest event of the guild's stream (0 before the first).
    ///
    /// # Errors
    /// [`BackendError::Unavailable`] when the store cannot be reached.
    fn head(&mut self, guild_id: u64) -> Result<u64, BackendError>;

    /// Applies a validated change to presence and appends every resulting event to the
    /// stream with the next seqs; returns the stored events (with their encoded frames), in
    /// order. No change -> no events.
    ///
    /// # Errors
    /// [`BackendError`] when the store (or the seq reservation) fails; nothing was appended.
    fn apply(
        &mut self,
        guild_id: u64,
        change: &Change,
        now_ms: i64,
    ) -> Result<Vec<StoredEvent>, BackendError>;

    /// The events after `since`, or [`Replay::TooOld`] when some are no longer held.
    ///
    /// # Errors
    /// [`BackendError::Unavailable`] when the store cannot be reached.
    fn replay_since(
        &mut self,
        guild_id: u64,
        since: u64,
        now_ms: i64,
    ) -> Result<Replay, BackendError>;

    /// The snapshot message (contract §3.3) at the current head.
    ///
    /// # Errors
    /// [`BackendError::Unavailable`] when the store cannot be reached.
    fn snapshot(&mut self, guild_id: u64) -> Result<Bytes, BackendError>;

    /// Registers rooms without emitting events (rooms from the durable room registry that a
    /// crash made the stream forget). Returns how many were new.
    ///
    /// # Errors
    /// [`BackendError::Unavailable`] when the store cannot be reached.
    fn adopt_rooms(
        &mut self,
        guild_id: u64,
        rooms: &[(u64, Option<String>)],
    ) -> Result<usize, BackendError>;

    /// Users in a voice channel, `None` if the channel is unknown.
    fn members(&mut self, guild_id: u64, channel_id: u64) -> Option<usize>;

    /// Whether a dedupe key was seen and has not expired.
    ///
    /// # Errors
    /// [`BackendError::Unavailable`] when the store cannot be reached.
    fn seen(&mut self, guild_id: u64, key: &DedupeKey, now_ms: i64) -> Result<bool, BackendError>;

    /// Remembers a dedupe key until `expires_ms`.
    ///
    /// # Errors
    /// [`BackendError::Unavailable`] when the store cannot be reached.
    fn remember(
        &mut self,
        guild_id: u64,
        key: DedupeKey,
        expires_ms: i64,
        now_ms: i64,
    ) -> Result<(), BackendError>;

    /// Makes the state durable (on shutdown).
    ///
    /// # Errors
    /// [`BackendError::Persist`] when writing fails.
    fn persist(&mut self, now_ms: i64) -> Result<(), BackendError>;

    /// Whether the backend can serve.
    ///
    /// # Errors
    /// [`BackendError::Unavailable`] naming what is down.
    fn health(&mut self) -> Result<(), BackendError>;
}
