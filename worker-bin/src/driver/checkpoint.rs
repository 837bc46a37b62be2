//! The state file side: writing the delivered position and its voice cache,
//! coalesced, with a slow retry when writing fails.

use std::time::Duration;

use gateway_proto::Session;
use tokio::time::Instant;
use tracing::{info, warn};

use super::Driver;
use crate::state_file::{self, SavedState};

/// How often a failing state-file write is retried.
const CHECKPOINT_RETRY: Duration = Duration::from_secs(2);

impl Driver {
    pub(super) fn checkpoint_due(&self) -> bool {
        self.state_file.is_some() && self.saved_version != Some(self.outbox.checkpoint_version())
    }

    /// Write the state file (coalesced unless `force`).
    pub(super) fn checkpoint(&mut self, force: bool) {
        let Some(path) = self.state_file.clone() else {
            return;
        };
        if !force && !self.checkpoint_due() {
            return;
        }
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
        };
        let retry_after = match state_file::save(&path, &state) {
            Ok(()) => {
                if self.checkpoint_failing {
                    info!("state file written again");
                }
                self.checkpoint_failing = false;
                self.saved_version = Some(self.outbox.checkpoint_version());
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
}
