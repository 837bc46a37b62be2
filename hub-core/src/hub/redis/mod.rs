//! The guild event stream in Redis, shared by several hub replicas (`REDIS_URL`, issue 10).
//!
//! Every replica writes through [`RedisStream`] and tails the same Redis Stream, so clients
//! of any replica see one order and one seq, and resume with `since` on any replica.
//!
//! # Key layout (per guild `G`; the `{G}` hash tag keeps a guild's keys in one cluster slot)
//!
//! | key | type | content |
//! |-----|------|---------|
//! | `hub:{G}:state` | hash | `epoch` (random, set when the state is created), `ver` (bumped by every write), `head` (seq of the latest event), `presence` (JSON rooms and members) |
//! | `hub:{G}:stream` | stream | one entry per event, id `<seq>-0`, fields `f` (the final frame text, encoded once) and `t` (unix ms); `MAXLEN ~ REPLAY_MAX_EVENTS` |
//! | `hub:{G}:id:<event id>` | string | webhook dedupe by event `id`, `PX` 10 min |
//! | `hub:{G}:mac:<hex>` | string | webhook replay protection by request MAC, `PX` until the signature's skew window ends |
//! | `hub:{G}:rooms` | hash | room registry: channel id -> room JSON (owner `sub`, name, times) |
//! | `hub:{G}:idem:<len>:<sub>:<key>` | string | idempotency answer of `POST /create-room`, `PX` 24 h |
//!
//! # Writing
//! A replica computes the presence difference in Rust on its cached copy of the state, then
//! runs one Lua script (`scripts::COMMIT`) that checks the state's `ver` and `epoch` are still
//! what the copy was read at (optimistic concurrency), refuses a seen dedupe key, appends the
//! frames with their seqs as stream ids, bumps `head`/`ver`, stores the new presence and
//! claims the dedupe keys, all atomically. On a conflict (another replica wrote first) it
//! reloads and recomputes. Seqs are therefore contiguous and never assigned twice.
//!
//! # Reading
//! Each replica tails the stream with `XREAD BLOCK` on its own connection (see `tail`) and
//! fans the stored frames out to its sockets unchanged. A subscriber gets the replay (or a
//! snapshot, read atomically with its head) and then joins the local fan-out at exactly the
//! seq the tail has delivered, catching up from the stream if the tail is ahead.
//!
//! # Failure behaviour
//! - Redis unreachable: `/health` answers 503 `{"message":"redis unreachable"}`; webhooks
//!   and room routes answer 503 (the worker retries); new sockets are closed with 1011;
//!   open sockets stay open. The client reconnects by itself ([`::redis::aio::ConnectionManager`]
//!   for commands, a fresh dedicated connection for the tail) and the tail resumes from the
//!   last seq it delivered, so no frame is skipped.
//! - Redis restarted *with* persistence (AOF/RDB): the state and stream are back, the epoch
//!   is unchanged, tailing simply continues.
//! - Redis restarted *without* persistence (the state is gone): the first replica to touch it
//!   creates a new state with a new random `epoch` and a head one past the highest seq it
//!   knew (seqs never go back; the gap makes every `since` a snapshot). Every replica that
//!   sees the epoch change closes its sockets with 1012 (service restart) so clients
//!   reconnect and get a snapshot. Presence is empty until the worker's next `guild.sync`;
//!   dedupe keys and the room registry kept in Redis are lost with it.
//! - A replica that falls more than `REPLAY_MAX_EVENTS` behind (a gap in the stream) closes
//!   its sockets with 1012 too: they resume and get a snapshot.
//!
//! # Limits and cost
//! - Measured (release, loopback Redis 7, 2-vCPU VM, sequential webhooks each emitting two
//!   events): about 200 µs per ingested event with Redis against about 2 µs in-process
//!   (`measure_ingest_cost_with_and_without_redis` in `tests/redis_replicas.rs`). The cost
//!   is one round trip plus the script; presence is rewritten whole on each change (fine for
//!   one guild's voice occupancy, not for tens of thousands of users).
//! - Writers race optimistically: under heavy concurrent writes from many replicas a commit
//!   may be retried (at most 64 times, then 503 and the worker retries).
//! - Single Redis node (or a primary behind a stable address); Redis Cluster and `rediss://`
//!   are not supported by this build (a `rediss://` URL fails at start).
//! - Idempotency keys of `POST /create-room` hold across replicas, also for requests racing
//!   on two replicas: one script reads the stored answer or, if there is none, claims the key
//!   (`SET NX`, 60 s) while its request runs; the other waits for the answer (at most 20 s,
//!   then 503). The answer is stored before the claim is released.
//! - Every replica runs the idle-room sweeper; two deleting the same room is harmless
//!   (Discord answers "Unknown Channel", the second `room.deleted` changes nothing).

mod scripts;
pub(crate) mod tail;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, Value};
use bytes::Bytes;

use super::backend::DedupeKey;
use super::error::{BackendError, HubError};
use super::event::GuildEvent;
use super::persist::PersistedRoom;
use super::presence::Presence;
use super::stream::{Replay, encode_event, encode_snapshot};

/// Longest a Redis command may take before Redis counts as unreachable.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a commit is retried when other replicas keep writing first.
const MAX_COMMIT_ATTEMPTS: usize = 64;
/// What every Redis failure is reported as (`/health`, logs).
pub const UNREACHABLE: &str = "redis unreachable";

fn down<E: std::fmt::Display>(e: E) -> BackendError {
    tracing::debug!(error = %e, "redis command failed");
    BackendError::Unavailable(UNREACHABLE.to_owned())
}

/// The guild's state as last read from (or written to) Redis.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub(crate) epoch: String,
    ver: String,
    pub(crate) head: u64,
    presence: Presence,
}

/// What an ingest did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Committed {
    Applied(usize),
    Ignored,
    Duplicate,
}

enum CommitReply {
    Ok { ver: String, head: u64 },
    Duplicate,
    Conflict,
}

/// One guild's stream state in Redis (see the module docs for the layout).
pub struct RedisStream {
    guild_id: u64,
    client: Client,
    conn: ConnectionManager,
    state_key: String,
    stream_key: String,
    prefix: String,
    replay_max_events: usize,
    replay_max_age_ms: i64,
    cache: Mutex<Option<Arc<Loaded>>>,
    snapshot: Mutex<Option<(String, String, u64, Bytes)>>,
    /// Highest seq this replica has seen (where a re-created state starts after).
    last_seq: AtomicU64,
}

impl std::fmt::Debug for RedisStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never shown.
        f.debug_struct("RedisStream")
            .field("guild_id", &self.guild_id)
            .finish_non_exhaustive()
    }
}

impl RedisStream {
    /// A stream for `guild_id` at `url` (`redis://`). Connects lazily: an unreachable Redis
    /// at start is not an error (the hub reports it in `/health` and recovers by itself).
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`HubError::Config`] when the URL cannot be parsed (the URL is not repeated).
    pub fn new(
        url: &str,
        guild_id: u64,
        replay_max_events: usize,
        replay_max_age_ms: i64,
    ) -> Result<Self, HubError> {
        let client = Client::open(url)
            .map_err(|_| HubError::Config("REDIS_URL is not a usable redis url".to_owned()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|_| HubError::Config("REDIS_URL: cannot set up the redis client".into()))?;
        let prefix = format!("hub:{{{guild_id}}}:");
        Ok(Self {
            guild_id,
            client,
            conn,
            state_key: format!("{prefix}state"),
            stream_key: format!("{prefix}stream"),
            prefix,
            replay_max_events,
            replay_max_age_ms,
            cache: Mutex::new(None),
            snapshot: Mutex::new(None),
            last_seq: AtomicU64::new(0),
        })
    }

    /// The client (the tail opens its own connection from it).
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The stream's key.
    pub(crate) fn stream_key(&self) -> &str {
        &self.stream_key
    }

    /// A command connection (cheap clone of the managed, self-reconnecting one).
    pub(crate) fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    fn dedupe_key(&self, key: &DedupeKey) -> String {
        match key {
            DedupeKey::EventId(id) => format!("{}id:{id}", self.prefix),
            DedupeKey::Mac(mac) => {
                use std::fmt::Write as _;
                let mut s = format!("{}mac:", self.prefix);
                for b in mac {
                    let _ = write!(s, "{b:02x}");
                }
                s
            }
        }
    }

    pub(crate) fn note_seq(&self, seq: u64) {
        self.last_seq.fetch_max(seq, Ordering::Relaxed);
    }

    fn cached(&self) -> Option<Arc<Loaded>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The epoch of the state last read from or written to Redis.
    pub(crate) fn epoch(&self) -> Option<String> {
        self.cached().map(|loaded| loaded.epoch.clone())
    }

    fn set_cache(&self, loaded: Option<Arc<Loaded>>) {
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = loaded;
    }

    /// Reads the state (creating it with a new epoch if Redis has none) and caches it.
    pub(crate) async fn load(&self) -> Result<Arc<Loaded>, BackendError> {
        let epoch = format!("{:016x}", fastrand::u64(..));
        // One past the highest seq known here: a client's `since` can never match the new
        // stream by accident (it gets a snapshot).
        let start = self.last_seq.load(Ordering::Relaxed).saturating_add(1);
        let start = if start == 1 { 0 } else { start };
        let mut conn = self.conn();
        let reply: Vec<Value> = timed(
            scripts::LOAD
                .key(&self.state_key)
                .key(&self.stream_key)
                .arg(epoch)
                .arg(start)
                .invoke_async(&mut conn),
        )
        .await?;
        let field = |i: usize| reply.get(i).and_then(text);
        let (Some(epoch), Some(ver), Some(head), Some(presence)) =
            (field(0), field(1), field(2), field(3))
        else {
            return Err(BackendError::Unavailable("redis state is malformed".into()));
        };
        let head = head
            .parse()
            .map_err(|_| BackendError::Unavailable("redis state is malformed".into()))?;
        let presence = presence_from_json(&presence)
            .ok_or_else(|| BackendError::Unavailable("redis presence is malformed".into()))?;
        self.note_seq(head);
        let loaded = Arc::new(Loaded {
            epoch,
            ver,
            head,
            presence,
        });
        self.set_cache(Some(loaded.clone()));
        Ok(loaded)
    }

    /// Whether any of the keys was seen (used only when a delivery fails validation, so a
    /// duplicate of an accepted event still answers "duplicate").
    pub(crate) async fn any_seen(&self, keys: &[(DedupeKey, i64)]) -> Result<bool, BackendError> {
        if keys.is_empty() {
            return Ok(false);
        }
        let mut cmd = ::redis::cmd("EXISTS");
        for (k, _) in keys {
            cmd.arg(self.dedupe_key(k));
        }
        let mut conn = self.conn();
        let n: u64 = timed(cmd.query_async(&mut conn)).await?;
        Ok(n > 0)
    }

    /// Applies `event` (after claiming the dedupe `keys`, each with its time to live in
    /// ms) and appends what it emits; see the module docs.
    pub(crate) async fn ingest(
        &self,
        keys: &[(DedupeKey, i64)],
        event: &GuildEvent,
        now_ms: i64,
    ) -> Result<Committed, BackendError> {
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            let base = match self.cached() {
                Some(c) => c,
                None => self.load().await?,
            };
            let ours = event.guild_id == self.guild_id;
            let mut presence = base.presence.clone();
            let emitted = if ours {
                presence.apply(&event.change)
            } else {
                Vec::new()
            };
            let frames: Vec<Bytes> = emitted
                .iter()
                .zip(base.head + 1..)
                .map(|(e, seq)| encode_event(self.guild_id, e, now_ms, seq))
                .collect();
            let changed = ours && presence != base.presence;
            let json = if changed {
                presence_to_json(&presence)
            } else {
                String::new()
            };
            let (ver, epoch) = if ours {
                (base.ver.as_str(), base.epoch.as_str())
            } else {
                ("*", "*")
            };
            match self
                .commit(keys, ver, epoch, &json, &frames, now_ms)
                .await?
            {
                CommitReply::Duplicate => return Ok(Committed::Duplicate),
                CommitReply::Conflict => {
                    self.set_cache(None);
                    tokio::task::yield_now().await;
                }
                CommitReply::Ok { ver, head } => {
                    self.note_seq(head);
                    if changed || !frames.is_empty() {
                        self.set_cache(Some(Arc::new(Loaded {
                            epoch: base.epoch.clone(),
                            ver,
                            head,
                            presence,
                        })));
                    }
                    return Ok(if frames.is_empty() {
                        Committed::Ignored
                    } else {
                        Committed::Applied(frames.len())
                    });
                }
            }
        }
        Err(BackendError::Unavailable(
            "redis stream too contended; try again".into(),
        ))
    }

    async fn commit(
        &self,
        keys: &[(DedupeKey, i64)],
        ver: &str,
        epoch: &str,
        presence: &str,
        frames: &[Bytes],
        now_ms: i64,
    ) -> Result<CommitReply, BackendError> {
        let mut inv = scripts::COMMIT.key(&self.state_key);
        inv.key(&self.stream_key);
        for (k, _) in keys {
            inv.key(self.dedupe_key(k));
        }
        inv.arg(ver)
            .arg(epoch)
            .arg(presence)
            .arg(self.replay_max_events)
            .arg(now_ms)
            .arg(keys.len());
        for (_, ttl) in keys {
            inv.arg((*ttl).max(1));
        }
        for f in frames {
            inv.arg(f.as_ref());
        }
        let mut conn = self.conn();
        let reply: Vec<Value> = timed(inv.invoke_async(&mut conn)).await?;
        let field = |i: usize| reply.get(i).and_then(text);
        match field(0).as_deref() {
            Some("dup") => Ok(CommitReply::Duplicate),
            Some("conflict") => Ok(CommitReply::Conflict),
            Some("ok") => {
                let ver = field(1).unwrap_or_default();
                let head = field(2).and_then(|h| h.parse().ok()).unwrap_or(0);
                Ok(CommitReply::Ok { ver, head })
            }
            _ => Err(BackendError::Unavailable("unexpected redis reply".into())),
        }
    }

    /// The head and the events after `since` (or [`Replay::TooOld`]), read atomically.
    pub(crate) async fn replay(
        &self,
        since: u64,
        now_ms: i64,
    ) -> Result<(u64, Replay), BackendError> {
        let mut conn = self.conn();
        let reply: Vec<Value> = timed(
            scripts::REPLAY
                .key(&self.state_key)
                .key(&self.stream_key)
                .arg(since)
                .arg(self.replay_max_events)
                .invoke_async(&mut conn),
        )
        .await?;
        if reply.is_empty() {
            // No state yet: create it (a fresh Redis) and treat the client as too old.
            let loaded = self.load().await?;
            return Ok((loaded.head, Replay::TooOld));
        }
        let head: u64 = reply
            .get(1)
            .and_then(text)
            .and_then(|h| h.parse().ok())
            .ok_or_else(|| BackendError::Unavailable("redis state is malformed".into()))?;
        self.note_seq(head);
        if reply.get(2).and_then(text).as_deref() != Some("ok") {
            return Ok((head, Replay::TooOld));
        }
        let entries = reply.get(3).map(entries).unwrap_or_default();
        let oldest_allowed = now_ms.saturating_sub(self.replay_max_age_ms);
        let complete = entries.len() as u64 == head - since
            && entries.iter().zip(since + 1..).all(|(e, seq)| e.0 == seq)
            && entries.first().is_none_or(|e| e.1 >= oldest_allowed);
        if !complete {
            return Ok((head, Replay::TooOld));
        }
        Ok((
            head,
            Replay::Events(entries.into_iter().map(|e| e.2).collect()),
        ))
    }

    /// The frames of seqs `from..=to`, which must all still be held.
    pub(crate) async fn range(&self, from: u64, to: u64) -> Result<Vec<Bytes>, BackendError> {
        let mut conn = self.conn();
        let reply: Value = timed(
            ::redis::cmd("XRANGE")
                .arg(&self.stream_key)
                .arg(format!("{from}-0"))
                .arg(format!("{to}-0"))
                .query_async(&mut conn),
        )
        .await?;
        let got = entries(&reply);
        if got.len() as u64 != to + 1 - from || got.iter().zip(from..).any(|(e, s)| e.0 != s) {
            return Err(BackendError::Unavailable(
                "stream events were trimmed".into(),
            ));
        }
        Ok(got.into_iter().map(|e| e.2).collect())
    }

    /// The snapshot frame and its head, read atomically (cached per state version).
    pub(crate) async fn snapshot(&self) -> Result<(u64, Bytes), BackendError> {
        let loaded = self.load().await?;
        let mut cache = self.snapshot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((epoch, ver, head, frame)) = &*cache {
            if *epoch == loaded.epoch && *ver == loaded.ver {
                return Ok((*head, frame.clone()));
            }
        }
        let frame = encode_snapshot(&loaded.presence, loaded.head);
        *cache = Some((
            loaded.epoch.clone(),
            loaded.ver.clone(),
            loaded.head,
            frame.clone(),
        ));
        Ok((loaded.head, frame))
    }

    /// Registers rooms (from the durable registry) in presence without emitting events.
    pub(crate) async fn adopt_rooms(
        &self,
        rooms: &[(u64, Option<String>)],
    ) -> Result<usize, BackendError> {
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            let base = self.load().await?;
            let mut presence = base.presence.clone();
            let adopted = rooms
                .iter()
                .filter(|(id, name)| presence.adopt(*id, name.clone()))
                .count();
            if adopted == 0 {
                return Ok(0);
            }
            let json = presence_to_json(&presence);
            match self
                .commit(&[], &base.ver, &base.epoch, &json, &[], 0)
                .await?
            {
                CommitReply::Ok { .. } => return Ok(adopted),
                CommitReply::Conflict | CommitReply::Duplicate => {}
            }
        }
        Err(BackendError::Unavailable(
            "redis stream too contended; try again".into(),
        ))
    }

    /// Users in a voice channel (fresh from Redis), `None` if unknown or unreachable.
    pub(crate) async fn members(&self, channel_id: u64) -> Option<usize> {
        self.load().await.ok()?.presence.members(channel_id)
    }

    /// [`RedisStream::members`] for several channels, with one read.
    pub(crate) async fn members_of(&self, channel_ids: &[u64]) -> Vec<Option<usize>> {
        match self.load().await {
            Ok(loaded) => channel_ids
                .iter()
                .map(|&c| loaded.presence.members(c))
                .collect(),
            Err(_) => vec![None; channel_ids.len()],
        }
    }

    /// Whether Redis answers.
    pub(crate) async fn health(&self) -> Result<(), BackendError> {
        let mut conn = self.conn();
        let pong: String = timed(::redis::cmd("PING").query_async(&mut conn)).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(down("unexpected PING reply"))
        }
    }
}

/// Runs a Redis future under [`COMMAND_TIMEOUT`]; any failure means "redis unreachable".
pub(crate) async fn timed<T>(
    fut: impl Future<Output = ::redis::RedisResult<T>>,
) -> Result<T, BackendError> {
    match tokio::time::timeout(COMMAND_TIMEOUT + Duration::from_millis(500), fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(down(e)),
        Err(_) => Err(down("timed out")),
    }
}

/// A reply value as text.
pub(crate) fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Okay => Some("OK".to_owned()),
        _ => None,
    }
}

/// Stream entries `[[id, [field, value, ...]], ...]` as `(seq, ts_ms, frame)`; entries
/// whose id is not `<seq>-0` or that lack a frame are skipped.
pub(crate) fn entries(v: &Value) -> Vec<(u64, i64, Bytes)> {
    let Value::Array(items) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let Value::Array(pair) = item else {
                return None;
            };
            let id = text(pair.first()?)?;
            let seq = id.strip_suffix("-0")?.parse().ok()?;
            let Value::Array(fields) = pair.get(1)? else {
                return None;
            };
            let mut frame = None;
            let mut ts = 0;
            for kv in fields.chunks_exact(2) {
                match (text(&kv[0]).as_deref(), &kv[1]) {
                    (Some("f"), Value::BulkString(b)) => frame = Some(Bytes::from(b.clone())),
                    (Some("t"), v) => ts = text(v).and_then(|t| t.parse().ok()).unwrap_or(0),
                    _ => {}
                }
            }
            Some((seq, ts, frame?))
        })
        .collect()
}

fn presence_to_json(p: &Presence) -> String {
    serde_json::to_string(&p.to_persisted()).unwrap_or_else(|_| "[]".to_owned())
}

fn presence_from_json(s: &str) -> Option<Presence> {
    let rooms: Vec<PersistedRoom> = serde_json::from_str(s).ok()?;
    Some(Presence::from_persisted(&rooms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_entries_parse_and_skip_foreign_ids() {
        let entry = |id: &str, f: &str| {
            Value::Array(vec![
                Value::BulkString(id.as_bytes().to_vec()),
                Value::Array(vec![
                    Value::BulkString(b"f".to_vec()),
                    Value::BulkString(f.as_bytes().to_vec()),
                    Value::BulkString(b"t".to_vec()),
                    Value::BulkString(b"12".to_vec()),
                ]),
            ])
        };
        let v = Value::Array(vec![
            entry("3-0", "a"),
            entry("4-1", "b"),
            entry("5-0", "c"),
        ]);
        let got = entries(&v);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], (3, 12, Bytes::from_static(b"a")));
        assert_eq!(got[1].0, 5);
    }

    #[test]
    fn presence_round_trips_through_json() {
        let mut p = Presence::new();
        p.adopt(10, Some("t".into()));
        p.apply(&crate::hub::Change::VoiceJoined {
            channel_id: 20,
            user_id: 7,
        });
        let back = presence_from_json(&presence_to_json(&p));
        assert_eq!(back, Some(p));
    }
}
