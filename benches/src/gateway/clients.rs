//! The browser-like WebSocket clients: each authenticates (contract §3 items 1-2), reads
//! every frame, and records the instant each `voice.joined`/`voice.left` was read.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::ledger::{Receipt, voice_key};

/// Deadline of one connect + upgrade + auth.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// The running clients.
#[derive(Debug)]
pub struct Clients {
    tasks: Vec<JoinHandle<Vec<Receipt>>>,
    stop: watch::Sender<bool>,
    received: Arc<AtomicU64>,
    closed: Arc<AtomicU64>,
}

impl Clients {
    /// Connects `tokens.len()` clients to `hub` and waits until every one is authenticated.
    /// Each keeps at most `cap` receipts (the rest are dropped, never queued).
    ///
    /// # Errors
    /// When a client cannot connect or is refused.
    pub async fn connect(hub: SocketAddr, tokens: Vec<String>, cap: usize) -> Result<Self, String> {
        let (stop, stop_rx) = watch::channel(false);
        let received = Arc::new(AtomicU64::new(0));
        let closed = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::with_capacity(tokens.len());
        for (i, token) in tokens.into_iter().enumerate() {
            let ws = tokio::time::timeout(CONNECT_TIMEOUT, open(hub, &token))
                .await
                .map_err(|_| format!("client {i}: no auth.ok within {CONNECT_TIMEOUT:?}"))?
                .map_err(|e| format!("client {i}: {e}"))?;
            tasks.push(tokio::spawn(read_all(
                ws,
                stop_rx.clone(),
                Arc::clone(&received),
                Arc::clone(&closed),
                cap,
            )));
        }
        Ok(Self {
            tasks,
            stop,
            received,
            closed,
        })
    }

    /// Voice events received so far, all clients together.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Clients whose socket closed or failed before [`Clients::finish`].
    pub fn closed(&self) -> u64 {
        self.closed.load(Ordering::Relaxed)
    }

    /// Waits until [`Clients::received`] reaches `target` or `timeout` passes (polling, so a
    /// slow machine only makes it wait longer). Returns whether the target was reached.
    pub async fn wait_for(&self, target: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.received() >= target {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops every client and returns each one's receipts, in the order read.
    pub async fn finish(self) -> Vec<Vec<Receipt>> {
        self.stop.send_replace(true);
        let mut out = Vec::with_capacity(self.tasks.len());
        for t in self.tasks {
            out.push(t.await.unwrap_or_default());
        }
        out
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn open(hub: SocketAddr, token: &str) -> Result<Ws, String> {
    let stream = tokio::net::TcpStream::connect(hub)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{hub}/ws"), stream)
        .await
        .map_err(|e| format!("upgrade: {e}"))?;
    let auth = serde_json::json!({"type": "auth", "token": token});
    ws.send(Message::text(auth.to_string()))
        .await
        .map_err(|e| format!("send auth: {e}"))?;
    while let Some(msg) = ws.next().await {
        match msg.map_err(|e| format!("read ack: {e}"))? {
            Message::Text(t) if t.as_str().contains("\"auth.ok\"") => return Ok(ws),
            Message::Close(f) => {
                return Err(format!(
                    "closed before auth.ok: {:?}",
                    f.map(|f| u16::from(f.code))
                ));
            }
            _ => {}
        }
    }
    Err("closed before auth.ok".into())
}

async fn read_all(
    mut ws: Ws,
    mut stop: watch::Receiver<bool>,
    received: Arc<AtomicU64>,
    closed: Arc<AtomicU64>,
    cap: usize,
) -> Vec<Receipt> {
    let mut out = Vec::with_capacity(cap.min(1 << 20));
    loop {
        tokio::select! {
            msg = ws.next() => {
                // The instant is taken before parsing: latency ends when the frame is read.
                let at = Instant::now();
                match msg {
                    Some(Ok(Message::Text(t))) => {
                        if let Some(key) = voice_key(t.as_str()) {
                            received.fetch_add(1, Ordering::Relaxed);
                            if out.len() < cap {
                                out.push(Receipt { key, at });
                            }
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => {
                        closed.fetch_add(1, Ordering::Relaxed);
                        return out;
                    }
                }
            }
            _ = stop.changed() => {
                let _ = ws.close(None).await;
                return out;
            }
        }
    }
}
