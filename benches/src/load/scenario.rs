//! The coordinator: one scenario against one hub, start to finish, bounded in time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use super::hist::{Histogram, quantile_of};
use super::launch::{HubProcess, Identity, Target, WorkerProcess, start_hub};
use super::poster::Poster;
use super::procfs::{cpu_split, cpu_time, rss_bytes};
use super::wire::{Command, MAX_PHASES, Reply, WorkerReport, WorkerSpec};

/// Largest share of clients one process holds (the fd limit here is 20,000 per process).
pub const MAX_CLIENTS_PER_PROCESS: usize = 8_000;

/// What the clients do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Connect, post, measure.
    Steady,
    /// Warm up, then every client drops and resumes with `since` while events flow.
    Storm,
    /// A baseline phase, then a share of clients stops reading while events flow.
    Slow,
    /// Connect and hold (memory per idle connection only).
    Idle,
}

/// One scenario's settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// The scenario.
    pub mode: Mode,
    /// WebSocket clients.
    pub clients: usize,
    /// Events per measured phase.
    pub events: u64,
    /// Events per second.
    pub rate: f64,
    /// Client processes (0 = as few as the fd limit allows, at least 2).
    pub processes: usize,
    /// Handshakes in flight per process.
    pub concurrency: usize,
    /// `CLIENT_QUEUE_MAX_BYTES` of a hub started by the tool.
    pub queue_bytes: usize,
    /// Storm jitter window, ms.
    pub storm_window_ms: u64,
    /// Slow share, percent.
    pub slow_pct: u32,
    /// Longest wait for the deliveries of a phase.
    pub drain_timeout: Duration,
    /// Hold idle connections this long before measuring memory.
    pub settle: Duration,
    /// An already running hub instead of starting one (with its pid for /proc figures).
    pub external: Option<(SocketAddr, Option<u32>)>,
}

/// One phase's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseResult {
    /// Phase name.
    pub name: String,
    /// Events applied by the hub.
    pub events: u64,
    /// Posts refused or failed.
    pub post_errors: u64,
    /// Deliveries expected (events x reading clients).
    pub expected: u64,
    /// Deliveries received by reading clients.
    pub received: u64,
    /// Post rate achieved, events/s.
    pub post_rate: f64,
    /// Delivery latency p50/p99/max, ms (reading clients).
    pub latency_ms: [f64; 3],
    /// Same for the slow share (slow mode).
    pub slow_latency_ms: Option<[f64; 3]>,
    /// Per-event fan-out completion (post -> last reading client) p50/p99/max, ms.
    pub completion_ms: [f64; 3],
    /// Deliveries per second over the phase (first post -> last receipt).
    pub deliveries_per_s: f64,
    /// Hub CPU seconds during the phase.
    pub hub_cpu_s: f64,
    /// Of which in the kernel (system time: socket syscalls, loopback delivery).
    pub hub_sys_s: f64,
    /// Tool CPU seconds (coordinator + client processes) during the phase.
    pub tool_cpu_s: f64,
    /// Hub CPU per delivered event, µs.
    pub hub_cpu_us_per_delivery: f64,
    /// Largest hub RSS seen during the phase, MiB.
    pub hub_rss_max_mib: f64,
}

/// A scenario's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunResult {
    /// `ours` or `baseline` (or `external`).
    pub target: String,
    /// The scenario.
    pub mode: String,
    /// Clients asked for.
    pub clients: usize,
    /// Clients authenticated.
    pub connected: usize,
    /// Clients that failed.
    pub connect_failed: usize,
    /// First connect error.
    pub first_error: Option<String>,
    /// Client processes used.
    pub processes: usize,
    /// Authenticated connections per second in the connect phase.
    pub auth_per_s: f64,
    /// Hub RSS before the clients, MiB.
    pub hub_rss_before_mib: f64,
    /// Hub RSS with every client idle, MiB.
    pub hub_rss_idle_mib: f64,
    /// (idle - before) / connected, bytes.
    pub hub_rss_per_conn_bytes: f64,
    /// Measured phases.
    pub phases: Vec<PhaseResult>,
    /// Reading clients whose stream missed seqs (gaps + tail), summed.
    pub lost: u64,
    /// Seqs received twice by one client.
    pub duplicates: u64,
    /// Reconnects resumed (storm).
    pub resumed: u64,
    /// Reconnects answered with a snapshot (storm).
    pub snapshots: u64,
    /// Reconnects that failed (storm).
    pub reconnect_failed: u64,
    /// Storm wall time, command -> last client back, ms.
    pub storm_ms: u64,
    /// Clients closed with 1013.
    pub evicted: u64,
    /// Clients closed otherwise (e.g. TCP dropped after an unread close frame).
    pub other_closes: u64,
    /// `hub_evictions_total` from our hub's `/metrics` at the end.
    pub hub_evictions: Option<u64>,
    /// Slow clients (slow mode).
    pub slow_clients: u64,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn mib(b: Option<u64>) -> f64 {
    b.unwrap_or(0) as f64 / (1024.0 * 1024.0)
}

struct Fleet {
    workers: Vec<WorkerProcess>,
}

impl Fleet {
    fn broadcast(&mut self, cmd: &Command) -> Result<(), String> {
        self.workers.iter_mut().try_for_each(|w| w.send(cmd))
    }

    async fn ask(&mut self, cmd: &Command, timeout: Duration) -> Result<Vec<Reply>, String> {
        self.broadcast(cmd)?;
        let mut out = Vec::with_capacity(self.workers.len());
        for w in &mut self.workers {
            out.push(w.recv(timeout).await?);
        }
        Ok(out)
    }

    async fn await_seq(&mut self, seq: u64, timeout: Duration) -> Result<usize, String> {
        let cmd = Command::Await {
            seq,
            timeout_ms: timeout.as_millis() as u64,
        };
        let replies = self.ask(&cmd, timeout + Duration::from_secs(30)).await?;
        Ok(replies
            .iter()
            .map(|r| match r {
                Reply::Reached { behind, .. } => *behind,
                _ => 0,
            })
            .sum())
    }

    fn cpu(&self) -> Duration {
        let me = cpu_time(std::process::id()).unwrap_or_default();
        self.workers
            .iter()
            .filter_map(|w| cpu_time(w.pid()))
            .fold(me, |a, b| a + b)
    }

    async fn reports(&mut self) -> Result<Vec<WorkerReport>, String> {
        let replies = self.ask(&Command::Report, Duration::from_secs(60)).await?;
        Ok(replies
            .into_iter()
            .filter_map(|r| match r {
                Reply::Report(r) => Some(*r),
                _ => None,
            })
            .collect())
    }
}

struct Phase {
    name: &'static str,
    index: usize,
    from_seq: u64,
    to_seq: u64,
    applied: u64,
    errors: u64,
    post_secs: f64,
    hub_cpu: Duration,
    hub_sys: Duration,
    tool_cpu: Duration,
    rss_max: Option<u64>,
}

/// Posts a phase and waits for its deliveries, sampling the hub's CPU and memory.
async fn run_phase(
    name: &'static str,
    index: usize,
    head: &mut u64,
    poster: &mut Poster,
    fleet: &mut Fleet,
    hub_pid: Option<u32>,
    opts: &Options,
) -> Result<Phase, String> {
    let (hub_user0, hub_sys0) = hub_pid.and_then(cpu_split).unwrap_or_default();
    let tool_cpu0 = fleet.cpu();
    let from_seq = *head;
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = hub_pid.map(|pid| {
        let peak = sampling.clone();
        tokio::spawn(async move {
            loop {
                if let Some(r) = rss_bytes(pid) {
                    peak.fetch_max(r, std::sync::atomic::Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });
    let posted = poster.post_phase(index, opts.events, opts.rate).await;
    *head += posted.applied;
    let behind = fleet.await_seq(*head, opts.drain_timeout).await?;
    if behind > 0 {
        eprintln!(
            "fanout: {name}: {behind} clients still behind seq {head} after the drain timeout"
        );
    }
    if let Some(s) = sampler {
        s.abort();
    }
    let rss_max = hub_pid.map(|_| sampling.load(std::sync::atomic::Ordering::Relaxed));
    let (hub_user1, hub_sys1) = hub_pid.and_then(cpu_split).unwrap_or_default();
    let hub_sys = hub_sys1.saturating_sub(hub_sys0);
    Ok(Phase {
        name,
        index,
        from_seq,
        to_seq: *head,
        applied: posted.applied,
        errors: posted.errors,
        post_secs: posted.secs,
        hub_cpu: hub_user1.saturating_sub(hub_user0) + hub_sys,
        hub_sys,
        tool_cpu: fleet.cpu().saturating_sub(tool_cpu0),
        rss_max,
    })
}

/// Runs one scenario against `target` (ignored when `opts.external` is set).
///
/// # Errors
/// When the hub or the client processes cannot start or stop answering.
pub async fn run(opts: &Options, target: Target) -> Result<RunResult, String> {
    let id = Identity::default();
    let (hub, addr, hub_pid): (Option<HubProcess>, SocketAddr, Option<u32>) = match opts.external {
        Some((addr, pid)) => (None, addr, pid),
        None => {
            let hub = start_hub(target, &id, opts.queue_bytes)?;
            let (addr, pid) = (hub.addr, hub.pid());
            (Some(hub), addr, Some(pid))
        }
    };
    let mut result = RunResult {
        target: if opts.external.is_some() {
            "external".into()
        } else {
            target.name().into()
        },
        mode: format!("{:?}", opts.mode).to_lowercase(),
        clients: opts.clients,
        ..RunResult::default()
    };
    let rss_before = hub_pid.and_then(rss_bytes);
    result.hub_rss_before_mib = mib(rss_before);

    let processes = if opts.processes > 0 {
        opts.processes
    } else {
        opts.clients.div_ceil(MAX_CLIENTS_PER_PROCESS).max(2)
    }
    .min(opts.clients.max(1));
    result.processes = processes;
    let mut workers = Vec::with_capacity(processes);
    let mut first = 0;
    for p in 0..processes {
        let share = opts.clients / processes + usize::from(p < opts.clients % processes);
        let spec = WorkerSpec {
            target: addr,
            clients: share,
            first_index: first,
            issuer_label: id.issuer_label.clone(),
            iss: id.iss.clone(),
            aud: id.aud.clone(),
            slow_pct: if opts.mode == Mode::Slow {
                opts.slow_pct
            } else {
                0
            },
            concurrency: opts.concurrency,
        };
        first += share;
        workers.push(WorkerProcess::spawn(&spec)?);
    }
    let mut fleet = Fleet { workers };

    // Connect phase: every process reports once all its clients are in (or failed).
    let connect_timeout = Duration::from_secs(120 + opts.clients as u64 / 100);
    let mut head = 0;
    let mut slowest_ms = 0;
    for w in &mut fleet.workers {
        match w.recv(connect_timeout).await? {
            Reply::Ready {
                connected,
                failed,
                connect_ms,
                head: h,
                first_error,
            } => {
                result.connected += connected;
                result.connect_failed += failed;
                head = head.max(h);
                slowest_ms = slowest_ms.max(connect_ms);
                if result.first_error.is_none() {
                    result.first_error = first_error;
                }
            }
            other => return Err(format!("unexpected reply {other:?}")),
        }
    }
    result.auth_per_s = result.connected as f64 / (slowest_ms.max(1) as f64 / 1000.0);
    tokio::time::sleep(opts.settle).await;
    let rss_idle = hub_pid.and_then(rss_bytes);
    result.hub_rss_idle_mib = mib(rss_idle);
    if let (Some(a), Some(b)) = (rss_before, rss_idle)
        && result.connected > 0
    {
        result.hub_rss_per_conn_bytes = b.saturating_sub(a) as f64 / result.connected as f64;
    }

    let mut phases = Vec::new();
    if opts.mode != Mode::Idle {
        let mut poster = Poster::connect(addr, &id.secret, id.guild_id).await?;
        match opts.mode {
            Mode::Steady => {
                phases.push(
                    run_phase(
                        "steady",
                        0,
                        &mut head,
                        &mut poster,
                        &mut fleet,
                        hub_pid,
                        opts,
                    )
                    .await?,
                );
            }
            Mode::Storm => {
                phases.push(
                    run_phase(
                        "warm-up",
                        0,
                        &mut head,
                        &mut poster,
                        &mut fleet,
                        hub_pid,
                        opts,
                    )
                    .await?,
                );
                fleet.broadcast(&Command::Storm {
                    window_ms: opts.storm_window_ms,
                })?;
                phases.push(
                    run_phase(
                        "storm",
                        1,
                        &mut head,
                        &mut poster,
                        &mut fleet,
                        hub_pid,
                        opts,
                    )
                    .await?,
                );
            }
            Mode::Slow => {
                phases.push(
                    run_phase(
                        "all-reading",
                        0,
                        &mut head,
                        &mut poster,
                        &mut fleet,
                        hub_pid,
                        opts,
                    )
                    .await?,
                );
                fleet.broadcast(&Command::Slow { on: true })?;
                phases.push(
                    run_phase(
                        "slow-share",
                        1,
                        &mut head,
                        &mut poster,
                        &mut fleet,
                        hub_pid,
                        opts,
                    )
                    .await?,
                );
                // The slow share reads again: it drains, or finds itself evicted with 1013.
                fleet.broadcast(&Command::Slow { on: false })?;
                let _ = fleet.await_seq(head, Duration::from_secs(10)).await?;
            }
            Mode::Idle => {}
        }
    }

    let reports = fleet.reports().await?;
    summarize(&mut result, &phases, &reports, head);
    result.hub_evictions = hub
        .as_ref()
        .and_then(|h| h.metrics)
        .and_then(|m| super::launch::scrape_counter(m, "hub_evictions_total"));
    drop(fleet);
    drop(hub);
    Ok(result)
}

fn summarize(result: &mut RunResult, phases: &[Phase], reports: &[WorkerReport], head: u64) {
    let mut lat: Vec<[Histogram; 2]> = (0..MAX_PHASES).map(|_| Default::default()).collect();
    let mut per_seq: BTreeMap<u64, (u64, u64, u64)> = BTreeMap::new();
    for r in reports {
        for (p, [fast, slow]) in r.latency.iter().enumerate().take(MAX_PHASES) {
            lat[p][0].merge(&Histogram::from_sparse(fast));
            lat[p][1].merge(&Histogram::from_sparse(slow));
        }
        for &(seq, n, last, post) in &r.per_seq {
            let e = per_seq.entry(seq).or_insert((0, 0, post));
            e.0 += n;
            e.1 = e.1.max(last);
        }
        for (i, &last) in r.last_seq.iter().enumerate() {
            if r.slow.get(i).copied().unwrap_or(false) {
                result.slow_clients += 1;
            } else if last > 0 || head > 0 {
                result.lost += head.saturating_sub(last);
            }
        }
        result.lost += r.gaps;
        result.duplicates += r.duplicates;
        result.resumed += r.resumed;
        result.snapshots += r.snapshots;
        result.reconnect_failed += r.reconnect_failed;
        result.storm_ms = result.storm_ms.max(r.storm_ms);
        result.evicted += r.evicted;
        result.other_closes += r.other_closes;
    }
    // Clients that never connected did not lose anything: they are counted as failed.
    let never = result.connect_failed as u64 * head;
    result.lost = result.lost.saturating_sub(never);
    let reading = (result.connected as u64).saturating_sub(result.slow_clients);
    for ph in phases {
        let seqs = per_seq.range(ph.from_seq + 1..=ph.to_seq);
        let (mut received, mut first_post, mut last_recv) = (0u64, u64::MAX, 0u64);
        let mut completions = Vec::new();
        for (_, &(n, last, post)) in seqs {
            received += n;
            first_post = first_post.min(post);
            last_recv = last_recv.max(last);
            completions.push(last.saturating_sub(post));
        }
        let window_s = last_recv.saturating_sub(first_post) as f64 / 1e6;
        let [fast, slow] = &lat[ph.index];
        let q = |h: &Histogram| [ms(h.quantile(0.5)), ms(h.quantile(0.99)), ms(h.max())];
        result.phases.push(PhaseResult {
            name: ph.name.into(),
            events: ph.applied,
            post_errors: ph.errors,
            expected: ph.applied * reading,
            received,
            post_rate: ph.applied as f64 / ph.post_secs.max(1e-9),
            latency_ms: q(fast),
            slow_latency_ms: (!slow.is_empty()).then(|| q(slow)),
            completion_ms: [
                ms(quantile_of(&mut completions, 0.5)),
                ms(quantile_of(&mut completions, 0.99)),
                ms(quantile_of(&mut completions, 1.0)),
            ],
            deliveries_per_s: if window_s > 0.0 {
                received as f64 / window_s
            } else {
                0.0
            },
            hub_cpu_s: ph.hub_cpu.as_secs_f64(),
            hub_sys_s: ph.hub_sys.as_secs_f64(),
            tool_cpu_s: ph.tool_cpu.as_secs_f64(),
            hub_cpu_us_per_delivery: if received > 0 {
                ph.hub_cpu.as_secs_f64() * 1e6 / received as f64
            } else {
                0.0
            },
            hub_rss_max_mib: mib(ph.rss_max),
        });
    }
}
