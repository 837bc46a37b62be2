//! `hub-profile`: the hub under a sampling CPU profiler, for the profile behind
//! `BENCHMARKS.md` (`perf` is not available on the project's machine).
//!
//! It is `spell-coven-api` (configured from the same environment, served by
//! `hub_core::start`) with [pprof](https://docs.rs/pprof) sampling every thread's stack
//! `PROFILE_HZ` times per CPU-second (default 499) through `SIGPROF`. Time spent inside a
//! system call is charged to the user-space stack that made it, so a `write` on a socket
//! shows up as the frames that called it.
//!
//! - `PROFILE_DELAY_S` (default 0): start sampling this long after the hub listens, e.g.
//!   after a load tool's connect phase.
//! - `PROFILE_SECONDS` (default: until SIGTERM/SIGINT): sample this long, then write the
//!   report and keep serving.
//! - `PROFILE_OUT` (default `hub-profile.svg`): the flamegraph; a text summary (share of
//!   samples by innermost frame, and by frames of interest anywhere on the stack) goes to
//!   the same path with `.txt`.
//!
//! ```sh
//! cargo build --release -p benches --bin fanout
//! cargo build --profile bench -p benches --bin hub-profile   # symbols kept, same directory
//! FANOUT_HUB_BIN=hub-profile PROFILE_DELAY_S=8 PROFILE_SECONDS=20 \
//!     PROFILE_OUT=$PWD/out/fanout-10k.svg \
//!     target/release/fanout --mode steady --clients 10000 --events 30 --rate 1
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use hub_core::Config;

/// Profiler settings from the environment.
struct Settings {
    hz: i32,
    delay: Duration,
    window: Option<Duration>,
    out: PathBuf,
}

fn env_number<T: std::str::FromStr>(name: &str) -> Result<Option<T>, String> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("{name}: `{v}` is not a valid number")),
        Err(_) => Ok(None),
    }
}

fn settings() -> Result<Settings, String> {
    Ok(Settings {
        hz: env_number("PROFILE_HZ")?.unwrap_or(499),
        delay: Duration::from_secs(env_number("PROFILE_DELAY_S")?.unwrap_or(0)),
        window: env_number("PROFILE_SECONDS")?.map(Duration::from_secs),
        out: std::env::var_os("PROFILE_OUT")
            .map_or_else(|| PathBuf::from("hub-profile.svg"), PathBuf::from),
    })
}

fn main() -> ExitCode {
    let (config, settings) = match Config::from_env()
        .map_err(|e| e.to_string())
        .and_then(|config| settings().map(|s| (config, s)))
    {
        Ok(both) => both,
        Err(e) => {
            eprintln!("hub-profile: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hub-profile: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let server = match hub_core::start(config).await {
            Ok(server) => server,
            Err(e) => {
                eprintln!("hub-profile: {e}");
                return ExitCode::FAILURE;
            }
        };
        let outcome = profile(&settings).await;
        server.shutdown().await;
        match outcome {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("hub-profile: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Samples from `delay` for `window` (or until a signal), writes the report, then serves
/// until a signal.
async fn profile(s: &Settings) -> Result<(), String> {
    tokio::select! {
        () = tokio::time::sleep(s.delay) => {}
        () = hub_core::shutdown_signal() => return Ok(()),
    }
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(s.hz)
        .build()
        .map_err(|e| format!("profiler: {e}"))?;
    let stopped_by_signal = match s.window {
        Some(window) => tokio::select! {
            () = tokio::time::sleep(window) => false,
            () = hub_core::shutdown_signal() => true,
        },
        None => {
            hub_core::shutdown_signal().await;
            true
        }
    };
    let report = guard
        .report()
        .build()
        .map_err(|e| format!("profile report: {e}"))?;
    drop(guard);
    write_report(&report, &s.out)?;
    eprintln!("hub-profile: wrote {}", s.out.display());
    if !stopped_by_signal {
        hub_core::shutdown_signal().await;
    }
    Ok(())
}

fn write_report(report: &pprof::Report, out: &Path) -> Result<(), String> {
    let file = std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    report
        .flamegraph(file)
        .map_err(|e| format!("flamegraph: {e}"))?;
    let text = summary(report);
    let txt = out.with_extension("txt");
    std::fs::write(&txt, text).map_err(|e| format!("{}: {e}", txt.display()))
}

/// Frames whose inclusive share the summary always lists: where a fan-out's time goes.
const OF_INTEREST: &[&str] = &[
    "send",
    "write",
    "writev",
    "recv",
    "read",
    "epoll_wait",
    "futex",
    "hub_core::ws::session::write_frames",
    "hub_core::ws::session",
    "hub_core::routes",
    "hub_core::auth",
];

/// Share of samples by innermost frame (top 25) and by frames of interest anywhere on the
/// stack.
fn summary(report: &pprof::Report) -> String {
    let mut leaf: HashMap<String, isize> = HashMap::new();
    let mut inclusive: HashMap<&str, isize> = HashMap::new();
    let mut total = 0isize;
    for (frames, count) in &report.data {
        total += count;
        let names: Vec<String> = frames
            .frames
            .iter()
            .flat_map(|symbols| symbols.iter().map(pprof::Symbol::name))
            .collect();
        if let Some(first) = names.first() {
            *leaf.entry(first.clone()).or_default() += count;
        }
        for interest in OF_INTEREST {
            if names.iter().any(|n| matches_frame(n, interest)) {
                *inclusive.entry(interest).or_default() += count;
            }
        }
    }
    let pct = |n: isize| 100.0 * n as f64 / total.max(1) as f64;
    let mut out = format!("samples: {total}\n\nby innermost frame (self):\n");
    let mut leaves: Vec<_> = leaf.into_iter().collect();
    leaves.sort_by_key(|leaf| std::cmp::Reverse(leaf.1));
    for (name, n) in leaves.iter().take(25) {
        out.push_str(&format!("{:6.2}%  {name}\n", pct(*n)));
    }
    out.push_str("\nanywhere on the stack (inclusive):\n");
    for interest in OF_INTEREST {
        let n = inclusive.get(interest).copied().unwrap_or(0);
        out.push_str(&format!("{:6.2}%  {interest}\n", pct(n)));
    }
    out
}

/// Whether a demangled frame name is `pattern`: a libc symbol matches with its glibc
/// aliases (`__libc_send`, `__GI___send`, `__send_nocancel`), a Rust path anywhere in the
/// name (pprof names a generic frame by its innermost function, e.g. `poll<hub_core::…>`).
fn matches_frame(name: &str, pattern: &str) -> bool {
    if pattern.contains("::") {
        return name.contains(pattern);
    }
    let bare = name.trim_start_matches('_');
    let bare = bare
        .strip_prefix("GI_")
        .map_or(bare, |b| b.trim_start_matches('_'));
    let bare = bare.strip_prefix("libc_").unwrap_or(bare);
    bare == pattern || bare.strip_prefix(pattern) == Some("_nocancel")
}

#[cfg(test)]
mod tests {
    use super::matches_frame;

    #[test]
    fn frames_of_interest_match_libc_variants_and_rust_paths() {
        assert!(matches_frame("__libc_send", "send"));
        assert!(matches_frame("__GI___libc_write", "write"));
        assert!(matches_frame("write", "write"));
        assert!(matches_frame("__write_nocancel", "write"));
        assert!(!matches_frame("sendmsg", "send"));
        assert!(!matches_frame("writev", "write"));
        assert!(matches_frame(
            "hub_core::ws::session::run::{{closure}}",
            "hub_core::ws::session"
        ));
        assert!(matches_frame(
            "<hub_core::hub::Hub>::ingest",
            "hub_core::hub"
        ));
        assert!(matches_frame(
            "poll<hub_core::hub::fanout::X>",
            "hub_core::hub"
        ));
        assert!(!matches_frame("hub_core::router::route", "hub_core::hub"));
    }
}
