//! The guild event stream: presence, seq, replay buffer, encode-once fan-out, dedupe.
//!
//! [`Hub`] is the one entry point: the webhook route calls [`Hub::ingest_webhook`], the room
//! routes call [`Hub::publish`], the WebSocket sessions subscribe (crate-internal). State lives
//! behind the [`Backend`] trait ([`MemoryBackend`], in this process) or, with `REDIS_URL`, in
//! Redis ([`RedisStream`], shared by several replicas; see [`redis`]). The `Hub` API is async
//! so that a networked store never blocks the runtime; the in-process path never awaits.
//! Fan-out to the connected clients is always local.
//!
//! Semantics (contract §3/§4, lead's decisions):
//! - Every event is applied to presence as a state transition and only the differences are
//!   emitted (see [`presence`]); `guild.sync` goes through the same function.
//! - `seq` increases by exactly 1 per emitted event and is never reused, also across
//!   restarts (see [`persist`]).
//! - A webhook delivery whose MAC or `id` was seen is a duplicate: nothing is broadcast.
//! - Payloads for another guild are ignored (`Ignored`, answered 200).
//! - Each client queue is bounded by bytes; over it the client is closed with 1013.
//!
//! ```
//! use std::sync::Arc;
//! use hub_core::hub::{Hub, HubConfig, IncomingEvent, IngestOutcome};
//! use hub_core::metrics::Metrics;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let hub = Hub::new(HubConfig::new(42), Arc::new(Metrics::default())).unwrap();
//! let joined = IncomingEvent {
//!     id: Some("evt-1".into()),
//!     event: "voice.joined".into(),
//!     payload: serde_json::json!({"guildId": "42", "channelId": "10", "userId": "7"}),
//! };
//! assert_eq!(hub.publish(joined.clone(), 0).await, Ok(IngestOutcome::Applied { emitted: 1 }));
//! assert_eq!(hub.publish(joined, 0).await, Ok(IngestOutcome::Duplicate));
//! assert_eq!(hub.members(10).await, Some(1));
//! assert_eq!(hub.head().await, Ok(1));
//! # });
//! ```

pub mod backend;
pub mod dedupe;
pub mod error;
pub mod event;
pub mod fanout;
pub mod memory;
pub mod persist;
pub mod presence;
pub mod redis;
pub mod stream;

mod service;

pub use backend::{Backend, DedupeKey};
pub use error::{BackendError, HubError, IngestError};
pub use event::{Change, GuildEvent, IncomingEvent};
pub use fanout::{ClientQueue, CloseOrder};
pub use memory::{MemoryBackend, StreamLimits};
pub use presence::{Emitted, Presence};
pub use redis::RedisStream;
pub use service::{Hub, HubConfig, IngestOutcome};
pub(crate) use service::{SessionGuard, SubscribeError, Subscription, now_unix_ms};
pub use stream::{Replay, ReplayBuffer, StoredEvent};
