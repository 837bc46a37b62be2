//! `gateway-latency`: discord-sim -> worker -> hub -> WebSocket client latency at a fixed
//! event rate, beside the direct signed-webhook path, in one bounded run on loopback.
//! See `gateway-latency --help` and [`benches::gateway`].

use std::process::ExitCode;
use std::time::Duration;

use benches::gateway::args::{Parsed, USAGE, parse};
use benches::gateway::report::{json_line, table};
use benches::gateway::run::run;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse(argv.iter().map(String::as_str)) {
        Ok(Parsed::Run(a)) => a,
        Ok(Parsed::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("gateway-latency: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gateway-latency: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let limit = Duration::from_secs(u64::from(args.max_seconds));
    let result = rt.block_on(async { tokio::time::timeout(limit, run(&args)).await });
    // Children are killed and the sim stopped when the run's values drop; do not wait for
    // stray tasks.
    rt.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(Ok(phases)) => {
            print!("{}", table(&phases));
            println!("{}", json_line(&args, &phases));
            // A phase that dispatched nothing measured nothing: not a result.
            if phases.iter().any(|p| p.events == 0) {
                eprintln!("gateway-latency: a phase dispatched no event");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("gateway-latency: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!(
                "gateway-latency: stopped after --max-seconds {}",
                args.max_seconds
            );
            ExitCode::FAILURE
        }
    }
}
