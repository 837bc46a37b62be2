//! Shared harness of the HTTP integration tests: discord-sim, the real hub server
//! in-process on 127.0.0.1:0, ES256 test tokens, a small HTTP client and a log capture.
#![allow(dead_code, unreachable_pub, missing_docs)] // Each test binary uses a different part.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use discord_sim::{RestRateLimit, Sim, SimConfig};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hub_core::auth::{TestIssuer, sign_webhook};
use hub_core::{Config, ServerHandle};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tempfile::TempDir;

pub const ISSUER: &str = "https://app.example";
pub const AUDIENCE: &str = "spell-coven";
pub const HUB_SECRET: &str = "hub-secret-0123456789-abcdefghijklmnop";
pub const ORIGIN: &str = "https://app.example";

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// An answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A running sim + hub.
pub struct TestHub {
    pub sim: Sim,
    pub server: Option<ServerHandle>,
    pub addr: std::net::SocketAddr,
    pub data_dir: TempDir,
    pub issuer: TestIssuer,
    pub vars: Vec<(String, String)>,
    client: Client<HttpConnector, Full<Bytes>>,
    _jwks_dir: TempDir,
}

pub struct Options {
    pub sim: SimConfig,
    pub vars: Vec<(&'static str, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            sim: SimConfig {
                // Room tests create many channels; the rate-limit tests lower this.
                rest_rate_limit: RestRateLimit {
                    bucket_limit: 1000,
                    bucket_reset_after: Duration::from_secs(5),
                    global_per_second: 1000,
                },
                ..SimConfig::default()
            },
            vars: Vec::new(),
        }
    }
}

impl TestHub {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        capture_logs();
        let sim = Sim::start(options.sim.clone()).await.expect("sim starts");
        let issuer = TestIssuer::new("test-key");
        let jwks_dir = tempfile::tempdir().expect("tempdir");
        let jwks = jwks_dir.path().join("jwks.json");
        std::fs::write(&jwks, TestIssuer::jwks(&[&issuer])).expect("write jwks");
        let data_dir = tempfile::tempdir().expect("tempdir");
        let mut vars: Vec<(String, String)> = vec![
            ("HOST".into(), "127.0.0.1".into()),
            ("PORT".into(), "0".into()),
            ("PRIMARY_GUILD_ID".into(), sim.guild_id().to_string()),
            ("HUB_SECRET".into(), HUB_SECRET.into()),
            ("DISCORD_BOT_TOKEN".into(), options.sim.token.clone()),
            ("DISCORD_API_BASE".into(), sim.api_base().to_owned()),
            ("JWT_ISSUER".into(), ISSUER.into()),
            ("JWT_AUDIENCE".into(), AUDIENCE.into()),
            ("JWT_PUBLIC_JWKS_FILE".into(), jwks.display().to_string()),
            ("CORS_ORIGINS".into(), ORIGIN.into()),
            ("DATA_DIR".into(), data_dir.path().display().to_string()),
        ];
        for (k, v) in options.vars {
            vars.retain(|(name, _)| name != k);
            vars.push((k.to_owned(), v));
        }
        let server = start_server(&vars).await;
        Self {
            addr: server.local_addr(),
            sim,
            server: Some(server),
            data_dir,
            issuer,
            vars,
            client: Client::builder(TokioExecutor::new()).build_http(),
            _jwks_dir: jwks_dir,
        }
    }

    /// Stops the hub and starts a new one on the same DATA_DIR (new port).
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        let server = start_server(&self.vars).await;
        self.addr = server.local_addr();
        self.server = Some(server);
    }

    pub fn server(&self) -> &ServerHandle {
        self.server.as_ref().expect("server running")
    }

    pub fn token(&self, sub: &str) -> String {
        self.issuer
            .token_for(ISSUER, AUDIENCE, sub, unix_now() + 600)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn send(&self, req: Request<Full<Bytes>>) -> Answer {
        let res = tokio::time::timeout(Duration::from_secs(30), self.client.request(req))
            .await
            .expect("answer within 30 s")
            .expect("request succeeds");
        let (parts, body) = res.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        let answer = Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        };
        assert_no_secrets(&answer);
        answer
    }

    pub fn request(&self, method: Method, path: &str) -> http::request::Builder {
        Request::builder().method(method).uri(self.url(path))
    }

    pub async fn create_room(&self, sub: &str, body: &str) -> Answer {
        let req = self
            .request(Method::POST, "/create-room")
            .header("authorization", format!("Bearer {}", self.token(sub)))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_owned())))
            .expect("request");
        self.send(req).await
    }

    pub async fn end_room(&self, sub: &str, channel: &str) -> Answer {
        let req = self
            .request(Method::DELETE, &format!("/end-room/{channel}"))
            .header("authorization", format!("Bearer {}", self.token(sub)))
            .body(Full::new(Bytes::new()))
            .expect("request");
        self.send(req).await
    }

    /// A signed webhook request, as the worker sends it.
    pub fn webhook_request(&self, body: &str, ts: i64) -> Request<Full<Bytes>> {
        let sig = sign_webhook(HUB_SECRET.as_bytes(), ts, body.as_bytes());
        self.request(Method::POST, "/internal/events")
            .header("x-hub-timestamp", ts.to_string())
            .header("x-hub-signature", sig)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_owned())))
            .expect("request")
    }

    /// REST calls Discord saw for a method and path prefix.
    pub fn discord_calls(&self, method: &str, path_prefix: &str) -> Vec<discord_sim::RestCall> {
        self.sim
            .rest_log()
            .into_iter()
            .filter(|c| c.method == method && c.path.starts_with(path_prefix))
            .collect()
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        self.sim.shutdown().await;
    }
}

async fn start_server(vars: &[(String, String)]) -> ServerHandle {
    let config =
        Config::from_vars(vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))).expect("config");
    hub_core::start(config).await.expect("hub starts")
}

/// Every answer is checked: it never contains the bot token or the hub secret.
pub fn assert_no_secrets(answer: &Answer) {
    let text = format!("{:?} {}", answer.headers, answer.text());
    assert!(
        !text.contains(discord_sim::DEFAULT_TOKEN),
        "bot token leaked: {text}"
    );
    assert!(!text.contains(HUB_SECRET), "hub secret leaked: {text}");
}

/// Polls `cond` until true, up to `secs` seconds.
pub async fn wait_until(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

// ---- log capture: a minimal tracing subscriber writing every event to a shared buffer ----

static LOGS: OnceLock<Arc<Mutex<Vec<String>>>> = OnceLock::new();

/// Every log line written so far by any test of this binary.
pub fn captured_logs() -> Vec<String> {
    LOGS.get()
        .map(|l| l.lock().unwrap_or_else(|e| e.into_inner()).clone())
        .unwrap_or_default()
}

fn capture_logs() {
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let _ = tracing::subscriber::set_global_default(Capture {
            lines: Arc::clone(&buffer),
        });
        buffer
    });
}

struct Capture {
    lines: Arc<Mutex<Vec<String>>>,
}

struct Line(String);

impl tracing::field::Visit for Line {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push_str(&format!(" {}={}", field.name(), value));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut line = Line(format!("span {}", span.metadata().name()));
        span.record(&mut line);
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line.0);
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut line = Line("record".into());
        values.record(&mut line);
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line.0);
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = Line(format!(
            "{} {}",
            event.metadata().level(),
            event.metadata().target()
        ));
        event.record(&mut line);
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
