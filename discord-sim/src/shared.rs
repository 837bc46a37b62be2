//! The state shared by every task of one sim, and the change signal tests wait on.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use crate::config::SimConfig;
use crate::world::World;

/// Shared by the listeners, the connection tasks and the [`crate::Sim`] handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) cfg: Arc<SimConfig>,
    world: Mutex<World>,
    /// Bumped after every change, so waiters re-check their condition.
    changes: watch::Sender<u64>,
    /// Set to true once when the sim shuts down.
    pub(crate) shutdown: watch::Sender<bool>,
}

impl Shared {
    pub(crate) fn new(cfg: Arc<SimConfig>, world: World) -> Self {
        Self {
            cfg,
            world: Mutex::new(world),
            changes: watch::Sender::new(0),
            shutdown: watch::Sender::new(false),
        }
    }

    /// Reads the world.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&World) -> R) -> R {
        let guard = self.world.lock().unwrap_or_else(PoisonError::into_inner);
        f(&guard)
    }

    /// Changes the world and tells waiters.
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        let out = {
            let mut guard = self.world.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut guard)
        };
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        out
    }

    /// A receiver that sees every later change.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// A receiver that turns true when the sim shuts down.
    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}

/// Resolves once the shutdown flag is true, including when it already was (so a task that
/// starts after the sim stopped does not wait for a change that already happened).
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}
