//! The hub side: delivering the outbox's front event, retrying with backoff,
//! and the short flush before a fatal exit.

use std::future::pending;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use super::{BoxFuture, Driver};
use crate::event::RoomEvent;
use crate::hub_client::{self, Outcome};

/// How long a fatal close may spend delivering what is queued (contract §5:
/// a fatal close code ends the process within 5 s).
const FATAL_FLUSH: Duration = Duration::from_secs(2);

pub(super) async fn complete_delivery(
    delivery: &mut Option<(String, BoxFuture<Outcome>)>,
) -> Outcome {
    match delivery {
        Some((_, f)) => f.await,
        None => pending().await,
    }
}

impl Driver {
    pub(super) fn start_delivery(&mut self) {
        if self.delivery.is_some() {
            return;
        }
        if self.flush_deadline.is_some_and(|d| Instant::now() >= d) {
            return;
        }
        let Some(entry) = self.outbox.front() else {
            return;
        };
        let body = entry.event.body(&entry.id, &self.guild_id);
        let client = self.hub.clone();
        let delay = std::mem::take(&mut self.retry_delay);
        self.delivery = Some((
            entry.id.clone(),
            Box::pin(async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                client.deliver(&body).await
            }),
        ));
    }

    pub(super) fn on_delivery(&mut self, outcome: Outcome) {
        let Some((id, _)) = self.delivery.take() else {
            return;
        };
        match &outcome {
            Outcome::Delivered {
                duplicate,
                hub_state,
            } => {
                // The front may have been dropped on overflow meanwhile; the
                // repair sync covers it.
                let mut was_sync = false;
                if let Some(front) = self.outbox.front().filter(|e| e.id == id) {
                    was_sync = matches!(front.event, RoomEvent::GuildSync { .. });
                    self.outbox.pop_delivered();
                }
                debug!(%id, duplicate, "delivered");
                self.last_delivery = Instant::now();
                // The hub names its state; a new name means it may have lost presence it
                // had accepted (restarted after a kill -9, even between two deliveries).
                let mut hub_restarted = false;
                if let Some(now) = hub_state
                    && self.hub_state.as_ref() != Some(now)
                {
                    hub_restarted = self.hub_state.is_some();
                    self.hub_state = Some(now.clone());
                }
                // A full sync accepted under this id: the hub holds everything. Saved, so
                // a worker that restarts while the hub also restarted still notices; the
                // id moves only now, so a crash before the repair is delivered repeats it.
                if was_sync && hub_state.is_some() {
                    self.hub_synced.clone_from(hub_state);
                }
                if self.delivery_attempt > 0 || hub_restarted {
                    // The hub was unreachable or failing, or says its state is new: it
                    // may have restarted and lost presence it had accepted. A guild.sync
                    // after everything recorded repairs that; the hub emits only real
                    // differences, so after a mere blip it costs one request and changes
                    // nothing.
                    if hub_restarted {
                        info!("the hub's state is new (restarted?): sending a guild.sync");
                    }
                    self.outbox.push_repair(self.live.sync_event());
                }
                self.delivery_attempt = 0;
                let mut t = self.telemetry.lock();
                t.events_forwarded += 1;
                t.last_delivery_error = None;
            }
            Outcome::Retry { error, .. } => {
                self.retry_delay =
                    hub_client::retry_delay(self.delivery_attempt, &outcome, &mut self.rng);
                if self.delivery_attempt == 0 || self.delivery_attempt % 10 == 0 {
                    warn!(%id, error = %error, retry_in_ms = self.retry_delay.as_millis() as u64, "hub delivery failed; retrying");
                }
                self.delivery_attempt = self.delivery_attempt.saturating_add(1);
                self.telemetry.lock().last_delivery_error = Some(error.to_string());
            }
            Outcome::TooLarge => {
                error!(%id, "hub refused the event as too large (413); skipping it so later events are not blocked");
                if self.outbox.front().is_some_and(|e| e.id == id) {
                    self.outbox.pop_delivered();
                }
                self.delivery_attempt = 0;
                self.telemetry.lock().last_delivery_error =
                    Some("hub answered 413: event too large, skipped".to_owned());
            }
            Outcome::Rejected { error } => {
                self.retry_delay =
                    hub_client::retry_delay(self.delivery_attempt, &outcome, &mut self.rng);
                error!(%id, error = %error, "hub refused the event (configuration error); retrying slowly");
                self.delivery_attempt = self.delivery_attempt.saturating_add(1);
                self.telemetry.lock().last_delivery_error = Some(error.to_string());
            }
        }
    }

    /// When an idle resync is due: nothing delivered for [`super::Tuning::idle_resync`],
    /// nothing waiting, the cache seeded by a GUILD_CREATE, no shutdown under way.
    pub(super) fn idle_resync_at(&self, shutting_down: bool) -> Option<Instant> {
        let idle = !shutting_down
            && self.delivery.is_none()
            && self.outbox.is_empty()
            && self.live.is_seeded();
        idle.then(|| self.last_delivery + self.tuning.idle_resync)
    }

    /// Sends the hub a `guild.sync` of the live cache after a quiet spell; its answer's
    /// `X-Hub-State-Id` also reveals a restart. The hub emits only differences, so when
    /// nothing was lost clients see nothing.
    pub(super) fn idle_resync(&mut self) {
        debug!("quiet for a while: sending a guild.sync to the hub");
        self.last_delivery = Instant::now();
        self.outbox.push_repair(self.live.sync_event());
    }

    /// Deliver what is queued, each event once, within [`FATAL_FLUSH`].
    pub(super) async fn flush_briefly(&mut self) {
        let deadline = Instant::now() + FATAL_FLUSH;
        self.delivery = None;
        while let Some(entry) = self.outbox.front() {
            let body = entry.event.body(&entry.id, &self.guild_id);
            let attempt = tokio::time::timeout_at(deadline, self.hub.deliver(&body)).await;
            match attempt {
                Ok(Outcome::Delivered { .. } | Outcome::TooLarge) => {
                    self.outbox.pop_delivered();
                }
                _ => break,
            }
        }
    }
}
