//! `spell-coven-worker`: configuration and wiring only; the logic lives in
//! the `worker` library.
//!
//! Exit status: 0 after SIGTERM/SIGINT, 2 for a missing or invalid variable
//! (one line on stderr naming it), 1 when Discord ends the session for good
//! (4004, 4010-4014: the message says what to fix) or setup fails.

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;
use worker::{Config, LogFormat, Telemetry, Tuning};

/// What `--help` adds after the variable list.
const HELP_FOOTER: &str =
    "RUST_LOG sets the log filter (default: info), e.g. RUST_LOG=info,worker=debug.\n";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    if let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{}{HELP_FOOTER}", worker::config::help_text());
                return ExitCode::SUCCESS;
            }
            "-V" | "--version" => {
                println!("spell-coven-worker {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("spell-coven-worker: unknown argument {other:?} (try --help)");
                return ExitCode::from(2);
            }
        }
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("spell-coven-worker: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("spell-coven-worker: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(worker::run(
        config,
        Tuning::default(),
        Telemetry::default(),
        shutdown_signal(),
    ));
    // Do not wait for stray tasks (a background close handshake) on exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("spell-coven-worker: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        _ => builder.init(),
    }
}

/// SIGTERM or SIGINT (contract §5).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
