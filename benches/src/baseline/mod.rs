//! The naive baseline hub (issue 7): the fan-out most Rust tutorials write, kept only as a
//! yardstick for `fanout --target baseline`.
//!
//! What makes it "naive", on purpose and nothing more:
//! - one `tokio::sync::broadcast` channel carries every event to every connection task;
//! - each connection task encodes the JSON envelope itself, for every event (N encodes per
//!   event instead of one);
//! - each event is written with `send` (one write + flush per message), tungstenite's
//!   default buffers (128 KiB read buffer), no per-client byte bound, no eviction: a lagging
//!   receiver just skips what the ring overwrote (`Lagged`), as tutorials do;
//! - no replay: `since` is ignored and every client gets an (empty) snapshot.
//!
//! It speaks the same contract subset as the real hub so the same load runs against both:
//! `GET /ws` with the `auth` message checked by the same [`JwtVerifier`] (so auth costs the
//! same), the `ack`, events with `seq`; `POST /internal/events` checked by the same
//! [`WebhookVerifier`]. It is not hardened and never faces the network: it binds loopback only.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hub_core::auth::{JwtVerifier, WebhookVerifier};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, frame::coding::CloseCode};

/// Capacity of the broadcast ring (a typical tutorial value, generous for a burst).
pub const CHANNEL_CAPACITY: usize = 4096;

/// One event as broadcast: every connection serializes it again.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Event name.
    pub event: String,
    /// Payload as posted.
    pub payload: serde_json::Value,
    /// Hub time, ms.
    pub ts: i64,
    /// Sequence number.
    pub seq: u64,
}

#[derive(Serialize)]
struct Envelope<'a> {
    v: u8,
    #[serde(rename = "type")]
    kind: &'a str,
    event: &'a str,
    payload: &'a serde_json::Value,
    ts: i64,
    seq: u64,
}

#[derive(Deserialize)]
struct Posted {
    event: String,
    payload: serde_json::Value,
}

#[derive(Deserialize)]
struct Auth {
    #[serde(rename = "type")]
    kind: String,
    token: String,
}

/// The naive hub's shared state.
#[derive(Debug)]
pub struct Naive {
    guild_id: u64,
    jwt: JwtVerifier,
    webhook: WebhookVerifier,
    tx: broadcast::Sender<Arc<Event>>,
    seq: Mutex<u64>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Naive {
    /// A hub for `guild_id` with these verifiers.
    pub fn new(guild_id: u64, jwt: JwtVerifier, webhook: WebhookVerifier) -> Arc<Self> {
        let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
        Arc::new(Self {
            guild_id,
            jwt,
            webhook,
            tx,
            seq: Mutex::new(0),
        })
    }

    /// Serves connections from `listener` forever.
    ///
    /// # Errors
    /// When accepting fails.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> std::io::Result<()> {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    // Out of fds and the like: wait a little, as the tokio examples do.
                    eprintln!("naive-hub: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let hub = self.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let hub = hub.clone();
                    async move { Ok::<_, std::convert::Infallible>(hub.handle(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Full<Bytes>> {
        match (req.method().as_str(), req.uri().path()) {
            ("GET", "/ws") => self.upgrade(req),
            ("POST", "/internal/events") => self.ingest(req).await,
            ("GET", "/health") => reply(StatusCode::OK, "ok"),
            _ => reply(StatusCode::NOT_FOUND, r#"{"message":"not found"}"#),
        }
    }

    async fn ingest(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let Ok(body) = Limited::new(body, 64 * 1024).collect().await else {
            return reply(StatusCode::PAYLOAD_TOO_LARGE, r#"{"message":"too large"}"#);
        };
        let body = body.to_bytes();
        let ts = parts.headers.get("x-hub-timestamp").map(|v| v.as_bytes());
        let sig = parts.headers.get("x-hub-signature").map(|v| v.as_bytes());
        if self
            .webhook
            .verify(ts, sig, &body, now_ms() / 1000)
            .is_err()
        {
            return reply(StatusCode::FORBIDDEN, r#"{"message":"bad signature"}"#);
        }
        let Ok(posted) = serde_json::from_slice::<Posted>(&body) else {
            return reply(StatusCode::BAD_REQUEST, r#"{"message":"bad body"}"#);
        };
        let guild = posted.payload.get("guildId").and_then(|g| g.as_str());
        if guild != Some(self.guild_id.to_string().as_str()) {
            return reply(StatusCode::OK, r#"{"ok":true}"#);
        }
        {
            let mut seq = self.seq.lock().unwrap_or_else(|e| e.into_inner());
            *seq += 1;
            let _ = self.tx.send(Arc::new(Event {
                event: posted.event,
                payload: posted.payload,
                ts: now_ms(),
                seq: *seq,
            }));
        }
        reply(StatusCode::OK, r#"{"ok":true}"#)
    }

    fn upgrade(self: Arc<Self>, mut req: Request<Incoming>) -> Response<Full<Bytes>> {
        let Some(key) = req.headers().get("sec-websocket-key") else {
            return reply(StatusCode::BAD_REQUEST, r#"{"message":"not a websocket"}"#);
        };
        let accept = derive_accept_key(key.as_bytes());
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                let ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None)
                        .await;
                self.session(ws).await;
            }
        });
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-accept", accept)
            .body(Full::new(Bytes::new()))
            .unwrap_or_default()
    }

    async fn session<S>(&self, mut ws: WebSocketStream<S>)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let first = tokio::time::timeout(Duration::from_secs(10), ws.next()).await;
        let token = match first {
            Ok(Some(Ok(Message::Text(t)))) => match serde_json::from_str::<Auth>(t.as_str()) {
                Ok(a) if a.kind == "auth" => a.token,
                _ => return close(ws, 4401).await,
            },
            Err(_) => return close(ws, 4408).await,
            _ => return,
        };
        if self.jwt.verify(&token, now_ms() / 1000).await.is_err() {
            return close(ws, 4401).await;
        }
        // Subscribe under the seq lock so the ack's seq and the stream agree.
        let (mut rx, head) = {
            let seq = self.seq.lock().unwrap_or_else(|e| e.into_inner());
            (self.tx.subscribe(), *seq)
        };
        let ack = serde_json::json!({"v": 1, "type": "ack", "event": "auth.ok",
            "guildId": self.guild_id.to_string(), "seq": head, "resumed": false});
        let snapshot = serde_json::json!({"v": 1, "type": "snapshot", "seq": head,
            "payload": {"rooms": []}});
        for m in [ack, snapshot] {
            if ws.send(Message::text(m.to_string())).await.is_err() {
                return;
            }
        }
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Ok(ev) => {
                        let Ok(text) = serde_json::to_string(&Envelope {
                            v: 1,
                            kind: "event",
                            event: &ev.event,
                            payload: &ev.payload,
                            ts: ev.ts,
                            seq: ev.seq,
                        }) else {
                            continue;
                        };
                        if ws.send(Message::text(text)).await.is_err() {
                            return;
                        }
                    }
                    // The tutorial answer to lag: skip what was lost and carry on.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                msg = ws.next() => match msg {
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                    Some(Ok(_)) => {}
                },
            }
        }
    }
}

async fn close<S>(mut ws: WebSocketStream<S>, code: u16)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let _ = ws
        .close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: "".into(),
        }))
        .await;
}

fn reply(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r
}

/// The loopback address the naive hub binds (`HOST`/`PORT`, loopback only).
///
/// # Errors
/// When `HOST` is not a loopback address or `PORT` is not a port.
pub fn bind_addr(host: Option<&str>, port: Option<&str>) -> Result<SocketAddr, String> {
    let host = host.unwrap_or("127.0.0.1");
    let port: u16 = port
        .unwrap_or("3000")
        .parse()
        .map_err(|_| "PORT: not a port number".to_string())?;
    let ip: std::net::IpAddr = host
        .parse()
        .map_err(|_| "HOST: not an IP address".to_string())?;
    if !ip.is_loopback() {
        return Err("HOST: the naive hub binds loopback only".into());
    }
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_loopback_only() {
        assert!(bind_addr(None, None).is_ok());
        assert!(bind_addr(Some("0.0.0.0"), Some("1")).is_err());
        assert!(bind_addr(Some("127.0.0.1"), Some("x")).is_err());
    }

    #[test]
    fn envelope_has_contract_fields() {
        let p = serde_json::json!({"guildId": "1"});
        let s = serde_json::to_string(&Envelope {
            v: 1,
            kind: "event",
            event: "voice.joined",
            payload: &p,
            ts: 5,
            seq: 9,
        })
        .unwrap();
        assert_eq!(
            s,
            r#"{"v":1,"type":"event","event":"voice.joined","payload":{"guildId":"1"},"ts":5,"seq":9}"#
        );
    }
}
