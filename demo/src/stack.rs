//! The three services in one process: discord-sim, the hub and the worker, wired on
//! loopback, plus the one thing a single process makes easy: restarting the hub.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use discord_sim::{
    DEFAULT_CATEGORY_ID, DEFAULT_VOICE_1_ID, SessionStartLimit, Sim, SimConfig, VoiceStateSpec,
};
use hub_core::ServerHandle;
use tokio::sync::{Mutex, oneshot};
use tokio::task::JoinHandle;

use crate::keys::{AUDIENCE, DemoKeys, ISSUER};

/// How to start the stack.
#[derive(Debug, Clone)]
pub(crate) struct StackOptions {
    /// The hub's port on 127.0.0.1 (0: the OS chooses, kept across hub restarts).
    pub(crate) hub_port: u16,
    /// The dashboard's origin, allowed by the hub's CORS and WebSocket `Origin` check.
    pub(crate) dashboard_origin: String,
    /// The sim's heartbeat interval.
    pub(crate) heartbeat: Duration,
}

/// Why the stack could not start or restart.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum StackError {
    /// A temporary directory could not be made or written.
    Io(std::io::Error),
    /// discord-sim did not start.
    Sim(discord_sim::SimError),
    /// The hub's configuration was refused.
    HubConfig(hub_core::ConfigError),
    /// The hub did not start.
    Hub(hub_core::StartError),
    /// The worker's configuration was refused.
    WorkerConfig(worker::ConfigError),
    /// A hub restart is already running.
    Busy,
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "temporary files: {e}"),
            Self::Sim(e) => write!(f, "discord-sim did not start: {e}"),
            Self::HubConfig(e) => write!(f, "hub configuration: {e}"),
            Self::Hub(e) => write!(f, "the hub did not start: {e}"),
            Self::WorkerConfig(e) => write!(f, "worker configuration: {e}"),
            Self::Busy => f.write_str("a hub restart is already in progress"),
        }
    }
}

impl std::error::Error for StackError {}

/// Simulated users in "General" when the demo starts, so the first snapshot is not empty.
pub(crate) const SEEDED_USERS: [u64; 2] = [101, 102];

/// The running services.
pub(crate) struct Stack {
    sim: Arc<Sim>,
    hub: Mutex<Option<ServerHandle>>,
    hub_vars: Vec<(String, String)>,
    hub_addr: SocketAddr,
    keys: DemoKeys,
    telemetry: worker::Telemetry,
    worker_stop: std::sync::Mutex<Option<oneshot::Sender<()>>>,
    worker_task: std::sync::Mutex<Option<JoinHandle<Result<(), worker::RunError>>>>,
    // Keeps DATA_DIR and the JWKS file alive until the stack is dropped.
    _dir: tempfile::TempDir,
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("hub_addr", &self.hub_addr)
            .finish_non_exhaustive()
    }
}

impl Stack {
    /// Starts the sim, the hub, then the worker.
    ///
    /// # Errors
    /// Any of the three could not start.
    pub(crate) async fn start(options: StackOptions) -> Result<Self, StackError> {
        let keys = DemoKeys::generate().map_err(|e| StackError::Io(std::io::Error::other(e)))?;
        let dir = tempfile::Builder::new()
            .prefix("spell-coven-demo-")
            .tempdir()
            .map_err(StackError::Io)?;
        let jwks_path = dir.path().join("jwks.json");
        std::fs::write(&jwks_path, keys.jwks()).map_err(StackError::Io)?;
        let data_dir: PathBuf = dir.path().join("data");
        std::fs::create_dir_all(&data_dir).map_err(StackError::Io)?;

        let sim = Arc::new(
            Sim::start(SimConfig {
                heartbeat_interval: options.heartbeat,
                voice_states: SEEDED_USERS
                    .iter()
                    .map(|&user_id| VoiceStateSpec {
                        user_id,
                        channel_id: DEFAULT_VOICE_1_ID,
                    })
                    .collect(),
                // The fault buttons make the worker identify again quickly; Discord's
                // max_concurrency of 1 per 5 s would answer op 9 to a fast clicker.
                session_start_limit: SessionStartLimit {
                    max_concurrency: 16,
                    ..SessionStartLimit::default()
                },
                ..SimConfig::default()
            })
            .await
            .map_err(StackError::Sim)?,
        );

        let mut hub_vars: Vec<(String, String)> = [
            ("HOST", "127.0.0.1".to_owned()),
            ("PORT", options.hub_port.to_string()),
            ("PRIMARY_GUILD_ID", sim.guild_id().to_string()),
            ("HUB_SECRET", keys.hub_secret().to_owned()),
            ("DISCORD_BOT_TOKEN", sim.config().token.clone()),
            ("DISCORD_API_BASE", sim.api_base().to_owned()),
            ("JWT_ISSUER", ISSUER.to_owned()),
            ("JWT_AUDIENCE", AUDIENCE.to_owned()),
            ("JWT_PUBLIC_JWKS_FILE", jwks_path.display().to_string()),
            ("CORS_ORIGINS", options.dashboard_origin.clone()),
            ("DATA_DIR", data_dir.display().to_string()),
            ("ROOM_PARENT_ID", DEFAULT_CATEGORY_ID.to_string()),
            ("ROOM_CREATE_PER_MINUTE", "60".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let hub = start_hub(&hub_vars).await?;
        let hub_addr = hub.local_addr();
        // A restart binds the same port, so clients find the hub where they left it.
        for (k, v) in &mut hub_vars {
            if k == "PORT" {
                *v = hub_addr.port().to_string();
            }
        }

        let endpoint = format!("http://{hub_addr}/internal/events");
        let guild = sim.guild_id().to_string();
        let worker_config = worker::Config::from_pairs([
            ("DISCORD_BOT_TOKEN", sim.config().token.as_str()),
            ("PRIMARY_GUILD_ID", guild.as_str()),
            ("HUB_ENDPOINT", endpoint.as_str()),
            ("HUB_SECRET", keys.hub_secret()),
            ("DISCORD_API_BASE", sim.api_base()),
        ])
        .map_err(StackError::WorkerConfig)?;
        let tuning = worker::Tuning {
            gateway_backoff: (Duration::from_millis(500), Duration::from_secs(10)),
            ..worker::Tuning::default()
        };
        let telemetry = worker::Telemetry::default();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(worker::run(
            worker_config,
            tuning,
            telemetry.clone(),
            async move {
                let _ = stop_rx.await;
            },
        ));

        Ok(Self {
            sim,
            hub: Mutex::new(Some(hub)),
            hub_vars,
            hub_addr,
            keys,
            telemetry,
            worker_stop: std::sync::Mutex::new(Some(stop_tx)),
            worker_task: std::sync::Mutex::new(Some(task)),
            _dir: dir,
        })
    }

    /// The simulated Discord.
    pub(crate) fn sim(&self) -> &Sim {
        &self.sim
    }

    /// The hub's address (the same across restarts).
    pub(crate) fn hub_addr(&self) -> SocketAddr {
        self.hub_addr
    }

    /// The generated secrets (to mint dashboard tokens).
    pub(crate) fn keys(&self) -> &DemoKeys {
        &self.keys
    }

    /// The worker's health JSON (gateway state, seq, outbox depth).
    pub(crate) fn worker_health(&self) -> serde_json::Value {
        serde_json::from_str(&self.telemetry.health_json()).unwrap_or(serde_json::Value::Null)
    }

    /// Whether the in-process hub is currently up.
    pub(crate) fn hub_up(&self) -> bool {
        self.hub.try_lock().map(|h| h.is_some()).unwrap_or(false)
    }

    /// Shuts the hub down (its WebSocket clients get 1001) and starts it again on the same
    /// port and `DATA_DIR`, as a deploy would.
    ///
    /// # Errors
    /// A restart is already running, or the new hub did not start (the old one is gone
    /// then; another restart may be tried).
    pub(crate) async fn restart_hub(&self) -> Result<(), StackError> {
        let mut slot = self.hub.try_lock().map_err(|_| StackError::Busy)?;
        if let Some(old) = slot.take() {
            old.shutdown().await;
        }
        *slot = Some(start_hub(&self.hub_vars).await?);
        Ok(())
    }

    /// Stops the worker (it flushes to the hub), then the hub, then the sim.
    pub(crate) async fn shutdown(self) {
        let stop = self.worker_stop.lock().ok().and_then(|mut s| s.take());
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        let task = self.worker_task.lock().ok().and_then(|mut t| t.take());
        if let Some(mut task) = task {
            match tokio::time::timeout(Duration::from_secs(10), &mut task).await {
                Ok(Ok(Ok(()))) => tracing::info!("worker stopped"),
                Ok(Ok(Err(e))) => tracing::error!(error = %e, "worker ended with an error"),
                Ok(Err(e)) => tracing::error!(error = %e, "worker task failed"),
                Err(_) => {
                    tracing::warn!("worker did not stop within 10 s");
                    task.abort();
                }
            }
        }
        if let Some(hub) = self.hub.lock().await.take() {
            hub.shutdown().await;
        }
        match Arc::try_unwrap(self.sim) {
            Ok(sim) => sim.shutdown().await,
            Err(sim) => drop(sim),
        }
    }
}

/// Starts the hub, retrying the bind for a few seconds: right after a shutdown the port
/// can still be held by connections that are closing.
async fn start_hub(vars: &[(String, String)]) -> Result<ServerHandle, StackError> {
    let mut attempts = 0;
    loop {
        let config = hub_core::Config::from_vars(vars.iter().map(|(k, v)| (k, v)))
            .map_err(StackError::HubConfig)?;
        match hub_core::start(config).await {
            Ok(handle) => return Ok(handle),
            Err(e @ hub_core::StartError::Bind { .. }) if attempts < 20 => {
                attempts += 1;
                tracing::debug!(error = %e, "hub port busy, retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(StackError::Hub(e)),
        }
    }
}
