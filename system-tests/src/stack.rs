//! The whole system on loopback: discord-sim in-process, the hub and the worker as real
//! processes, optionally a fault proxy between them; or several hub replicas sharing Redis.

use std::path::{Path, PathBuf};

use discord_sim::Sim;
use hub_core::auth::TestIssuer;

use crate::{
    AUDIENCE, FaultProxy, HubProcess, HubSetup, ISSUER, RedisProcess, WAIT, WorkerProcess,
    free_port, now_unix, sim_config,
};

/// Sim, hub, worker (and proxy), with a temp dir for their files.
#[derive(Debug)]
pub struct Stack {
    /// The simulated Discord.
    pub sim: Sim,
    /// The hub.
    pub hub: HubProcess,
    /// The worker.
    pub worker: WorkerProcess,
    /// The proxy between worker and hub, if any.
    pub proxy: Option<FaultProxy>,
    /// The issuer of app tokens (its key is the hub's JWKS file).
    pub issuer: TestIssuer,
    /// Temp dir holding data, state file and logs.
    pub dir: tempfile::TempDir,
}

impl Stack {
    /// Starts everything; with `fail_every = Some(n)` the worker posts through a
    /// [`FaultProxy`] failing every `n`th request. Returns once the worker's session is
    /// ready in the sim.
    ///
    /// # Panics
    /// When a piece does not start.
    pub async fn start(fail_every: Option<u64>) -> Self {
        let (sim, dir, issuer) = sim_dir_issuer().await;
        let hub =
            HubProcess::start(hub_setup(&sim, &dir, "hub-data", dir.path(), Vec::new())).await;
        let proxy = match fail_every {
            Some(n) => Some(FaultProxy::start(hub.base_url(), n).await),
            None => None,
        };
        let endpoint = proxy.as_ref().map_or_else(
            || format!("{}/internal/events", hub.base_url()),
            FaultProxy::endpoint,
        );
        let worker = start_worker(&sim, &endpoint, &dir).await;
        Self {
            sim,
            hub,
            worker,
            proxy,
            issuer,
            dir,
        }
    }

    /// A valid app token for `sub`.
    pub fn token(&self, sub: &str) -> String {
        token(&self.issuer, sub)
    }
}

/// The sim, two or more hub replicas sharing one `redis-server` (`REDIS_URL`), and the
/// worker posting to the first replica.
#[derive(Debug)]
pub struct ReplicaStack {
    /// The simulated Discord.
    pub sim: Sim,
    /// The replicas; the worker's `HUB_ENDPOINT` is `replicas[0]`.
    pub replicas: Vec<HubProcess>,
    /// The worker.
    pub worker: WorkerProcess,
    /// The issuer of app tokens.
    pub issuer: TestIssuer,
    /// The Redis server the replicas share (dropped after them).
    pub redis: RedisProcess,
    /// Temp dir holding the replicas' data and every log.
    pub dir: tempfile::TempDir,
}

impl ReplicaStack {
    /// Starts Redis, `replicas` hubs and the worker; returns once the worker's session is
    /// ready in the sim.
    ///
    /// # Panics
    /// When a piece does not start.
    pub async fn start(replicas: usize) -> Self {
        let redis = RedisProcess::start().await;
        let (sim, dir, issuer) = sim_dir_issuer().await;
        let mut hubs = Vec::with_capacity(replicas);
        for i in 0..replicas {
            let logs = dir.path().join(format!("replica-{i}"));
            std::fs::create_dir_all(&logs).expect("replica log dir");
            let extra = vec![("REDIS_URL".to_owned(), redis.url())];
            let setup = hub_setup(&sim, &dir, &format!("replica-{i}-data"), &logs, extra);
            hubs.push(HubProcess::start(setup).await);
        }
        let endpoint = format!("{}/internal/events", hubs[0].base_url());
        let worker = start_worker(&sim, &endpoint, &dir).await;
        Self {
            sim,
            replicas: hubs,
            worker,
            issuer,
            redis,
            dir,
        }
    }

    /// A valid app token for `sub`.
    pub fn token(&self, sub: &str) -> String {
        token(&self.issuer, sub)
    }
}

fn token(issuer: &TestIssuer, sub: &str) -> String {
    issuer.token_for(ISSUER, AUDIENCE, sub, now_unix() + 3600)
}

/// A running sim, a temp dir, and an issuer whose key is the dir's `jwks.json`.
async fn sim_dir_issuer() -> (Sim, tempfile::TempDir, TestIssuer) {
    let sim = Sim::start(sim_config()).await.expect("sim starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let issuer = TestIssuer::new("system-test");
    std::fs::write(jwks_path(&dir), TestIssuer::jwks(&[&issuer])).expect("write jwks");
    (sim, dir, issuer)
}

fn jwks_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("jwks.json")
}

/// A hub on a free port against `sim`, with `DATA_DIR` `dir/<data>` and logs in `logs`.
fn hub_setup(
    sim: &Sim,
    dir: &tempfile::TempDir,
    data: &str,
    logs: &Path,
    extra: Vec<(String, String)>,
) -> HubSetup {
    HubSetup {
        port: free_port(),
        guild_id: sim.guild_id(),
        discord_api_base: sim.api_base().to_owned(),
        data_dir: dir.path().join(data),
        jwks: (
            "JWT_PUBLIC_JWKS_FILE".into(),
            jwks_path(dir).display().to_string(),
        ),
        extra,
        log_dir: logs.to_path_buf(),
    }
}

/// The worker posting to `endpoint`, its state file in `dir`; returns once its session is
/// ready in the sim.
async fn start_worker(sim: &Sim, endpoint: &str, dir: &tempfile::TempDir) -> WorkerProcess {
    let state = dir.path().join("worker-state.json");
    let worker = WorkerProcess::start(sim, endpoint, &state, dir.path());
    sim.wait_for_clients(1, WAIT)
        .await
        .unwrap_or_else(|e| panic!("worker never became ready: {e}\n{}", worker.log()));
    worker
}
