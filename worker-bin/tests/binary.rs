//! The real `spell-coven-worker` binary: configuration errors exit 2 naming
//! the variable, `--help`/`--version`, health endpoint, JSON logs without
//! the token, and SIGTERM -> resumable close, saved session, exit 0.

mod support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use discord_sim::{CloseInfo, DEFAULT_VOICE_1_ID as V1};
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_spell-coven-worker");

fn run_with(env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .env_clear()
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap()
}

const GOOD: &[(&str, &str)] = &[
    ("DISCORD_BOT_TOKEN", "tok.en"),
    ("PRIMARY_GUILD_ID", "123"),
    ("HUB_ENDPOINT", "http://127.0.0.1:9/internal/events"),
    ("HUB_SECRET", SECRET),
];

#[test]
fn missing_or_invalid_variables_exit_2_naming_them() {
    for skip in [
        "DISCORD_BOT_TOKEN",
        "PRIMARY_GUILD_ID",
        "HUB_ENDPOINT",
        "HUB_SECRET",
    ] {
        let env: Vec<_> = GOOD.iter().copied().filter(|(k, _)| *k != skip).collect();
        let out = run_with(&env, &[]);
        assert_eq!(out.status.code(), Some(2), "{skip}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(skip), "{stderr}");
    }
    let mut env = GOOD.to_vec();
    env.push(("HUB_SECRET", "short-secret-value"));
    let out = run_with(&env, &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("HUB_SECRET"));
    assert!(
        !stderr.contains("short-secret-value"),
        "secret leaked: {stderr}"
    );
    let mut env = GOOD.to_vec();
    env.push(("PRIMARY_GUILD_ID", "12a"));
    let out = run_with(&env, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PRIMARY_GUILD_ID"));
}

#[test]
fn help_and_version() {
    let out = run_with(&[], &["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "DISCORD_BOT_TOKEN",
        "PRIMARY_GUILD_ID",
        "HUB_ENDPOINT",
        "HUB_SECRET",
        "DISCORD_API_BASE",
        "DISCORD_GATEWAY_URL",
        "WORKER_STATE_FILE",
        "HEALTH_ADDR",
        "LOG_FORMAT",
        "https://discord.com/api/v10",
    ] {
        assert!(help.contains(var), "{var}");
    }
    let out = run_with(&[], &["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("spell-coven-worker "));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    stream.read_to_string(&mut out).ok()?;
    Some(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_resumably_saves_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_path(&dir);
    let sim = sim().await;
    let hub = TestHub::start().await;
    let port = free_port();
    let guild = sim.guild_id().to_string();
    let endpoint = hub.endpoint();
    let health = format!("127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .env_clear()
        .env("DISCORD_BOT_TOKEN", discord_sim::DEFAULT_TOKEN)
        .env("PRIMARY_GUILD_ID", &guild)
        .env("HUB_ENDPOINT", &endpoint)
        .env("HUB_SECRET", SECRET)
        .env("DISCORD_API_BASE", sim.api_base())
        .env("WORKER_STATE_FILE", &state)
        .env("HEALTH_ADDR", &health)
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("first guild.sync", || {
        hub.events().iter().any(|r| r.event == "guild.sync")
    })
    .await;
    sim.join(1, V1).await.unwrap();
    wait_until("join delivered", || hub.room_events().len() == 1).await;

    let health_body = tokio::task::spawn_blocking(move || http_get(port, "/health"))
        .await
        .unwrap()
        .expect("health answers");
    assert!(health_body.starts_with("HTTP/1.1 200"));
    let json = &health_body[health_body.find("\r\n\r\n").unwrap() + 4..];
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["state"], "connected");
    assert_eq!(v["session"], true);
    for key in [
        "seq",
        "ackedSeq",
        "heartbeatRttMs",
        "outboxDepth",
        "lastDeliveryError",
    ] {
        assert!(v.get(key).is_some(), "{key} in {v}");
    }
    let metrics = tokio::task::spawn_blocking(move || http_get(port, "/metrics"))
        .await
        .unwrap()
        .unwrap();
    assert!(metrics.contains("worker_events_forwarded_total"));
    assert!(metrics.contains("worker_outbox_depth"));

    let pid = child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let mut logs = String::new();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut logs)
                    .unwrap();
                return (status, logs);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
    let (status, logs) = exit;
    assert_eq!(status.code(), Some(0), "logs: {logs}");
    assert!(!logs.contains(discord_sim::DEFAULT_TOKEN), "token in logs");
    assert!(!logs.contains(SECRET), "hub secret in logs");
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not a JSON log line: {line}"
        );
    }
    let conn = sim.connections().into_iter().next().unwrap();
    assert_eq!(conn.close, Some(CloseInfo::Client { code: Some(4000) }));
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(
        saved["session"]["id"].as_str(),
        sim.sessions()[0].session_id.as_str().into()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fatal_close_exits_1_with_the_operator_message() {
    let sim = sim().await;
    let hub = TestHub::start().await;
    let guild = sim.guild_id().to_string();
    let mut child = Command::new(BIN)
        .env_clear()
        .env("DISCORD_BOT_TOKEN", discord_sim::DEFAULT_TOKEN)
        .env("PRIMARY_GUILD_ID", &guild)
        .env("HUB_ENDPOINT", hub.endpoint())
        .env("HUB_SECRET", SECRET)
        .env("DISCORD_GATEWAY_URL", sim.gateway_url())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    sim.wait_for_clients(1, WAIT).await.unwrap();
    assert!(sim.close_all(4004, "Authentication failed.").await >= 1);
    let (status, logs) = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let mut logs = String::new();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut logs)
                    .unwrap();
                return (status, logs);
            }
            assert!(std::time::Instant::now() < deadline, "no exit after 4004");
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(1), "{logs}");
    assert!(logs.contains("4004"), "{logs}");
    assert!(!logs.contains(discord_sim::DEFAULT_TOKEN));
    assert_eq!(sim.identify_count(), 1, "no retry");
}
