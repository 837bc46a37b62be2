//! The tail: each replica reads the shared stream with `XREAD BLOCK` on its own connection
//! and hands the stored frames to its local fan-out, in seq order, each exactly once.
//!
//! On any Redis failure it drops the connection, waits (backing off up to
//! [`MAX_BACKOFF`]) and reconnects, then continues from the last seq it delivered: nothing
//! is skipped. After a reconnect, and whenever a block times out, it compares the state's
//! epoch with the one it knew; a new epoch (Redis lost its data) resets the local stream.

use std::sync::Arc;
use std::time::Duration;

use ::redis::AsyncConnectionConfig;
use ::redis::Value;
use ::redis::aio::MultiplexedConnection;

use super::{RedisStream, entries, timed};
use crate::hub::Hub;
use crate::hub::error::BackendError;

/// How long one `XREAD` blocks waiting for new entries.
pub(crate) const BLOCK: Duration = Duration::from_secs(5);
/// Most entries read per `XREAD`.
const BATCH: usize = 512;
/// First wait after a failure.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between reconnection attempts.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(2);

struct Tail {
    hub: Hub,
    stream: Arc<RedisStream>,
    conn: Option<MultiplexedConnection>,
    epoch: Option<String>,
    check_epoch: bool,
}

/// Tails the stream until the hub shuts down.
pub(crate) async fn run(hub: Hub, stream: Arc<RedisStream>) {
    let mut shutdown = hub.shutdown_signal();
    let mut tail = Tail {
        hub,
        stream,
        conn: None,
        epoch: None,
        check_epoch: true,
    };
    let mut backoff = MIN_BACKOFF;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let result = tokio::select! {
            r = tail.step() => r,
            _ = shutdown.changed() => return,
        };
        match result {
            Ok(()) => backoff = MIN_BACKOFF,
            Err(e) => {
                tracing::warn!(error = %e, "redis tail failed; reconnecting");
                tail.conn = None;
                tail.check_epoch = true;
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

impl Tail {
    async fn step(&mut self) -> Result<(), BackendError> {
        if self.conn.is_none() {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(super::CONNECT_TIMEOUT))
                .set_response_timeout(Some(BLOCK + super::COMMAND_TIMEOUT));
            let conn = timed(
                self.stream
                    .client()
                    .get_multiplexed_async_connection_with_config(&config),
            )
            .await?;
            self.conn = Some(conn);
        }
        if self.check_epoch {
            let loaded = self.stream.load().await?;
            match (&self.epoch, self.hub.delivered()) {
                (Some(known), _) if *known != loaded.epoch => {
                    tracing::warn!("redis stream was re-created (new epoch); clients must resume");
                    self.hub.reset_stream(loaded.head);
                }
                (_, None) => self.hub.reset_stream(loaded.head),
                _ => {}
            }
            self.epoch = Some(loaded.epoch.clone());
            self.check_epoch = false;
        }
        let from = self.hub.delivered().unwrap_or(0);
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        let block_ms = u64::try_from(BLOCK.as_millis()).unwrap_or(5000);
        let reply: Value = tokio::time::timeout(
            BLOCK + super::COMMAND_TIMEOUT,
            ::redis::cmd("XREAD")
                .arg("COUNT")
                .arg(BATCH)
                .arg("BLOCK")
                .arg(block_ms)
                .arg("STREAMS")
                .arg(self.stream.stream_key())
                .arg(format!("{from}-0"))
                .query_async(conn),
        )
        .await
        .map_err(|_| super::down("xread timed out"))?
        .map_err(super::down)?;
        let got = match &reply {
            // [[key, entries]] (RESP2).
            Value::Array(keys) => keys
                .first()
                .and_then(|k| match k {
                    Value::Array(pair) => pair.get(1).map(entries),
                    _ => None,
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        if got.is_empty() {
            // Blocked without news: a good moment to check the epoch.
            self.check_epoch = true;
            return Ok(());
        }
        if let Some(last) = got.last() {
            self.stream.note_seq(last.0);
        }
        self.hub.deliver(got);
        Ok(())
    }
}
