//! `fanout`: end-to-end load tool for the hub (issues 7 and 10). See `benches::load`.
//!
//! ```text
//! fanout [--target ours|baseline|both|scale] [--replicas N]
//!        [--mode steady|storm|slow|idle] [--clients N]
//!        [--events M] [--rate EVENTS_PER_S] [--processes P] [--concurrency C]
//!        [--queue-bytes B] [--storm-window-ms W] [--slow-pct P] [--drain-timeout-s S]
//!        [--settle-s S] [--max-seconds T] [--addr 127.x.y.z:PORT [--hub-pid PID]]
//! ```
//!
//! Starts the hub binary (`spell-coven-api` or `naive-hub`, next to this executable) on a
//! loopback port unless `--addr` names a running one (loopback only), opens the clients in
//! several child processes, posts the events, prints a table and one JSON line. With
//! `--target both` it runs ours then the baseline and prints ours/baseline ratios.
//!
//! Scale-out through Redis (issue 10): `--replicas N` (N >= 1, our hub only) starts a
//! `redis-server` (from `PATH`, on a free loopback port, no persistence) and N replicas of
//! `spell-coven-api` sharing it through `REDIS_URL`, each with its own port, `DATA_DIR` and
//! `METRICS_ADDR`. Client processes are spread round-robin over the replicas (their count
//! rounded up to a multiple of N, so each replica serves an even share) and every event is
//! posted to replica 0: the other replicas' clients get it through Redis. Hub CPU and RSS
//! are summed over the replicas; `redis-server`'s CPU is shown apart. Without `--replicas`
//! (or with 0) the hub runs without Redis, as before. `--target scale` runs ours with Redis
//! and 1 replica (`redis-1`), then with 2 (`redis-2`, or N with `--replicas N`, N >= 2), in
//! one invocation, and prints the `redis-2 / redis-1` ratios.

use std::process::ExitCode;
use std::time::Duration;

use benches::load::launch::{Target, parse_loopback};
use benches::load::report::{ratio_table_for, ratios, table};
use benches::load::scenario::{Mode, Options, run};
use benches::load::wire::WorkerSpec;
use benches::load::worker;

/// One run of an invocation: which hub, and how many Redis replicas of it (0 = no Redis).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    target: Target,
    replicas: usize,
}

struct Args {
    opts: Options,
    runs: Vec<Run>,
    /// `(over, under)`: indices into `runs` of the ratio table's runs.
    ratio: Option<(usize, usize)>,
    max_seconds: u64,
}

/// What `--target` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Targets {
    Ours,
    Baseline,
    Both,
    Scale,
}

fn value<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<T, String> {
    let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
    v.parse()
        .map_err(|_| format!("{flag}: `{v}` is not a valid value"))
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut opts = Options {
        mode: Mode::Steady,
        clients: 2_000,
        events: 100,
        rate: 10.0,
        processes: 0,
        concurrency: 128,
        queue_bytes: 1 << 20,
        storm_window_ms: 3_000,
        slow_pct: 10,
        drain_timeout: Duration::from_secs(20),
        settle: Duration::from_secs(2),
        external: None,
        replicas: 0,
    };
    let mut targets = Targets::Ours;
    let mut replicas = None;
    let mut max_seconds = 600;
    let mut addr = None;
    let mut hub_pid = None;
    while let Some(flag) = it.next() {
        let v = it.next();
        match flag.as_str() {
            "--target" => {
                targets = match v.as_deref() {
                    Some("ours") => Targets::Ours,
                    Some("baseline") => Targets::Baseline,
                    Some("both") => Targets::Both,
                    Some("scale") => Targets::Scale,
                    _ => return Err("--target: ours, baseline, both or scale".into()),
                }
            }
            "--mode" => {
                opts.mode = match v.as_deref() {
                    Some("steady") => Mode::Steady,
                    Some("storm") => Mode::Storm,
                    Some("slow") => Mode::Slow,
                    Some("idle") => Mode::Idle,
                    _ => return Err("--mode: steady, storm, slow or idle".into()),
                }
            }
            "--clients" => opts.clients = value(&flag, v)?,
            "--events" => opts.events = value(&flag, v)?,
            "--rate" => opts.rate = value(&flag, v)?,
            "--processes" => opts.processes = value(&flag, v)?,
            "--concurrency" => opts.concurrency = value(&flag, v)?,
            "--queue-bytes" => opts.queue_bytes = value(&flag, v)?,
            "--storm-window-ms" => opts.storm_window_ms = value(&flag, v)?,
            "--slow-pct" => opts.slow_pct = value::<u32>(&flag, v)?.min(100),
            "--drain-timeout-s" => opts.drain_timeout = Duration::from_secs(value(&flag, v)?),
            "--settle-s" => opts.settle = Duration::from_secs(value(&flag, v)?),
            "--max-seconds" => max_seconds = value(&flag, v)?,
            "--replicas" => replicas = Some(value::<usize>(&flag, v)?),
            "--addr" => addr = Some(parse_loopback(&value::<String>(&flag, v)?)?),
            "--hub-pid" => hub_pid = Some(value(&flag, v)?),
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if opts.clients == 0 {
        return Err("--clients must be at least 1".into());
    }
    let ours = |replicas| Run {
        target: Target::Ours,
        replicas,
    };
    let baseline = Run {
        target: Target::Baseline,
        replicas: 0,
    };
    let (runs, ratio) = match (addr, targets, replicas.unwrap_or(0)) {
        (Some(_), _, r) if r > 0 => {
            return Err("--replicas starts its own hubs: not with --addr".into());
        }
        (Some(a), _, _) => {
            opts.external = Some((a, hub_pid));
            (vec![ours(0)], None)
        }
        (None, Targets::Scale, _) => {
            let n = replicas.unwrap_or(2);
            if n < 2 {
                return Err("--target scale compares 1 replica with N >= 2 (--replicas)".into());
            }
            (vec![ours(1), ours(n)], Some((1, 0)))
        }
        (None, Targets::Baseline | Targets::Both, r) if r > 0 => {
            return Err("--replicas runs our hub only (--target ours or scale)".into());
        }
        (None, Targets::Ours, r) => (vec![ours(r)], None),
        (None, Targets::Baseline, _) => (vec![baseline], None),
        (None, Targets::Both, _) => (vec![ours(0), baseline], Some((0, 1))),
    };
    Ok(Args {
        opts,
        runs,
        ratio,
        max_seconds,
    })
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("__worker") {
        let spec = args
            .nth(1)
            .ok_or_else(|| "missing spec".to_string())
            .and_then(|s| serde_json::from_str::<WorkerSpec>(&s).map_err(|e| e.to_string()));
        return match spec.and_then(worker::run) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("fanout worker: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let args = match parse_args(args) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("fanout: {e}");
            }
            eprintln!("{}", USAGE);
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fanout: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let budget = Duration::from_secs(args.max_seconds);
    let outcome = rt.block_on(async {
        tokio::time::timeout(budget, async {
            let mut results = Vec::new();
            for r in &args.runs {
                let opts = Options {
                    replicas: r.replicas,
                    ..args.opts.clone()
                };
                let r = run(&opts, r.target).await?;
                println!("{}", table(&r));
                results.push(r);
            }
            Ok::<_, String>(results)
        })
        .await
    });
    let results = match outcome {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            eprintln!("fanout: {e}");
            return ExitCode::FAILURE;
        }
        Err(_) => {
            eprintln!("fanout: stopped after --max-seconds {}", args.max_seconds);
            return ExitCode::FAILURE;
        }
    };
    let ratio = args
        .ratio
        .and_then(|(o, u)| Some((results.get(o)?, results.get(u)?)))
        .map(|(over, under)| {
            let r = ratios(over, under);
            println!("{}", ratio_table_for(&r, &over.target, &under.target));
            r
        });
    let json = serde_json::json!({ "runs": results, "ratios": ratio });
    println!("{json}");
    ExitCode::SUCCESS
}

const USAGE: &str = "usage: fanout [--target ours|baseline|both|scale] [--replicas N] \
[--mode steady|storm|slow|idle] [--clients N] [--events M] [--rate EVENTS_PER_S] [--processes P] [--concurrency C] \
[--queue-bytes B] [--storm-window-ms W] [--slow-pct P] [--drain-timeout-s S] [--settle-s S] \
[--max-seconds T] [--addr 127.x.y.z:PORT [--hub-pid PID]]
  --replicas N (N >= 1, ours only): a redis-server and N hub replicas sharing it; clients
    spread over the replicas, events posted to replica 0 (needs redis-server on PATH)
  --target scale: ours with Redis x1 replica, then x2 (or x N with --replicas N >= 2),
    and the ratios of the second over the first";

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Args, String> {
        parse_args(s.split_whitespace().map(String::from))
    }

    #[test]
    fn parses_flags() {
        let a = parse("--target both --mode storm --clients 10000 --rate 5").unwrap();
        let both: Vec<_> = a.runs.iter().map(|r| (r.target, r.replicas)).collect();
        assert_eq!(both, vec![(Target::Ours, 0), (Target::Baseline, 0)]);
        assert_eq!(a.ratio, Some((0, 1)));
        assert_eq!(a.opts.mode, Mode::Storm);
        assert_eq!(a.opts.clients, 10_000);
        assert!((a.opts.rate - 5.0).abs() < f64::EPSILON);
    }

    #[test]
    fn refuses_remote_targets_and_bad_values() {
        assert!(parse("--addr 192.168.1.2:3000").is_err());
        assert!(parse("--addr 127.0.0.1:3000").is_ok());
        assert!(parse("--clients lots").is_err());
        assert!(parse("--clients 0").is_err());
        assert!(parse("--mode sideways").is_err());
        assert!(parse("--bogus 1").is_err());
    }

    fn runs(a: &Args) -> Vec<(Target, usize)> {
        a.runs.iter().map(|r| (r.target, r.replicas)).collect()
    }

    #[test]
    fn no_replicas_by_default() {
        let a = parse("").unwrap();
        assert_eq!(runs(&a), vec![(Target::Ours, 0)]);
        assert_eq!(a.ratio, None);
        let a = parse("--replicas 0").unwrap();
        assert_eq!(runs(&a), vec![(Target::Ours, 0)]);
        let a = parse("--target baseline").unwrap();
        assert_eq!(runs(&a), vec![(Target::Baseline, 0)]);
    }

    #[test]
    fn replicas_run_ours_through_redis() {
        let a = parse("--replicas 3 --mode idle").unwrap();
        assert_eq!(runs(&a), vec![(Target::Ours, 3)]);
        assert_eq!(a.opts.mode, Mode::Idle);
        let a = parse("--target ours --replicas 1").unwrap();
        assert_eq!(runs(&a), vec![(Target::Ours, 1)]);
    }

    #[test]
    fn scale_compares_two_replicas_with_one() {
        let a = parse("--target scale --mode steady --clients 2000").unwrap();
        assert_eq!(runs(&a), vec![(Target::Ours, 1), (Target::Ours, 2)]);
        assert_eq!(a.ratio, Some((1, 0)));
        let a = parse("--replicas 4 --target scale").unwrap();
        assert_eq!(runs(&a), vec![(Target::Ours, 1), (Target::Ours, 4)]);
    }

    #[test]
    fn refuses_replica_combinations_that_mean_nothing() {
        assert!(parse("--target scale --replicas 1").is_err());
        assert!(parse("--target scale --replicas 0").is_err());
        assert!(parse("--target baseline --replicas 2").is_err());
        assert!(parse("--target both --replicas 1").is_err());
        assert!(parse("--addr 127.0.0.1:3000 --replicas 2").is_err());
        assert!(parse("--replicas -1").is_err());
        assert!(parse("--replicas many").is_err());
        assert!(parse("--target everything").is_err());
    }
}
