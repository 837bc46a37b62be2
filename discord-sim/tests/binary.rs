//! The `discord-sim` binary: `--help`, URLs on stdout, serving until stopped.

mod support;

use std::process::Stdio;

use serde_json::Value;
use support::{Client, WAIT};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_discord-sim");

#[tokio::test]
async fn help_exits_zero() {
    let out = Command::new(BIN)
        .arg("--help")
        .output()
        .await
        .expect("runs");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("USAGE"));
}

#[tokio::test]
async fn bad_flag_exits_two() {
    let out = Command::new(BIN)
        .arg("--heartbeat-ms=abc")
        .output()
        .await
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("heartbeat-ms"));
}

#[tokio::test]
async fn prints_urls_as_json_and_serves() {
    let mut child = Command::new(BIN)
        .args(["--json", "--heartbeat-ms", "5000"])
        .env("DISCORD_SIM_TOKEN", "secret-bin-token")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawns");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("urls in time")
        .expect("read")
        .expect("a line");
    assert!(!line.contains("secret-bin-token"));
    let urls: Value = serde_json::from_str(&line).expect("json");
    let gateway = urls["gateway_url"].as_str().expect("gateway_url");
    assert!(
        urls["api_base"]
            .as_str()
            .is_some_and(|u| u.ends_with("/api/v10"))
    );
    assert_ne!(urls["resume_gateway_url"], urls["gateway_url"]);
    let (_c, interval) = Client::connect_hello(gateway).await;
    assert_eq!(interval, 5000);
    child.kill().await.expect("kill the child we started");
}
