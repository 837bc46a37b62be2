//! The real binary with `REDIS_URL` and a real `redis-server`: it starts (no longer exits 2),
//! reports Redis in `/health`, and what one replica accepted survives its `kill -9` (the
//! other replica sees the webhook id as a duplicate). Skipped with a message when
//! `redis-server` is not installed, unless `CI` or `REQUIRE_REDIS_TESTS` is set.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hub_core::auth::{TestIssuer, sign_webhook};

const BIN: &str = env!("CARGO_BIN_EXE_spell-coven-api");
const SECRET: &str = "redis-bin-test-hub-secret-0123456789ab";
const GUILD: &str = "81384788765712384";
const WAIT: Duration = Duration::from_secs(20);

fn redis_binary() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    l.local_addr().expect("addr").port()
}

fn start_redis(port: u16, dir: &std::path::Path) -> Killed {
    let bin = redis_binary().expect("redis-server");
    let child = Command::new(bin)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "no", "--dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts");
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
            let mut buf = [0u8; 8];
            if s.write_all(b"PING\r\n").is_ok()
                && s.read(&mut buf)
                    .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
            {
                break;
            }
        }
        assert!(Instant::now() < deadline, "redis-server answers PING");
        std::thread::sleep(Duration::from_millis(50));
    }
    Killed(child)
}

/// Starts the binary; returns it with its listening address.
fn start_hub(redis_port: u16, dir: &std::path::Path, name: &str) -> (Killed, String) {
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, TestIssuer::jwks(&[&TestIssuer::new("k")])).expect("jwks");
    let mut child = Command::new(BIN)
        .env_clear()
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("PRIMARY_GUILD_ID", GUILD)
        .env("HUB_SECRET", SECRET)
        .env("DISCORD_BOT_TOKEN", "redis-bin-test-token")
        .env("DISCORD_API_BASE", "http://127.0.0.1:9/api/v10")
        .env("JWT_ISSUER", "https://app.example")
        .env("JWT_AUDIENCE", "spell-coven")
        .env("JWT_PUBLIC_JWKS_FILE", &jwks)
        .env("DATA_DIR", dir.join(name))
        .env("REDIS_URL", format!("redis://127.0.0.1:{redis_port}/"))
        .env("LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("binary starts");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + WAIT;
    let addr = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("hub starts");
        let json: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if json["fields"]["message"] == "hub listening" {
            break json["fields"]["addr"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
        }
    };
    (Killed(child), addr)
}

fn request(addr: &str, head: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let _ = stream.set_read_timeout(Some(WAIT));
    let req = format!(
        "{head}\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).expect("write");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

fn webhook(addr: &str, body: &str, ts: i64) -> String {
    let sig = sign_webhook(SECRET.as_bytes(), ts, body.as_bytes());
    request(
        addr,
        &format!(
            "POST /internal/events HTTP/1.1\r\nContent-Type: application/json\r\n\
             X-Hub-Timestamp: {ts}\r\nX-Hub-Signature: {sig}"
        ),
        body,
    )
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[test]
fn replicas_share_state_through_redis_and_survive_kill_9() {
    if redis_binary().is_none() {
        assert!(
            std::env::var_os("CI").is_none() && std::env::var_os("REQUIRE_REDIS_TESTS").is_none(),
            "redis-server not installed (required: CI or REQUIRE_REDIS_TESTS is set)"
        );
        eprintln!("skipped: redis-server not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let redis_port = free_port();
    let mut redis = start_redis(redis_port, dir.path());
    let (a, a_addr) = start_hub(redis_port, dir.path(), "a");
    let (_b, b_addr) = start_hub(redis_port, dir.path(), "b");
    assert!(request(&a_addr, "GET /health HTTP/1.1", "").starts_with("HTTP/1.1 200"));

    let body = format!(
        r#"{{"id":"kill-1","event":"voice.joined","payload":{{"guildId":"{GUILD}","channelId":"10","userId":"1"}}}}"#
    );
    let first = webhook(&a_addr, &body, now());
    assert!(
        first.starts_with("HTTP/1.1 200") && !first.contains("duplicate"),
        "{first}"
    );
    drop(a); // SIGKILL: no shutdown code runs
    let again = webhook(&b_addr, &body, now() + 1);
    assert!(
        again.starts_with("HTTP/1.1 200") && again.contains("\"duplicate\":true"),
        "{again}"
    );

    // Redis gone: /health says so and webhooks are refused (the worker retries).
    drop(std::mem::replace(
        &mut redis,
        Killed(Command::new("true").spawn().expect("true")),
    ));
    let health = request(&b_addr, "GET /health HTTP/1.1", "");
    assert!(
        health.starts_with("HTTP/1.1 503") && health.contains("redis unreachable"),
        "{health}"
    );
    let refused = webhook(&b_addr, &body.replace("kill-1", "kill-2"), now());
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
}
