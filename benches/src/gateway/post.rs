//! The direct path: signed `voice.joined`/`voice.left` posted straight to the hub's
//! `/internal/events` (contract §4), as the worker would, over one keep-alive connection.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hub_core::auth::sign_webhook;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::ledger::Key;

/// A keep-alive HTTP/1.1 connection posting signed events (redacting `Debug`: no secret).
pub struct Poster {
    target: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
    secret: Vec<u8>,
    guild_id: u64,
    run: u128,
    count: u64,
}

impl std::fmt::Debug for Poster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poster")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// The webhook body of one event (contract §4: `{"id","event","payload"}`; the payload as
/// in the §3 event table). `id` is unique per post, so the hub's retry de-duplication never
/// swallows one.
pub fn body(id: &str, guild_id: u64, channel_id: u64, key: Key) -> String {
    serde_json::json!({
        "id": id,
        "event": key.kind.event(),
        "payload": {
            "guildId": guild_id.to_string(),
            "channelId": channel_id.to_string(),
            "userId": key.user.to_string(),
        },
    })
    .to_string()
}

impl Poster {
    /// Connects to the hub.
    ///
    /// # Errors
    /// When the connection or the HTTP handshake fails.
    pub async fn connect(target: SocketAddr, secret: &[u8], guild_id: u64) -> Result<Self, String> {
        let sender = open(target).await?;
        let run = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Ok(Self {
            target,
            sender,
            secret: secret.to_vec(),
            guild_id,
            run,
            count: 0,
        })
    }

    /// Reconnects if the hub closed the connection (it closes idle keep-alive connections
    /// after its header-read timeout), so the next post does not pay for a handshake.
    ///
    /// # Errors
    /// When reconnecting fails.
    pub async fn ensure_open(&mut self) -> Result<(), String> {
        if self.sender.is_closed() {
            self.sender = open(self.target).await?;
        }
        Ok(())
    }

    /// Posts one event into `channel_id`; `Ok(true)` when the hub applied it. A failed
    /// send is retried once on a new connection with the same `id`, so a retry of a post
    /// that did arrive is answered `duplicate` (contract §4) and counts as applied.
    ///
    /// # Errors
    /// When the request cannot be sent or answered, twice.
    pub async fn post(&mut self, channel_id: u64, key: Key) -> Result<bool, String> {
        self.count += 1;
        let id = format!("gwlat-{}-{}", self.run, self.count);
        let body = Bytes::from(body(&id, self.guild_id, channel_id, key));
        match self.send(body.clone()).await {
            Ok((status, dup)) => Ok(status == http::StatusCode::OK && !dup),
            Err(_) => {
                self.sender = open(self.target).await?;
                let (status, _) = self.send(body).await?;
                Ok(status == http::StatusCode::OK)
            }
        }
    }

    /// One signed request; the status and whether the answer says `duplicate`.
    async fn send(&mut self, body: Bytes) -> Result<(http::StatusCode, bool), String> {
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let sig = sign_webhook(&self.secret, ts, &body);
        let req = http::Request::post("/internal/events")
            .header(http::header::HOST, self.target.to_string())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("x-hub-timestamp", ts.to_string())
            .header("x-hub-signature", sig)
            .body(Full::new(body))
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
        let answer = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("post body: {e}"))?
            .to_bytes();
        Ok((status, answer.windows(9).any(|w| w == b"duplicate")))
    }
}

async fn open(target: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(target)
        .await
        .map_err(|e| format!("poster connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("poster handshake: {e}"))?;
    tokio::spawn(conn);
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::ledger::Kind;

    #[test]
    fn body_follows_the_contract() {
        let b = body(
            "x-1",
            7,
            8,
            Key {
                kind: Kind::Left,
                user: 9,
            },
        );
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["id"], "x-1");
        assert_eq!(v["event"], "voice.left");
        assert_eq!(v["payload"]["guildId"], "7");
        assert_eq!(v["payload"]["channelId"], "8");
        assert_eq!(v["payload"]["userId"], "9");
    }
}
