//! Posts signed `voice.joined` events to `/internal/events` at a chosen rate.
//!
//! Each event is a new user joining the phase's channel; its `userId` is the post time in
//! microseconds since the Unix epoch (digits only, a valid snowflake), so every client can
//! compute post -> receipt latency from the event alone, whichever hub it talks to.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::wire::CHANNEL_BASE;
use super::worker::now_us;
use crate::webhook::WebhookConn;

/// Posts the phases' events over one signed keep-alive connection.
#[derive(Debug)]
pub struct Poster {
    conn: WebhookConn,
    guild_id: u64,
    run: u64,
    count: u64,
    last_user: u64,
}

/// What one phase of posting did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Posted {
    /// Events accepted and new (`200 {"ok":true}`).
    pub applied: u64,
    /// Refused or failed posts.
    pub errors: u64,
    /// Wall time of the posting, seconds.
    pub secs: f64,
}

impl Poster {
    /// Connects to the hub.
    ///
    /// # Errors
    /// When the connection or the HTTP handshake fails.
    pub async fn connect(target: SocketAddr, secret: &[u8], guild_id: u64) -> Result<Self, String> {
        let run = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Ok(Self {
            conn: WebhookConn::connect(target, secret).await?,
            guild_id,
            run,
            count: 0,
            last_user: 0,
        })
    }

    /// Posts one event into `phase`'s channel; `Ok(true)` when applied.
    ///
    /// # Errors
    /// When the request cannot be sent or answered.
    pub async fn post_one(&mut self, phase: usize) -> Result<bool, String> {
        self.count += 1;
        let user = now_us().max(self.last_user + 1);
        self.last_user = user;
        let body = serde_json::json!({
            "id": format!("fanout-{}-{}", self.run, self.count),
            "event": "voice.joined",
            "payload": {
                "guildId": self.guild_id.to_string(),
                "channelId": (CHANNEL_BASE + phase as u64).to_string(),
                "userId": user.to_string(),
            },
        })
        .to_string();
        let ts = (user / 1_000_000) as i64;
        // The hub closes keep-alive connections idle for its header-read timeout (10 s),
        // e.g. between phases.
        self.conn.ensure_open().await?;
        let answer = self.conn.post(Bytes::from(body), ts).await?;
        Ok(answer.applied())
    }

    /// Posts `count` events at `rate` per second (back to back when behind schedule).
    pub async fn post_phase(&mut self, phase: usize, count: u64, rate: f64) -> Posted {
        let mut out = Posted::default();
        let start = Instant::now();
        let tick = if rate > 0.0 { 1.0 / rate } else { 0.0 };
        for i in 0..count {
            let due = start + Duration::from_secs_f64(tick * i as f64);
            tokio::time::sleep_until(due.into()).await;
            match self.post_one(phase).await {
                Ok(true) => out.applied += 1,
                _ => out.errors += 1,
            }
        }
        out.secs = start.elapsed().as_secs_f64();
        out
    }
}
