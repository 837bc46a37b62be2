//! A minimal hyper server around `hub_core::ws::upgrade`, signed tokens, and WebSocket
//! client helpers for the `ws_*` integration tests (loopback only).

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test file uses a different subset"
)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use hub_core::auth::{JwtConfig, JwtVerifier, KeySource, TestIssuer};
use hub_core::hub::{Hub, HubConfig, IncomingEvent, IngestOutcome};
use hub_core::metrics::Metrics;
use hub_core::ws::{self, WsContext, WsSettings};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const GUILD: u64 = 424_242;
pub const ISS: &str = "https://app.example";
pub const AUD: &str = "spell-coven";
/// Generous: the machine is small and shared.
pub const WAIT: Duration = Duration::from_secs(20);

pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;
pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Knobs of a test hub.
#[derive(Debug, Clone)]
pub struct Options {
    pub allowed_origins: Vec<String>,
    pub settings: WsSettings,
    pub client_queue_max_bytes: usize,
    pub replay_max_events: usize,
    pub replay_max_age: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            settings: WsSettings::default(),
            client_queue_max_bytes: 1 << 20,
            replay_max_events: 5000,
            replay_max_age: Duration::from_secs(600),
        }
    }
}

/// A hub served on 127.0.0.1:0.
pub struct TestHub {
    pub addr: SocketAddr,
    pub hub: Hub,
    pub metrics: Arc<Metrics>,
    pub issuer: TestIssuer,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for TestHub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestHub {
    pub async fn start(opts: Options) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let dir = tempfile::tempdir()?;
        let issuer = TestIssuer::new("ws-test-key");
        let jwks = dir.path().join("jwks.json");
        std::fs::write(&jwks, TestIssuer::jwks(&[&issuer]))?;
        let jwt = JwtVerifier::new(JwtConfig {
            issuer: ISS.into(),
            audience: AUD.into(),
            keys: KeySource::File(jwks),
        })?;
        jwt.load().await?;
        let metrics = Arc::new(Metrics::default());
        let hub = Hub::new(
            HubConfig {
                guild_id: GUILD,
                replay_max_events: opts.replay_max_events,
                replay_max_age: opts.replay_max_age,
                client_queue_max_bytes: opts.client_queue_max_bytes,
                data_dir: Some(dir.path().join("data")),
            },
            metrics.clone(),
        )?;
        let mut ctx = WsContext::new(hub.clone(), jwt, opts.allowed_origins, metrics.clone());
        ctx.settings = opts.settings;
        let ctx = Arc::new(ctx);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let ctx = ctx.clone();
                        async move { Ok::<_, Infallible>(ws::upgrade(req, ctx)) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            hub,
            metrics,
            issuer,
            server,
            _dir: dir,
        })
    }

    pub fn token(&self) -> String {
        self.issuer.token_for(ISS, AUD, "user-1", unix_now() + 3600)
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// A connected, not yet authenticated client.
    pub async fn connect(&self) -> Result<Client, Box<dyn std::error::Error + Send + Sync>> {
        let (client, _) = tokio_tungstenite::connect_async(self.url()).await?;
        Ok(client)
    }

    /// A connected client whose socket has a tiny receive buffer (no autotuning), so that a
    /// client that stops reading backs up quickly.
    pub async fn connect_small_rcvbuf(
        &self,
    ) -> Result<Client, Box<dyn std::error::Error + Send + Sync>> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_recv_buffer_size(4096)?;
        let stream = socket.connect(self.addr).await?;
        let (client, _) =
            tokio_tungstenite::client_async(self.url(), MaybeTlsStream::Plain(stream)).await?;
        Ok(client)
    }

    /// Sends the auth message and returns the ack.
    pub async fn auth(
        &self,
        client: &mut Client,
        since: Option<u64>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let mut auth = json!({"type": "auth", "token": self.token()});
        if let Some(since) = since {
            auth["since"] = json!(since);
        }
        client.send(Message::text(auth.to_string())).await?;
        recv_json(client).await
    }

    /// A client that authenticated; returns it with the ack.
    pub async fn authed(
        &self,
        since: Option<u64>,
    ) -> Result<(Client, Value), Box<dyn std::error::Error + Send + Sync>> {
        let mut client = self.connect().await?;
        let ack = self.auth(&mut client, since).await?;
        Ok((client, ack))
    }

    /// Publishes `voice.joined` (user into channel).
    pub fn join(&self, channel: u64, user: u64) -> IngestOutcome {
        self.event("voice.joined", channel, Some(user))
    }

    /// Publishes `voice.left`.
    pub fn leave(&self, channel: u64, user: u64) -> IngestOutcome {
        self.event("voice.left", channel, Some(user))
    }

    pub fn event(&self, name: &str, channel: u64, user: Option<u64>) -> IngestOutcome {
        let mut payload = json!({"guildId": GUILD.to_string(), "channelId": channel.to_string()});
        if let Some(user) = user {
            payload["userId"] = json!(user.to_string());
        }
        if name == "room.created" {
            payload["name"] = json!(format!("room-{channel}"));
        }
        let ev = IncomingEvent {
            id: None,
            event: name.into(),
            payload,
        };
        // The in-process hub never awaits: the future is ready at once.
        futures_util::FutureExt::now_or_never(self.hub.publish(ev, unix_now() * 1000))
            .and_then(Result::ok)
            .unwrap_or(IngestOutcome::Ignored)
    }
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The next text message as JSON (pings and pongs skipped).
pub async fn recv_json(
    client: &mut Client,
) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
    loop {
        let msg = tokio::time::timeout(WAIT, client.next())
            .await?
            .ok_or("connection ended")??;
        match msg {
            Message::Text(t) => return Ok(serde_json::from_str(&t)?),
            Message::Ping(_) | Message::Pong(_) => {}
            other => return Err(format!("expected text, got {other:?}").into()),
        }
    }
}

/// Reads until the close frame and returns its code (text messages are skipped).
pub async fn close_code(
    client: &mut Client,
) -> Result<u16, Box<dyn std::error::Error + Send + Sync>> {
    loop {
        let msg = tokio::time::timeout(WAIT, client.next())
            .await?
            .ok_or("connection ended without a close frame")??;
        if let Message::Close(frame) = msg {
            return Ok(frame.map_or(1005, |f| u16::from(f.code)));
        }
    }
}

/// The close code as a [`CloseCode`], for readable assertions.
pub fn code(c: u16) -> CloseCode {
    CloseCode::from(c)
}

/// Waits until `cond` holds (polling), at most [`WAIT`].
pub async fn eventually(mut cond: impl FnMut() -> bool) -> Result<(), &'static str> {
    let start = tokio::time::Instant::now();
    while !cond() {
        if start.elapsed() > WAIT {
            return Err("condition not reached in time");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// A raw TCP connection that completed the WebSocket handshake by hand (to send frames a
/// compliant client would never send).
pub async fn raw_upgrade(
    addr: SocketAddr,
    extra_headers: &str,
) -> Result<(TcpStream, String), Box<dyn std::error::Error + Send + Sync>> {
    let mut stream = TcpStream::connect(addr).await?;
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra_headers}\r\n"
    );
    stream.write_all(req.as_bytes()).await?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if tokio::time::timeout(WAIT, stream.read(&mut byte)).await?? == 0 {
            break;
        }
        head.push(byte[0]);
    }
    Ok((stream, String::from_utf8_lossy(&head).into_owned()))
}

/// A client frame (masked unless `masked` is false) with the given first byte.
pub fn frame(first_byte: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![first_byte];
    let mask_bit = if masked { 0x80 } else { 0 };
    assert!(payload.len() < 126, "short frames only");
    out.push(mask_bit | payload.len() as u8);
    if masked {
        let key = [0x12, 0x34, 0x56, 0x78];
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// Reads server frames from a raw stream until a close frame; returns its code.
pub async fn raw_close_code(
    stream: &mut TcpStream,
) -> Result<u16, Box<dyn std::error::Error + Send + Sync>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        // Parse complete frames in buf.
        let mut at = 0;
        while buf.len() >= at + 2 {
            let opcode = buf[at] & 0x0f;
            let mut len = usize::from(buf[at + 1] & 0x7f);
            let mut hdr = 2;
            if len == 126 {
                if buf.len() < at + 4 {
                    break;
                }
                len = usize::from(u16::from_be_bytes([buf[at + 2], buf[at + 3]]));
                hdr = 4;
            } else if len == 127 {
                return Err("unexpectedly large frame".into());
            }
            if buf.len() < at + hdr + len {
                break;
            }
            if opcode == 0x8 {
                let p = &buf[at + hdr..at + hdr + len];
                return Ok(if p.len() >= 2 {
                    u16::from_be_bytes([p[0], p[1]])
                } else {
                    1005
                });
            }
            at += hdr + len;
        }
        buf.drain(..at);
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk)).await??;
        if n == 0 {
            return Err("connection ended without a close frame".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
