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
//! sleep), the machine's next timer, the checkpoint timer and the shutdown
//! signal. After every input the machine's outputs are drained completely,
//! as gateway-proto's call order requires.

use std::collections::VecDeque;
use std::future::{Future, pending};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use gateway_proto::{
    Compression, ConnectionProperties, DispatchEvent, Event, EventFilter, EventKind, EventKinds,
    Gateway, Intents, ReconnectReason, Session, Transmit, Unwanted,
};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use tracing::{debug, error, info, warn};

use crate::config::Config;
use crate::health::Telemetry;
use crate::hub_client::{self, HubClient, Outcome};
use crate::outbox::{Outbox, Position};
use crate::state_file::{self, SavedState};
use crate::voice::VoiceCache;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// How often a failing state-file write is retried.
const CHECKPOINT_RETRY: Duration = Duration::from_secs(2);

/// How long a fatal close may spend delivering what is queued (contract §5:
/// a fatal close code ends the process within 5 s).
const FATAL_FLUSH: Duration = Duration::from_secs(2);

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
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            gateway_backoff: (Duration::from_secs(1), Duration::from_secs(60)),
            flush_timeout: Duration::from_secs(5),
            checkpoint_interval: Duration::from_millis(250),
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

    let saved = load_state(&config);
    let mut builder = gateway_proto::Config::builder(
        config.token.expose(),
        // Contract §5: intents GUILDS | GUILD_VOICE_STATES (129).
        Intents::GUILDS | Intents::GUILD_VOICE_STATES,
    )
    .compression(Compression::ZlibStream)
    .manual_acknowledge(true)
    .properties(ConnectionProperties {
        os: std::env::consts::OS.to_owned(),
        browser: "spell-coven-worker".to_owned(),
        device: "spell-coven-worker".to_owned(),
    })
    .events(EventFilter::new(
        [
            EventKind::Ready,
            EventKind::Resumed,
            EventKind::GuildCreate,
            EventKind::VoiceStateUpdate,
            EventKind::ChannelCreate,
            EventKind::ChannelUpdate,
            EventKind::ChannelDelete,
        ]
        .into_iter()
        .collect::<EventKinds>(),
        Unwanted::Drop,
    ))
    .backoff(tuning.gateway_backoff.0, tuning.gateway_backoff.1)
    .seed(fastrand::u64(..));
    if let Some(url) = &config.gateway_url {
        builder = builder.gateway_url(url.clone());
    }
    let (live, initial, resume_urls) = match saved {
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
            if let Some(session) = state.session {
                info!(session = %session.id, seq = session.seq, "resuming the saved session");
                builder = builder.session(session);
            }
            (state.cache, initial, urls)
        }
        None => (VoiceCache::new(config.guild_id.clone()), None, Vec::new()),
    };
    // A resumed session's replay carries no READY: its dispatches belong to
    // the saved session.
    let current_session = initial.as_ref().map(|p| p.session.clone());
    let outbox = Outbox::new(config.outbox_capacity, initial, live.clone());
    let mut gateway = Gateway::new(builder.build());

    if config.gateway_url.is_none() {
        match fetch_gateway_info(&config).await {
            Ok(Some(info)) => {
                if let Some(limit) = &info.session_start_limit {
                    info!(
                        url = %info.url,
                        remaining = limit.remaining,
                        total = limit.total,
                        "GET /gateway/bot"
                    );
                }
                gateway.set_gateway_info(info, now());
            }
            Ok(None) => {}
            Err(message) => return Err(RunError::Fatal(message)),
        }
    }

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
        retry_delay: Duration::ZERO,
        rng: fastrand::Rng::new(),
        current_session,
        resume_urls: resume_urls.into(),
        saved_version: None,
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

/// `GET /gateway/bot`, retried a few times; `Ok(None)` falls back to
/// gateway-proto's default URL; `Err` is fatal (refused token).
async fn fetch_gateway_info(config: &Config) -> Result<Option<gateway_proto::GatewayInfo>, String> {
    let mut delay = Duration::from_millis(500);
    for attempt in 1..=4 {
        match crate::gateway_bot::fetch(&config.api_base, &config.token).await {
            Ok(info) => return Ok(Some(info)),
            Err(crate::gateway_bot::GatewayBotError::Unauthorized) => {
                return Err(crate::gateway_bot::GatewayBotError::Unauthorized.to_string());
            }
            Err(e) => {
                warn!(attempt, error = %e, "GET /gateway/bot failed");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    warn!(
        "GET /gateway/bot kept failing; connecting to {}",
        gateway_proto::DEFAULT_GATEWAY_URL
    );
    Ok(None)
}

fn load_state(config: &Config) -> Option<SavedState> {
    let path = config.state_file.as_ref()?;
    match state_file::load(path, &config.guild_id) {
        Ok(state) => state,
        Err(e) => {
            // Never crash-loop on a bad file: start a new session instead.
            warn!(error = %e, "ignoring the state file; starting a new session");
            None
        }
    }
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
    retry_delay: Duration,
    rng: fastrand::Rng,
    /// The Gateway session dispatches currently belong to.
    current_session: Option<String>,
    /// Resume URLs of recent sessions (bounded), for the checkpoint.
    resume_urls: VecDeque<(String, String)>,
    saved_version: Option<u64>,
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

async fn next_message(socket: &mut Option<Ws>) -> Option<Result<Message, String>> {
    match socket {
        Some(ws) => ws.next().await.map(|r| r.map_err(|e| e.to_string())),
        None => pending().await,
    }
}

async fn complete<T>(future: &mut Option<BoxFuture<T>>) -> T {
    match future {
        Some(f) => f.await,
        None => pending().await,
    }
}

async fn complete_delivery(delivery: &mut Option<(String, BoxFuture<Outcome>)>) -> Outcome {
    match delivery {
        Some((_, f)) => f.await,
        None => pending().await,
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => pending().await,
    }
}

async fn open(url: String, tls: Arc<rustls::ClientConfig>) -> Result<Ws, String> {
    let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        url,
        None,
        true,
        Some(Connector::Rustls(tls)),
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(ws)
}

fn reason_label(reason: &ReconnectReason) -> String {
    match reason {
        ReconnectReason::Closed(code) => match code.code() {
            Some(c) => format!("closed_{c}"),
            None => "dropped".to_owned(),
        },
        ReconnectReason::ConnectFailed => "connect_failed".to_owned(),
        ReconnectReason::Reconnect => "reconnect_requested".to_owned(),
        ReconnectReason::InvalidSession { resumable: true } => {
            "invalid_session_resumable".to_owned()
        }
        ReconnectReason::InvalidSession { resumable: false } => "invalid_session".to_owned(),
        ReconnectReason::Zombie => "zombie".to_owned(),
        ReconnectReason::Deadline(phase) => format!("deadline_{phase}"),
        ReconnectReason::BadFrame => "bad_frame".to_owned(),
        ReconnectReason::SessionStartLimit => "session_start_limit".to_owned(),
        _ => "other".to_owned(),
    }
}

impl Driver {
    async fn run(&mut self, shutdown: impl Future<Output = ()> + Send) -> Result<(), RunError> {
        if let Err(e) = self.gateway.start(now()) {
            debug!(error = %e, "gateway start");
        }
        let mut shutdown = std::pin::pin!(shutdown);
        let mut shutdown_requested = false;
        loop {
            if let Some(fatal) = self.drain().await {
                self.flush_briefly().await;
                self.checkpoint(true);
                return Err(RunError::Fatal(fatal));
            }
            self.start_delivery();
            self.update_telemetry();
            if self.checkpoint_due() && Instant::now() >= self.next_checkpoint {
                self.checkpoint(false);
            }
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
                    self.checkpoint(true);
                    info!("stopped");
                    return Ok(());
                }
            }

            let gateway_deadline = self.gateway.poll_timeout().map(Instant::from_std);
            let checkpoint_at = self.checkpoint_due().then_some(self.next_checkpoint);
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
                info = complete(&mut self.gateway_info) => {
                    self.gateway_info = None;
                    match info {
                        Ok(info) => self.gateway.set_gateway_info(info, now()),
                        Err(e) => debug!(error = %e, "refreshing GET /gateway/bot failed"),
                    }
                }
                () = sleep_until_opt(gateway_deadline) => self.gateway.handle_timeout(now()),
                () = sleep_until_opt(checkpoint_at) => self.checkpoint(false),
                () = sleep_until_opt(flush_at) => {}
            }
        }
    }

    /// Feed one transport input; log (and otherwise ignore) inputs the
    /// machine found out of place: it stays consistent.
    fn report(
        &mut self,
        input: impl FnOnce(&mut Gateway, std::time::Instant) -> Result<(), gateway_proto::InputError>,
    ) {
        if let Err(e) = input(&mut self.gateway, now()) {
            debug!(error = %e, "gateway input");
        }
    }

    fn on_message(&mut self, message: Option<Result<Message, String>>) {
        match message {
            Some(Ok(Message::Text(text))) => {
                self.report(|g, now| g.handle_text(text.as_str(), now));
            }
            Some(Ok(Message::Binary(bytes))) => self.report(|g, now| g.handle_binary(&bytes, now)),
            Some(Ok(Message::Close(frame))) => {
                let (code, reason) = frame.map_or((None, String::new()), |f| {
                    (Some(u16::from(f.code)), f.reason.to_string())
                });
                info!(code, %reason, "gateway closed");
                // Let tungstenite finish the close handshake in the background.
                if let Some(mut ws) = self.socket.take() {
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                    });
                }
                self.report(|g, now| g.handle_closed(code, &reason, now));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                info!(error = %e, "gateway connection lost");
                self.socket = None;
                self.report(|g, now| g.handle_closed(None, "", now));
            }
            None => {
                info!("gateway connection ended");
                self.socket = None;
                self.report(|g, now| g.handle_closed(None, "", now));
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

    async fn transmit(&mut self, transmit: Transmit) {
        match transmit {
            Transmit::Connect { url } => {
                self.socket = None;
                debug!(%url, "gateway connecting");
                self.connecting = Some(Box::pin(open(url, Arc::clone(&self.tls))));
            }
            Transmit::Send(text) => {
                let Some(ws) = &mut self.socket else {
                    return;
                };
                if let Err(e) = ws.send(Message::text(text)).await {
                    info!(error = %e, "gateway send failed");
                    self.socket = None;
                    self.report(|g, now| g.handle_closed(None, "", now));
                }
            }
            Transmit::Close { code, reason } => {
                let Some(ws) = &mut self.socket else {
                    return;
                };
                let frame = CloseFrame {
                    code: code.into(),
                    reason: reason.into(),
                };
                // Keep reading afterwards: the peer's close ends the handshake.
                if let Err(e) = ws.send(Message::Close(Some(frame))).await {
                    debug!(error = %e, "gateway close failed");
                    self.socket = None;
                    self.report(|g, now| g.handle_closed(None, "", now));
                }
            }
            Transmit::Drop => {
                self.socket = None;
                self.connecting = None;
            }
            other => debug!(?other, "unknown transmit"),
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

    fn start_delivery(&mut self) {
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

    fn on_delivery(&mut self, outcome: Outcome) {
        let Some((id, _)) = self.delivery.take() else {
            return;
        };
        match &outcome {
            Outcome::Delivered { duplicate } => {
                // The front may have been dropped on overflow meanwhile; the
                // repair sync covers it.
                if self.outbox.front().is_some_and(|e| e.id == id) {
                    self.outbox.pop_delivered();
                }
                debug!(%id, duplicate, "delivered");
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

    /// Deliver what is queued, each event once, within [`FATAL_FLUSH`].
    async fn flush_briefly(&mut self) {
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

    fn checkpoint_due(&self) -> bool {
        self.state_file.is_some() && self.saved_version != Some(self.outbox.checkpoint_version())
    }

    /// Write the state file (coalesced unless `force`).
    fn checkpoint(&mut self, force: bool) {
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

    fn update_telemetry(&mut self) {
        let latency = self.gateway.latency();
        let mut t = self.telemetry.lock();
        t.state = self.gateway.state().as_str().to_owned();
        t.session = self.gateway.session().is_some();
        t.seq = self.gateway.latest_seq();
        t.acked_seq = self.outbox.acked_position().map(|p| p.seq);
        t.heartbeat_rtt_ms = latency.map(|d| d.as_millis() as u64);
        t.outbox_depth = self.outbox.len();
        t.events_dropped = self.outbox.dropped();
        if latency != self.last_latency {
            if let Some(l) = latency {
                t.heartbeat_rtt_sum_secs += l.as_secs_f64();
                t.heartbeat_rtt_count += 1;
            }
            self.last_latency = latency;
        }
    }
}
