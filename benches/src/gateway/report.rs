//! The per-phase summary, as a table and as one JSON line (pure formatting).

use std::fmt::Write as _;

use super::args::Args;
use super::ledger::Matched;
use crate::load::hist::quantile_of;

/// What one phase measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PhaseReport {
    /// `gateway` or `direct`.
    pub phase: &'static str,
    /// Events dispatched (control calls or posts that succeeded).
    pub events: u64,
    /// Control calls or posts that failed (no event expected from them).
    pub dispatch_errors: u64,
    /// `events * clients`.
    pub expected: u64,
    /// Deliveries matched to a dispatch.
    pub received: u64,
    /// Deliveries never received before the drain timeout.
    pub lost: u64,
    /// Receipts that matched no dispatch.
    pub duplicates: u64,
    /// Latency quantiles and maximum, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// Maximum, milliseconds.
    pub max_ms: f64,
    /// Events per second asked for.
    pub target_rate: u32,
    /// Events per second achieved (dispatched / time from first to last dispatch slot).
    pub achieved_rate: f64,
    /// Worker CPU seconds from the phase's start to the end of its drain.
    pub worker_cpu_s: Option<f64>,
    /// Hub CPU seconds over the same span.
    pub hub_cpu_s: Option<f64>,
}

/// Everything but the timing of a phase, to build a [`PhaseReport`].
#[derive(Debug, Clone, Copy)]
pub struct PhaseInput {
    /// Phase name.
    pub phase: &'static str,
    /// Events dispatched.
    pub events: u64,
    /// Failed dispatches.
    pub dispatch_errors: u64,
    /// Clients connected.
    pub clients: u64,
    /// Target rate.
    pub target_rate: u32,
    /// Seconds the dispatching took.
    pub dispatch_secs: f64,
    /// Worker CPU seconds.
    pub worker_cpu_s: Option<f64>,
    /// Hub CPU seconds.
    pub hub_cpu_s: Option<f64>,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl PhaseReport {
    /// Summarises the merged matching of every client.
    pub fn new(input: PhaseInput, mut matched: Matched) -> Self {
        let lat = &mut matched.latencies_us;
        let p50 = quantile_of(lat, 0.50);
        let p99 = quantile_of(lat, 0.99);
        let max = lat.iter().copied().max().unwrap_or(0);
        Self {
            phase: input.phase,
            events: input.events,
            dispatch_errors: input.dispatch_errors,
            expected: input.events * input.clients,
            received: lat.len() as u64,
            lost: matched.lost,
            duplicates: matched.duplicates,
            p50_ms: ms(p50),
            p99_ms: ms(p99),
            max_ms: ms(max),
            target_rate: input.target_rate,
            achieved_rate: if input.dispatch_secs > 0.0 {
                (input.events as f64 / input.dispatch_secs * 10.0).round() / 10.0
            } else {
                0.0
            },
            worker_cpu_s: input.worker_cpu_s,
            hub_cpu_s: input.hub_cpu_s,
        }
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"))
}

/// The human table: one row per phase, then the worker's share of p99.
pub fn table(phases: &[PhaseReport]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<8} {:>7} {:>5} {:>9} {:>9} {:>6} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7}",
        "phase",
        "events",
        "errs",
        "expected",
        "received",
        "lost",
        "dup",
        "p50 ms",
        "p99 ms",
        "max ms",
        "rate/s",
        "target/s",
        "worker s",
        "hub s"
    );
    for p in phases {
        let _ = writeln!(
            s,
            "{:<8} {:>7} {:>5} {:>9} {:>9} {:>6} {:>5} {:>8.3} {:>8.3} {:>8.3} {:>8.1} {:>8} {:>9} {:>7}",
            p.phase,
            p.events,
            p.dispatch_errors,
            p.expected,
            p.received,
            p.lost,
            p.duplicates,
            p.p50_ms,
            p.p99_ms,
            p.max_ms,
            p.achieved_rate,
            p.target_rate,
            opt(p.worker_cpu_s),
            opt(p.hub_cpu_s),
        );
    }
    if let Some(share) = worker_share_p99_ms(phases) {
        let _ = writeln!(s, "worker share of p99 (gateway - direct): {share:.3} ms");
    }
    s
}

/// Gateway p99 minus direct p99, when both phases ran.
pub fn worker_share_p99_ms(phases: &[PhaseReport]) -> Option<f64> {
    let find = |name: &str| phases.iter().find(|p| p.phase == name).map(|p| p.p99_ms);
    let d = find("gateway")? - find("direct")?;
    // Both are whole microseconds: round away the floating-point residue.
    Some((d * 1000.0).round() / 1000.0)
}

/// One JSON line with the flags and every phase.
pub fn json_line(args: &Args, phases: &[PhaseReport]) -> String {
    serde_json::json!({
        "tool": "gateway-latency",
        "rate": args.rate,
        "seconds": args.seconds,
        "clients": args.clients,
        "worker_state_file": args.state_file,
        "phases": phases,
        "worker_share_p99_ms": worker_share_p99_ms(phases),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(phase: &'static str) -> PhaseInput {
        PhaseInput {
            phase,
            events: 4,
            dispatch_errors: 0,
            clients: 2,
            target_rate: 2,
            dispatch_secs: 2.0,
            worker_cpu_s: None,
            hub_cpu_s: Some(0.5),
        }
    }

    #[test]
    fn summary_counts_and_quantiles() {
        let m = Matched {
            latencies_us: vec![3000, 1000, 2000, 4000, 1500, 2500, 3500],
            lost: 1,
            duplicates: 0,
        };
        let r = PhaseReport::new(input("gateway"), m);
        assert_eq!((r.expected, r.received, r.lost), (8, 7, 1));
        assert_eq!(r.p50_ms, 2.5);
        assert_eq!(r.p99_ms, 4.0);
        assert_eq!(r.max_ms, 4.0);
        assert_eq!(r.achieved_rate, 2.0);
    }

    #[test]
    fn table_and_json_carry_both_phases_and_the_share() {
        let g = PhaseReport::new(
            input("gateway"),
            Matched {
                latencies_us: vec![5000],
                ..Matched::default()
            },
        );
        let d = PhaseReport::new(
            input("direct"),
            Matched {
                latencies_us: vec![2000],
                ..Matched::default()
            },
        );
        let phases = [g, d];
        assert_eq!(worker_share_p99_ms(&phases), Some(3.0));
        let t = table(&phases);
        assert!(t.contains("gateway") && t.contains("direct") && t.contains("3.000 ms"));
        let v: serde_json::Value =
            serde_json::from_str(&json_line(&Args::default(), &phases)).unwrap();
        assert_eq!(v["phases"][1]["phase"], "direct");
        assert_eq!(v["phases"][0]["worker_cpu_s"], serde_json::Value::Null);
        assert_eq!(v["worker_share_p99_ms"], 3.0);
        assert!(!t.contains('\t') && !json_line(&Args::default(), &[]).contains('\n'));
    }
}
