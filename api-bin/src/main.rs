//! `spell-coven-api`: configuration and wiring only; the logic lives in `hub-core`.
//!
//! Exit status: 0 after a clean shutdown (SIGTERM/SIGINT), 2 for a configuration error (one
//! line on stderr naming the variable, also for a JWKS file or DATA_DIR that cannot be
//! used), 1 when the hub cannot start otherwise (e.g. the port is taken).

use std::process::ExitCode;

use hub_core::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

/// What `--help` adds after the variable table: the rules the table cannot show.
const HELP_FOOTER: &str = "\n\
Required: PRIMARY_GUILD_ID, HUB_SECRET, DISCORD_BOT_TOKEN, JWT_ISSUER, JWT_AUDIENCE, and exactly\n\
one of JWT_PUBLIC_JWK_URL / JWT_PUBLIC_JWKS_FILE. Everything else has the default shown.\n\
REDIS_URL makes this process one of several replicas sharing the event stream, presence and\n\
dedupe keys through Redis (redis:// only); without it all state is in-process (DATA_DIR).\n\
RUST_LOG sets the log filter (default: info), e.g. RUST_LOG=info,hub_core=debug.\n\
\n\
Exit status: 0 after SIGTERM/SIGINT (graceful), 2 on bad configuration (one stderr line naming\n\
the variable), 1 when the hub cannot start otherwise (e.g. the port is taken).\n";

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("--help" | "-h") => {
            print!("{}{HELP_FOOTER}", Config::help_text());
            return ExitCode::SUCCESS;
        }
        Some("--version" | "-V") => {
            println!("spell-coven-api {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("spell-coven-api: unknown argument `{other}` (try --help)");
            return ExitCode::from(2);
        }
        None => {}
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
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
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config))
}

/// `LOG_FORMAT=json` -> one JSON object per line; level from `RUST_LOG` (default `info`).
/// Secrets are `hub_core::Secret`s, whose `Debug`/`Display` never show them.
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().with_current_span(false).init(),
        _ => builder.init(),
    }
}

async fn run(config: Config) -> ExitCode {
    let server = match hub_core::start(config).await {
        Ok(server) => server,
        Err(e) => {
            tracing::error!(error = %e, "hub failed to start");
            return match e.variable() {
                Some(variable) => {
                    eprintln!("{variable}: {e}");
                    ExitCode::from(2)
                }
                None => {
                    eprintln!("spell-coven-api: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    };
    hub_core::shutdown_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    ExitCode::SUCCESS
}
