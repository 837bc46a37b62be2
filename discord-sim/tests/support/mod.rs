//! Shared helpers for the integration tests: a small raw gateway client (tokio-tungstenite,
//! with its own zlib-stream inflater) and a raw HTTP client. Deliberately independent of
//! `gateway-proto`, so the sim and the real client check each other.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test file uses a different subset"
)]

use std::time::Duration;

use bytes::Bytes;
use discord_sim::{Sim, SimConfig};
use flate2::{Decompress, FlushDecompress};
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Generous: the machine is small and shared.
pub const WAIT: Duration = Duration::from_secs(20);

/// Intents the worker uses: GUILDS | GUILD_VOICE_STATES.
pub const INTENTS: u64 = 129;

/// A config with a long heartbeat interval (no timeouts unless a test wants one).
pub fn config() -> SimConfig {
    SimConfig {
        heartbeat_interval: Duration::from_secs(30),
        resume_timeout: Duration::from_secs(60),
        rest_rate_limit: discord_sim::RestRateLimit {
            bucket_limit: 100,
            ..discord_sim::RestRateLimit::default()
        },
        // Tests identify several times within 5 s; the concurrency test sets 1 itself.
        session_start_limit: discord_sim::SessionStartLimit {
            max_concurrency: 16,
            ..discord_sim::SessionStartLimit::default()
        },
        ..SimConfig::default()
    }
}

pub async fn start(cfg: SimConfig) -> Sim {
    Sim::start(cfg).await.expect("sim starts")
}

/// What the client saw next.
#[derive(Debug)]
pub enum Event {
    Payload(Value),
    /// A close frame with this code.
    Closed(Option<u16>),
    /// The stream ended or failed without a close frame.
    Dropped,
}

pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    inflate: Option<Decompress>,
    pending: Vec<u8>,
}

pub fn identify_payload(token: &str, intents: u64) -> Value {
    json!({"op": 2, "d": {
        "token": token,
        "intents": intents,
        "properties": {"os": "linux", "browser": "sim-test", "device": "sim-test"},
    }})
}

impl Client {
    /// Connects to `base` with the given query string.
    pub async fn connect_with(base: &str, query: &str) -> Self {
        let url = format!("{base}/?{query}");
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect in time")
            .expect("connect");
        let inflate = query
            .contains("compress=zlib-stream")
            .then(|| Decompress::new(true));
        Self {
            ws,
            inflate,
            pending: Vec::new(),
        }
    }

    /// Connects with `v=10&encoding=json`.
    pub async fn connect(base: &str) -> Self {
        Self::connect_with(base, "v=10&encoding=json").await
    }

    /// Connects and reads HELLO; returns the client and `heartbeat_interval`.
    pub async fn connect_hello(base: &str) -> (Self, u64) {
        let mut c = Self::connect(base).await;
        let hello = c.expect_op(10).await;
        let interval = hello["d"]["heartbeat_interval"].as_u64().expect("interval");
        (c, interval)
    }

    /// Connects, reads HELLO, identifies, and reads READY and GUILD_CREATE.
    pub async fn identified(sim: &Sim) -> (Self, Value, Value) {
        let (mut c, _) = Self::connect_hello(sim.gateway_url()).await;
        c.send(identify_payload(&sim.config().token, INTENTS)).await;
        let ready = c.expect_dispatch("READY").await;
        let guild = c.expect_dispatch("GUILD_CREATE").await;
        (c, ready, guild)
    }

    pub async fn send(&mut self, v: Value) {
        self.send_text(v.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// Sends a close frame with `code` and waits for the connection to finish.
    pub async fn close(mut self, code: u16) {
        let frame = CloseFrame {
            code: code.into(),
            reason: "".into(),
        };
        let _ = self.ws.close(Some(frame)).await;
        let _ = tokio::time::timeout(WAIT, async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }

    /// Drops TCP without a close frame.
    pub fn drop_tcp(self) {
        drop(self);
    }

    /// The next thing that happens, within [`WAIT`].
    pub async fn next_event(&mut self) -> Event {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("an event in time");
            match msg {
                None | Some(Err(_)) => return Event::Dropped,
                Some(Ok(Message::Close(frame))) => {
                    return Event::Closed(frame.map(|f| u16::from(f.code)));
                }
                Some(Ok(Message::Text(t))) => {
                    assert!(
                        self.inflate.is_none(),
                        "text frame on a zlib-stream connection"
                    );
                    return Event::Payload(serde_json::from_str(t.as_str()).expect("json"));
                }
                Some(Ok(Message::Binary(b))) => {
                    let inflate = self
                        .inflate
                        .as_mut()
                        .expect("binary frame without compression");
                    self.pending.extend_from_slice(&b);
                    if !self.pending.ends_with(&[0, 0, 0xff, 0xff]) {
                        continue;
                    }
                    let mut out = Vec::with_capacity(self.pending.len() * 8 + 1024);
                    let start = inflate.total_in();
                    loop {
                        let done = usize::try_from(inflate.total_in() - start).expect("fits");
                        inflate
                            .decompress_vec(&self.pending[done..], &mut out, FlushDecompress::Sync)
                            .expect("inflate");
                        let done = usize::try_from(inflate.total_in() - start).expect("fits");
                        if done == self.pending.len() && out.len() < out.capacity() {
                            break;
                        }
                        out.reserve(out.capacity().max(1024));
                    }
                    self.pending.clear();
                    return Event::Payload(serde_json::from_slice(&out).expect("inflated json"));
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next payload; panics on close.
    pub async fn next_payload(&mut self) -> Value {
        match self.next_event().await {
            Event::Payload(v) => v,
            other => panic!("expected a payload, got {other:?}"),
        }
    }

    /// Skips heartbeat ACKs and returns the next payload with this op.
    pub async fn expect_op(&mut self, op: u64) -> Value {
        loop {
            let p = self.next_payload().await;
            if p["op"] == op {
                return p;
            }
            assert_eq!(
                p["op"], 11,
                "unexpected payload while waiting for op {op}: {p}"
            );
        }
    }

    /// Skips ACKs; the next dispatch must be `t`.
    pub async fn expect_dispatch(&mut self, t: &str) -> Value {
        let p = self.expect_op(0).await;
        assert_eq!(p["t"], t, "unexpected dispatch: {p}");
        p
    }

    /// Reads until the connection closes; returns the close code (None: dropped).
    pub async fn expect_close(&mut self) -> Option<u16> {
        loop {
            match self.next_event().await {
                Event::Payload(_) => {}
                Event::Closed(code) => return code,
                Event::Dropped => return None,
            }
        }
    }
}

/// A raw HTTP/1.1 request; returns status, headers and body text.
pub async fn http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> (u16, http::HeaderMap, String) {
    let uri: http::Uri = url.parse().expect("uri");
    let authority = uri.authority().expect("authority").to_string();
    let tcp = TcpStream::connect(&authority).await.expect("tcp");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .expect("handshake");
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(method)
        .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header("host", authority);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .expect("request");
    let resp = tokio::time::timeout(WAIT, sender.send_request(req))
        .await
        .expect("response in time")
        .expect("response");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// `Authorization: Bot <token>` for the sim's token.
pub fn bot_auth(sim: &Sim) -> String {
    format!("Bot {}", sim.config().token)
}

/// A REST call with the bot's auth; the body is parsed as JSON (Null if not JSON).
pub async fn rest(
    sim: &Sim,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, http::HeaderMap, Value) {
    let auth = bot_auth(sim);
    let url = format!("{}{path}", sim.api_base());
    let (status, headers, text) = http(
        method,
        &url,
        &[("authorization", &auth)],
        body.map(|b| b.to_string()),
    )
    .await;
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}
