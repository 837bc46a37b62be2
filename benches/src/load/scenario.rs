//! The coordinator: one scenario against one hub (or, with [`Options::replicas`], against
//! several replicas of ours sharing a `redis-server`), start to finish, bounded in time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use super::hist::{Histogram, quantile_of};
use super::launch::{HubProcess, Identity, Target, WorkerProcess, start_hub, start_replicas};
use super::poster::Poster;
use super::procfs::{cpu_split, cpu_time, rss_bytes};
use super::redis::{RedisProcess, start_redis};
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
    /// 0: one hub without Redis (as before). N >= 1: a `redis-server` and N replicas of ours
    /// with `REDIS_URL`; client processes spread round-robin over the replicas, events posted
    /// to replica 0, so the other replicas' deliveries travel through Redis.
    pub replicas: usize,
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
    /// Hub CPU seconds during the phase (summed over the replicas).
    pub hub_cpu_s: f64,
    /// Of which in the kernel (system time: socket syscalls, loopback delivery).
    pub hub_sys_s: f64,
    /// Tool CPU seconds (coordinator + client processes) during the phase.
    pub tool_cpu_s: f64,
    /// Hub CPU per delivered event, µs.
    pub hub_cpu_us_per_delivery: f64,
    /// Largest hub RSS seen during the phase (summed over the replicas), MiB.
    pub hub_rss_max_mib: f64,
    /// Delivery latency p50/p99/max, ms, of the clients of each replica (replica runs only;
    /// events are posted to replica 0, the others learn of them only through Redis).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_by_replica_ms: Option<Vec<[f64; 3]>>,
    /// `redis-server` CPU seconds during the phase (replica runs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_cpu_s: Option<f64>,
}

/// A scenario's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunResult {
    /// `ours` or `baseline` (or `external`, or `redis-N` for N replicas through Redis).
    pub target: String,
    /// Hub replicas sharing Redis (0: one hub without Redis; not in the JSON then).
    #[serde(skip_serializing_if = "is_zero")]
    pub replicas: usize,
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
    /// Hub RSS before the clients (summed over the replicas), MiB.
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
    /// `redis-server` RSS at the end, MiB (replica runs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_rss_mib: Option<f64>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Resident memory summed over `pids`; `None` when none can be read.
fn rss_sum(pids: &[u32]) -> Option<u64> {
    pids.iter()
        .filter_map(|&p| rss_bytes(p))
        .fold(None, |a, b| Some(a.unwrap_or(0) + b))
}

/// User and system CPU time summed over `pids`.
fn cpu_split_sum(pids: &[u32]) -> (Duration, Duration) {
    pids.iter()
        .filter_map(|&p| cpu_split(p))
        .fold(Default::default(), |(u, s), (u1, s1)| (u + u1, s + s1))
}

/// How the clients are spread: one `(clients, hub index)` per client process. `processes`
/// (0 = as few as the fd limit allows, at least 2) is rounded up to a multiple of `hubs` and
/// process `p` talks to hub `p % hubs`, so every hub gets an even share.
pub fn plan(clients: usize, processes: usize, hubs: usize) -> Vec<(usize, usize)> {
    let hubs = hubs.max(1);
    let processes = if processes > 0 {
        processes
    } else {
        clients.div_ceil(MAX_CLIENTS_PER_PROCESS).max(2)
    }
    .div_ceil(hubs)
    .saturating_mul(hubs)
    .min(clients.max(1));
    (0..processes)
        .map(|p| {
            let share = clients / processes + usize::from(p < clients % processes);
            (share, p % hubs)
        })
        .collect()
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
    redis_cpu: Option<Duration>,
}

/// Posts a phase and waits for its deliveries, sampling the hub's CPU and memory.
async fn run_phase(
    name: &'static str,
    index: usize,
    head: &mut u64,
    poster: &mut Poster,
    fleet: &mut Fleet,
    pids: &Pids,
    opts: &Options,
) -> Result<Phase, String> {
    let hub_pids = &pids.hubs;
    let (hub_user0, hub_sys0) = cpu_split_sum(hub_pids);
    let redis_cpu0 = pids.redis.and_then(cpu_time);
    let tool_cpu0 = fleet.cpu();
    let from_seq = *head;
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = (!hub_pids.is_empty()).then(|| {
        let peak = sampling.clone();
        let hub_pids = hub_pids.clone();
        tokio::spawn(async move {
            loop {
                if let Some(r) = rss_sum(&hub_pids) {
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
    let rss_max =
        (!hub_pids.is_empty()).then(|| sampling.load(std::sync::atomic::Ordering::Relaxed));
    let (hub_user1, hub_sys1) = cpu_split_sum(hub_pids);
    let hub_sys = hub_sys1.saturating_sub(hub_sys0);
    let redis_cpu = redis_cpu0
        .zip(pids.redis.and_then(cpu_time))
        .map(|(a, b)| b.saturating_sub(a));
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
        redis_cpu,
    })
}

/// The processes whose `/proc` figures a run reads.
struct Pids {
    /// The hub, or every replica.
    hubs: Vec<u32>,
    /// The `redis-server` of a replica run.
    redis: Option<u32>,
}

/// Runs one scenario against `target` (ignored when `opts.external` is set).
///
/// # Errors
/// When the hub or the client processes cannot start or stop answering.
pub async fn run(opts: &Options, target: Target) -> Result<RunResult, String> {
    let id = Identity::default();
    // Declared before the hubs, so dropped after them (replicas first, then their Redis).
    let mut redis: Option<RedisProcess> = None;
    let mut hubs: Vec<HubProcess> = Vec::new();
    let addrs: Vec<SocketAddr> = match opts.external {
        Some((addr, _)) => vec![addr],
        None if opts.replicas > 0 => {
            if target != Target::Ours {
                return Err("--replicas runs our hub only".into());
            }
            let r = redis.insert(start_redis()?);
            hubs = start_replicas(&id, opts.queue_bytes, &r.url(), opts.replicas)?;
            hubs.iter().map(|h| h.addr).collect()
        }
        None => {
            hubs.push(start_hub(target, &id, opts.queue_bytes)?);
            hubs.iter().map(|h| h.addr).collect()
        }
    };
    let pids = Pids {
        hubs: match opts.external {
            Some((_, pid)) => pid.into_iter().collect(),
            None => hubs.iter().map(HubProcess::pid).collect(),
        },
        redis: redis.as_ref().map(RedisProcess::pid),
    };
    let mut result = RunResult {
        target: if opts.external.is_some() {
            "external".into()
        } else if opts.replicas > 0 {
            format!("redis-{}", opts.replicas)
        } else {
            target.name().into()
        },
        replicas: if opts.external.is_some() {
            0
        } else {
            opts.replicas
        },
        mode: format!("{:?}", opts.mode).to_lowercase(),
        clients: opts.clients,
        ..RunResult::default()
    };
    let rss_before = rss_sum(&pids.hubs);
    result.hub_rss_before_mib = mib(rss_before);

    let plan = plan(opts.clients, opts.processes, addrs.len());
    result.processes = plan.len();
    let mut workers = Vec::with_capacity(plan.len());
    let mut first = 0;
    for &(share, hub) in &plan {
        let spec = WorkerSpec {
            target: addrs[hub],
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
    let rss_idle = rss_sum(&pids.hubs);
    result.hub_rss_idle_mib = mib(rss_idle);
    if let (Some(a), Some(b)) = (rss_before, rss_idle)
        && result.connected > 0
    {
        result.hub_rss_per_conn_bytes = b.saturating_sub(a) as f64 / result.connected as f64;
    }

    let mut phases = Vec::new();
    if opts.mode != Mode::Idle {
        // Every event goes to the first hub (replica 0): the other replicas get it from Redis.
        let mut poster = Poster::connect(addrs[0], &id.secret, id.guild_id).await?;
        match opts.mode {
            Mode::Steady => {
                phases.push(
                    run_phase("steady", 0, &mut head, &mut poster, &mut fleet, &pids, opts).await?,
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
                        &pids,
                        opts,
                    )
                    .await?,
                );
                fleet.broadcast(&Command::Storm {
                    window_ms: opts.storm_window_ms,
                })?;
                phases.push(
                    run_phase("storm", 1, &mut head, &mut poster, &mut fleet, &pids, opts).await?,
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
                        &pids,
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
                        &pids,
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
    // Reports come in worker order; per replica only when every process answered.
    if opts.replicas > 0 && reports.len() == plan.len() {
        let hubs: Vec<usize> = plan.iter().map(|&(_, hub)| hub).collect();
        by_replica(&mut result, &phases, &reports, &hubs, addrs.len());
    }
    result.hub_evictions = hubs
        .iter()
        .filter_map(|h| h.metrics)
        .filter_map(|m| super::launch::scrape_counter(m, "hub_evictions_total"))
        .fold(None, |a, b| Some(a.unwrap_or(0) + b));
    result.redis_rss_mib = pids.redis.and_then(rss_bytes).map(|b| mib(Some(b)));
    drop(fleet);
    drop(hubs);
    drop(redis);
    Ok(result)
}

/// Fills [`PhaseResult::latency_by_replica_ms`]: `hubs[i]` is the replica of `reports[i]`.
fn by_replica(
    result: &mut RunResult,
    phases: &[Phase],
    reports: &[WorkerReport],
    hubs: &[usize],
    replicas: usize,
) {
    for (ph, out) in phases.iter().zip(&mut result.phases) {
        let mut per: Vec<Histogram> = (0..replicas).map(|_| Histogram::default()).collect();
        for (r, &hub) in reports.iter().zip(hubs) {
            if let (Some([fast, _]), Some(h)) = (r.latency.get(ph.index), per.get_mut(hub)) {
                h.merge(&Histogram::from_sparse(fast));
            }
        }
        out.latency_by_replica_ms = Some(
            per.iter()
                .map(|h| [ms(h.quantile(0.5)), ms(h.quantile(0.99)), ms(h.max())])
                .collect(),
        );
    }
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
            latency_by_replica_ms: None,
            redis_cpu_s: ph.redis_cpu.map(|d| d.as_secs_f64()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_hub(plan: &[(usize, usize)], hubs: usize) -> Vec<usize> {
        let mut out = vec![0; hubs];
        for &(share, hub) in plan {
            out[hub] += share;
        }
        out
    }

    #[test]
    fn one_hub_plan_is_unchanged() {
        // As before replicas: at least 2 processes, 8,000 clients each at most.
        assert_eq!(plan(2_000, 0, 1), vec![(1_000, 0), (1_000, 0)]);
        assert_eq!(plan(20_000, 0, 1).len(), 3);
        assert_eq!(plan(5, 3, 1), vec![(2, 0), (2, 0), (1, 0)]);
        assert_eq!(plan(1, 0, 1), vec![(1, 0)]);
    }

    #[test]
    fn replicas_get_even_shares_round_robin() {
        let p = plan(2_000, 0, 2);
        assert_eq!(p.iter().map(|x| x.1).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(per_hub(&p, 2), vec![1_000, 1_000]);
        // 3 processes asked for 2 replicas: rounded up to 4.
        let p = plan(10_001, 3, 2);
        assert_eq!(p.len(), 4);
        assert_eq!(per_hub(&p, 2), vec![5_001, 5_000]);
        let p = plan(30_000, 0, 3);
        assert_eq!(p.len(), 6);
        assert_eq!(per_hub(&p, 3), vec![10_000; 3]);
        assert_eq!(p.iter().map(|x| x.0).sum::<usize>(), 30_000);
    }
}
