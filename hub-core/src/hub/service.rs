//! [`Hub`]: the guild stream's front door (ingest, publish, subscribe, shutdown).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, watch};

use super::backend::{Backend, DedupeKey};
use super::dedupe::{ID_TTL_MS, MAC_TTL_MS};
use super::error::{HubError, IngestError};
use super::event::{IncomingEvent, parse_event};
use super::fanout::{CLOSE_GOING_AWAY, ClientQueue, CloseOrder, Fanout};
use super::memory::{MemoryBackend, StreamLimits};
use super::redis::{RedisStream, UNREACHABLE};
use super::stream::{Replay, encode_ack};
use crate::metrics::{Metrics, inc};

mod redis_path;

/// Longest webhook event `id` accepted (ids are kept in memory for 10 minutes).
const MAX_ID_LEN: usize = 128;
/// How long [`Hub::shutdown`] waits for sockets to send their close frames.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(3);

/// Configuration of the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubConfig {
    /// The guild (`PRIMARY_GUILD_ID`).
    pub guild_id: u64,
    /// Events kept for `since` resume (`REPLAY_MAX_EVENTS`, default 5000).
    pub replay_max_events: usize,
    /// Oldest event kept for `since` resume (default 10 minutes).
    pub replay_max_age: Duration,
    /// Unsent bytes a client may have queued before it is closed with 1013
    /// (`CLIENT_QUEUE_MAX_BYTES`, default 1 MiB).
    pub client_queue_max_bytes: usize,
    /// Where the stream state is persisted (`DATA_DIR`); `None` keeps it in memory only.
    pub data_dir: Option<PathBuf>,
}

impl HubConfig {
    /// The defaults of the contract for `guild_id`, without persistence.
    pub fn new(guild_id: u64) -> Self {
        Self {
            guild_id,
            replay_max_events: 5000,
            replay_max_age: Duration::from_secs(600),
            client_queue_max_bytes: 1 << 20,
            data_dir: None,
        }
    }
}

/// What happened to an ingested or published event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IngestOutcome {
    /// Applied; `emitted` events (at least one) went to the stream and to every client.
    Applied {
        /// Number of events emitted.
        emitted: usize,
    },
    /// Already seen (same `id`, or the same signed request replayed): nothing broadcast.
    Duplicate,
    /// Another guild's payload, or no change to presence: nothing broadcast.
    Ignored,
}

/// Why a WebSocket client could not subscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubscribeError {
    /// The hub is shutting down (close 1001).
    ShuttingDown,
    /// The backend failed (close 1011).
    Unavailable,
}

/// A subscribed client: what to send first, then its live queue.
#[derive(Debug)]
pub(crate) struct Subscription {
    /// Fan-out id, for [`Hub::unsubscribe`].
    pub(crate) id: u64,
    /// The client's live queue (events after the preamble).
    pub(crate) queue: Arc<ClientQueue>,
    /// The ack, then the replayed events or one snapshot.
    pub(crate) preamble: Vec<Bytes>,
}

struct State {
    /// The in-process backend; `None` with Redis.
    backend: Option<Box<dyn Backend>>,
    fanout: Fanout,
    closing: bool,
    /// With Redis: the seq the tail has fanned out up to (`None` until it first read it).
    delivered: Option<u64>,
}

struct Shared {
    cfg: HubConfig,
    metrics: Arc<Metrics>,
    state: Mutex<State>,
    /// With `REDIS_URL`: the shared stream (the state behind `backend` lives there).
    redis: Option<Arc<RedisStream>>,
    /// Notified whenever the tail delivered (or reset) the local stream.
    tail_moved: Notify,
    sessions: AtomicUsize,
    sessions_done: Notify,
    shutdown: watch::Sender<bool>,
    /// Names this process's in-memory state (see [`Hub::state_id`]).
    instance: String,
}

/// The guild event stream and its subscribers. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct Hub {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("guild_id", &self.shared.cfg.guild_id)
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub over the in-process backend, restoring persisted stream state from `data_dir`.
    ///
    /// # Errors
    /// [`HubError`] when the configuration is unusable or a state file cannot be read (or is
    /// corrupt), or the first seq block cannot be reserved on disk.
    pub fn new(cfg: HubConfig, metrics: Arc<Metrics>) -> Result<Self, HubError> {
        if cfg.replay_max_events == 0 {
            return Err(HubError::Config(
                "REPLAY_MAX_EVENTS must be at least 1".to_owned(),
            ));
        }
        if cfg.client_queue_max_bytes == 0 {
            return Err(HubError::Config(
                "CLIENT_QUEUE_MAX_BYTES must be at least 1".to_owned(),
            ));
        }
        let limits = StreamLimits {
            replay_max_events: cfg.replay_max_events,
            replay_max_age_ms: i64::try_from(cfg.replay_max_age.as_millis()).unwrap_or(i64::MAX),
        };
        let backend = MemoryBackend::open(&[cfg.guild_id], limits, cfg.data_dir.as_deref())?;
        let instance = backend.state_id(cfg.guild_id).map(str::to_owned);
        Ok(Self::build(
            cfg,
            metrics,
            Some(Box::new(backend)),
            None,
            instance,
        ))
    }

    /// A hub over any [`Backend`] (the seam for a Redis backend).
    pub fn with_backend(cfg: HubConfig, metrics: Arc<Metrics>, backend: Box<dyn Backend>) -> Self {
        Self::build(cfg, metrics, Some(backend), None, None)
    }

    /// A hub whose stream, presence and dedupe keys live in Redis at `url` (`REDIS_URL`),
    /// shared with every replica using the same Redis; see [`super::redis`]. Spawns the task
    /// that tails the stream (it ends at [`Hub::shutdown`]). Connects lazily: Redis being
    /// down at start is reported by [`Hub::health`], not here. Call inside a tokio runtime.
    ///
    /// # Errors
    /// [`HubError::Config`] for unusable limits or an unparsable URL.
    pub fn with_redis(cfg: HubConfig, metrics: Arc<Metrics>, url: &str) -> Result<Self, HubError> {
        if cfg.replay_max_events == 0 || cfg.client_queue_max_bytes == 0 {
            return Err(HubError::Config(
                "REPLAY_MAX_EVENTS and CLIENT_QUEUE_MAX_BYTES must be at least 1".to_owned(),
            ));
        }
        let stream = RedisStream::new(
            url,
            cfg.guild_id,
            cfg.replay_max_events,
            i64::try_from(cfg.replay_max_age.as_millis()).unwrap_or(i64::MAX),
        )?;
        let stream = Arc::new(stream);
        let hub = Self::build(cfg, metrics, None, Some(stream.clone()), None);
        tokio::spawn(super::redis::tail::run(hub.clone(), stream));
        Ok(hub)
    }

    /// The Redis stream, when this hub uses one.
    pub fn redis(&self) -> Option<&Arc<RedisStream>> {
        self.shared.redis.as_ref()
    }

    fn build(
        cfg: HubConfig,
        metrics: Arc<Metrics>,
        backend: Option<Box<dyn Backend>>,
        redis: Option<Arc<RedisStream>>,
        instance: Option<String>,
    ) -> Self {
        let (shutdown, _) = watch::channel(false);
        Self {
            shared: Arc::new(Shared {
                cfg,
                metrics,
                state: Mutex::new(State {
                    backend,
                    fanout: Fanout::new(),
                    closing: false,
                    delivered: None,
                }),
                redis,
                tail_moved: Notify::new(),
                sessions: AtomicUsize::new(0),
                sessions_done: Notify::new(),
                shutdown,
                instance: instance.unwrap_or_else(super::memory::new_state_id),
            }),
        }
    }

    /// Names the state this hub holds (presence, dedupe keys): it changes exactly when that
    /// state may have been lost. In-process that is a new process (a `kill -9` saves
    /// nothing), except that a clean restart with `DATA_DIR` keeps it, as the saved state
    /// holds everything the hub acknowledged; with Redis it is the stream's epoch, shared by every replica and renewed
    /// only when Redis lost its data. Sent to the worker with every accepted webhook
    /// (`X-Hub-State-Id`), so it can send a `guild.sync` when the id changes (contract §5:
    /// "whenever its state may have diverged").
    pub fn state_id(&self) -> String {
        self.shared
            .redis
            .as_ref()
            .and_then(|redis| redis.epoch())
            .unwrap_or_else(|| self.shared.instance.clone())
    }

    /// The guild this hub serves.
    pub fn guild_id(&self) -> u64 {
        self.shared.cfg.guild_id
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // State is only mutated through whole backend calls; a panic in one leaves at worst
        // one event half-applied, which the next guild.sync repairs. Keep serving.
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Webhook path (contract §4): the signature was verified by the caller; `replay_key` is
    /// the request's MAC and `timestamp` its verified `X-Hub-Timestamp`. A MAC or an `id`
    /// seen before -> [`IngestOutcome::Duplicate`]: nothing is ever broadcast twice. Keys are
    /// remembered only once the event was accepted, so a failed delivery can be retried.
    ///
    /// # Errors
    /// [`IngestError::UnknownEvent`] / [`IngestError::BadPayload`] (-> 400),
    /// [`IngestError::Unavailable`] (-> 503).
    pub async fn ingest_webhook(
        &self,
        replay_key: [u8; 32],
        timestamp: i64,
        ev: IncomingEvent,
        now_ms: i64,
    ) -> Result<IngestOutcome, IngestError> {
        let mac_expiry = now_ms.max(timestamp.saturating_mul(1000)) + MAC_TTL_MS;
        self.ingest(Some(replay_key), mac_expiry, ev, now_ms).await
    }

    /// The hub's own events (create-room -> `room.created`, end-room / idle sweeper ->
    /// `room.deleted`). An `id`, if given, is deduplicated like a webhook's.
    ///
    /// # Errors
    /// As [`Hub::ingest_webhook`].
    pub async fn publish(
        &self,
        ev: IncomingEvent,
        now_ms: i64,
    ) -> Result<IngestOutcome, IngestError> {
        self.ingest(None, 0, ev, now_ms).await
    }

    async fn ingest(
        &self,
        mac: Option<[u8; 32]>,
        mac_expiry: i64,
        ev: IncomingEvent,
        now_ms: i64,
    ) -> Result<IngestOutcome, IngestError> {
        if ev.id.as_ref().is_some_and(|id| id.len() > MAX_ID_LEN) {
            return Err(IngestError::BadPayload(format!(
                "id longer than {MAX_ID_LEN} bytes"
            )));
        }
        match &self.shared.redis {
            None => self.ingest_local(mac, mac_expiry, ev, now_ms),
            Some(redis) => self.ingest_redis(redis, mac, mac_expiry, ev, now_ms).await,
        }
    }

    fn ingest_local(
        &self,
        mac: Option<[u8; 32]>,
        mac_expiry: i64,
        ev: IncomingEvent,
        now_ms: i64,
    ) -> Result<IngestOutcome, IngestError> {
        let guild = self.shared.cfg.guild_id;
        let mut guard = self.lock();
        let state = &mut *guard;
        if state.closing {
            return Err(IngestError::Unavailable);
        }
        let Some(backend) = state.backend.as_mut() else {
            return Err(IngestError::Unavailable);
        };
        let unavailable = |e: super::error::BackendError| {
            tracing::warn!(error = %e, "stream backend failed");
            IngestError::Unavailable
        };
        let keys: Vec<DedupeKey> = mac
            .map(DedupeKey::Mac)
            .into_iter()
            .chain(ev.id.clone().map(DedupeKey::EventId))
            .collect();
        for key in &keys {
            if backend.seen(guild, key, now_ms).map_err(unavailable)? {
                inc(&self.shared.metrics.events_duplicate);
                return Ok(IngestOutcome::Duplicate);
            }
        }
        let parsed = parse_event(&ev.event, &ev.payload)?;
        let outcome = if parsed.guild_id == guild {
            let events = backend
                .apply(guild, &parsed.change, now_ms)
                .map_err(unavailable)?;
            inc(&self.shared.metrics.events_in);
            for e in &events {
                let delivery = state
                    .fanout
                    .publish(&e.frame, self.shared.cfg.client_queue_max_bytes);
                let m = &self.shared.metrics;
                m.events_out.fetch_add(delivery.queued, Ordering::Relaxed);
                m.evictions.fetch_add(delivery.evicted, Ordering::Relaxed);
            }
            if events.is_empty() {
                IngestOutcome::Ignored
            } else {
                IngestOutcome::Applied {
                    emitted: events.len(),
                }
            }
        } else {
            IngestOutcome::Ignored
        };
        for key in keys {
            let expiry = match key {
                DedupeKey::Mac(_) => mac_expiry,
                DedupeKey::EventId(_) => now_ms + ID_TTL_MS,
            };
            backend
                .remember(guild, key, expiry, now_ms)
                .map_err(unavailable)?;
        }
        Ok(outcome)
    }

    /// Registers rooms from the durable room registry without emitting anything, so that
    /// snapshots list them even after a crash lost the stream state (call at startup, before
    /// serving). Rooms already known are left alone. Returns how many were new.
    ///
    /// # Errors
    /// The backend's failure, in plain words.
    pub async fn adopt_rooms(
        &self,
        rooms: impl IntoIterator<Item = (u64, Option<String>)>,
    ) -> Result<usize, String> {
        let guild = self.shared.cfg.guild_id;
        let rooms: Vec<_> = rooms.into_iter().collect();
        if let Some(redis) = &self.shared.redis {
            return redis.adopt_rooms(&rooms).await.map_err(|e| e.to_string());
        }
        match self.lock().backend.as_mut() {
            Some(b) => b.adopt_rooms(guild, &rooms).map_err(|e| e.to_string()),
            None => Ok(0),
        }
    }

    /// Users in a voice channel (for the idle-room sweeper); `None` if the channel is unknown
    /// (or Redis cannot be reached).
    pub async fn members(&self, channel_id: u64) -> Option<usize> {
        let guild = self.shared.cfg.guild_id;
        if let Some(redis) = &self.shared.redis {
            return redis.members(channel_id).await;
        }
        self.lock().backend.as_mut()?.members(guild, channel_id)
    }

    /// Users in each of `channel_ids` (one read for all: the sweeper's question), `None`
    /// for an unknown channel; all `None` when Redis cannot be reached.
    pub async fn members_of(&self, channel_ids: &[u64]) -> Vec<Option<usize>> {
        let guild = self.shared.cfg.guild_id;
        if let Some(redis) = &self.shared.redis {
            return redis.members_of(channel_ids).await;
        }
        let mut state = self.lock();
        let backend = state.backend.as_mut();
        match backend {
            Some(b) => channel_ids.iter().map(|&c| b.members(guild, c)).collect(),
            None => vec![None; channel_ids.len()],
        }
    }

    /// Seq of the latest event.
    ///
    /// # Errors
    /// The backend's failure, in plain words.
    pub async fn head(&self) -> Result<u64, String> {
        let guild = self.shared.cfg.guild_id;
        if let Some(redis) = &self.shared.redis {
            return redis
                .load()
                .await
                .map(|l| l.head)
                .map_err(|e| e.to_string());
        }
        match self.lock().backend.as_mut() {
            Some(b) => b.head(guild).map_err(|e| e.to_string()),
            None => Err("no stream backend".to_owned()),
        }
    }

    /// Whether the hub can serve (`GET /health`).
    ///
    /// # Errors
    /// What is down, in plain words ("redis unreachable" with a Redis backend).
    pub async fn health(&self) -> Result<(), String> {
        if self.lock().closing {
            return Err("shutting down".to_owned());
        }
        if let Some(redis) = &self.shared.redis {
            return redis.health().await.map_err(|_| UNREACHABLE.to_owned());
        }
        match self.lock().backend.as_mut() {
            Some(b) => b.health().map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    /// Subscribes a client: builds the ack and either the replay after `since` (all still
    /// held -> `resumed`) or one snapshot, and adds the client's queue to the fan-out at
    /// exactly the seq the preamble ends with. Every later event goes to the queue: no gap,
    /// no duplicate (contract §3.3).
    pub(crate) async fn subscribe(
        &self,
        since: Option<u64>,
        now_ms: i64,
    ) -> Result<Subscription, SubscribeError> {
        match &self.shared.redis {
            None => self.subscribe_local(since, now_ms),
            Some(redis) => self.subscribe_redis(redis, since, now_ms).await,
        }
    }

    fn subscribe_local(
        &self,
        since: Option<u64>,
        now_ms: i64,
    ) -> Result<Subscription, SubscribeError> {
        let guild = self.shared.cfg.guild_id;
        let mut guard = self.lock();
        let state = &mut *guard;
        if state.closing {
            return Err(SubscribeError::ShuttingDown);
        }
        let Some(backend) = state.backend.as_mut() else {
            return Err(SubscribeError::Unavailable);
        };
        let fail = |e: super::error::BackendError| {
            tracing::warn!(error = %e, "stream backend failed");
            SubscribeError::Unavailable
        };
        let head = backend.head(guild).map_err(fail)?;
        let replay = match since {
            Some(since) => backend.replay_since(guild, since, now_ms).map_err(fail)?,
            None => Replay::TooOld,
        };
        let preamble = match replay {
            Replay::Events(events) => {
                inc(&self.shared.metrics.replays_served);
                let mut preamble = Vec::with_capacity(events.len() + 1);
                preamble.push(encode_ack(guild, head, true));
                preamble.extend(events);
                preamble
            }
            Replay::TooOld => {
                inc(&self.shared.metrics.snapshots_served);
                vec![
                    encode_ack(guild, head, false),
                    backend.snapshot(guild).map_err(fail)?,
                ]
            }
        };
        let queue = Arc::new(ClientQueue::new());
        let id = state.fanout.subscribe(queue.clone());
        Ok(Subscription {
            id,
            queue,
            preamble,
        })
    }

    /// Removes a client from the fan-out.
    pub(crate) fn unsubscribe(&self, id: u64) {
        self.lock().fanout.unsubscribe(id);
    }

    /// Number of subscribed clients.
    pub fn subscribers(&self) -> usize {
        self.lock().fanout.len()
    }

    /// Counts an open WebSocket (and the `hub_ws_connections` gauge) until the guard drops.
    pub(crate) fn session_started(&self) -> SessionGuard {
        self.shared.sessions.fetch_add(1, Ordering::AcqRel);
        self.shared
            .metrics
            .ws_connections
            .fetch_add(1, Ordering::Relaxed);
        SessionGuard { hub: self.clone() }
    }

    /// A signal that turns `true` when the hub shuts down (sockets still authenticating
    /// watch it).
    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shared.shutdown.subscribe()
    }

    /// Whether [`Hub::shutdown`] has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.lock().closing
    }

    /// Closes every socket with 1001 "going away" (clients resume elsewhere with `since`,
    /// contract §3.5), persists the stream state, and waits (at most a few seconds) for the
    /// sockets to send their close frames. Later ingests get `Unavailable`.
    pub async fn shutdown(&self) {
        let now_ms = now_unix_ms();
        {
            let mut state = self.lock();
            state.closing = true;
            state.fanout.close_all(CloseOrder {
                code: CLOSE_GOING_AWAY,
                reason: "server shutting down",
            });
            if let Some(Err(e)) = state.backend.as_mut().map(|b| b.persist(now_ms)) {
                tracing::error!(error = %e, "could not persist the hub stream state");
            }
        }
        self.shared.shutdown.send_replace(true);
        let drained = async {
            loop {
                let done = self.shared.sessions_done.notified();
                if self.shared.sessions.load(Ordering::Acquire) == 0 {
                    return;
                }
                done.await;
            }
        };
        if tokio::time::timeout(SHUTDOWN_DRAIN, drained).await.is_err() {
            tracing::warn!(
                open = self.shared.sessions.load(Ordering::Acquire),
                "websockets still open after shutdown drain"
            );
        }
    }
}

/// Keeps one WebSocket counted; see [`Hub::session_started`].
#[derive(Debug)]
pub(crate) struct SessionGuard {
    hub: Hub,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let shared = &self.hub.shared;
        shared
            .metrics
            .ws_connections
            .fetch_sub(1, Ordering::Relaxed);
        if shared.sessions.fetch_sub(1, Ordering::AcqRel) == 1 {
            shared.sessions_done.notify_waiters();
        }
    }
}

/// The wall clock in unix milliseconds (0 if the clock is before 1970).
pub(crate) fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const G: u64 = 7;

    fn hub() -> (Hub, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::default());
        let hub = Hub::new(HubConfig::new(G), metrics.clone());
        (hub.unwrap_or_else(|e| panic!("{e}")), metrics)
    }

    fn joined(id: Option<&str>, guild: u64, channel: u64, user: u64) -> IncomingEvent {
        IncomingEvent {
            id: id.map(str::to_owned),
            event: "voice.joined".into(),
            payload: json!({"guildId": guild.to_string(), "channelId": channel.to_string(), "userId": user.to_string()}),
        }
    }

    #[tokio::test]
    async fn webhook_retries_and_replays_are_never_applied_twice() {
        let (hub, metrics) = hub();
        let ok = hub
            .ingest_webhook([1; 32], 1, joined(Some("e1"), G, 10, 1), 1_000)
            .await;
        assert_eq!(ok, Ok(IngestOutcome::Applied { emitted: 1 }));
        // Same id, new signature (a retry).
        let retry = hub
            .ingest_webhook([2; 32], 2, joined(Some("e1"), G, 10, 1), 2_000)
            .await;
        assert_eq!(retry, Ok(IngestOutcome::Duplicate));
        // Same MAC without an id (a captured request replayed).
        let first = hub
            .ingest_webhook([3; 32], 3, joined(None, G, 10, 2), 3_000)
            .await;
        assert_eq!(first, Ok(IngestOutcome::Applied { emitted: 1 }));
        let replay = hub
            .ingest_webhook([3; 32], 3, joined(None, G, 20, 2), 4_000)
            .await;
        assert_eq!(replay, Ok(IngestOutcome::Duplicate));
        assert_eq!(hub.head().await, Ok(2));
        assert_eq!(metrics.events_duplicate.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn other_guilds_and_no_ops_are_ignored() {
        let (hub, _) = hub();
        assert_eq!(
            hub.publish(joined(None, G + 1, 10, 1), 0).await,
            Ok(IngestOutcome::Ignored)
        );
        assert_eq!(
            hub.publish(joined(None, G, 10, 1), 0).await,
            Ok(IngestOutcome::Applied { emitted: 1 })
        );
        assert_eq!(
            hub.publish(joined(None, G, 10, 1), 0).await,
            Ok(IngestOutcome::Ignored)
        );
        assert_eq!(
            hub.publish(joined(None, G, 20, 1), 0).await,
            Ok(IngestOutcome::Applied { emitted: 2 })
        );
        assert_eq!(hub.members(20).await, Some(1));
        assert_eq!(hub.members(10).await, None);
    }

    #[tokio::test]
    async fn adopted_rooms_appear_in_snapshots_without_events() {
        let (hub, _) = hub();
        assert_eq!(hub.adopt_rooms([(10, Some("t".to_owned()))]).await, Ok(1));
        assert_eq!(hub.adopt_rooms([(10, None)]).await, Ok(0));
        assert_eq!(hub.head().await, Ok(0));
        assert_eq!(hub.members(10).await, Some(0));
        let sub = hub
            .subscribe(None, 0)
            .await
            .unwrap_or_else(|_| panic!("subscribe"));
        assert!(
            std::str::from_utf8(&sub.preamble[1])
                .is_ok_and(|s| s.contains(r#"{"channelId":"10","name":"t","members":[]}"#))
        );
    }

    #[tokio::test]
    async fn a_rejected_delivery_can_be_retried() {
        let (hub, _) = hub();
        let mut bad = joined(Some("e1"), G, 10, 1);
        bad.payload["userId"] = json!(1);
        assert!(matches!(
            hub.ingest_webhook([1; 32], 1, bad, 0).await,
            Err(IngestError::BadPayload(_))
        ));
        assert!(matches!(
            hub.publish(
                IncomingEvent {
                    id: None,
                    event: "voice.muted".into(),
                    payload: json!({})
                },
                0
            )
            .await,
            Err(IngestError::UnknownEvent(_))
        ));
        // The id and MAC were not remembered: the corrected delivery goes through.
        assert_eq!(
            hub.ingest_webhook([1; 32], 1, joined(Some("e1"), G, 10, 1), 0)
                .await,
            Ok(IngestOutcome::Applied { emitted: 1 })
        );
    }

    #[tokio::test]
    async fn subscribe_gets_ack_and_snapshot_or_replay_then_live_frames() {
        let (hub, _) = hub();
        hub.publish(joined(None, G, 10, 1), 0).await.ok();
        let fresh = hub.subscribe(None, 0).await;
        let Ok(fresh) = fresh else {
            panic!("subscribe failed")
        };
        assert_eq!(fresh.preamble.len(), 2, "ack + snapshot");
        let resumed = hub.subscribe(Some(0), 0).await;
        let Ok(resumed) = resumed else {
            panic!("subscribe failed")
        };
        assert_eq!(resumed.preamble.len(), 2, "ack + one replayed event");
        assert!(
            std::str::from_utf8(&resumed.preamble[0]).is_ok_and(|s| s.contains("\"resumed\":true"))
        );
        hub.publish(joined(None, G, 10, 2), 0).await.ok();
        assert!(fresh.queue.pop().is_some());
        assert!(resumed.queue.pop().is_some());
        assert_eq!(hub.subscribers(), 2);
        hub.unsubscribe(fresh.id);
        assert_eq!(hub.subscribers(), 1);
    }

    #[tokio::test]
    async fn shutdown_persists_and_a_new_hub_resumes_the_stream() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let cfg = HubConfig {
            data_dir: Some(dir.path().to_owned()),
            ..HubConfig::new(G)
        };
        let metrics = Arc::new(Metrics::default());
        let hub = Hub::new(cfg.clone(), metrics.clone()).unwrap_or_else(|e| panic!("{e}"));
        let state_id = hub.state_id();
        hub.publish(joined(None, G, 10, 1), 0).await.ok();
        let sub = hub
            .subscribe(None, 0)
            .await
            .unwrap_or_else(|_| panic!("subscribe"));
        hub.shutdown().await;
        assert_eq!(
            sub.queue.close_order().map(|o| o.code),
            Some(CLOSE_GOING_AWAY)
        );
        assert_eq!(
            hub.publish(joined(None, G, 10, 2), 0).await,
            Err(IngestError::Unavailable)
        );
        assert!(matches!(
            hub.subscribe(None, 0).await,
            Err(SubscribeError::ShuttingDown)
        ));
        drop(hub);

        let hub = Hub::new(cfg, metrics).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(hub.head().await, Ok(1));
        assert_eq!(hub.members(10).await, Some(1));
        // Nothing acknowledged was lost: the worker has nothing to repair.
        assert_eq!(hub.state_id(), state_id);
        assert_eq!(
            hub.publish(joined(None, G, 10, 2), 0).await,
            Ok(IngestOutcome::Applied { emitted: 1 })
        );
        assert_eq!(hub.head().await, Ok(2));
    }
}
