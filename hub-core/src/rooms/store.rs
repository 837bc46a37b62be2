//! The registry interface and its records.

use std::fmt;

/// A room the hub created.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    /// JWT `sub` of the user who created it: the only user who may end it.
    pub owner: String,
    /// Its name as Discord stored it.
    pub name: String,
    /// Creation time, unix milliseconds.
    pub created_at: i64,
    /// Last time somebody was seen in its voice channel, unix milliseconds.
    pub last_nonempty: i64,
}

/// The answer of a successful `POST /create-room` (also what an idempotency key replays).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedRoom {
    /// The new channel's id (a snowflake string on the wire).
    #[serde(with = "snowflake")]
    pub channel_id: u64,
    /// Its name.
    pub name: String,
    /// The guild it is in.
    #[serde(with = "snowflake")]
    pub guild_id: u64,
}

/// Snowflakes travel as strings (JSON numbers lose precision above 2^53).
pub(crate) mod snowflake {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(crate) fn serialize<S: Serializer>(id: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text = String::deserialize(d)?;
        crate::config::parse_snowflake_str(&text).ok_or_else(|| D::Error::custom("not a snowflake"))
    }
}

/// The registry could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading or writing the state file failed.
    Io(String),
    /// The state file exists but is not valid.
    Corrupt(String),
    /// The shared store (Redis) cannot be reached.
    Unavailable(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(why) => write!(f, "room registry i/o failed: {why}"),
            Self::Unavailable(why) => write!(f, "room registry unavailable: {why}"),
            Self::Corrupt(why) => write!(
                f,
                "room registry file is invalid: {why} (fix or move it away to start empty)"
            ),
        }
    }
}

impl std::error::Error for StoreError {}

/// What an idempotency key stands for when a request with it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    /// A request with this key succeeded: its stored answer.
    Answered(CreatedRoom),
    /// No answer yet and no request in progress: this request now holds the key.
    Claimed,
    /// A request with this key is in progress on another replica.
    Busy,
}

/// Where rooms and idempotency keys live. Implementations are internally synchronised.
///
/// Writes that return `Ok` are durable (they survive a restart of the hub).
pub trait RoomStore: Send + Sync + 'static {
    /// The room `channel_id` of `guild_id`, if this hub created it.
    fn get(&self, guild_id: u64, channel_id: u64) -> Option<Room>;

    /// Records a new room.
    ///
    /// # Errors
    /// [`StoreError`] if it could not be made durable (it is then not recorded).
    fn insert(&self, guild_id: u64, channel_id: u64, room: Room) -> Result<(), StoreError>;

    /// Forgets a room; returns it if it was known.
    ///
    /// # Errors
    /// [`StoreError`] if the removal could not be made durable.
    fn remove(&self, guild_id: u64, channel_id: u64) -> Result<Option<Room>, StoreError>;

    /// Every room of a guild.
    fn rooms(&self, guild_id: u64) -> Vec<(u64, Room)>;

    /// Notes that somebody is in the room's voice channel now (kept in memory; made durable
    /// with the next write or [`RoomStore::flush`]).
    fn mark_nonempty(&self, guild_id: u64, channel_id: u64, now_ms: i64);

    /// The stored answer for idempotency key `key` of user `sub`, unless expired.
    fn idempotent(&self, guild_id: u64, sub: &str, key: &str, now_ms: i64) -> Option<CreatedRoom>;

    /// Stores the answer for an idempotency key until `expires_at_ms`.
    ///
    /// # Errors
    /// [`StoreError`] if it could not be made durable.
    fn remember(
        &self,
        guild_id: u64,
        sub: &str,
        key: &str,
        answer: CreatedRoom,
        expires_at_ms: i64,
    ) -> Result<(), StoreError>;

    /// `Err(what is wrong)` while the store cannot make writes durable (for `/health`).
    fn health(&self) -> Result<(), String> {
        Ok(())
    }

    /// Makes everything durable (called on shutdown).
    ///
    /// # Errors
    /// [`StoreError`] on a write failure.
    fn flush(&self) -> Result<(), StoreError>;
}
