//! The IO driver: runs gateway-proto's session machine over
//! tokio-tungstenite, feeds dispatches to the voice cache, events to the
//! outbox, delivers the outbox to the hub and checkpoints the delivered
//! position to the state file.
//!
//! Two acknowledgements: gateway-proto (with `manual_acknowledge`) is told a
//! dispatch is handled once it is recorded in the outbox, since in-process
//! reconnects lose nothing the outbox holds; the state file gets the
//! position whose events the hub has answered 2xx, which is what a *new*
//! process must resume from.
//!
//! Everything lives in one task and one `select!` loop (no locks): the
//! socket, a pending connect, the in-flight hub delivery (with its backoff
//! sleep), the in-flight state-file write, the machine's next timer, the
//! checkpoint and idle-resync timers and the shutdown signal. Only the state-file write's
//! fsyncs run elsewhere (the blocking pool, see `checkpoint`), so a slow
//! disk never stalls the gateway or the deliveries. After every input the
//! machine's outputs are drained completely, as gateway-proto's call order
//! requires.

mod checkpoint;
mod delivery;
mod setup;
mod telemetry;
mod transport;

use std::collections::VecDeque;
use std::future::{Future, pending};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use gateway_proto::{DispatchEvent, Event, Gateway};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use self::checkpoint::Saved;
use self::delivery::complete_delivery;
use self::telemetry::reason_label;
use self::transport::{Ws, next_message};
use crate::config::Config;
use crate::health::Telemetry;
use crate::hub_client::{HubClient, Outcome};
use crate::outbox::{Outbox, Position};
use crate::voice::VoiceCache;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Timing knobs that are not environment variables (tests shorten them).
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Gateway reconnect backoff: base and cap (full jitter).
    pub gateway_backoff: (Duration, Duration),
    /// How long a shutdown may spend flushing the outbox (contract §5:
    /// "flushes what it can").
    pub flush_timeout: Duration,
    /// Minimum time between two state-file writes (coalescing).
    pub checkpoint_interval: Duration,
    /// After this long without a delivery, a `guild.sync` goes to the hub anyway: a hub
    /// restarted while the guild was quiet lost the presence it had, and nothing else
    /// would tell the worker (its answer's `X-Hub-State-Id` only comes with a delivery).
    /// Default 15 s: the longest a restarted hub's snapshots miss pre-crash presence, for
    /// one small POST per 15 s of quiet (the hub forwards only differences).
    pub idle_resync: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            gateway_backoff: (Duration::from_secs(1), Duration::from_secs(60)),
            flush_timeout: Duration::from_secs(5),
            checkpoint_interval: Duration::from_millis(250),
            idle_resync: Duration::from_secs(15),
        }
    }
}

/// Why the worker stopped with an error.
#[derive(Debug)]
#[non_exhaustive]
pub enum RunError {
    /// Discord ended the session for good (4004, 4010-4014, or a refused
    /// token on `GET /gateway/bot`). The message says what to fix.
    Fatal(String),
    /// The TLS configuration could not be built.
    Tls(rustls::Error),
    /// `HEALTH_ADDR` could not be bound.
    Health(std::io::Error),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fatal(message) => f.write_str(message),
            Self::Tls(e) => write!(f, "cannot build the TLS configuration: {e}"),
            Self::Health(e) => write!(f, "HEALTH_ADDR cannot be bound: {e}"),
        }
    }
}

impl std::error::Error for RunError {}

/// Run the worker until `shutdown` resolves (then flush, checkpoint, close
/// resumably and return `Ok`) or Discord ends the session for good.
///
/// # Errors
/// [`RunError::Fatal`] for a fatal close code or refused token (the process
/// should exit non-zero without retrying); [`RunError::Tls`] /
/// [`RunError::Health`] for setup failures.
pub async fn run(
    config: Config,
    tuning: Tuning,
    telemetry: Telemetry,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    let tls = Arc::new(crate::tls::client_config().map_err(RunError::Tls)?);
    let hub = HubClient::new(config.hub_endpoint.clone(), config.hub_secret.clone())
        .map_err(RunError::Tls)?;
    let _health = match config.health_addr {
        Some(addr) => {
            let (local, task) = crate::health::serve(addr, telemetry.clone())
                .await
                .map_err(RunError::Health)?;
            info!(addr = %local, "health and metrics listening");
            telemetry.lock().health_addr = Some(local);
            Some(AbortOnDrop(task))
        }
        None => None,
    };

    let saved = setup::load_state(&config);
    let hub_synced = saved.as_ref().and_then(|s| s.hub_state.clone());
    let (live, initial, resume_urls, session) = match saved {
        Some(state) => {
            let initial = state.session.as_ref().map(|s| Position {
                session: s.id.clone(),
                seq: s.seq,
            });
            let urls: Vec<(String, String)> = state
                .session
                .iter()
                .map(|s| (s.id.clone(), s.resume_url.clone()))
                .collect();
            (state.cache, initial, urls, state.session)
        }
        None => (
            VoiceCache::new(config.guild_id.clone()),
            None,
            Vec::new(),
            None,
        ),
    };
    // A resumed session's replay carries no READY: its dispatches belong to
    // the saved session.
    let current_session = initial.as_ref().map(|p| p.session.clone());
    let outbox = Outbox::new(config.outbox_capacity, initial, live.clone());
    let gateway = Gateway::new(setup::gateway_config(&config, &tuning, session));

    let mut driver = Driver {
        guild_id: config.guild_id.clone(),
        state_file: config.state_file.clone(),
        tuning,
        telemetry,
        tls,
        hub,
        gateway,
        live,
        outbox,
        socket: None,
        connecting: None,
        delivery: None,
        delivery_attempt: 0,
        hub_state: hub_synced.clone(),
        hub_synced,
        last_delivery: Instant::now(),
        retry_delay: Duration::ZERO,
        rng: fastrand::Rng::new(),
        current_session,
        resume_urls: resume_urls.into(),
        saved_version: None,
        saving: None,
        next_checkpoint: Instant::now(),
        checkpoint_failing: false,
        gateway_info: None,
        refresh_gateway_info: config
            .gateway_url
            .is_none()
            .then(|| (config.api_base.clone(), config.token.clone())),
        last_latency: None,
        gateway_done: false,
        flush_deadline: None,
    };
    driver.run(shutdown).await
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Driver {
    guild_id: String,
    state_file: Option<PathBuf>,
    tuning: Tuning,
    telemetry: Telemetry,
    tls: Arc<rustls::ClientConfig>,
    hub: HubClient,
    gateway: Gateway,
    /// The voice state as Discord last told us.
    live: VoiceCache,
    outbox: Outbox,
    socket: Option<Ws>,
    connecting: Option<BoxFuture<Result<Ws, String>>>,
    /// The in-flight delivery of the outbox's front event: (its id, future).
    delivery: Option<(String, BoxFuture<Outcome>)>,
    delivery_attempt: u32,
    /// The hub's `X-Hub-State-Id` at the last delivery (at start: the saved one).
    hub_state: Option<String>,
    /// The hub's state id when it last accepted a `guild.sync` (saved in the state file).
    hub_synced: Option<String>,
    /// When the hub last accepted a delivery (or the driver started).
    last_delivery: Instant,
    retry_delay: Duration,
    rng: fastrand::Rng,
    /// The Gateway session dispatches currently belong to.
    current_session: Option<String>,
    /// Resume URLs of recent sessions (bounded), for the checkpoint.
    resume_urls: VecDeque<(String, String)>,
    /// The checkpoint version last written to the state file.
    saved_version: Option<u64>,
    /// The state-file write in flight (at most one).
    saving: Option<BoxFuture<Saved>>,
    next_checkpoint: Instant,
    checkpoint_failing: bool,
    /// A refresh of `GET /gateway/bot` before a new session, if one runs.
    gateway_info:
        Option<BoxFuture<Result<gateway_proto::GatewayInfo, crate::gateway_bot::GatewayBotError>>>,
    /// Where to refresh it from (`None` with `DISCORD_GATEWAY_URL`).
    refresh_gateway_info: Option<(String, crate::secret::Secret)>,
    last_latency: Option<Duration>,
    gateway_done: bool,
    flush_deadline: Option<Instant>,
}

async fn complete<T>(future: &mut Option<BoxFuture<T>>) -> T {
    match future {
        Some(f) => f.await,
        None => pending().await,
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => pending().await,
    }
}

impl Driver {
    async fn run(&mut self, shutdown: impl Future<Output = ()> + Send) -> Result<(), RunError> {
        let mut shutdown = std::pin::pin!(shutdown);
        if let Some((base, token)) = self.refresh_gateway_info.clone() {
            tokio::select! {
                info = setup::fetch_gateway_info(&base, &token) => match info {
                    Ok(Some(info)) => self.gateway.set_gateway_info(info, now()),
                    Ok(None) => {}
                    Err(message) => return Err(RunError::Fatal(message)),
                },
                () = &mut shutdown => {
                    info!("shutdown requested before connecting");
                    self.checkpoint_now().await;
                    return Ok(());
                }
            }
        }
        if let Err(e) = self.gateway.start(now()) {
            debug!(error = %e, "gateway start");
        }
        let mut shutdown_requested = false;
        loop {
            if let Some(fatal) = self.drain().await {
                self.flush_briefly().await;
                self.checkpoint_now().await;
                return Err(RunError::Fatal(fatal));
            }
            self.start_delivery();
            self.update_telemetry();
            self.start_checkpoint();
            if shutdown_requested && self.gateway_done {
                let flushed = self.outbox.is_empty();
                let late = self.flush_deadline.is_some_and(|d| Instant::now() >= d);
                if flushed || late {
                    if !flushed {
                        warn!(
                            pending = self.outbox.len(),
                            "shutdown: events not delivered in time; they will be replayed after the RESUME"
                        );
                    }
                    self.checkpoint_now().await;
                    info!("stopped");
                    return Ok(());
                }
            }

            let gateway_deadline = self.gateway.poll_timeout().map(Instant::from_std);
            let resync_at = self.idle_resync_at(shutdown_requested);
            let checkpoint_at = self.checkpoint_at();
            // Only a future instant: a past one would make the loop spin
            // while the close handshake finishes.
            let flush_at = self
                .flush_deadline
                .filter(|d| shutdown_requested && *d > Instant::now());
            // Biased: frames already readable go to the machine before a due
            // timer, so a burst cannot look like a missing heartbeat ACK
            // (gateway-proto's driver notes).
            tokio::select! {
                biased;
                () = &mut shutdown, if !shutdown_requested => {
                    info!("shutdown requested: closing the gateway resumably and flushing the outbox");
                    shutdown_requested = true;
                    self.flush_deadline = Some(Instant::now() + self.tuning.flush_timeout);
                    if self.gateway.shutdown(now()).is_err() {
                        self.gateway_done = true;
                    }
                }
                message = next_message(&mut self.socket) => self.on_message(message),
                opened = complete(&mut self.connecting) => {
                    self.connecting = None;
                    match opened {
                        Ok(ws) => {
                            self.socket = Some(ws);
                            self.report(|g, now| g.handle_connected(now));
                        }
                        Err(e) => {
                            warn!(error = %e, "gateway connect failed");
                            self.report(|g, now| g.handle_connect_failed(now));
                        }
                    }
                }
                outcome = complete_delivery(&mut self.delivery) => self.on_delivery(outcome),
                saved = complete(&mut self.saving) => self.on_saved(saved),
                info = complete(&mut self.gateway_info) => {
                    self.gateway_info = None;
                    match info {
                        Ok(info) => self.gateway.set_gateway_info(info, now()),
                        Err(e) => debug!(error = %e, "refreshing GET /gateway/bot failed"),
                    }
                }
                () = sleep_until_opt(gateway_deadline) => self.gateway.handle_timeout(now()),
                () = sleep_until_opt(checkpoint_at) => self.start_checkpoint(),
                () = sleep_until_opt(flush_at) => {}
                () = sleep_until_opt(resync_at) => self.idle_resync(),
            }
        }
    }

    /// Drain the machine's transmits and events until both are empty.
    /// Returns the operator message of a fatal error.
    async fn drain(&mut self) -> Option<String> {
        loop {
            let mut progressed = false;
            while let Some(transmit) = self.gateway.poll_transmit() {
                progressed = true;
                self.transmit(transmit).await;
            }
            while let Some(event) = self.gateway.poll_event() {
                progressed = true;
                if let Some(fatal) = self.on_event(event) {
                    return Some(fatal);
                }
            }
            if !progressed {
                return None;
            }
        }
    }

    fn on_event(&mut self, event: Event) -> Option<String> {
        match event {
            Event::Dispatch(dispatch) => self.on_dispatch(&dispatch),
            Event::Ready { session_id } => {
                info!(session = %session_id, "new gateway session");
                self.current_session = Some(session_id);
            }
            Event::Resumed { replayed } => info!(replayed, "gateway session resumed"),
            Event::Reconnecting {
                reason,
                resume,
                delay,
            } => {
                warn!(%reason, resume, delay_ms = delay.as_millis() as u64, "gateway reconnecting");
                // A new session spends the identify budget: refresh
                // `session_start_limit` (and the URL) first; the docs say not
                // to cache `GET /gateway/bot` for long.
                if !resume && self.gateway_info.is_none() {
                    if let Some((base, token)) = self.refresh_gateway_info.clone() {
                        self.gateway_info = Some(Box::pin(async move {
                            crate::gateway_bot::fetch(&base, &token).await
                        }));
                    }
                }
                *self
                    .telemetry
                    .lock()
                    .reconnects
                    .entry(reason_label(&reason))
                    .or_default() += 1;
            }
            Event::Shutdown => {
                info!("gateway closed resumably");
                self.gateway_done = true;
            }
            Event::Fatal(e) => {
                error!(code = ?e.close_code().code(), "{e}");
                return Some(e.to_string());
            }
            _ => {}
        }
        None
    }

    fn on_dispatch(&mut self, dispatch: &gateway_proto::Dispatch) {
        self.telemetry.lock().dispatches_received += 1;
        if let DispatchEvent::Ready(ready) = &dispatch.event {
            self.new_session(&ready.session_id, &ready.resume_gateway_url);
        }
        let Some(session) = self.current_session.clone() else {
            return;
        };
        // Within this process a dispatch is safe once it is in the outbox,
        // so gateway-proto may resume from it: a reconnect then needs no
        // replay (which Discord keeps only so long). Across processes the
        // state file holds the *delivered* position instead, and the next
        // process resumes from there.
        self.gateway.acknowledge(dispatch.seq);
        // A replay of something already recorded (a resume from the saved
        // position) is skipped.
        if !self.outbox.is_new(&session, dispatch.seq) {
            return;
        }
        let events = self.live.apply(&dispatch.event);
        if !events.is_empty() {
            debug!(
                seq = dispatch.seq,
                t = dispatch.name(),
                count = events.len(),
                "room events"
            );
        }
        self.outbox.record(&session, dispatch.seq, events);
        while self.outbox.take_repair_request() {
            warn!(
                capacity = self.outbox.len(),
                "outbox full: dropped the oldest event; a guild.sync follows to repair the hub"
            );
            self.outbox.push_repair(self.live.sync_event());
        }
    }

    fn new_session(&mut self, id: &str, resume_url: &str) {
        self.current_session = Some(id.to_owned());
        self.resume_urls.retain(|(s, _)| s != id);
        self.resume_urls
            .push_front((id.to_owned(), resume_url.to_owned()));
        self.resume_urls.truncate(4);
    }
}
