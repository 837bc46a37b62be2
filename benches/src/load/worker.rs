//! A client process of the `fanout` tool: opens its share of WebSocket clients, measures
//! every delivery, and obeys the coordinator's [`Command`]s (stdin) with [`Reply`]s (stdout).
//!
//! Each client binds its own loopback source address (127.1.x.y, 1,000 clients per address)
//! before connecting, so tens of thousands of connections never run out of ephemeral ports,
//! and authenticates with its own ES256 token (`sub` = `load-<global index>`).

use std::collections::HashMap;
use std::io::{BufRead as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt as _, StreamExt as _};
use hub_core::auth::TestIssuer;
use serde::Deserialize;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::hist::Histogram;
use super::wire::{CHANNEL_BASE, Command, MAX_PHASES, Reply, WorkerReport, WorkerSpec};

/// Clients sharing one source address.
pub const CLIENTS_PER_SOURCE_IP: usize = 1_000;

/// Deadline of one connect + upgrade + auth.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

type Ws = WebSocketStream<TcpStream>;

/// The loopback source address of client `global` (127.1.x.y).
pub fn source_ip(global: usize) -> Ipv4Addr {
    let k = global / CLIENTS_PER_SOURCE_IP;
    Ipv4Addr::new(127, 1, ((k / 250) % 256) as u8, (k % 250 + 1) as u8)
}

/// Microseconds since the Unix epoch (the clock shared by every process of the tool).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[derive(Debug, Clone, Copy, Default)]
struct Ctl {
    storm_gen: u64,
    storm_window_ms: u64,
    slow: bool,
}

#[derive(Debug, Default)]
struct Stats {
    latency: Vec<[Histogram; 2]>,
    per_seq: HashMap<u64, (u64, u64, u64)>,
    last_seq: Vec<u64>,
    slow: Vec<bool>,
    alive: Vec<bool>,
    duplicates: u64,
    gaps: u64,
    resumed: u64,
    snapshots: u64,
    reconnect_failed: u64,
    evicted: u64,
    other_closes: u64,
    storm_pending: usize,
    storm_started: Option<Instant>,
    storm_ms: u64,
}

struct Fleet {
    spec: WorkerSpec,
    stats: Mutex<Stats>,
}

impl Fleet {
    fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    seq: Option<u64>,
    resumed: Option<bool>,
    #[serde(borrow)]
    payload: Option<Payload<'a>>,
}

#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(rename = "channelId", borrow)]
    channel_id: Option<&'a str>,
    #[serde(rename = "userId", borrow)]
    user_id: Option<&'a str>,
}

fn client_config() -> WebSocketConfig {
    // A browser-sized client: small buffers so the tool itself fits tens of thousands.
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// Connects, authenticates, and returns the socket with the ack's `seq` and `resumed`.
async fn connect(
    spec: &WorkerSpec,
    global: usize,
    token: &str,
    since: Option<u64>,
) -> Result<(Ws, u64, bool), String> {
    let stream = match spec.target.ip() {
        IpAddr::V4(_) => {
            let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
            socket
                .bind(SocketAddr::new(IpAddr::V4(source_ip(global)), 0))
                .map_err(|e| format!("bind {}: {e}", source_ip(global)))?;
            socket
                .connect(spec.target)
                .await
                .map_err(|e| format!("connect: {e}"))?
        }
        IpAddr::V6(_) => TcpStream::connect(spec.target)
            .await
            .map_err(|e| format!("connect: {e}"))?,
    };
    let _ = stream.set_nodelay(true);
    let url = format!("ws://{}/ws", spec.target);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(url, stream, Some(client_config()))
            .await
            .map_err(|e| format!("upgrade: {e}"))?;
    let auth = match since {
        Some(s) => serde_json::json!({"type": "auth", "token": token, "since": s}),
        None => serde_json::json!({"type": "auth", "token": token}),
    };
    ws.send(Message::text(auth.to_string()))
        .await
        .map_err(|e| format!("send auth: {e}"))?;
    while let Some(msg) = ws.next().await {
        match msg.map_err(|e| format!("read ack: {e}"))? {
            Message::Text(t) => {
                let m: Incoming<'_> =
                    serde_json::from_str(t.as_str()).map_err(|e| format!("bad ack: {e}"))?;
                if m.kind == "ack" {
                    return Ok((ws, m.seq.unwrap_or(0), m.resumed.unwrap_or(false)));
                }
            }
            Message::Close(f) => {
                return Err(format!(
                    "closed before ack: {:?}",
                    f.map(|f| u16::from(f.code))
                ));
            }
            _ => {}
        }
    }
    Err("closed before ack".into())
}

/// Records one received text frame of client `i`.
fn on_text(fleet: &Fleet, i: usize, text: &str) {
    let now = now_us();
    let Ok(m) = serde_json::from_str::<Incoming<'_>>(text) else {
        return;
    };
    let mut st = fleet.stats();
    match (m.kind, m.seq) {
        ("snapshot", Some(seq)) => st.last_seq[i] = seq,
        ("event", Some(seq)) => {
            let last = st.last_seq[i];
            if seq <= last {
                st.duplicates += 1;
                return;
            }
            if seq > last + 1 {
                st.gaps += seq - last - 1;
            }
            st.last_seq[i] = seq;
            let (phase, post) = m
                .payload
                .map(|p| {
                    let phase = p
                        .channel_id
                        .and_then(|c| c.parse::<u64>().ok())
                        .map_or(0, |c| c.saturating_sub(CHANNEL_BASE) as usize);
                    let post = p.user_id.and_then(|u| u.parse::<u64>().ok()).unwrap_or(now);
                    (phase.min(MAX_PHASES - 1), post)
                })
                .unwrap_or((0, now));
            let slow = st.slow[i];
            let lat = now.saturating_sub(post);
            st.latency[phase][usize::from(slow)].record(lat);
            if !slow {
                let e = st.per_seq.entry(seq).or_insert((0, 0, post));
                e.0 += 1;
                e.1 = e.1.max(now);
            }
        }
        _ => {}
    }
}

fn on_close(fleet: &Fleet, i: usize, code: Option<u16>) {
    let mut st = fleet.stats();
    st.alive[i] = false;
    if code == Some(1013) {
        st.evicted += 1;
    } else {
        st.other_closes += 1;
    }
}

/// One client after its first connect: reads, and obeys storms and the slow phase.
async fn run_client(
    fleet: Arc<Fleet>,
    i: usize,
    token: String,
    mut ws: Ws,
    mut ctl: watch::Receiver<Ctl>,
) {
    let global = fleet.spec.first_index + i;
    let is_slow = fleet.stats().slow[i];
    let mut storm_seen = ctl.borrow().storm_gen;
    let mut storm_at: Option<tokio::time::Instant> = None;
    loop {
        let paused = is_slow && ctl.borrow().slow;
        let storm_sleep = async {
            match storm_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = ctl.changed() => {
                if changed.is_err() {
                    return;
                }
                let c = *ctl.borrow();
                if c.storm_gen != storm_seen {
                    storm_seen = c.storm_gen;
                    let jitter = fastrand::u64(0..=c.storm_window_ms.max(1));
                    storm_at = Some(tokio::time::Instant::now() + Duration::from_millis(jitter));
                }
            }
            msg = ws.next(), if !paused => match msg {
                Some(Ok(Message::Text(t))) => on_text(&fleet, i, t.as_str()),
                Some(Ok(Message::Close(f))) => {
                    on_close(&fleet, i, f.map(|f| u16::from(f.code)));
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    on_close(&fleet, i, None);
                    return;
                }
            },
            () = storm_sleep => {
                storm_at = None;
                // Drop the TCP connection without a close handshake, as a network blip would.
                drop(ws);
                let since = fleet.stats().last_seq[i];
                let again = tokio::time::timeout(
                    CONNECT_TIMEOUT,
                    connect(&fleet.spec, global, &token, Some(since)),
                )
                .await;
                let mut st = fleet.stats();
                st.storm_pending = st.storm_pending.saturating_sub(1);
                if st.storm_pending == 0 {
                    st.storm_ms = st.storm_started.map_or(0, |t| t.elapsed().as_millis() as u64);
                }
                match again {
                    Ok(Ok((new_ws, _, resumed))) => {
                        if resumed {
                            st.resumed += 1;
                        } else {
                            st.snapshots += 1;
                        }
                        ws = new_ws;
                    }
                    _ => {
                        st.reconnect_failed += 1;
                        st.alive[i] = false;
                        return;
                    }
                }
            }
        }
    }
}

fn reply(r: &Reply) {
    let mut out = std::io::stdout().lock();
    if let Ok(line) = serde_json::to_string(r) {
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

fn report(fleet: &Fleet) -> WorkerReport {
    let st = fleet.stats();
    let mut per_seq: Vec<_> = st
        .per_seq
        .iter()
        .map(|(s, (n, last, post))| (*s, *n, *last, *post))
        .collect();
    per_seq.sort_unstable();
    WorkerReport {
        latency: st
            .latency
            .iter()
            .map(|[a, b]| [a.to_sparse(), b.to_sparse()])
            .collect(),
        per_seq,
        last_seq: st.last_seq.clone(),
        slow: st.slow.clone(),
        duplicates: st.duplicates,
        gaps: st.gaps,
        resumed: st.resumed,
        snapshots: st.snapshots,
        reconnect_failed: st.reconnect_failed,
        evicted: st.evicted,
        other_closes: st.other_closes,
        storm_ms: if st.storm_pending > 0 {
            st.storm_started
                .map_or(0, |t| t.elapsed().as_millis() as u64)
        } else {
            st.storm_ms
        },
    }
}

/// Reading clients still behind `seq`.
fn behind(fleet: &Fleet, seq: u64, slow_on: bool) -> usize {
    let st = fleet.stats();
    (0..st.last_seq.len())
        .filter(|&i| st.alive[i] && !(slow_on && st.slow[i]) && st.last_seq[i] < seq)
        .count()
}

/// Runs a client process until [`Command::Exit`] or the end of stdin.
///
/// # Errors
/// When the async runtime cannot start.
pub fn run(spec: WorkerSpec) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    rt.block_on(serve(spec));
    Ok(())
}

async fn serve(spec: WorkerSpec) {
    let n = spec.clients;
    let issuer = TestIssuer::new(&spec.issuer_label);
    let exp = (now_us() / 1_000_000) as i64 + 4 * 3600;
    let tokens: Vec<String> = (0..n)
        .map(|i| {
            let sub = format!("load-{}", spec.first_index + i);
            issuer.token_for(&spec.iss, &spec.aud, &sub, exp)
        })
        .collect();
    let slow: Vec<bool> = (0..n).map(|i| (i % 100) < spec.slow_pct as usize).collect();
    let fleet = Arc::new(Fleet {
        stats: Mutex::new(Stats {
            latency: (0..MAX_PHASES).map(|_| Default::default()).collect(),
            last_seq: vec![0; n],
            slow,
            alive: vec![false; n],
            ..Stats::default()
        }),
        spec,
    });

    // Commands arrive on a plain thread reading stdin (bounded hand-off).
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<Command>(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if let Ok(cmd) = serde_json::from_str::<Command>(&line)
                && cmd_tx.blocking_send(cmd).is_err()
            {
                break;
            }
        }
    });

    let (ctl_tx, ctl_rx) = watch::channel(Ctl::default());
    let gate = Arc::new(Semaphore::new(fleet.spec.concurrency.max(1)));
    let (done_tx, mut done_rx) = mpsc::channel::<Result<u64, String>>(1024);
    let started = Instant::now();
    for (i, token) in tokens.into_iter().enumerate() {
        let fleet = fleet.clone();
        let gate = gate.clone();
        let done = done_tx.clone();
        let ctl = ctl_rx.clone();
        tokio::spawn(async move {
            let global = fleet.spec.first_index + i;
            let permit = gate.acquire_owned().await;
            let r =
                tokio::time::timeout(CONNECT_TIMEOUT, connect(&fleet.spec, global, &token, None))
                    .await
                    .unwrap_or_else(|_| Err("connect timed out".into()));
            drop(permit);
            match r {
                Ok((ws, head, _)) => {
                    {
                        let mut st = fleet.stats();
                        st.alive[i] = true;
                        st.last_seq[i] = head;
                    }
                    let _ = done.send(Ok(head)).await;
                    run_client(fleet, i, token, ws, ctl).await;
                }
                Err(e) => {
                    let _ = done.send(Err(e)).await;
                }
            }
        });
    }
    drop(done_tx);
    let (mut connected, mut failed, mut head, mut first_error) = (0, 0, 0, None);
    for _ in 0..n {
        match done_rx.recv().await {
            Some(Ok(h)) => {
                connected += 1;
                head = head.max(h);
            }
            Some(Err(e)) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
            None => break,
        }
    }
    reply(&Reply::Ready {
        connected,
        failed,
        connect_ms: started.elapsed().as_millis() as u64,
        head,
        first_error,
    });

    while let Some(cmd) = cmd_rx.recv().await {
        match cmd {
            Command::Await { seq, timeout_ms } => {
                let deadline = Instant::now() + Duration::from_millis(timeout_ms);
                let slow_on = ctl_tx.borrow().slow;
                loop {
                    let left = behind(&fleet, seq, slow_on);
                    if left == 0 || Instant::now() >= deadline {
                        reply(&Reply::Reached {
                            ok: left == 0,
                            behind: left,
                        });
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            Command::Storm { window_ms } => {
                {
                    let mut st = fleet.stats();
                    st.storm_pending = st.alive.iter().filter(|a| **a).count();
                    st.storm_started = Some(Instant::now());
                }
                ctl_tx.send_modify(|c| {
                    c.storm_gen += 1;
                    c.storm_window_ms = window_ms;
                });
            }
            Command::Slow { on } => ctl_tx.send_modify(|c| c.slow = on),
            Command::Report => reply(&Reply::Report(Box::new(report(&fleet)))),
            Command::Exit => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_addresses_stay_in_loopback() {
        assert_eq!(source_ip(0), Ipv4Addr::new(127, 1, 0, 1));
        assert_eq!(source_ip(999), Ipv4Addr::new(127, 1, 0, 1));
        assert_eq!(source_ip(1_000), Ipv4Addr::new(127, 1, 0, 2));
        assert_eq!(source_ip(250_000), Ipv4Addr::new(127, 1, 1, 1));
        for g in (0..2_000_000).step_by(7_919) {
            assert!(source_ip(g).is_loopback());
        }
    }
}
