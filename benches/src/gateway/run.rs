//! One bounded run: start the stack, connect the clients, warm up, then the `gateway` and
//! `direct` phases at the same rate and length, then match and report.

use std::time::{Duration, Instant};

use tokio::time::MissedTickBehavior;

use super::args::Args;
use super::clients::Clients;
use super::ledger::{Key, Kind, Matched, match_client, planned};
use super::post::Poster;
use super::report::{PhaseInput, PhaseReport};
use super::stack::Stack;
use crate::load::procfs::cpu_time;

/// Users of one phase: `base..base + POOL`; phases never share users.
pub const POOL: u64 = 1000;
/// First user of the warm-up; the phases follow, `USER_STRIDE` apart.
const USER_BASE: u64 = 1_300_000_000_000_000_000;
const USER_STRIDE: u64 = 1_000_000;
/// Events of the warm-up of each path (not reported).
const WARMUP_EVENTS: u64 = 20;
/// How long a phase's deliveries may still arrive after its last dispatch.
pub const DRAIN: Duration = Duration::from_secs(10);

/// Which path a phase drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// `sim.join`/`sim.leave` -> VOICE_STATE_UPDATE -> worker -> hub.
    Gateway,
    /// Signed POST straight to the hub.
    Direct,
}

/// What dispatching one phase produced.
struct Dispatched {
    sent: Vec<(Key, Instant)>,
    errors: u64,
    secs: f64,
}

/// The users of phase slot `slot` (0 = warm-up).
fn users(slot: u64) -> std::ops::Range<u64> {
    let base = USER_BASE + slot * USER_STRIDE;
    base..base + POOL
}

/// Dispatches `count` events at `rate` per second on a fixed schedule (a late tick is
/// caught up at once, so the schedule, not the previous call, sets the next start).
async fn dispatch(
    stack: &Stack,
    poster: &mut Poster,
    path: Path,
    slot: u64,
    count: u64,
    rate: u32,
) -> Dispatched {
    let channel = discord_sim::DEFAULT_VOICE_1_ID;
    let base = users(slot).start;
    let mut sent = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut errors = 0;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let start = Instant::now();
    for i in 0..count {
        tick.tick().await;
        let key = planned(i, base, POOL);
        if path == Path::Direct {
            // A reconnect is the tool's business, not the hub's: done before the clock starts.
            let _ = poster.ensure_open().await;
        }
        // Latency starts just before the control call / the post.
        let at = Instant::now();
        let ok = match (path, key.kind) {
            (Path::Gateway, Kind::Joined) => stack.sim.join(key.user, channel).await.is_ok(),
            (Path::Gateway, Kind::Left) => stack.sim.leave(key.user).await.is_ok(),
            (Path::Direct, _) => poster.post(channel, key).await.unwrap_or(false),
        };
        if ok {
            sent.push((key, at));
        } else {
            errors += 1;
        }
    }
    Dispatched {
        sent,
        errors,
        secs: start.elapsed().as_secs_f64(),
    }
}

/// CPU seconds of the worker and the hub so far.
fn cpu(stack: &Stack) -> (Option<f64>, Option<f64>) {
    let s = |pid| cpu_time(pid).map(|d| d.as_secs_f64());
    (s(stack.worker.pid()), s(stack.hub.pid()))
}

/// CPU seconds spent between two readings, to the millisecond (`/proc` has 10 ms ticks).
fn delta(after: Option<f64>, before: Option<f64>) -> Option<f64> {
    Some(((after? - before?) * 1000.0).round() / 1000.0)
}

/// One measured phase: dispatch, then wait until every client has every event or
/// [`DRAIN`] passes.
struct Phase {
    slot: u64,
    /// The end of the drain: later receipts do not count.
    until: Instant,
    sent: Vec<(Key, Instant)>,
    input: PhaseInput,
}

async fn phase(
    stack: &Stack,
    clients: &Clients,
    poster: &mut Poster,
    path: Path,
    slot: u64,
    args: &Args,
) -> Phase {
    let name = match path {
        Path::Gateway => "gateway",
        Path::Direct => "direct",
    };
    eprintln!(
        "gateway-latency: phase {name}: {} events at {}/s",
        args.events(),
        args.rate
    );
    let k = u64::from(args.clients);
    let before_rx = clients.received();
    let (w0, h0) = cpu(stack);
    let d = dispatch(stack, poster, path, slot, args.events(), args.rate).await;
    if d.errors > 0 {
        eprintln!(
            "gateway-latency: phase {name}: {} of {} dispatches failed (not measured)",
            d.errors,
            args.events()
        );
    }
    let target = before_rx + d.sent.len() as u64 * k;
    if !clients.wait_for(target, DRAIN).await {
        eprintln!("gateway-latency: phase {name}: drain timed out, counting the rest as lost");
    }
    let until = Instant::now();
    let (w1, h1) = cpu(stack);
    Phase {
        slot,
        until,
        input: PhaseInput {
            phase: name,
            events: d.sent.len() as u64,
            dispatch_errors: d.errors,
            clients: k,
            target_rate: args.rate,
            dispatch_secs: d.secs,
            worker_cpu_s: delta(w1, w0),
            hub_cpu_s: delta(h1, h0),
        },
        sent: d.sent,
    }
}

/// Starts everything, runs both phases and returns their reports.
///
/// # Errors
/// When the stack or the clients cannot start, or the warm-up events never arrive (the
/// path is broken, so measuring it would be meaningless).
pub async fn run(args: &Args) -> Result<Vec<PhaseReport>, String> {
    eprintln!("gateway-latency: starting discord-sim, spell-coven-api, spell-coven-worker");
    let stack = Stack::start(args.state_file).await?;
    let k = u64::from(args.clients);
    let tokens = (0..args.clients as usize).map(|n| stack.token(n)).collect();
    // Per client: every event of both phases and the warm-ups, plus room for duplicates.
    let cap = usize::try_from(2 * (args.events() + 2 * WARMUP_EVENTS) + 1000).unwrap_or(1 << 20);
    let clients = Clients::connect(stack.hub.addr, tokens, cap).await?;
    let mut poster = Poster::connect(stack.hub.addr, &stack.id.secret, stack.id.guild_id).await?;

    // Warm-up (slot 0) of both paths: proves the path works and primes every connection.
    for path in [Path::Gateway, Path::Direct] {
        let before = clients.received();
        let d = dispatch(&stack, &mut poster, path, 0, WARMUP_EVENTS, 50).await;
        let want = d.sent.len() as u64 * k;
        if d.sent.is_empty()
            || !clients
                .wait_for(before + want, Duration::from_secs(20))
                .await
        {
            return Err(format!(
                "warm-up over the {path:?} path: {} of {want} deliveries arrived ({} dispatch errors)\n{}",
                clients.received().saturating_sub(before),
                d.errors,
                stack.worker.log_tail()
            ));
        }
    }

    let gateway = phase(&stack, &clients, &mut poster, Path::Gateway, 1, args).await;
    let direct = phase(&stack, &clients, &mut poster, Path::Direct, 2, args).await;
    let closed = clients.closed();
    if closed > 0 {
        eprintln!("gateway-latency: {closed} client(s) were closed during the run");
    }
    let receipts = clients.finish().await;
    let mut out = Vec::new();
    for p in [gateway, direct] {
        let mut total = Matched::default();
        for r in &receipts {
            total.merge(match_client(&p.sent, r, users(p.slot), p.until));
        }
        out.push(PhaseReport::new(p.input, total));
    }
    Ok(out)
}
