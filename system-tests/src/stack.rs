//! The whole system on loopback: discord-sim in-process, the hub and the worker as real
//! processes, optionally a fault proxy between them.

use std::path::PathBuf;

use discord_sim::Sim;
use hub_core::auth::TestIssuer;

use crate::{
    AUDIENCE, FaultProxy, HubProcess, HubSetup, ISSUER, WAIT, WorkerProcess, free_port, now_unix,
    sim_config,
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
        let sim = Sim::start(sim_config()).await.expect("sim starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let issuer = TestIssuer::new("system-test");
        let jwks = dir.path().join("jwks.json");
        std::fs::write(&jwks, TestIssuer::jwks(&[&issuer])).expect("write jwks");
        let hub = HubProcess::start(HubSetup {
            port: free_port(),
            guild_id: sim.guild_id(),
            discord_api_base: sim.api_base().to_owned(),
            data_dir: dir.path().join("hub-data"),
            jwks: ("JWT_PUBLIC_JWKS_FILE".into(), jwks.display().to_string()),
            extra: Vec::new(),
            log_dir: dir.path().to_path_buf(),
        })
        .await;
        let proxy = match fail_every {
            Some(n) => Some(FaultProxy::start(hub.base_url(), n).await),
            None => None,
        };
        let endpoint = proxy.as_ref().map_or_else(
            || format!("{}/internal/events", hub.base_url()),
            FaultProxy::endpoint,
        );
        let worker = WorkerProcess::start(&sim, &endpoint, &Self::state_path(&dir), dir.path());
        sim.wait_for_clients(1, WAIT)
            .await
            .unwrap_or_else(|e| panic!("worker never became ready: {e}\n{}", worker.log()));
        Self {
            sim,
            hub,
            worker,
            proxy,
            issuer,
            dir,
        }
    }

    fn state_path(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("worker-state.json")
    }

    /// A valid app token for `sub`.
    pub fn token(&self, sub: &str) -> String {
        self.issuer
            .token_for(ISSUER, AUDIENCE, sub, now_unix() + 3600)
    }
}
