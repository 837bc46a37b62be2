//! `spell-coven-demo`: the whole bridge on loopback with a live dashboard.
//!
//! One process runs discord-sim (a fake Discord), the hub (`hub_core`) and the worker
//! (`worker::run`) with generated secrets and a generated ES256 key pair, mints session
//! tokens for the dashboard, and serves the dashboard. A dev tool: the release binaries
//! have no demo switch, and nothing here is reachable from them.
//!
//! ```text
//! spell-coven-demo [--port P] [--hub-port P] [--heartbeat-ms MS]
//! ```
//!
//! Exit status: 0 after Ctrl-C (or SIGTERM), 2 for a bad argument, 1 when startup fails.

mod assets;
mod controls;
mod keys;
mod server;
mod stack;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use crate::server::DemoState;
use crate::stack::{Stack, StackOptions};

/// Default dashboard port.
const DEFAULT_PORT: u16 = 8787;
/// Default hub port.
const DEFAULT_HUB_PORT: u16 = 8788;

const USAGE: &str = "\
spell-coven-demo: discord-sim + hub + worker on 127.0.0.1 with a live dashboard

usage: spell-coven-demo [--port P] [--hub-port P] [--heartbeat-ms MS]

  --port P          dashboard port (default 8787; 0 = any free port)
  --hub-port P      hub port (default 8788; 0 = any free port)
  --heartbeat-ms MS discord-sim heartbeat interval (default 5000)

Logs go to stderr (level via RUST_LOG, default info). Ctrl-C stops everything.
";

#[derive(Debug)]
struct Args {
    port: u16,
    hub_port: u16,
    heartbeat: Duration,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        port: DEFAULT_PORT,
        hub_port: DEFAULT_HUB_PORT,
        heartbeat: Duration::from_millis(5_000),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        if name == "-h" || name == "--help" {
            return Ok(None);
        }
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("{name} needs a value"))?;
        match name.as_str() {
            "--port" => parsed.port = value.parse().map_err(|_| format!("{name}: not a port"))?,
            "--hub-port" => {
                parsed.hub_port = value.parse().map_err(|_| format!("{name}: not a port"))?;
            }
            "--heartbeat-ms" => {
                let ms: u64 = value
                    .parse()
                    .ok()
                    .filter(|&ms| (100..=60_000).contains(&ms))
                    .ok_or_else(|| format!("{name}: expected 100..=60000"))?;
                parsed.heartbeat = Duration::from_millis(ms);
            }
            _ => return Err(format!("unknown argument {name:?} (try --help)")),
        }
    }
    Ok(Some(parsed))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("spell-coven-demo: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("spell-coven-demo: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run(args));
    runtime.shutdown_timeout(Duration::from_millis(500));
    code
}

async fn run(args: Args) -> ExitCode {
    // Bind the dashboard first: its origin goes into the hub's CORS_ORIGINS.
    let listener = match TcpListener::bind(("127.0.0.1", args.port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "spell-coven-demo: cannot bind 127.0.0.1:{}: {e} (try --port)",
                args.port
            );
            return ExitCode::FAILURE;
        }
    };
    let authority = match listener.local_addr() {
        Ok(addr) => addr.to_string(),
        Err(e) => {
            eprintln!("spell-coven-demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stack = match Stack::start(StackOptions {
        hub_port: args.hub_port,
        dashboard_origin: format!("http://{authority}"),
        heartbeat: args.heartbeat,
    })
    .await
    {
        Ok(stack) => stack,
        Err(e) => {
            eprintln!("spell-coven-demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sim = stack.sim();
    println!("spell-coven demo is running (Ctrl-C to stop)");
    println!(
        "  discord-sim gateway {}  rest {}",
        sim.gateway_url(),
        sim.api_base()
    );
    println!("  hub         http://{}", stack.hub_addr());
    println!(
        "  worker      in process, HUB_ENDPOINT http://{}/internal/events",
        stack.hub_addr()
    );
    println!("dashboard: http://{authority}/");

    let state = Arc::new(DemoState { stack, authority });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(server::serve(listener, Arc::clone(&state), stop_rx));
    shutdown_signal().await;
    println!("stopping: worker, hub, discord-sim");
    let _ = stop_tx.send(true);
    let _ = server.await;
    match Arc::try_unwrap(state) {
        Ok(state) => state.stack.shutdown().await,
        Err(_) => tracing::warn!("a dashboard request outlived the server; not waiting for it"),
    }
    println!("stopped");
    ExitCode::SUCCESS
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::parse_args;

    fn args(list: &[&str]) -> Result<Option<super::Args>, String> {
        parse_args(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn ports_and_heartbeat_parse() {
        let a = args(&["--port", "0", "--hub-port=9000", "--heartbeat-ms", "500"])
            .unwrap()
            .unwrap();
        assert_eq!(
            (a.port, a.hub_port, a.heartbeat.as_millis()),
            (0, 9000, 500)
        );
        assert!(args(&["--help"]).unwrap().is_none());
        assert!(args(&["--port"]).is_err());
        assert!(args(&["--port", "x"]).is_err());
        assert!(args(&["--heartbeat-ms", "5"]).is_err());
        assert!(args(&["--what", "1"]).is_err());
    }
}
