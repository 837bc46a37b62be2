//! The state file side: writing the delivered position and its voice cache,
//! coalesced, with a slow retry when writing fails.
//!
//! A write fsyncs twice (file and directory), which can take milliseconds
//! or, on a busy disk, far longer. Done on the driver task it would stall
//! gateway reads and hub deliveries meanwhile, so writes run on tokio's
//! blocking pool; the driver only captures the state (on its task, at the
//! moment the write starts) and later takes the outcome from its `select!`
//! loop. The blocking pool rather than a dedicated thread: at most one
//! write is in flight, so a pool thread (kept warm between writes) does the
//! same with no channel or thread lifecycle to manage.
//!
//! Ordering: at most one write is in flight, and a forced write first waits
//! for it, so writes complete (and rename into place) in the order their
//! states were captured: an older state never replaces a newer one.

use std::path::PathBuf;
use std::time::Duration;

use gateway_proto::Session;
use tokio::time::Instant;
use tracing::{info, warn};

use super::Driver;
use crate::state_file::{self, SavedState, StateFileError};

/// How often a failing state-file write is retried.
const CHECKPOINT_RETRY: Duration = Duration::from_secs(2);

/// The outcome of one write: the checkpoint version it saved, and whether
/// it is on disk.
pub(super) type Saved = (u64, Result<(), StateFileError>);

impl Driver {
    pub(super) fn checkpoint_due(&self) -> bool {
        self.state_file.is_some() && self.saved_version != Some(self.outbox.checkpoint_version())
    }

    /// When the next coalesced write may start, if one is due and none is in
    /// flight (a change made during a write is written by the next one).
    pub(super) fn checkpoint_at(&self) -> Option<Instant> {
        (self.saving.is_none() && self.checkpoint_due()).then_some(self.next_checkpoint)
    }

    /// Start a coalesced write in the background when one is due.
    pub(super) fn start_checkpoint(&mut self) {
        if self.checkpoint_at().is_none_or(|at| Instant::now() < at) {
            return;
        }
        if let Some((path, version, state)) = self.capture() {
            self.saving = Some(Box::pin(async move {
                (version, save_off_task(path, state).await)
            }));
        }
    }

    /// Write the state file now and wait until it is durable (shutdown and
    /// fatal paths): first the write in flight, then the current state.
    pub(super) async fn checkpoint_now(&mut self) {
        if let Some(saving) = self.saving.take() {
            let saved = saving.await;
            self.on_saved(saved);
        }
        if let Some((path, version, state)) = self.capture() {
            let saved = save_off_task(path, state).await;
            self.on_saved((version, saved));
        }
    }

    /// A write ended: note what is on disk and when to write next.
    pub(super) fn on_saved(&mut self, (version, result): Saved) {
        self.saving = None;
        let retry_after = match result {
            Ok(()) => {
                if self.checkpoint_failing {
                    info!("state file written again");
                }
                self.checkpoint_failing = false;
                self.saved_version = Some(version);
                self.tuning.checkpoint_interval
            }
            Err(e) => {
                // Warn once per failure streak, and retry slowly: a full disk
                // must not turn into a log flood.
                if !self.checkpoint_failing {
                    warn!(error = %e, "cannot write the state file; a restart would replay more");
                }
                self.checkpoint_failing = true;
                CHECKPOINT_RETRY.max(self.tuning.checkpoint_interval)
            }
        };
        self.next_checkpoint = Instant::now() + retry_after;
    }

    /// The state to write now: the acknowledged position, the cache the hub
    /// has seen there, and the checkpoint version they belong to.
    fn capture(&mut self) -> Option<(PathBuf, u64, SavedState)> {
        let path = self.state_file.clone()?;
        let session = self.outbox.acked_position().and_then(|p| {
            let url = self
                .resume_urls
                .iter()
                .find(|(s, _)| *s == p.session)
                .map(|(_, u)| u.clone())?;
            Some(Session {
                id: p.session,
                seq: p.seq,
                resume_url: url,
            })
        });
        let state = SavedState {
            version: state_file::FORMAT_VERSION,
            session,
            cache: self.outbox.checkpoint_cache(&self.live).clone(),
            hub_state: self.hub_synced.clone(),
        };
        Some((path, self.outbox.checkpoint_version(), state))
    }
}

/// [`state_file::save`] on the blocking pool.
async fn save_off_task(path: PathBuf, state: SavedState) -> Result<(), StateFileError> {
    let at = path.clone();
    tokio::task::spawn_blocking(move || state_file::save(&path, &state))
        .await
        .unwrap_or_else(|e| {
            // The runtime is shutting down (or the write panicked): not on
            // disk, like any failed write.
            Err(StateFileError::Io {
                path: at,
                source: std::io::Error::other(e.to_string()),
            })
        })
}
