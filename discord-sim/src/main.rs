//! `discord-sim`: run the fake Discord on loopback until Ctrl-C.
//!
//! Prints its URLs (one `name=value` line each, or one JSON object with `--json`) so a
//! script or the demo can point the worker and the hub at it.

use std::process::ExitCode;
use std::time::Duration;

use discord_sim::{Ports, Sim, SimConfig};

const HELP: &str = "\
discord-sim: a fake Discord (Gateway v10 + REST) on 127.0.0.1, for tests and the demo.

USAGE: discord-sim [OPTIONS]

OPTIONS (each also read from the environment variable in brackets):
  --gateway-port <P>        gateway WebSocket port, 0 = any [DISCORD_SIM_GATEWAY_PORT]
  --resume-port <P>         resume gateway port, 0 = any [DISCORD_SIM_RESUME_PORT]
  --rest-port <P>           REST port (/api/v10), 0 = any [DISCORD_SIM_REST_PORT]
  --control-port <P>        control endpoint port (/control), 0 = any [DISCORD_SIM_CONTROL_PORT]
  --heartbeat-ms <MS>       heartbeat_interval sent in HELLO (default 41250) [DISCORD_SIM_HEARTBEAT_MS]
  --resume-timeout-secs <S> how long a dropped session stays resumable (default 180) [DISCORD_SIM_RESUME_TIMEOUT_SECS]
  --guild-id <ID>           the guild's snowflake [DISCORD_SIM_GUILD_ID]
  --json                    print the URLs as one JSON object
  -h, --help                this text

The bot token is read from DISCORD_SIM_TOKEN (default \"sim-token\"); it is never printed.
";

struct Args {
    cfg: SimConfig,
    json: bool,
}

fn parse_num<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{name}: {value:?} is not a valid number"))
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut cfg = SimConfig::default();
    let mut json = false;
    let mut ports = Ports::default();
    let set =
        |key: &str, value: &str, cfg: &mut SimConfig, ports: &mut Ports| -> Result<(), String> {
            match key {
                "gateway-port" => ports.gateway = parse_num(key, value)?,
                "resume-port" => ports.resume = parse_num(key, value)?,
                "rest-port" => ports.rest = parse_num(key, value)?,
                "control-port" => ports.control = parse_num(key, value)?,
                "heartbeat-ms" => {
                    let ms: u64 = parse_num(key, value)?;
                    if ms == 0 {
                        return Err("heartbeat-ms: must be above 0".to_owned());
                    }
                    cfg.heartbeat_interval = Duration::from_millis(ms);
                }
                "resume-timeout-secs" => {
                    cfg.resume_timeout = Duration::from_secs(parse_num(key, value)?)
                }
                "guild-id" => cfg.guild_id = parse_num(key, value)?,
                _ => return Err(format!("unknown option --{key} (see --help)")),
            }
            Ok(())
        };
    for key in [
        "gateway-port",
        "resume-port",
        "rest-port",
        "control-port",
        "heartbeat-ms",
        "resume-timeout-secs",
        "guild-id",
    ] {
        let var = format!("DISCORD_SIM_{}", key.to_uppercase().replace('-', "_"));
        if let Ok(value) = std::env::var(&var) {
            set(key, &value, &mut cfg, &mut ports).map_err(|e| format!("{var}: {e}"))?;
        }
    }
    if let Ok(token) = std::env::var("DISCORD_SIM_TOKEN") {
        if token.is_empty() {
            return Err("DISCORD_SIM_TOKEN: must not be empty".to_owned());
        }
        cfg.token = token;
    }
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--json" => json = true,
            flag if flag.starts_with("--") => {
                let (key, inline) = match flag[2..].split_once('=') {
                    Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                    None => (flag[2..].to_owned(), None),
                };
                let value = match inline {
                    Some(v) => v,
                    None => args
                        .next()
                        .ok_or_else(|| format!("--{key} needs a value"))?,
                };
                set(&key, &value, &mut cfg, &mut ports)?;
            }
            other => return Err(format!("unexpected argument {other:?} (see --help)")),
        }
    }
    // The default channels belong to the default guild id; they stay valid for any id.
    cfg.ports = ports;
    Ok(Some(Args { cfg, json }))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("discord-sim: {e}");
            return ExitCode::from(2);
        }
    };
    let sim = match Sim::start(args.cfg).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("discord-sim: {e}");
            return ExitCode::from(1);
        }
    };
    if args.json {
        let urls = serde_json::json!({
            "gateway_url": sim.gateway_url(),
            "resume_gateway_url": sim.resume_gateway_url(),
            "api_base": sim.api_base(),
            "control_url": sim.control_url(),
            "guild_id": sim.guild_id().to_string(),
        });
        println!("{urls}");
    } else {
        println!("gateway_url={}", sim.gateway_url());
        println!("resume_gateway_url={}", sim.resume_gateway_url());
        println!("api_base={}", sim.api_base());
        println!("control_url={}", sim.control_url());
        println!("guild_id={}", sim.guild_id());
    }
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("discord-sim: cannot wait for Ctrl-C: {e}");
        return ExitCode::from(1);
    }
    sim.shutdown().await;
    ExitCode::SUCCESS
}
