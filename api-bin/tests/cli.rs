//! The `spell-coven-api` binary: `--help`, `--version`, exit 2 on bad configuration, JSON
//! logs without secrets, and SIGTERM -> graceful exit 0.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hub_core::auth::TestIssuer;

const BIN: &str = env!("CARGO_BIN_EXE_spell-coven-api");
const SECRET: &str = "cli-test-hub-secret-0123456789abcdefgh";
const TOKEN: &str = "cli-test-bot-token";

fn base_env(cmd: &mut Command, jwks: &std::path::Path, data: &std::path::Path) {
    cmd.env_clear()
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("PRIMARY_GUILD_ID", "81384788765712384")
        .env("HUB_SECRET", SECRET)
        .env("DISCORD_BOT_TOKEN", TOKEN)
        .env("DISCORD_API_BASE", "http://127.0.0.1:9/api/v10")
        .env("JWT_ISSUER", "https://app.example")
        .env("JWT_AUDIENCE", "spell-coven")
        .env("JWT_PUBLIC_JWKS_FILE", jwks)
        .env("DATA_DIR", data)
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "debug");
}

#[test]
fn help_lists_every_variable_and_version_prints() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for v in hub_core::config::VARIABLES {
        assert!(text.contains(v.name), "{}", v.name);
    }
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("spell-coven-api "));
}

#[test]
fn bad_configuration_exits_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "PRIMARY_GUILD_ID",
            "12ab",
            "PRIMARY_GUILD_ID: must be a Discord snowflake (digits only)",
        ),
        (
            "HUB_SECRET",
            "short",
            "HUB_SECRET: must be at least 32 bytes long",
        ),
        (
            "PORT",
            "99999",
            "PORT: must be a whole number from 0 to 65535",
        ),
    ];
    for (name, value, want) in cases {
        let mut cmd = Command::new(BIN);
        base_env(&mut cmd, &dir.path().join("jwks.json"), dir.path());
        let out = cmd.env(name, value).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end(), want);
        assert_eq!(stderr.lines().count(), 1);
        assert!(!stderr.contains(SECRET) && !stderr.contains(TOKEN));
    }
    // A JWKS file that does not exist is an invalid value too.
    let mut cmd = Command::new(BIN);
    base_env(&mut cmd, &dir.path().join("missing.json"), dir.path());
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .last()
            .unwrap_or_default()
            .starts_with("JWT_PUBLIC_JWKS_FILE: "),
        "{stderr}"
    );
    let mut cmd = Command::new(BIN);
    base_env(&mut cmd, &dir.path().join("jwks.json"), dir.path());
    let out = cmd.env_remove("DISCORD_BOT_TOKEN").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "DISCORD_BOT_TOKEN: is required"
    );
}

#[test]
fn sigterm_shuts_down_cleanly_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, TestIssuer::jwks(&[&TestIssuer::new("k")])).unwrap();
    let data = dir.path().join("data");
    let mut cmd = Command::new(BIN);
    base_env(&mut cmd, &jwks, &data);
    let mut child = cmd
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Wait for the "listening" line and read the bound address from it.
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("hub starts");
        let json: serde_json::Value = serde_json::from_str(&line).expect("json log line");
        lines.push(line);
        if json["fields"]["message"] == "hub listening" {
            break json["fields"]["addr"].as_str().unwrap().to_owned();
        }
    };
    // It serves.
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    std::io::Write::write_all(
        &mut stream,
        b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let started = Instant::now();
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "exits after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(exit.code(), Some(0));
    lines.extend(rx.try_iter());
    for line in &lines {
        assert!(
            !line.contains(SECRET) && !line.contains(TOKEN),
            "secret in a log line: {line}"
        );
    }
    // The registry was persisted on the way out.
    assert!(data.join("rooms.json").exists());
}
