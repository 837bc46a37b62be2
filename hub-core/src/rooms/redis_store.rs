//! [`RedisRoomStore`]: the room registry and idempotency keys in Redis, shared by every
//! replica (`REDIS_URL`), so a room created through one replica can be ended through
//! another and an idempotency key holds across replicas.
//!
//! Keys (per guild `G`, next to the stream's; see `hub::redis`):
//! - `hub:{G}:rooms`: hash, channel id -> room JSON (owner `sub`, name, `createdAt`, ...).
//! - `hub:{G}:roomseen`: hash, channel id -> last time somebody was seen in it (unix ms);
//!   kept apart so that the sweeper's refresh can never resurrect a removed room.
//! - `hub:{G}:idem:<len(sub)>:<sub>:<key>`: the stored answer, `PX` until it expires;
//!   `...:claim` marks a request with that key in progress on some replica (`PX` 60 s).
//!
//! Every call is bounded by the Redis command timeout; any failure is
//! [`StoreError::Unavailable`] (the routes answer 503).

use std::sync::LazyLock;

use ::redis::Script;
use ::redis::aio::ConnectionManager;

use super::store::{CreatedRoom, KeyState, Room, StoreError};
use crate::hub::redis::timed;

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// The Redis-backed registry.
#[derive(Clone)]
pub struct RedisRoomStore {
    conn: ConnectionManager,
}

impl std::fmt::Debug for RedisRoomStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRoomStore").finish_non_exhaustive()
    }
}

fn rooms_key(guild_id: u64) -> String {
    format!("hub:{{{guild_id}}}:rooms")
}

fn seen_key(guild_id: u64) -> String {
    format!("hub:{{{guild_id}}}:roomseen")
}

fn idem_key(guild_id: u64, sub: &str, key: &str) -> String {
    // The length prefix keeps `sub`/`key` pairs unambiguous whatever they contain.
    format!("hub:{{{guild_id}}}:idem:{}:{sub}:{key}", sub.len())
}

impl RedisRoomStore {
    /// A store over the hub's managed Redis connection.
    pub fn new(conn: ConnectionManager) -> Self {
        Self { conn }
    }

    /// The room `channel_id`, if registered.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn get(&self, guild_id: u64, channel_id: u64) -> Result<Option<Room>, StoreError> {
        let mut conn = self.conn.clone();
        let mut pipe = ::redis::pipe();
        pipe.hget(rooms_key(guild_id), channel_id)
            .hget(seen_key(guild_id), channel_id);
        let (room, seen): (Option<String>, Option<i64>) = timed(pipe.query_async(&mut conn))
            .await
            .map_err(unavailable)?;
        Ok(room.and_then(|r| decode(&r, seen)))
    }

    /// Records a room.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn insert(
        &self,
        guild_id: u64,
        channel_id: u64,
        room: Room,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(&room).map_err(unavailable)?;
        let mut conn = self.conn.clone();
        let mut pipe = ::redis::pipe();
        pipe.atomic()
            .hset(rooms_key(guild_id), channel_id, json)
            .ignore()
            .hset(seen_key(guild_id), channel_id, room.last_nonempty)
            .ignore();
        timed(pipe.query_async::<()>(&mut conn))
            .await
            .map_err(unavailable)
    }

    /// Forgets a room; returns it if it was registered.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn remove(&self, guild_id: u64, channel_id: u64) -> Result<Option<Room>, StoreError> {
        let mut conn = self.conn.clone();
        let mut pipe = ::redis::pipe();
        pipe.atomic()
            .hget(rooms_key(guild_id), channel_id)
            .hget(seen_key(guild_id), channel_id)
            .hdel(rooms_key(guild_id), channel_id)
            .ignore()
            .hdel(seen_key(guild_id), channel_id)
            .ignore();
        let (room, seen): (Option<String>, Option<i64>) = timed(pipe.query_async(&mut conn))
            .await
            .map_err(unavailable)?;
        Ok(room.and_then(|r| decode(&r, seen)))
    }

    /// Every registered room of a guild.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn rooms(&self, guild_id: u64) -> Result<Vec<(u64, Room)>, StoreError> {
        let mut conn = self.conn.clone();
        let mut pipe = ::redis::pipe();
        pipe.atomic()
            .hgetall(rooms_key(guild_id))
            .hgetall(seen_key(guild_id));
        let (rooms, seen): (
            std::collections::HashMap<u64, String>,
            std::collections::HashMap<u64, i64>,
        ) = timed(pipe.query_async(&mut conn))
            .await
            .map_err(unavailable)?;
        let mut out: Vec<(u64, Room)> = rooms
            .into_iter()
            .filter_map(|(id, r)| Some((id, decode(&r, seen.get(&id).copied())?)))
            .collect();
        out.sort_by_key(|(id, _)| *id);
        Ok(out)
    }

    /// Notes that somebody is in the room now (best effort).
    pub async fn mark_nonempty(&self, guild_id: u64, channel_id: u64, now_ms: i64) {
        let mut conn = self.conn.clone();
        let mut cmd = ::redis::cmd("HSET");
        cmd.arg(seen_key(guild_id)).arg(channel_id).arg(now_ms);
        if let Err(e) = timed(cmd.query_async::<()>(&mut conn)).await {
            tracing::debug!(error = %e, "could not refresh a room's last_nonempty");
        }
    }

    /// Stores the answer of an idempotency key until `expires_at_ms`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn remember(
        &self,
        guild_id: u64,
        sub: &str,
        key: &str,
        answer: &CreatedRoom,
        ttl_ms: i64,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(answer).map_err(unavailable)?;
        let mut conn = self.conn.clone();
        timed(
            ::redis::cmd("SET")
                .arg(idem_key(guild_id, sub, key))
                .arg(json)
                .arg("PX")
                .arg(ttl_ms.max(1))
                .query_async::<()>(&mut conn),
        )
        .await
        .map_err(unavailable)
    }
}

impl RedisRoomStore {
    /// The stored answer of an idempotency key or, when there is none, a claim on the key
    /// for this request, in one atomic step: a request racing on another replica can never
    /// read "no answer" just before the holder stores its answer and releases the claim,
    /// then claim the key and create a second room.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached or the stored answer is not
    /// one this hub wrote.
    pub async fn answer_or_claim(
        &self,
        guild_id: u64,
        sub: &str,
        key: &str,
    ) -> Result<KeyState, StoreError> {
        let idem = idem_key(guild_id, sub, key);
        let mut conn = self.conn.clone();
        let mut call = ANSWER_OR_CLAIM.key(&idem);
        call.key(format!("{idem}:claim")).arg(CLAIM_TTL_MS);
        let reply: Vec<String> = timed(call.invoke_async(&mut conn))
            .await
            .map_err(unavailable)?;
        match reply.as_slice() {
            [tag, json] if tag == "answer" => serde_json::from_str(json)
                .map(KeyState::Answered)
                .map_err(|_| unavailable("a stored idempotency answer is not valid")),
            [tag] if tag == "claimed" => Ok(KeyState::Claimed),
            [tag] if tag == "busy" => Ok(KeyState::Busy),
            _ => Err(unavailable("unexpected reply to the idempotency claim")),
        }
    }

    /// Releases a claim (best effort: it expires anyway).
    pub async fn release_key(&self, guild_id: u64, sub: &str, key: &str) {
        let mut conn = self.conn.clone();
        let mut cmd = ::redis::cmd("DEL");
        cmd.arg(format!("{}:claim", idem_key(guild_id, sub, key)));
        if let Err(e) = timed(cmd.query_async::<()>(&mut conn)).await {
            tracing::debug!(error = %e, "could not release an idempotency claim");
        }
    }
}

/// How long an idempotency claim lives if its holder dies before releasing it.
const CLAIM_TTL_MS: i64 = 60_000;

/// `{'answer', json}` if the answer is stored, else `{'claimed'}` if the claim was free
/// (now taken, `PX` ARGV[1]), else `{'busy'}`. KEYS: answer, claim.
static ANSWER_OR_CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local answer = redis.call('GET', KEYS[1])
if answer then return {'answer', answer} end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return {'claimed'} end
return {'busy'}
",
    )
});

fn decode(json: &str, seen: Option<i64>) -> Option<Room> {
    let mut room: Room = serde_json::from_str(json).ok()?;
    if let Some(seen) = seen {
        room.last_nonempty = room.last_nonempty.max(seen);
    }
    Some(room)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unambiguous_and_share_the_guild_slot() {
        assert_ne!(idem_key(1, "a:b", "c"), idem_key(1, "a", "b:c"));
        assert!(idem_key(7, "u", "k").starts_with("hub:{7}:"));
        assert_eq!(rooms_key(7), "hub:{7}:rooms");
    }

    #[test]
    fn the_seen_time_refreshes_last_nonempty() {
        let room = Room {
            owner: "u".into(),
            name: "n".into(),
            created_at: 1,
            last_nonempty: 5,
        };
        let json = serde_json::to_string(&room).unwrap_or_default();
        assert_eq!(decode(&json, Some(9)).map(|r| r.last_nonempty), Some(9));
        assert_eq!(decode(&json, Some(2)).map(|r| r.last_nonempty), Some(5));
        assert_eq!(decode("nope", None), None);
    }
}
