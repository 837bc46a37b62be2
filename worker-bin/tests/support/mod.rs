//! Shared test harness: a test hub receiver, a worker running in-process, and
//! condition polling.

#![allow(dead_code, unreachable_pub)] // Each test file uses a different subset.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use discord_sim::{Sim, SimConfig};
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use worker::{Config, RunError, Telemetry, Tuning};

pub const SECRET: &str = "test-hub-secret-0123456789abcdef0123";
pub const WAIT: Duration = Duration::from_secs(20);

/// One request the hub received.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: Option<String>,
    pub event: String,
    pub payload: Value,
    /// The id had been accepted before (a retry).
    pub duplicate: bool,
}

/// How the test hub answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubMode {
    /// Verify and accept.
    Accept,
    /// Answer this status without recording.
    Status(u16),
    /// Abort the connection without an answer.
    Down,
}

#[derive(Debug)]
struct HubState {
    mode: HubMode,
    accepted: Vec<Received>,
    seen: HashSet<String>,
    bad_signatures: u64,
    refused: u64,
    /// Sent as `X-Hub-State-Id` on every 200 when set.
    state_id: Option<String>,
}

/// A small `/internal/events` receiver: checks the HMAC like the hub,
/// dedupes by id, records everything.
pub struct TestHub {
    pub addr: SocketAddr,
    state: Arc<Mutex<HubState>>,
    task: JoinHandle<()>,
}

impl Drop for TestHub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn verify(headers: &http::HeaderMap, body: &[u8]) -> bool {
    let Some(ts) = headers.get("x-hub-timestamp").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(sig) = headers.get("x-hub-signature").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Ok(ts_num) = ts.parse::<u64>() else {
        return false;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now.abs_diff(ts_num) > 60 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    sig == format!("sha256={expected}")
}

impl TestHub {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(HubState {
            mode: HubMode::Accept,
            accepted: Vec::new(),
            seen: HashSet::new(),
            state_id: None,
            bad_signatures: 0,
            refused: 0,
        }));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let state = Arc::clone(&state);
                        async move { handle(state, req).await }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, state, task }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}/internal/events", self.addr)
    }

    /// Answers every accepted delivery with `X-Hub-State-Id: id` (a real hub's restart
    /// changes it).
    pub fn set_state_id(&self, id: &str) {
        self.state.lock().unwrap().state_id = Some(id.to_owned());
    }

    pub fn set_mode(&self, mode: HubMode) {
        self.state.lock().unwrap().mode = mode;
    }

    /// Every accepted request, retries (duplicates) included, in order.
    pub fn all(&self) -> Vec<Received> {
        self.state.lock().unwrap().accepted.clone()
    }

    /// Accepted first deliveries (no duplicates), in order.
    pub fn events(&self) -> Vec<Received> {
        self.all().into_iter().filter(|r| !r.duplicate).collect()
    }

    /// Accepted first deliveries other than `guild.sync`.
    pub fn room_events(&self) -> Vec<Received> {
        self.events()
            .into_iter()
            .filter(|r| r.event != "guild.sync")
            .collect()
    }

    pub fn bad_signatures(&self) -> u64 {
        self.state.lock().unwrap().bad_signatures
    }

    pub fn refused(&self) -> u64 {
        self.state.lock().unwrap().refused
    }
}

type Resp = http::Response<Full<Bytes>>;

fn json_response(status: u16, body: Value) -> Resp {
    let mut r = http::Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
    r
}

async fn handle(
    state: Arc<Mutex<HubState>>,
    req: http::Request<hyper::body::Incoming>,
) -> Result<Resp, std::io::Error> {
    let mode = state.lock().unwrap().mode;
    match mode {
        HubMode::Down => {
            return Err(std::io::Error::other("hub down"));
        }
        HubMode::Status(code) => {
            state.lock().unwrap().refused += 1;
            let mut r = json_response(code, json!({"message": "test hub refuses"}));
            if code == 429 || code == 503 {
                r.headers_mut()
                    .insert("retry-after", http::HeaderValue::from_static("1"));
            }
            return Ok(r);
        }
        HubMode::Accept => {}
    }
    let (parts, body) = req.into_parts();
    let Ok(body) = body.collect().await else {
        return Ok(json_response(400, json!({"message": "body"})));
    };
    let body = body.to_bytes();
    if parts.method != http::Method::POST || parts.uri.path() != "/internal/events" {
        return Ok(json_response(404, json!({"message": "not found"})));
    }
    if !verify(&parts.headers, &body) {
        state.lock().unwrap().bad_signatures += 1;
        return Ok(json_response(403, json!({"message": "bad signature"})));
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return Ok(json_response(400, json!({"message": "json"})));
    };
    let id = v["id"].as_str().map(str::to_owned);
    let mut s = state.lock().unwrap();
    let duplicate = id.as_ref().is_some_and(|id| !s.seen.insert(id.clone()));
    s.accepted.push(Received {
        id,
        event: v["event"].as_str().unwrap_or_default().to_owned(),
        payload: v["payload"].clone(),
        duplicate,
    });
    let mut r = json_response(
        200,
        if duplicate {
            json!({"ok": true, "duplicate": true})
        } else {
            json!({"ok": true})
        },
    );
    if let Some(id) = &s.state_id {
        r.headers_mut()
            .insert("x-hub-state-id", http::HeaderValue::from_str(id).unwrap());
    }
    Ok(r)
}

/// A sim with a short heartbeat.
pub async fn sim() -> Sim {
    sim_with(|_| {}).await
}

pub async fn sim_with(change: impl FnOnce(&mut SimConfig)) -> Sim {
    let mut config = SimConfig {
        heartbeat_interval: Duration::from_millis(1_000),
        ..SimConfig::default()
    };
    change(&mut config);
    Sim::start(config).await.unwrap()
}

pub fn config(sim: &Sim, hub: &TestHub, extra: &[(&str, &str)]) -> Config {
    let guild = sim.guild_id().to_string();
    let endpoint = hub.endpoint();
    let mut pairs: Vec<(&str, &str)> = vec![
        ("DISCORD_BOT_TOKEN", discord_sim::DEFAULT_TOKEN),
        ("PRIMARY_GUILD_ID", &guild),
        ("HUB_ENDPOINT", &endpoint),
        ("HUB_SECRET", SECRET),
        ("DISCORD_API_BASE", sim.api_base()),
    ];
    pairs.extend_from_slice(extra);
    Config::from_pairs(pairs).unwrap()
}

pub fn tuning() -> Tuning {
    Tuning {
        gateway_backoff: (Duration::from_millis(50), Duration::from_millis(500)),
        flush_timeout: Duration::from_secs(3),
        checkpoint_interval: Duration::from_millis(50),
        // Longer than any test, so syncs are only the ones a test provokes; the idle
        // resync's own test shortens it.
        idle_resync: Duration::from_secs(600),
    }
}

/// A worker running in this process.
pub struct RunningWorker {
    pub telemetry: Telemetry,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), RunError>>>,
}

impl RunningWorker {
    pub fn start(config: Config) -> Self {
        Self::start_tuned(config, tuning())
    }

    pub fn start_tuned(config: Config, tuning: Tuning) -> Self {
        let telemetry = Telemetry::default();
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(worker::run(config, tuning, telemetry.clone(), async move {
            let _ = rx.await;
        }));
        Self {
            telemetry,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The in-process SIGTERM: ask to stop and wait for the result.
    pub async fn shutdown(mut self) -> Result<(), RunError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.join().await
    }

    /// Wait for the worker to end by itself.
    pub async fn join(&mut self) -> Result<(), RunError> {
        let task = self.task.take().expect("joined twice");
        tokio::time::timeout(WAIT, task)
            .await
            .expect("worker did not stop in time")
            .expect("worker panicked")
    }

    /// Kill the worker without any shutdown work (like `kill -9`).
    pub fn kill(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for RunningWorker {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Poll `condition` until it holds (up to [`WAIT`]).
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if condition() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `(event, channelId, userId)` of room events, for compact assertions.
pub fn summary(events: &[Received]) -> Vec<(String, String, String)> {
    events
        .iter()
        .map(|r| {
            (
                r.event.clone(),
                r.payload["channelId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                r.payload["userId"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

pub fn ev(event: &str, channel: u64, user: u64) -> (String, String, String) {
    (event.to_owned(), channel.to_string(), user.to_string())
}

pub fn state_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("worker-state.json")
}
