//! A real `redis-server` child on a free loopback port, for the replica tests.
//!
//! Without `redis-server` on `PATH` the tests that need it print a line and pass, unless
//! `CI` or `REQUIRE_REDIS_TESTS` is set: then they fail, so CI cannot skip them silently.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::{WAIT, free_port, wait_until};

/// `redis-server` on `PATH`, if installed.
fn redis_binary() -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("redis-server"))
        .find(|path| path.is_file())
}

/// Whether the Redis tests can run here.
///
/// # Panics
/// When `redis-server` is missing but required (`CI` or `REQUIRE_REDIS_TESTS` set).
pub fn redis_available() -> bool {
    if redis_binary().is_some() {
        return true;
    }
    let required =
        std::env::var_os("CI").is_some() || std::env::var_os("REQUIRE_REDIS_TESTS").is_some();
    assert!(
        !required,
        "redis-server is not installed, and CI or REQUIRE_REDIS_TESTS requires it"
    );
    eprintln!("skipped: redis-server is not installed");
    false
}

/// A `redis-server` without persistence, killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct RedisProcess {
    child: Child,
    port: u16,
}

impl RedisProcess {
    /// Starts one on a free loopback port and waits until it accepts connections.
    ///
    /// # Panics
    /// When it is not installed or does not start in time.
    pub async fn start() -> Self {
        let port = free_port();
        let child = Command::new(redis_binary().expect("redis-server installed"))
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        wait_until("redis-server to accept connections", WAIT, || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(drop)
        })
        .await;
        Self { child, port }
    }

    /// `redis://127.0.0.1:<port>/`, the hub's `REDIS_URL`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
