//! A throwaway `redis-server` for the multi-replica runs (issue 10): the tool starts one on a
//! free loopback port, without persistence (`--save "" --appendonly no`), and kills it on
//! drop. Every replica of a run gets its `redis://127.0.0.1:PORT/` as `REDIS_URL`.

use std::ffi::OsStr;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::launch::free_port;

/// Longest wait for a fresh `redis-server` to answer `PING` (the machine is small and shared).
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// What the operator reads when the server is missing.
pub const MISSING: &str =
    "redis-server not found on PATH: install redis-server (Debian package) for --replicas";

/// A `redis-server` child on 127.0.0.1 (killed on drop).
#[derive(Debug)]
pub struct RedisProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl RedisProcess {
    /// Its process id (for its `/proc` CPU and memory figures).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The `REDIS_URL` the replicas use.
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first `redis-server` file in the directories of `path` (a `PATH`-style list).
pub fn find_in(path: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
}

/// Whether `addr` answers `PING` with `+PONG`.
fn pong(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 16];
    s.write_all(b"PING\r\n").is_ok()
        && s.read(&mut buf)
            .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
}

/// Starts `redis-server` (found on `PATH`) on a free loopback port and waits until it
/// answers `PING`.
///
/// # Errors
/// When `redis-server` is not on `PATH` ([`MISSING`]), cannot start, exits, or does not answer
/// within 20 s.
pub fn start_redis() -> Result<RedisProcess, String> {
    let bin = std::env::var_os("PATH")
        .as_deref()
        .and_then(find_in)
        .ok_or_else(|| MISSING.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let port = free_port()?;
    let mut child = Command::new(&bin)
        .arg("--port")
        .arg(port.to_string())
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--loglevel", "warning"])
        .arg("--dir")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + START_TIMEOUT;
    while !pong(addr) {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("redis-server exited early: {status}"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("redis-server did not answer PING within 20 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(RedisProcess {
        child,
        addr,
        _dir: dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_is_named() {
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(find_in(empty.path().as_os_str()), None);
        assert!(MISSING.contains("install redis-server (Debian package)"));
    }

    #[test]
    fn starts_answers_and_dies_with_its_handle() {
        if std::env::var_os("PATH")
            .as_deref()
            .and_then(find_in)
            .is_none()
        {
            eprintln!("skipped: redis-server not installed");
            return;
        }
        let redis = start_redis().unwrap();
        let addr = redis.addr;
        assert!(addr.ip().is_loopback());
        assert!(pong(addr));
        assert_eq!(redis.url(), format!("redis://127.0.0.1:{}/", addr.port()));
        drop(redis);
        assert!(!pong(addr));
    }
}
