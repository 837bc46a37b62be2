//! Posts signed `voice.joined` events to `/internal/events` at a chosen rate.
//!
//! Each event is a new user joining the phase's channel; its `userId` is the post time in
//! microseconds since the Unix epoch (digits only, a valid snowflake), so every client can
//! compute post -> receipt latency from the event alone, whichever hub it talks to.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hub_core::auth::sign_webhook;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::wire::CHANNEL_BASE;
use super::worker::now_us;

/// A keep-alive HTTP/1.1 connection that posts signed events.
pub struct Poster {
    target: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
    secret: Vec<u8>,
    guild_id: u64,
    run: u64,
    count: u64,
    last_user: u64,
}

impl std::fmt::Debug for Poster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poster")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
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
        let stream = TcpStream::connect(target)
            .await
            .map_err(|e| format!("poster connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("poster handshake: {e}"))?;
        tokio::spawn(conn);
        let run = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Ok(Self {
            target,
            sender,
            secret: secret.to_vec(),
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
        let sig = sign_webhook(&self.secret, ts, body.as_bytes());
        let req = http::Request::post("/internal/events")
            .header(http::header::HOST, self.target.to_string())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("x-hub-timestamp", ts.to_string())
            .header("x-hub-signature", sig)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("request: {e}"))?;
        self.sender
            .ready()
            .await
            .map_err(|e| format!("poster: {e}"))?;
        let resp = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| format!("post: {e}"))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("post body: {e}"))?
            .to_bytes();
        Ok(status == http::StatusCode::OK && !body.windows(9).any(|w| w == b"duplicate"))
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
