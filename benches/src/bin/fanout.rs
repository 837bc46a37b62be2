//! `fanout`: end-to-end load tool for the hub (issue 7). See `benches::load`.
//!
//! ```text
//! fanout [--target ours|baseline|both] [--mode steady|storm|slow|idle] [--clients N]
//!        [--events M] [--rate EVENTS_PER_S] [--processes P] [--concurrency C]
//!        [--queue-bytes B] [--storm-window-ms W] [--slow-pct P] [--drain-timeout-s S]
//!        [--settle-s S] [--max-seconds T] [--addr 127.x.y.z:PORT [--hub-pid PID]]
//! ```
//!
//! Starts the hub binary (`spell-coven-api` or `naive-hub`, next to this executable) on a
//! loopback port unless `--addr` names a running one (loopback only), opens the clients in
//! several child processes, posts the events, prints a table and one JSON line. With
//! `--target both` it runs ours then the baseline and prints ours/baseline ratios.

use std::process::ExitCode;
use std::time::Duration;

use benches::load::launch::{Target, parse_loopback};
use benches::load::report::{ratio_table, ratios, table};
use benches::load::scenario::{Mode, Options, run};
use benches::load::wire::WorkerSpec;
use benches::load::worker;

struct Args {
    opts: Options,
    targets: Vec<Target>,
    max_seconds: u64,
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
    };
    let mut targets = vec![Target::Ours];
    let mut max_seconds = 600;
    let mut addr = None;
    let mut hub_pid = None;
    while let Some(flag) = it.next() {
        let v = it.next();
        match flag.as_str() {
            "--target" => {
                targets = match v.as_deref() {
                    Some("ours") => vec![Target::Ours],
                    Some("baseline") => vec![Target::Baseline],
                    Some("both") => vec![Target::Ours, Target::Baseline],
                    _ => return Err("--target: ours, baseline or both".into()),
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
            "--addr" => addr = Some(parse_loopback(&value::<String>(&flag, v)?)?),
            "--hub-pid" => hub_pid = Some(value(&flag, v)?),
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if let Some(a) = addr {
        opts.external = Some((a, hub_pid));
        targets = vec![Target::Ours];
    }
    if opts.clients == 0 {
        return Err("--clients must be at least 1".into());
    }
    Ok(Args {
        opts,
        targets,
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
            for t in &args.targets {
                let r = run(&args.opts, *t).await?;
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
    let ratio = match results.as_slice() {
        [ours, base] => {
            let r = ratios(ours, base);
            println!("{}", ratio_table(&r));
            Some(r)
        }
        _ => None,
    };
    let json = serde_json::json!({ "runs": results, "ratios": ratio });
    println!("{json}");
    ExitCode::SUCCESS
}

const USAGE: &str = "usage: fanout [--target ours|baseline|both] [--mode steady|storm|slow|idle] \
[--clients N] [--events M] [--rate EVENTS_PER_S] [--processes P] [--concurrency C] \
[--queue-bytes B] [--storm-window-ms W] [--slow-pct P] [--drain-timeout-s S] [--settle-s S] \
[--max-seconds T] [--addr 127.x.y.z:PORT [--hub-pid PID]]";

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Args, String> {
        parse_args(s.split_whitespace().map(String::from))
    }

    #[test]
    fn parses_flags() {
        let a = parse("--target both --mode storm --clients 10000 --rate 5").unwrap();
        assert_eq!(a.targets, vec![Target::Ours, Target::Baseline]);
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
}
