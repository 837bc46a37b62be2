//! Smoke test of the `fanout` tool against the naive baseline hub: 20 clients, 5 events.
//! Ignored by default (it opens real sockets and takes a few seconds); run with
//! `cargo test -p benches --test fanout_smoke -- --ignored`.

use std::process::Command;

#[test]
#[ignore = "starts processes and opens sockets; run on demand"]
fn twenty_clients_get_every_event() {
    let out = Command::new(env!("CARGO_BIN_EXE_fanout"))
        .args([
            "--target",
            "baseline",
            "--clients",
            "20",
            "--events",
            "5",
            "--rate",
            "20",
            "--settle-s",
            "0",
            "--max-seconds",
            "120",
        ])
        .output()
        .expect("fanout runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = stdout.lines().last().expect("a JSON line");
    let v: serde_json::Value = serde_json::from_str(json).expect("JSON");
    let run = &v["runs"][0];
    assert_eq!(run["connected"], 20);
    assert_eq!(run["lost"], 0);
    assert_eq!(run["phases"][0]["received"], run["phases"][0]["expected"]);
    assert_eq!(run["phases"][0]["received"], 100);
}
