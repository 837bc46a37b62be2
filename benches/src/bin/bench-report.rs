//! Prints the side-by-side ratios of the last `cargo bench` run as a Markdown table.
//!
//! Criterion keeps its estimates in `target/criterion/<group>/<function>/<input>/new/
//! estimates.json`; this reads the gateway decode group and divides the two sides' mean
//! times measured in the same run.
//!
//! Usage: `cargo run -p benches --bin bench-report [target-dir]`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn mean_ns(dir: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join("new/estimates.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

fn human(ns: f64) -> String {
    match ns {
        n if n >= 1e6 => format!("{:.2} ms", n / 1e6),
        n if n >= 1e3 => format!("{:.2} µs", n / 1e3),
        n => format!("{n:.0} ns"),
    }
}

fn main() -> ExitCode {
    let target = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let group = target.join("criterion/decode");
    let Ok(entries) = std::fs::read_dir(group.join("gateway-proto")) else {
        eprintln!(
            "no results in {}: run `cargo bench -p benches --bench gateway_decode` first",
            group.display()
        );
        return ExitCode::from(2);
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "report")
        .collect();
    names.sort();
    println!("| event | gateway-proto | twilight | twilight / gateway-proto |");
    println!("|---|---|---|---|");
    for name in names {
        let ours = mean_ns(&group.join("gateway-proto").join(&name));
        let theirs = mean_ns(&group.join("twilight").join(&name));
        if let (Some(o), Some(t)) = (ours, theirs) {
            println!("| {name} | {} | {} | {:.2}x |", human(o), human(t), t / o);
        }
    }
    if let Some(ns) = mean_ns(&target.join("criterion/inflate/zlib-stream")) {
        println!(
            "\nzlib-stream inflate of the connection corpus: {}",
            human(ns)
        );
    }
    ExitCode::SUCCESS
}
