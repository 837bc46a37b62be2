//! The [`Hub`]'s Redis path (`REDIS_URL`): ingest through one atomic commit, subscribe at
//! exactly the seq the local tail has delivered, and the tail's delivery into the local
//! fan-out. The in-process path stays in `service.rs`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;

use super::{Hub, IngestOutcome, SubscribeError, Subscription};
use crate::hub::backend::DedupeKey;
use crate::hub::dedupe::ID_TTL_MS;
use crate::hub::error::IngestError;
use crate::hub::event::{IncomingEvent, parse_event};
use crate::hub::fanout::{ClientQueue, CloseOrder};
use crate::hub::redis::{Committed, RedisStream};
use crate::hub::stream::{Replay, encode_ack};
use crate::metrics::inc;

/// With Redis: how long a subscriber waits for the tail to reach the seq its preamble ends
/// with (longer -> close 1011, the client retries).
const SUBSCRIBE_CATCH_UP: Duration = Duration::from_secs(5);
/// With Redis: the stream was re-created or this replica fell behind it; the client must
/// reconnect and resume (1012 "service restart", RFC 6455 registry).
const CLOSE_STREAM_RESET: CloseOrder = CloseOrder {
    code: 1012,
    reason: "stream reset, resume",
};

impl Hub {
    /// The Redis path: validate, then one atomic commit (dedupe claim + append); the tail
    /// fans the frames out (to this replica's clients as to every other's).
    pub(super) async fn ingest_redis(
        &self,
        redis: &RedisStream,
        mac: Option<[u8; 32]>,
        mac_expiry: i64,
        ev: IncomingEvent,
        now_ms: i64,
    ) -> Result<IngestOutcome, IngestError> {
        if self.lock().closing {
            return Err(IngestError::Unavailable);
        }
        let unavailable = |e: crate::hub::error::BackendError| {
            tracing::warn!(error = %e, "stream backend failed");
            IngestError::Unavailable
        };
        let keys: Vec<(DedupeKey, i64)> = mac
            .map(|m| (DedupeKey::Mac(m), mac_expiry - now_ms))
            .into_iter()
            .chain(ev.id.clone().map(|id| (DedupeKey::EventId(id), ID_TTL_MS)))
            .collect();
        let parsed = match parse_event(&ev.event, &ev.payload) {
            Ok(parsed) => parsed,
            Err(e) => {
                if redis.any_seen(&keys).await.map_err(unavailable)? {
                    inc(&self.shared.metrics.events_duplicate);
                    return Ok(IngestOutcome::Duplicate);
                }
                return Err(e);
            }
        };
        let committed = redis
            .ingest(&keys, &parsed, now_ms)
            .await
            .map_err(unavailable)?;
        Ok(match committed {
            Committed::Duplicate => {
                inc(&self.shared.metrics.events_duplicate);
                IngestOutcome::Duplicate
            }
            Committed::Ignored => {
                if parsed.guild_id == self.shared.cfg.guild_id {
                    inc(&self.shared.metrics.events_in);
                }
                IngestOutcome::Ignored
            }
            Committed::Applied(emitted) => {
                inc(&self.shared.metrics.events_in);
                IngestOutcome::Applied { emitted }
            }
        })
    }

    /// Redis: read the preamble from Redis (up to head `H`), then join the local fan-out when
    /// the tail has delivered exactly `H`; if the tail is ahead, first append the missing
    /// frames from the stream; if behind, wait for it.
    pub(super) async fn subscribe_redis(
        &self,
        redis: &RedisStream,
        since: Option<u64>,
        now_ms: i64,
    ) -> Result<Subscription, SubscribeError> {
        let guild = self.shared.cfg.guild_id;
        if self.lock().closing {
            return Err(SubscribeError::ShuttingDown);
        }
        let fail = |e: crate::hub::error::BackendError| {
            tracing::warn!(error = %e, "stream backend failed");
            SubscribeError::Unavailable
        };
        let replay = match since {
            Some(since) => Some(redis.replay(since, now_ms).await.map_err(fail)?),
            None => None,
        };
        let (mut upto, mut preamble) = match replay {
            Some((head, Replay::Events(events))) => {
                inc(&self.shared.metrics.replays_served);
                let mut preamble = Vec::with_capacity(events.len() + 1);
                preamble.push(encode_ack(guild, head, true));
                preamble.extend(events);
                (head, preamble)
            }
            _ => {
                inc(&self.shared.metrics.snapshots_served);
                let (head, snapshot) = redis.snapshot().await.map_err(fail)?;
                (head, vec![encode_ack(guild, head, false), snapshot])
            }
        };
        let deadline = tokio::time::Instant::now() + SUBSCRIBE_CATCH_UP;
        loop {
            let moved = self.shared.tail_moved.notified();
            let behind = {
                let mut state = self.lock();
                if state.closing {
                    return Err(SubscribeError::ShuttingDown);
                }
                match state.delivered {
                    Some(d) if d == upto => {
                        let queue = Arc::new(ClientQueue::new());
                        let id = state.fanout.subscribe(queue.clone());
                        return Ok(Subscription {
                            id,
                            queue,
                            preamble,
                        });
                    }
                    Some(d) if d > upto => Some(d),
                    _ => None,
                }
            };
            match behind {
                Some(d) => {
                    let frames = redis.range(upto + 1, d).await.map_err(fail)?;
                    preamble.extend(frames);
                    upto = d;
                }
                None => {
                    if tokio::time::timeout_at(deadline, moved).await.is_err() {
                        return Err(SubscribeError::Unavailable);
                    }
                }
            }
        }
    }

    /// With Redis: the seq the tail has delivered locally.
    pub(crate) fn delivered(&self) -> Option<u64> {
        self.lock().delivered
    }

    /// With Redis: fans out the frames the tail read, in order, each once. A gap (this
    /// replica fell behind the stream's trimming) closes every socket with 1012 so its
    /// client resumes and gets a snapshot.
    pub(crate) fn deliver(&self, frames: Vec<(u64, i64, Bytes)>) {
        let max = self.shared.cfg.client_queue_max_bytes;
        let m = &self.shared.metrics;
        {
            let mut state = self.lock();
            for (seq, _, frame) in frames {
                let delivered = state.delivered.unwrap_or(0);
                if seq <= delivered {
                    continue;
                }
                if seq != delivered + 1 {
                    tracing::warn!(
                        delivered,
                        seq,
                        "gap in the redis stream; clients must resume"
                    );
                    state.fanout.close_all(CLOSE_STREAM_RESET);
                }
                let delivery = state.fanout.publish(&frame, max);
                m.events_out.fetch_add(delivery.queued, Ordering::Relaxed);
                m.evictions.fetch_add(delivery.evicted, Ordering::Relaxed);
                state.delivered = Some(seq);
            }
        }
        self.shared.tail_moved.notify_waiters();
    }

    /// With Redis: the stream was (re)read at `head` with a new epoch (or for the first
    /// time): close every socket with 1012 so clients resume, and continue from `head`.
    pub(crate) fn reset_stream(&self, head: u64) {
        {
            let mut state = self.lock();
            state.fanout.close_all(CLOSE_STREAM_RESET);
            state.delivered = Some(head);
        }
        self.shared.tail_moved.notify_waiters();
    }
}
