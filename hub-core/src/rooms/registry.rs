//! [`Registry`]: what the routes talk to — the sync file store ([`RoomStore`]) or, with
//! `REDIS_URL`, the shared [`RedisRoomStore`]. Async, so a Redis round trip never blocks
//! the runtime; the file path never awaits.

use std::sync::Arc;

use super::redis_store::RedisRoomStore;
use super::store::{CreatedRoom, KeyState, Room, RoomStore, StoreError};

/// The room registry of this hub.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Registry {
    /// In this process, durable in `DATA_DIR`.
    Local(Arc<dyn RoomStore>),
    /// In Redis, shared by every replica.
    Redis(RedisRoomStore),
}

impl std::fmt::Debug for dyn RoomStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoomStore")
    }
}

impl Registry {
    /// The room `channel_id` of `guild_id`, if this hub created it.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn get(&self, guild_id: u64, channel_id: u64) -> Result<Option<Room>, StoreError> {
        match self {
            Self::Local(s) => Ok(s.get(guild_id, channel_id)),
            Self::Redis(s) => s.get(guild_id, channel_id).await,
        }
    }

    /// Records a new room (durably).
    ///
    /// # Errors
    /// [`StoreError`] if it could not be made durable (it is then not recorded).
    pub async fn insert(
        &self,
        guild_id: u64,
        channel_id: u64,
        room: Room,
    ) -> Result<(), StoreError> {
        match self {
            Self::Local(s) => s.insert(guild_id, channel_id, room),
            Self::Redis(s) => s.insert(guild_id, channel_id, room).await,
        }
    }

    /// Forgets a room; returns it if it was known.
    ///
    /// # Errors
    /// [`StoreError`] if the removal could not be made durable.
    pub async fn remove(&self, guild_id: u64, channel_id: u64) -> Result<Option<Room>, StoreError> {
        match self {
            Self::Local(s) => s.remove(guild_id, channel_id),
            Self::Redis(s) => s.remove(guild_id, channel_id).await,
        }
    }

    /// Every room of a guild.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn rooms(&self, guild_id: u64) -> Result<Vec<(u64, Room)>, StoreError> {
        match self {
            Self::Local(s) => Ok(s.rooms(guild_id)),
            Self::Redis(s) => s.rooms(guild_id).await,
        }
    }

    /// Notes that somebody is in the room's voice channel now.
    pub async fn mark_nonempty(&self, guild_id: u64, channel_id: u64, now_ms: i64) {
        match self {
            Self::Local(s) => s.mark_nonempty(guild_id, channel_id, now_ms),
            Self::Redis(s) => s.mark_nonempty(guild_id, channel_id, now_ms).await,
        }
    }

    /// The stored answer of idempotency key `key` of user `sub` (unless expired) or, when
    /// there is none, a claim on the key while this request runs; [`KeyState::Busy`] when
    /// another replica holds the claim (Redis; a claim expires by itself after a minute).
    /// The file store never answers `Busy`: the route already serialises requests per key
    /// in this process.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn answer_or_claim(
        &self,
        guild_id: u64,
        sub: &str,
        key: &str,
        now_ms: i64,
    ) -> Result<KeyState, StoreError> {
        match self {
            Self::Local(s) => Ok(s
                .idempotent(guild_id, sub, key, now_ms)
                .map_or(KeyState::Claimed, KeyState::Answered)),
            Self::Redis(s) => s.answer_or_claim(guild_id, sub, key).await,
        }
    }

    /// Stores the answer for an idempotency key until `expires_at_ms`.
    ///
    /// # Errors
    /// [`StoreError`] if it could not be made durable.
    pub async fn remember(
        &self,
        guild_id: u64,
        sub: &str,
        key: &str,
        answer: CreatedRoom,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        match self {
            Self::Local(s) => s.remember(guild_id, sub, key, answer, expires_at_ms),
            Self::Redis(s) => {
                s.remember(guild_id, sub, key, &answer, expires_at_ms - now_ms)
                    .await
            }
        }
    }

    /// Releases a claim taken by [`Registry::answer_or_claim`] (best effort).
    pub async fn release_key(&self, guild_id: u64, sub: &str, key: &str) {
        if let Self::Redis(s) = self {
            s.release_key(guild_id, sub, key).await;
        }
    }

    /// `Err(what is wrong)` while the file store cannot make writes durable (Redis is
    /// reported by the hub's own health).
    pub fn health(&self) -> Result<(), String> {
        match self {
            Self::Local(s) => s.health(),
            Self::Redis(_) => Ok(()),
        }
    }

    /// Makes everything durable (on shutdown; Redis writes already are).
    ///
    /// # Errors
    /// [`StoreError`] on a write failure.
    pub fn flush(&self) -> Result<(), StoreError> {
        match self {
            Self::Local(s) => s.flush(),
            Self::Redis(_) => Ok(()),
        }
    }
}
