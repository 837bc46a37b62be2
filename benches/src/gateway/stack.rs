//! The system under test on loopback: discord-sim in-process, `spell-coven-api` (through
//! [`start_hub`]) and `spell-coven-worker` as child processes next to this executable.

use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use discord_sim::{Sim, SimConfig};
use hub_core::auth::TestIssuer;

use crate::load::launch::{HubProcess, Identity, Target, exe_dir, start_hub};

/// How long the worker gets to reach READY in the sim.
const WORKER_READY: Duration = Duration::from_secs(30);

/// `CLIENT_QUEUE_MAX_BYTES` of the hub: its default, 1 MiB.
pub const HUB_QUEUE_BYTES: usize = 1 << 20;

/// The worker's file name.
pub const WORKER_BINARY: &str = "spell-coven-worker";

/// A worker process (killed on drop).
#[derive(Debug)]
pub struct WorkerProcess {
    child: Child,
    log: std::path::PathBuf,
}

impl WorkerProcess {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of its output (it never logs secrets: contract §1).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sim, hub and worker, with the temp dir holding the worker's state file and log.
#[derive(Debug)]
pub struct Stack {
    /// The fake Discord.
    pub sim: Sim,
    /// The hub.
    pub hub: HubProcess,
    /// The worker.
    pub worker: WorkerProcess,
    /// Guild, webhook secret and JWT settings the hub was started with.
    pub id: Identity,
    /// Mints client tokens the hub accepts.
    pub issuer: TestIssuer,
    _dir: tempfile::TempDir,
}

/// The sim as a release run sees it: Discord's own heartbeat interval, no injected latency
/// or faults, the default guild (one category, two voice channels).
pub fn sim_config() -> SimConfig {
    SimConfig::default()
}

impl Stack {
    /// Starts the sim, the hub and the worker (with a `WORKER_STATE_FILE` in a temp dir
    /// when `state_file`), and returns once the worker's session is READY in the sim.
    ///
    /// # Errors
    /// When a binary is missing or a piece does not start in time.
    pub async fn start(state_file: bool) -> Result<Self, String> {
        let sim = Sim::start(sim_config())
            .await
            .map_err(|e| format!("discord-sim: {e}"))?;
        let id = Identity {
            guild_id: sim.guild_id(),
            ..Identity::default()
        };
        let hub_id = id.clone();
        let hub =
            tokio::task::spawn_blocking(move || start_hub(Target::Ours, &hub_id, HUB_QUEUE_BYTES))
                .await
                .map_err(|e| format!("hub start task: {e}"))??;
        let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
        let worker = start_worker(&sim, &hub, &id, &dir, state_file)?;
        if let Err(e) = sim.wait_for_clients(1, WORKER_READY).await {
            return Err(format!(
                "the worker never became ready in the sim: {e}\n{}",
                worker.log_tail()
            ));
        }
        let issuer = TestIssuer::new(&id.issuer_label);
        Ok(Self {
            sim,
            hub,
            worker,
            id,
            issuer,
            _dir: dir,
        })
    }

    /// A valid client token (`sub` = `gwlat-<n>`), an hour long.
    pub fn token(&self, n: usize) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.issuer.token_for(
            &self.id.iss,
            &self.id.aud,
            &format!("gwlat-{n}"),
            now + 3600,
        )
    }
}

fn start_worker(
    sim: &Sim,
    hub: &HubProcess,
    id: &Identity,
    dir: &tempfile::TempDir,
    state_file: bool,
) -> Result<WorkerProcess, String> {
    let bin = exe_dir().join(WORKER_BINARY);
    let log = dir.path().join("worker.log");
    let out = File::create(&log).map_err(|e| format!("worker log: {e}"))?;
    let err = out.try_clone().map_err(|e| format!("worker log: {e}"))?;
    let secret = String::from_utf8(id.secret.clone()).map_err(|_| "secret is not UTF-8")?;
    // The worker's variables (contract §1, worker table): the sim's REST base answers
    // GET /gateway/bot with the sim's gateway URL.
    let state = dir.path().join("worker-state.json");
    let child = Command::new(&bin)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DISCORD_BOT_TOKEN", &sim.config().token)
        .env("PRIMARY_GUILD_ID", sim.guild_id().to_string())
        .env(
            "HUB_ENDPOINT",
            format!("http://{}/internal/events", hub.addr),
        )
        .env("HUB_SECRET", secret)
        .env("DISCORD_API_BASE", sim.api_base())
        .envs(state_file.then_some(("WORKER_STATE_FILE", state)))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e} (build it first)", bin.display()))?;
    Ok(WorkerProcess { child, log })
}
