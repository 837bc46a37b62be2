//! Support for the fault-injection tests in `tests/`: the real `spell-coven-api` and
//! `spell-coven-worker` binaries as child processes on loopback, a WebSocket client that
//! keeps a view of the guild, a JWKS server, a fault proxy, and condition polling.
//!
//! Every wait polls a condition with a generous timeout ([`WAIT`]); nothing asserts on a
//! sleep. Every child process is killed when its handle drops.

pub mod burst;
pub mod client;
pub mod jwks_server;
pub mod process;
pub mod proxy;
pub mod redis;
pub mod stack;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use client::{View, WsClient};
pub use jwks_server::JwksServer;
pub use process::{Binaries, HubProcess, HubSetup, WorkerProcess, binaries};
pub use proxy::FaultProxy;
pub use redis::{RedisProcess, redis_available};
pub use stack::{ReplicaStack, Stack};

/// The generous timeout for every condition (a busy 2-core machine).
pub const WAIT: Duration = Duration::from_secs(30);

/// HMAC key shared by the hub and the worker in these tests.
pub const HUB_SECRET: &str = "system-test-hub-secret-0123456789abcdef";
/// `JWT_ISSUER` of the hub in these tests.
pub const ISSUER: &str = "https://issuer.system-test";
/// `JWT_AUDIENCE` of the hub in these tests.
pub const AUDIENCE: &str = "spell-coven";

/// Occupancy: channel id -> user ids, without empty channels.
pub type Occupancy = BTreeMap<u64, BTreeSet<u64>>;

/// Unix time in seconds.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `timeout` with `what`.
///
/// # Panics
/// When the condition does not hold in time.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Discord's truth: the sim's voice states as occupancy.
pub fn sim_truth(sim: &discord_sim::Sim) -> Occupancy {
    let mut truth = Occupancy::new();
    for state in sim.voice_states() {
        truth
            .entry(state.channel_id)
            .or_default()
            .insert(state.user_id);
    }
    truth
}

/// The sim's configuration for these tests: short heartbeats, no identify throttling.
pub fn sim_config() -> discord_sim::SimConfig {
    let mut config = discord_sim::SimConfig {
        heartbeat_interval: Duration::from_millis(1000),
        ..discord_sim::SimConfig::default()
    };
    config.session_start_limit.max_concurrency = 16;
    config
}

/// A free loopback port (bound, read back, released): for a process that must get the same
/// port again after a restart.
///
/// # Panics
/// When no port can be bound.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local addr").port()
}
