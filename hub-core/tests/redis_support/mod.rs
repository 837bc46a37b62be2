//! Harness of the `redis_*` tests: a real `redis-server` on a free loopback port, hub
//! replicas (each on its own runtime, so one can be killed abruptly) sharing it, a
//! discord-sim, HTTP and WebSocket helpers.
//!
//! Without `redis-server` installed the tests print `skipped: redis-server not installed`
//! and pass, unless `CI` or `REQUIRE_REDIS_TESTS` is set (then they fail).
#![allow(dead_code, unreachable_pub, missing_docs)] // Each test binary uses a different part.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use discord_sim::{RestRateLimit, Sim, SimConfig};
use futures_util::{SinkExt as _, StreamExt as _};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hub_core::Config;
use hub_core::auth::{TestIssuer, sign_webhook};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const ISSUER: &str = "https://app.example";
pub const AUDIENCE: &str = "spell-coven";
pub const HUB_SECRET: &str = "hub-secret-0123456789-abcdefghijklmnop";
/// Generous: the machine is small and shared.
pub const WAIT: Duration = Duration::from_secs(20);

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn redis_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
}

/// Whether the tests can run; panics when they must (CI / REQUIRE_REDIS_TESTS).
pub fn redis_available() -> bool {
    if redis_binary().is_some() {
        return true;
    }
    if std::env::var_os("CI").is_some() || std::env::var_os("REQUIRE_REDIS_TESTS").is_some() {
        panic!("redis-server not installed (required: CI or REQUIRE_REDIS_TESTS is set)");
    }
    eprintln!("skipped: redis-server not installed");
    false
}

/// A `redis-server` child on 127.0.0.1, killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: TempDir,
    /// AOF with fsync on every write: a kill loses nothing.
    persist: bool,
}

impl RedisServer {
    pub async fn start(persist: bool) -> Self {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr").port()
        };
        let mut server = Self {
            child: None,
            port,
            dir: tempfile::tempdir().expect("tempdir"),
            persist,
        };
        server.spawn().await;
        server
    }

    async fn spawn(&mut self) {
        let bin = redis_binary().expect("redis-server");
        let mut cmd = Command::new(bin);
        cmd.arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", ""])
            .arg("--dir")
            .arg(self.dir.path());
        if self.persist {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + WAIT;
        while !ping(self.port).await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (SIGKILL) and waits for it to be gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (and directory: with `persist`, the data is back).
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn().await;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn ping(port: u16) -> bool {
    let Ok(Ok(mut s)) = tokio::time::timeout(
        Duration::from_secs(1),
        TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    else {
        return false;
    };
    if s.write_all(b"PING\r\n").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(
        tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await,
        Ok(Ok(n)) if buf[..n].starts_with(b"+PONG")
    )
}

/// A hub replica on its own thread and runtime: [`Replica::kill`] drops the runtime, which
/// ends every task and closes every socket without a close frame (like `kill -9`).
pub struct Replica {
    pub addr: SocketAddr,
    stop: Option<std::sync::mpsc::Sender<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _data_dir: TempDir,
}

impl Replica {
    /// Abrupt death: no graceful shutdown, no close frames.
    pub fn kill(mut self) {
        self.finish(false);
    }

    /// Graceful shutdown (SIGTERM path).
    pub fn shutdown(mut self) {
        self.finish(true);
    }

    fn finish(&mut self, graceful: bool) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(graceful);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.finish(false);
    }
}

/// Several replicas sharing one Redis and one discord-sim.
pub struct Cluster {
    pub sim: Sim,
    pub redis: RedisServer,
    pub issuer: TestIssuer,
    jwks_dir: TempDir,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Cluster {
    pub async fn start(persist: bool) -> Self {
        let sim = Sim::start(SimConfig {
            rest_rate_limit: RestRateLimit {
                bucket_limit: 1000,
                bucket_reset_after: Duration::from_secs(5),
                global_per_second: 1000,
            },
            ..SimConfig::default()
        })
        .await
        .expect("sim starts");
        let issuer = TestIssuer::new("redis-test-key");
        let jwks_dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            jwks_dir.path().join("jwks.json"),
            TestIssuer::jwks(&[&issuer]),
        )
        .expect("write jwks");
        Self {
            sim,
            redis: RedisServer::start(persist).await,
            issuer,
            jwks_dir,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Starts one more replica with the same REDIS_URL and its own DATA_DIR.
    pub fn replica(&self) -> Replica {
        let data_dir = tempfile::tempdir().expect("tempdir");
        let vars: Vec<(String, String)> = vec![
            ("HOST".into(), "127.0.0.1".into()),
            ("PORT".into(), "0".into()),
            ("PRIMARY_GUILD_ID".into(), self.sim.guild_id().to_string()),
            ("HUB_SECRET".into(), HUB_SECRET.into()),
            (
                "DISCORD_BOT_TOKEN".into(),
                discord_sim::DEFAULT_TOKEN.into(),
            ),
            ("DISCORD_API_BASE".into(), self.sim.api_base().to_owned()),
            ("JWT_ISSUER".into(), ISSUER.into()),
            ("JWT_AUDIENCE".into(), AUDIENCE.into()),
            (
                "JWT_PUBLIC_JWKS_FILE".into(),
                self.jwks_dir.path().join("jwks.json").display().to_string(),
            ),
            ("DATA_DIR".into(), data_dir.path().display().to_string()),
            ("REDIS_URL".into(), self.redis.url()),
        ];
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<bool>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            let config = Config::from_vars(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .expect("config");
            let server = rt.block_on(hub_core::start(config)).expect("hub starts");
            let _ = addr_tx.send(server.local_addr());
            let graceful = stop_rx.recv().unwrap_or(false);
            if graceful {
                rt.block_on(server.shutdown());
            } else {
                drop(server);
            }
            rt.shutdown_background();
        });
        let addr = addr_rx.recv_timeout(WAIT).expect("replica listening");
        Replica {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
            _data_dir: data_dir,
        }
    }

    pub fn token(&self, sub: &str) -> String {
        self.issuer
            .token_for(ISSUER, AUDIENCE, sub, unix_now() + 600)
    }

    pub async fn send(&self, req: Request<Full<Bytes>>) -> (StatusCode, Value) {
        let (status, _, value) = self.send_full(req).await;
        (status, value)
    }

    /// [`Self::send`] with the response headers.
    pub async fn send_full(
        &self,
        req: Request<Full<Bytes>>,
    ) -> (StatusCode, http::HeaderMap, Value) {
        let res = tokio::time::timeout(Duration::from_secs(30), self.client.request(req))
            .await
            .expect("answer within 30 s")
            .expect("request succeeds");
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.expect("body").to_bytes();
        let value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        (status, headers, value)
    }

    /// A signed webhook to `to`, with timestamp `ts`.
    pub async fn webhook(&self, to: &Replica, body: &str, ts: i64) -> (StatusCode, Value) {
        let (status, _, value) = self.webhook_full(to, body, ts).await;
        (status, value)
    }

    /// [`Self::webhook`] with the response headers.
    pub async fn webhook_full(
        &self,
        to: &Replica,
        body: &str,
        ts: i64,
    ) -> (StatusCode, http::HeaderMap, Value) {
        let sig = sign_webhook(HUB_SECRET.as_bytes(), ts, body.as_bytes());
        let req = Request::builder()
            .method(Method::POST)
            .uri(format!("http://{}/internal/events", to.addr))
            .header("x-hub-timestamp", ts.to_string())
            .header("x-hub-signature", sig)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_owned())))
            .expect("request");
        self.send_full(req).await
    }

    /// The `X-Hub-State-Id` of an accepted webhook to `to`.
    pub async fn state_id(&self, to: &Replica, body: &str) -> String {
        let (status, headers, value) = self.webhook_full(to, body, unix_now()).await;
        assert_eq!(status, 200, "{value}");
        headers
            .get("x-hub-state-id")
            .and_then(|v| v.to_str().ok())
            .expect("x-hub-state-id on a 200")
            .to_owned()
    }

    /// `voice.joined` for our guild.
    pub fn joined(&self, id: Option<&str>, channel: u64, user: u64) -> String {
        let id = id.map_or(String::new(), |id| format!(r#""id":"{id}","#));
        format!(
            r#"{{{id}"event":"voice.joined","payload":{{"guildId":"{}","channelId":"{channel}","userId":"{user}"}}}}"#,
            self.sim.guild_id()
        )
    }

    pub async fn health(&self, to: &Replica) -> (StatusCode, Value) {
        let req = Request::builder()
            .uri(format!("http://{}/health", to.addr))
            .body(Full::new(Bytes::new()))
            .expect("request");
        self.send(req).await
    }

    pub async fn create_room(
        &self,
        to: &Replica,
        sub: &str,
        key: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(format!("http://{}/create-room", to.addr))
            .header("authorization", format!("Bearer {}", self.token(sub)))
            .header("content-type", "application/json");
        if let Some(key) = key {
            req = req.header("x-idempotency-key", key);
        }
        self.send(
            req.body(Full::new(Bytes::from_static(b"{}")))
                .expect("request"),
        )
        .await
    }

    pub async fn end_room(&self, to: &Replica, sub: &str, channel: &str) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(Method::DELETE)
            .uri(format!("http://{}/end-room/{channel}", to.addr))
            .header("authorization", format!("Bearer {}", self.token(sub)))
            .body(Full::new(Bytes::new()))
            .expect("request");
        self.send(req).await
    }

    /// A WebSocket client on `to`, authenticated; returns it with its ack.
    pub async fn client(
        &self,
        to: &Replica,
        since: Option<u64>,
    ) -> Result<(Ws, Value), Box<dyn std::error::Error + Send + Sync>> {
        let (mut ws, _) = tokio::time::timeout(
            WAIT,
            tokio_tungstenite::connect_async(format!("ws://{}/ws", to.addr)),
        )
        .await??;
        let mut auth = json!({"type": "auth", "token": self.token("watcher")});
        if let Some(since) = since {
            auth["since"] = json!(since);
        }
        ws.send(Message::text(auth.to_string())).await?;
        let ack = recv_json(&mut ws).await?;
        Ok((ws, ack))
    }
}

/// The next text message as JSON (pings and pongs skipped); an error on close or timeout.
pub async fn recv_json(ws: &mut Ws) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await?
            .ok_or("connection ended")??;
        match msg {
            Message::Text(t) => return Ok(serde_json::from_str(&t)?),
            Message::Ping(_) | Message::Pong(_) => {}
            other => return Err(format!("expected text, got {other:?}").into()),
        }
    }
}

/// Reads until a close frame and returns its code (text messages are skipped).
pub async fn close_code(ws: &mut Ws) -> Result<u16, Box<dyn std::error::Error + Send + Sync>> {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await?
            .ok_or("connection ended without a close frame")??;
        if let Message::Close(frame) = msg {
            return Ok(frame.map_or(1005, |f| u16::from(f.code)));
        }
    }
}

/// Polls an async condition until true, at most [`WAIT`].
pub async fn eventually<F, Fut>(mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
