//! The demo binary without a browser: it prints its dashboard URL, serves the page, its
//! config and state, runs the controls, refuses foreign origins and hosts, survives a hub
//! restart, and exits 0 on SIGINT. Runs everywhere (no node, no chromium).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Kills the demo if the test panics before stopping it.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// One HTTP/1.1 request with `Connection: close`; returns (status, body).
fn request(
    authority: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(authority).expect("connect to the demo");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).expect("send");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read");
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn json(authority: &str, path: &str) -> serde_json::Value {
    let (status, body) = request(authority, "GET", path, &[], "");
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).expect("json")
}

fn control(authority: &str, action: &str, body: &str) -> (u16, String) {
    request(
        authority,
        "POST",
        &format!("/demo/{action}"),
        &[("Content-Type", "application/json")],
        body,
    )
}

/// Polls `/demo/state` until `check` holds (up to 30 s).
fn wait_state(authority: &str, what: &str, check: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = json(authority, "/demo/state");
        if check(&state) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {state}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn worker_connected(state: &serde_json::Value) -> bool {
    state["worker"]["state"] == "connected" && state["hubUp"] == true
}

#[test]
fn demo_serves_controls_and_stops_cleanly() {
    let mut demo = Demo(
        Command::new(env!("CARGO_BIN_EXE_spell-coven-demo"))
            .args(["--port", "0", "--hub-port", "0", "--heartbeat-ms", "1000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the demo"),
    );
    let stdout = demo.0.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("dashboard: ") {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the demo prints its dashboard url");
    let authority = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    assert!(authority.starts_with("127.0.0.1:"), "{url}");

    let (status, page) = request(&authority, "GET", "/", &[], "");
    assert_eq!(status, 200);
    assert!(page.contains("dashboard.js"));
    assert_eq!(request(&authority, "GET", "/../Cargo.toml", &[], "").0, 404);

    let config = json(&authority, "/demo/config.json");
    assert!(
        config["wsUrl"]
            .as_str()
            .is_some_and(|u| u.starts_with("ws://127.0.0.1:"))
    );
    assert_eq!(
        config["token"].as_str().map(|t| t.split('.').count()),
        Some(3)
    );

    wait_state(&authority, "the worker to connect", worker_connected);

    // A user joins "Game Room" in the sim; the truth shows it.
    let (status, body) = control(
        &authority,
        "join",
        r#"{"userId":"103","channelId":"1200000000000000012"}"#,
    );
    assert_eq!(status, 200, "{body}");
    wait_state(&authority, "user 103 in voice", |s| {
        s["voiceStates"]
            .as_array()
            .is_some_and(|v| v.iter().any(|v| v["userId"] == "103"))
    });
    // Errors are JSON with a message; bad input is 400, a refused action 409.
    assert_eq!(control(&authority, "leave", r#"{"userId":"999"}"#).0, 409);
    assert_eq!(control(&authority, "leave", r#"{"userId":"x"}"#).0, 400);
    assert_eq!(control(&authority, "nope", "{}").0, 404);

    // Another site cannot drive the demo or read its token.
    let foreign = request(
        &authority,
        "POST",
        "/demo/fault/drop-gateway",
        &[
            ("Content-Type", "application/json"),
            ("Origin", "http://evil.example"),
        ],
        "{}",
    );
    assert_eq!(foreign.0, 403);
    let form = request(
        &authority,
        "POST",
        "/demo/leave",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "userId=103",
    );
    assert_eq!(form.0, 403);
    let mut stream = TcpStream::connect(&authority).expect("connect");
    stream
        .write_all(
            b"GET /demo/config.json HTTP/1.1\r\nHost: rebound.example\r\nConnection: close\r\n\r\n",
        )
        .expect("send");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read");
    assert!(raw.starts_with("HTTP/1.1 421"), "{raw}");
    assert!(!raw.contains("token"));

    // Faults: the worker comes back each time.
    for (action, body) in [
        ("fault/drop-gateway", "{}"),
        ("fault/reconnect", "{}"),
        ("fault/invalid-session", r#"{"resumable":true}"#),
        ("fault/invalid-session", r#"{"resumable":false}"#),
        ("fault/heartbeat-ack", r#"{"enabled":false}"#),
        ("fault/heartbeat-ack", r#"{"enabled":true}"#),
        ("fault/hub-restart", "{}"),
    ] {
        let (status, body) = control(&authority, action, body);
        assert_eq!(status, 200, "{action}: {body}");
        wait_state(&authority, "the worker to reconnect", worker_connected);
    }

    let pid = demo.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .is_ok_and(|s| s.success())
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = demo.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not stop within 30 s of SIGINT"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "exit status {status}");
}
