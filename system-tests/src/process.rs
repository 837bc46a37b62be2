//! The real binaries as child processes: built once per test run, started with their
//! environment, killed (SIGKILL) on demand and on drop.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use crate::{HUB_SECRET, WAIT, wait_until};

/// Paths of the two binaries under test.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `spell-coven-api`.
    pub api: PathBuf,
    /// `spell-coven-worker`.
    pub worker: PathBuf,
}

/// Builds `spell-coven-api` and `spell-coven-worker` (once per test process) into the
/// workspace target directory and returns their paths. `cargo test -p system-tests` does not
/// build other packages' binaries, and a stale binary would test old code, so this asks
/// cargo (a no-op when they are fresh).
///
/// # Panics
/// When cargo cannot build them.
pub fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root")
            .to_path_buf();
        // The test executable lives in <target>/<profile>/deps/.
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target profile dir")
            .to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut build = Command::new(cargo);
        build.current_dir(&workspace).args([
            "build",
            "-q",
            "-p",
            "api-bin",
            "-p",
            "worker-bin",
            "--bins",
        ]);
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "building the binaries failed");
        Binaries {
            api: profile_dir.join("spell-coven-api"),
            worker: profile_dir.join("spell-coven-worker"),
        }
    })
}

fn spawn(program: &Path, env: &[(String, String)], log: &Path) -> Child {
    let out = File::create(log).expect("log file");
    let err = out.try_clone().expect("log file");
    Command::new(program)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn binary")
}

/// Resident set size of a process in KiB (`VmRSS` in `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// How to run a hub.
#[derive(Debug, Clone)]
pub struct HubSetup {
    /// Loopback port (fixed, so a restarted hub is found at the same address).
    pub port: u16,
    /// `PRIMARY_GUILD_ID`.
    pub guild_id: u64,
    /// `DISCORD_API_BASE`.
    pub discord_api_base: String,
    /// `DATA_DIR`.
    pub data_dir: PathBuf,
    /// `("JWT_PUBLIC_JWKS_FILE" | "JWT_PUBLIC_JWK_URL", value)`.
    pub jwks: (String, String),
    /// Extra variables.
    pub extra: Vec<(String, String)>,
    /// Where the process's output goes (appended per start).
    pub log_dir: PathBuf,
}

/// A running `spell-coven-api`.
#[derive(Debug)]
pub struct HubProcess {
    setup: HubSetup,
    child: Option<Child>,
    starts: u32,
}

impl HubProcess {
    /// Starts the hub and waits until `GET /health` answers 200.
    pub async fn start(setup: HubSetup) -> Self {
        let mut hub = Self {
            setup,
            child: None,
            starts: 0,
        };
        hub.restart().await;
        hub
    }

    /// Starts it (again) with the same setup and waits for health.
    ///
    /// # Panics
    /// When it does not become healthy in time.
    pub async fn restart(&mut self) {
        self.kill9();
        self.starts += 1;
        let s = &self.setup;
        let mut env: Vec<(String, String)> = vec![
            ("HOST".into(), "127.0.0.1".into()),
            ("PORT".into(), s.port.to_string()),
            ("PRIMARY_GUILD_ID".into(), s.guild_id.to_string()),
            ("HUB_SECRET".into(), HUB_SECRET.into()),
            (
                "DISCORD_BOT_TOKEN".into(),
                discord_sim::DEFAULT_TOKEN.into(),
            ),
            ("DISCORD_API_BASE".into(), s.discord_api_base.clone()),
            ("JWT_ISSUER".into(), crate::ISSUER.into()),
            ("JWT_AUDIENCE".into(), crate::AUDIENCE.into()),
            ("DATA_DIR".into(), s.data_dir.display().to_string()),
            s.jwks.clone(),
        ];
        env.extend(s.extra.iter().cloned());
        let log = s.log_dir.join(format!("hub-{}.log", self.starts));
        let api = &binaries().api;
        self.child = Some(spawn(api, &env, &log));
        let url = format!("{}/health", self.base_url());
        wait_until("the hub to answer /health", WAIT, || {
            let url = url.clone();
            async move { (crate::client::http_get_status(&url).await == Some(200)).then_some(()) }
        })
        .await;
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.setup.port)
    }

    /// `ws://127.0.0.1:<port>/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.setup.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.setup.port
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL and reap (no graceful shutdown).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The output of the latest start.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.setup.log_dir.join(format!("hub-{}.log", self.starts)))
            .unwrap_or_default()
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A running `spell-coven-worker`.
#[derive(Debug)]
pub struct WorkerProcess {
    env: Vec<(String, String)>,
    log_dir: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl WorkerProcess {
    /// Starts a worker against the sim, forwarding to `hub_endpoint`, persisting its session
    /// to `state_file`.
    pub fn start(
        sim: &discord_sim::Sim,
        hub_endpoint: &str,
        state_file: &Path,
        log_dir: &Path,
    ) -> Self {
        let env = vec![
            (
                "DISCORD_BOT_TOKEN".into(),
                discord_sim::DEFAULT_TOKEN.into(),
            ),
            ("PRIMARY_GUILD_ID".into(), sim.guild_id().to_string()),
            ("HUB_ENDPOINT".into(), hub_endpoint.to_owned()),
            ("HUB_SECRET".into(), HUB_SECRET.into()),
            ("DISCORD_API_BASE".into(), sim.api_base().to_owned()),
            ("WORKER_STATE_FILE".into(), state_file.display().to_string()),
        ];
        let mut worker = Self {
            env,
            log_dir: log_dir.to_path_buf(),
            child: None,
            starts: 0,
        };
        worker.restart();
        worker
    }

    /// Starts it (again) with the same environment.
    pub fn restart(&mut self) {
        self.kill9();
        self.starts += 1;
        let log = self.log_dir.join(format!("worker-{}.log", self.starts));
        self.child = Some(spawn(&binaries().worker, &self.env, &log));
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process has exited (reaping it).
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    /// The output of the latest start.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_dir.join(format!("worker-{}.log", self.starts)))
            .unwrap_or_default()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}
