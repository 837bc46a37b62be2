//! Starting the hub under test and the tool's client processes.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command as Process, Stdio};
use std::time::{Duration, Instant};

use hub_core::auth::TestIssuer;
use tokio::sync::mpsc;

use super::wire::{Command, Reply, WorkerSpec};

/// Which hub a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `spell-coven-api`.
    Ours,
    /// `naive-hub`, the tutorial-style yardstick.
    Baseline,
}

impl Target {
    /// The binary's file name.
    pub fn binary(self) -> &'static str {
        match self {
            Self::Ours => "spell-coven-api",
            Self::Baseline => "naive-hub",
        }
    }

    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ours => "ours",
            Self::Baseline => "baseline",
        }
    }
}

/// The file name of `target`'s binary: for ours, `FANOUT_HUB_BIN` may name another build of
/// the hub next to this executable (e.g. `hub-profile`, which also gets the `PROFILE_*`
/// variables).
fn hub_binary(target: Target) -> String {
    match (target, std::env::var("FANOUT_HUB_BIN")) {
        (Target::Ours, Ok(name)) if !name.is_empty() && !name.contains('/') => name,
        _ => target.binary().to_owned(),
    }
}

/// Refuses anything but a loopback address (127.0.0.0/8 or ::1): this tool floods its target.
///
/// # Errors
/// When `addr` does not parse as `ip:port` or is not loopback.
pub fn parse_loopback(addr: &str) -> Result<SocketAddr, String> {
    let parsed: SocketAddr = addr
        .parse()
        .map_err(|_| format!("`{addr}` is not an ip:port address"))?;
    let loopback = match parsed.ip() {
        IpAddr::V4(ip) => ip.octets()[0] == 127,
        IpAddr::V6(ip) => ip.is_loopback(),
    };
    if loopback {
        Ok(parsed)
    } else {
        Err(format!(
            "refusing non-loopback target {parsed}: only 127.0.0.0/8 or ::1"
        ))
    }
}

/// The JWT / webhook settings shared by the hub and the clients.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Guild id.
    pub guild_id: u64,
    /// Webhook HMAC key.
    pub secret: Vec<u8>,
    /// Token issuer key label.
    pub issuer_label: String,
    /// `iss`.
    pub iss: String,
    /// `aud`.
    pub aud: String,
}

impl Default for Identity {
    fn default() -> Self {
        Self {
            guild_id: 4_242_424_242,
            secret: b"fanout-load-test-secret-0123456789abcdef".to_vec(),
            issuer_label: "fanout-load-key".into(),
            iss: "https://load.invalid".into(),
            aud: "spell-coven".into(),
        }
    }
}

/// A hub process started by the tool (killed on drop).
#[derive(Debug)]
pub struct HubProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its `/metrics` listener (our hub only).
    pub metrics: Option<SocketAddr>,
    _dir: tempfile::TempDir,
}

impl HubProcess {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `program` through `sh` after raising the soft fd limit to the hard one (the safe
/// way to call `setrlimit` without `unsafe` here); `exec` keeps the pid.
fn with_raised_fd_limit(program: &Path) -> Process {
    let mut p = Process::new("sh");
    p.arg("-c")
        .arg("ulimit -n \"$(ulimit -Hn)\" 2>/dev/null; exec \"$0\" \"$@\"")
        .arg(program);
    p
}

/// The directory of the running executable (where cargo puts the sibling binaries).
pub fn exe_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A free loopback port (bound, read back, released).
pub(crate) fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("free port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("free port: {e}"))
}

/// Starts `target`'s binary (next to this executable) on a free loopback port and waits
/// until it accepts connections.
///
/// # Errors
/// When the binary is missing, exits, or does not listen within 30 s.
pub fn start_hub(target: Target, id: &Identity, queue_bytes: usize) -> Result<HubProcess, String> {
    start_hub_with(target, id, queue_bytes, None)
}

/// Starts `replicas` of our hub sharing `redis_url` (issue 10): the same JWKS, secret and
/// guild, each with its own port, `DATA_DIR` and `METRICS_ADDR`. Replica 0 comes first.
///
/// # Errors
/// As [`start_hub`], for any replica (the ones already started are stopped).
pub fn start_replicas(
    id: &Identity,
    queue_bytes: usize,
    redis_url: &str,
    replicas: usize,
) -> Result<Vec<HubProcess>, String> {
    (0..replicas)
        .map(|i| {
            start_hub_with(Target::Ours, id, queue_bytes, Some(redis_url))
                .map_err(|e| format!("replica {i}: {e}"))
        })
        .collect()
}

/// [`start_hub`], with `REDIS_URL` set when `redis_url` is given.
///
/// # Errors
/// As [`start_hub`].
pub fn start_hub_with(
    target: Target,
    id: &Identity,
    queue_bytes: usize,
    redis_url: Option<&str>,
) -> Result<HubProcess, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let jwks = dir.path().join("jwks.json");
    let issuer = TestIssuer::new(&id.issuer_label);
    std::fs::write(&jwks, TestIssuer::jwks(&[&issuer])).map_err(|e| format!("jwks: {e}"))?;
    let port = free_port()?;
    let metrics = match target {
        Target::Ours => Some(SocketAddr::from(([127, 0, 0, 1], free_port()?))),
        Target::Baseline => None,
    };
    let bin = exe_dir().join(hub_binary(target));
    let secret = String::from_utf8(id.secret.clone()).map_err(|_| "secret is not UTF-8")?;
    let mut child = with_raised_fd_limit(&bin)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("PRIMARY_GUILD_ID", id.guild_id.to_string())
        .env("HUB_SECRET", secret)
        .env("DISCORD_BOT_TOKEN", "load-test-not-a-token")
        .env("DISCORD_API_BASE", "http://127.0.0.1:9/api/v10")
        .env("JWT_ISSUER", &id.iss)
        .env("JWT_AUDIENCE", &id.aud)
        .env("JWT_PUBLIC_JWKS_FILE", &jwks)
        .env("DATA_DIR", dir.path().join("data"))
        .env("CLIENT_QUEUE_MAX_BYTES", queue_bytes.to_string())
        .env("RUST_LOG", "error")
        .envs(metrics.map(|m| ("METRICS_ADDR", m.to_string())))
        .envs(redis_url.map(|u| ("REDIS_URL", u)))
        .envs(std::env::vars_os().filter(|(k, _)| k.to_string_lossy().starts_with("PROFILE_")))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e} (build it first)", bin.display()))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{} exited early: {status}", target.binary()));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!("{} did not listen within 30 s", target.binary()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(HubProcess {
        child,
        addr,
        metrics,
        _dir: dir,
    })
}

/// A counter from a Prometheus text endpoint (`GET /metrics`), summed over its labels.
pub fn scrape_counter(metrics: SocketAddr, name: &str) -> Option<u64> {
    use std::io::Read as _;
    let mut s = std::net::TcpStream::connect_timeout(&metrics, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {metrics}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let values: Vec<u64> = text
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// One client process of the tool.
#[derive(Debug)]
pub struct WorkerProcess {
    child: Child,
    stdin: ChildStdin,
    replies: mpsc::Receiver<Reply>,
}

impl WorkerProcess {
    /// Starts this executable as a client process (`fanout __worker <spec json>`).
    ///
    /// # Errors
    /// When the process cannot start.
    pub fn spawn(spec: &WorkerSpec) -> Result<Self, String> {
        let spec = serde_json::to_string(spec).map_err(|e| format!("spec: {e}"))?;
        let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
        let mut child = with_raised_fd_limit(&exe)
            .arg("__worker")
            .arg(spec)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start a client process: {e}"))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return Err("client process without pipes".into());
        };
        let (tx, replies) = mpsc::channel(16);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Reply>(&line) {
                    Ok(r) => {
                        if tx.blocking_send(r).is_err() {
                            break;
                        }
                    }
                    Err(e) => eprintln!("fanout: bad reply from a client process: {e}"),
                }
            }
        });
        Ok(Self {
            child,
            stdin,
            replies,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a command.
    ///
    /// # Errors
    /// When the process is gone.
    pub fn send(&mut self, cmd: &Command) -> Result<(), String> {
        let line = serde_json::to_string(cmd).map_err(|e| format!("command: {e}"))?;
        writeln!(self.stdin, "{line}")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("client process gone: {e}"))
    }

    /// The next reply, within `timeout`.
    ///
    /// # Errors
    /// On timeout or when the process is gone.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Reply, String> {
        match tokio::time::timeout(timeout, self.replies.recv()).await {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err("client process exited".into()),
            Err(_) => Err("client process did not answer in time".into()),
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.send(&Command::Exit);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets() {
        assert!(parse_loopback("127.0.0.1:3000").is_ok());
        assert!(parse_loopback("127.8.9.10:1").is_ok());
        assert!(parse_loopback("[::1]:3000").is_ok());
        assert!(parse_loopback("10.0.0.1:3000").is_err());
        assert!(parse_loopback("0.0.0.0:3000").is_err());
        assert!(parse_loopback("[::]:3000").is_err());
        assert!(parse_loopback("[::ffff:127.0.0.1]:3000").is_err());
        assert!(parse_loopback("localhost:3000").is_err());
        assert!(parse_loopback("example.com:80").is_err());
    }
}
