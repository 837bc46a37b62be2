//! The session machine.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::close_code::{CloseAction, CloseCode};
use crate::codec::{self, Frame, IdentifyFields};
use crate::command::Command;
use crate::compression::Decompressor;
use crate::config::{Compression, Config};
use crate::dispatch::{Decision, Dispatch};
use crate::error::{DecodeError, FatalError, InputError, InputKind, SendError};
use crate::event::{Event, Phase, ReconnectReason};
use crate::heartbeat::{Beat, Heartbeat};
use crate::input::Input;
use crate::opcode::OpCode;
use crate::ratelimit::RateLimiter;
use crate::session::{GatewayInfo, Session};
use crate::state::{AfterClose, State, StateKind};
use crate::timer::{Timer, TimerTable};
use crate::transmit::Transmit;
use crate::url::gateway_url;

/// The close code the machine uses whenever it closes on purpose. It is not
/// 1000 or 1001, so the session stays resumable (`events/gateway.mdx`,
/// "Initiating a Disconnect": closing with 1000/1001 invalidates the
/// session; any other code keeps it alive for a few minutes).
pub const RESUMABLE_CLOSE_CODE: u16 = 4000;

/// Op 9 with `d: false`: reconnect after a random 1–5 s wait before
/// identifying (the wait the older Gateway docs asked for, still used so a
/// burst of invalidations cannot turn into a burst of IDENTIFYs).
const INVALID_SESSION_DELAY_MS: std::ops::RangeInclusive<u64> = 1_000..=5_000;

/// `max_concurrency` session starts are allowed per this window
/// (`events/gateway.mdx`, "Session Start Limit Object").
const IDENTIFY_WINDOW: Duration = Duration::from_secs(5);

/// When the session start limit's `remaining` was refilled without fresh
/// `GET /gateway/bot` data, assume Discord's 24 h period for the next reset.
const START_LIMIT_PERIOD: Duration = Duration::from_secs(24 * 60 * 60);

/// Bound on heartbeats/IDENTIFY/RESUME waiting for the rate limit. Only a
/// peer flooding op 1 requests could fill it; further heartbeat requests
/// are then ignored (one queued heartbeat answers them all).
const PRIORITY_QUEUE: usize = 4;

/// The live session's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SessionInfo {
    id: String,
    resume_url: String,
}

/// The identify budget from `GET /gateway/bot`.
#[derive(Debug, Clone)]
struct StartLimit {
    total: u32,
    remaining: u32,
    reset_at: Instant,
    max_concurrency: u32,
}

/// Per-connection state, dropped with the connection.
#[derive(Debug)]
struct Link {
    /// This connection was opened to RESUME (not IDENTIFY).
    resuming: bool,
    /// It was opened on the resume URL (not the Gateway URL).
    via_resume_url: bool,
    /// The transport opened.
    opened: bool,
    heartbeat: Option<Heartbeat>,
    limiter: RateLimiter,
    /// Heartbeats, IDENTIFY and RESUME waiting for a rate-limit slot.
    priority: VecDeque<String>,
}

/// How to get rid of the current transport when reconnecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Teardown {
    /// Send a close frame with [`RESUMABLE_CLOSE_CODE`] and wait for the
    /// handshake (bounded by the close deadline).
    Close,
    /// Abort the transport without a handshake.
    Drop,
    /// The transport is already gone.
    Gone,
}

/// A sans-IO Discord Gateway v10 session.
///
/// Feed it what happened with the `handle_*` methods (each takes the current
/// time), then drain [`poll_transmit`](Self::poll_transmit),
/// [`poll_event`](Self::poll_event) until they return `None`, and sleep
/// until [`poll_timeout`](Self::poll_timeout) (then call
/// [`handle_timeout`](Self::handle_timeout)). See the crate docs for the
/// driver loop.
#[derive(Debug)]
pub struct Gateway {
    config: Config,
    state: State,
    rng: fastrand::Rng,
    timers: TimerTable,
    session: Option<SessionInfo>,
    /// Last non-null `s` received: what heartbeats carry.
    latest_seq: Option<u64>,
    /// Highest `s` received in this session: the ceiling for
    /// acknowledgements.
    highest_seq: Option<u64>,
    /// Acknowledged `s`: what RESUME and the exported session carry.
    acked_seq: Option<u64>,
    /// Highest `s` handed to the application.
    delivered_seq: Option<u64>,
    gateway_url: String,
    start_limit: Option<StartLimit>,
    identifies: VecDeque<Instant>,
    backoff: Backoff,
    resume_failures: u32,
    resume_url_unreachable: bool,
    link: Option<Link>,
    decompressor: Option<Decompressor>,
    compression: Compression,
    commands: VecDeque<String>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    latency: Option<Duration>,
}

impl Gateway {
    /// A machine in the `Idle` state. Nothing happens until
    /// [`start`](Self::start).
    ///
    /// If the configured compression's cargo feature is off, the machine
    /// connects without transport compression.
    #[must_use]
    pub fn new(config: Config) -> Self {
        let decompressor = Decompressor::new(
            config.compression,
            config.max_compressed_size,
            config.max_message_size,
        )
        .ok();
        let compression = decompressor
            .as_ref()
            .map_or(Compression::None, Decompressor::compression);
        let mut gateway = Self {
            rng: fastrand::Rng::with_seed(config.seed),
            state: State::Idle,
            timers: TimerTable::default(),
            session: None,
            latest_seq: None,
            highest_seq: None,
            acked_seq: None,
            delivered_seq: None,
            gateway_url: config.gateway_url.clone(),
            start_limit: None,
            identifies: VecDeque::new(),
            backoff: Backoff::new(config.backoff_base, config.backoff_cap),
            resume_failures: 0,
            resume_url_unreachable: false,
            link: None,
            decompressor,
            compression,
            commands: VecDeque::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            latency: None,
            config,
        };
        if let Some(session) = gateway.config.session.clone() {
            gateway.import_session(session);
        }
        gateway
    }

    // ----- Inspection -------------------------------------------------------

    /// The current state.
    #[must_use]
    pub const fn state(&self) -> StateKind {
        self.state.kind()
    }

    /// The fatal error, once the machine stopped for good.
    #[must_use]
    pub const fn fatal_error(&self) -> Option<&FatalError> {
        match &self.state {
            State::Fatal(e) => Some(e),
            _ => None,
        }
    }

    /// The session to persist, if there is one. Its `seq` is the
    /// acknowledged seq (see [`acknowledge`](Self::acknowledge)), so a
    /// RESUME from it replays everything not yet acknowledged.
    #[must_use]
    pub fn session(&self) -> Option<Session> {
        self.session.as_ref().map(|s| Session {
            id: s.id.clone(),
            seq: self.acked_seq.unwrap_or(0),
            resume_url: s.resume_url.clone(),
        })
    }

    /// The last sequence number received (what heartbeats carry).
    #[must_use]
    pub const fn latest_seq(&self) -> Option<u64> {
        self.latest_seq
    }

    /// The acknowledged sequence number (what RESUME carries).
    #[must_use]
    pub const fn acknowledged_seq(&self) -> Option<u64> {
        self.acked_seq
    }

    /// Round trip of the last acknowledged heartbeat.
    #[must_use]
    pub const fn latency(&self) -> Option<Duration> {
        self.latency
    }

    /// Commands waiting for the rate limit or a connection.
    #[must_use]
    pub fn queued_commands(&self) -> usize {
        self.commands.len()
    }

    /// The transport compression in use.
    #[must_use]
    pub const fn compression(&self) -> Compression {
        self.compression
    }

    // ----- Outputs ----------------------------------------------------------

    /// The next thing to do on the transport. Call until `None` after every
    /// input.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the application. Call until `None` after every
    /// input.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front()?;
        Some(event)
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    // ----- Application inputs -----------------------------------------------

    /// Start: connect (resuming a session given through the config or
    /// [`set_session`](Self::set_session), else identifying). Also restarts
    /// a machine stopped by [`shutdown`](Self::shutdown).
    ///
    /// # Errors
    ///
    /// [`InputError::Unexpected`] unless the machine is idle or closed.
    pub fn start(&mut self, now: Instant) -> Result<(), InputError> {
        match self.state {
            State::Idle | State::Closed => {
                self.connect(now);
                Ok(())
            }
            _ => Err(self.unexpected(InputKind::Start)),
        }
    }

    /// Hand over the body of `GET /gateway/bot` (or just a URL from `GET
    /// /gateway`): its URL becomes the Gateway URL (new sessions, and
    /// resumes whose resume URL cannot be reached), and its
    /// `session_start_limit` gates IDENTIFY. Accepted in any state.
    pub fn set_gateway_info(&mut self, info: GatewayInfo, now: Instant) {
        self.gateway_url = info.url;
        self.start_limit = info.session_start_limit.map(|limit| StartLimit {
            total: limit.total,
            remaining: limit.remaining,
            reset_at: now + Duration::from_millis(limit.reset_after),
            max_concurrency: limit.max_concurrency.max(1),
        });
    }

    /// Import a persisted session to resume on the next connection.
    ///
    /// # Errors
    ///
    /// [`InputError::Unexpected`] unless the machine is idle or closed.
    pub fn set_session(&mut self, session: Session) -> Result<(), InputError> {
        match self.state {
            State::Idle | State::Closed => {
                self.import_session(session);
                Ok(())
            }
            _ => Err(self.unexpected(InputKind::SetSession)),
        }
    }

    /// Record that every dispatch up to `seq` is safely handled downstream.
    /// With [`manual_acknowledge`](crate::ConfigBuilder::manual_acknowledge)
    /// on, only this advances the exported session's seq and the seq a
    /// RESUME asks for, so Discord replays whatever was received but not
    /// acknowledged. Heartbeats keep carrying the latest seq received.
    /// Values above the highest seq received are clamped; lower values than
    /// the current acknowledgement are ignored.
    pub fn acknowledge(&mut self, seq: u64) {
        let Some(highest) = self.highest_seq else {
            return;
        };
        let seq = seq.min(highest);
        if self.acked_seq.is_none_or(|acked| seq > acked) {
            self.acked_seq = Some(seq);
        }
    }

    /// Queue a command (op 3, 4, 8, ...). It is sent once the session is
    /// connected and the rate limit allows: never more than 120 payloads per
    /// 60 s per connection, with room always kept for heartbeats
    /// (`events/gateway.mdx`, "Rate Limiting"). Commands queued while
    /// disconnected are sent after the next READY/RESUMED.
    ///
    /// # Errors
    ///
    /// [`SendError::QueueFull`] when the bounded queue is full,
    /// [`SendError::Stopped`] after a fatal error or shutdown.
    pub fn send(&mut self, command: &Command, now: Instant) -> Result<(), SendError> {
        if matches!(self.state, State::Fatal(_) | State::Closed)
            || matches!(
                self.state,
                State::Closing {
                    then: AfterClose::Shutdown
                }
            )
        {
            return Err(SendError::Stopped);
        }
        if self.commands.len() >= self.config.command_queue {
            return Err(SendError::QueueFull {
                capacity: self.config.command_queue,
            });
        }
        self.commands.push_back(command.payload().to_owned());
        self.flush(now);
        Ok(())
    }

    /// Close the session so it stays resumable: a close frame with
    /// [`RESUMABLE_CLOSE_CODE`] (never 1000/1001, which would invalidate
    /// it), then [`Event::Shutdown`] once the peer answered or the close
    /// deadline passed. Export [`session`](Self::session) afterwards to
    /// resume in a later process.
    ///
    /// # Errors
    ///
    /// [`InputError::Unexpected`] if the machine is already closed or fatal.
    pub fn shutdown(&mut self, now: Instant) -> Result<(), InputError> {
        match &mut self.state {
            State::AwaitingHello
            | State::Identifying
            | State::Resuming { .. }
            | State::Connected { .. } => {
                self.link = None;
                self.timers.stop_all();
                self.transmits.push_back(Transmit::Close {
                    code: RESUMABLE_CLOSE_CODE,
                    reason: "shutting down".to_owned(),
                });
                self.timers
                    .set(Timer::Phase, now + self.config.close_timeout);
                self.state = State::Closing {
                    then: AfterClose::Shutdown,
                };
                Ok(())
            }
            State::Closing { then } => {
                *then = AfterClose::Shutdown;
                Ok(())
            }
            State::Connecting => {
                self.transmits.push_back(Transmit::Drop);
                self.finish_shutdown();
                Ok(())
            }
            State::Idle | State::WaitingToReconnect => {
                self.finish_shutdown();
                Ok(())
            }
            State::Closed | State::Fatal(_) => Err(self.unexpected(InputKind::Shutdown)),
        }
    }

    // ----- Transport inputs -------------------------------------------------

    /// The transport asked for by [`Transmit::Connect`] is open.
    ///
    /// # Errors
    ///
    /// [`InputError::Unexpected`] unless a connect is in progress.
    pub fn handle_connected(&mut self, now: Instant) -> Result<(), InputError> {
        if self.state != State::Connecting {
            return Err(self.unexpected(InputKind::Connected));
        }
        if let Some(link) = &mut self.link {
            link.opened = true;
        }
        self.state = State::AwaitingHello;
        self.timers
            .set(Timer::Phase, now + self.config.hello_timeout);
        Ok(())
    }

    /// The transport asked for by [`Transmit::Connect`] could not be opened
    /// (DNS, TCP, TLS or WebSocket handshake failure).
    ///
    /// # Errors
    ///
    /// [`InputError::Unexpected`] unless a connect is in progress.
    pub fn handle_connect_failed(&mut self, now: Instant) -> Result<(), InputError> {
        if self.state != State::Connecting {
            return Err(self.unexpected(InputKind::ConnectFailed));
        }
        self.reconnect(
            now,
            ReconnectReason::ConnectFailed,
            CloseAction::Resume,
            Teardown::Gone,
        );
        Ok(())
    }

    /// A text frame arrived.
    ///
    /// # Errors
    ///
    /// [`InputError::Unexpected`] if no connection is open;
    /// [`InputError::Decode`] for an undecodable frame (the machine has
    /// already dropped the connection to resume).
    pub fn handle_text(&mut self, text: &str, now: Instant) -> Result<(), InputError> {
        self.check_frame_allowed()?;
        if let Some(link) = &mut self.link {
            if let Some(heartbeat) = &mut link.heartbeat {
                heartbeat.on_frame();
            }
        }
        self.on_message(text.as_bytes(), now)
    }

    /// A binary frame arrived (transport compression). Partial zlib messages
    /// are buffered until complete.
    ///
    /// # Errors
    ///
    /// [`InputError::Unexpected`] if no connection is open;
    /// [`InputError::Decompress`] / [`InputError::Decode`] for a bad frame
    /// (the machine has already dropped the connection to resume).
    pub fn handle_binary(&mut self, frame: &[u8], now: Instant) -> Result<(), InputError> {
        self.check_frame_allowed()?;
        if let Some(link) = &mut self.link {
            if let Some(heartbeat) = &mut link.heartbeat {
                heartbeat.on_frame();
            }
        }
        let Some(mut decompressor) = self.decompressor.take() else {
            return self.on_message(frame, now);
        };
        let result = match decompressor.push(frame) {
            Ok(Some(message)) => self.on_message(message, now),
            Ok(None) => Ok(()),
            Err(e) => {
                if !matches!(self.state, State::Closing { .. }) {
                    self.reconnect(
                        now,
                        ReconnectReason::BadFrame,
                        CloseAction::Resume,
                        Teardown::Drop,
                    );
                }
                Err(InputError::Decompress(e))
            }
        };
        self.decompressor = Some(decompressor);
        result
    }

    /// The transport closed: `code` is the close frame's code, `None` if it
    /// dropped without one (reset, EOF, TLS error).
    ///
    /// # Errors
    ///
    /// [`InputError::Unexpected`] if no transport was open or connecting.
    pub fn handle_closed(
        &mut self,
        code: Option<u16>,
        reason: &str,
        now: Instant,
    ) -> Result<(), InputError> {
        let _ = reason;
        match &self.state {
            State::Connecting => {
                self.reconnect(
                    now,
                    ReconnectReason::ConnectFailed,
                    CloseAction::Resume,
                    Teardown::Gone,
                );
                Ok(())
            }
            State::AwaitingHello
            | State::Identifying
            | State::Resuming { .. }
            | State::Connected { .. } => {
                let close = CloseCode::from_code(code);
                match close.action() {
                    CloseAction::Fatal => {
                        let error =
                            FatalError::from_close(close, self.config.intents, self.config.shard);
                        match error {
                            Some(error) => self.enter_fatal(error),
                            None => self.reconnect(
                                now,
                                ReconnectReason::Closed(close),
                                CloseAction::Resume,
                                Teardown::Gone,
                            ),
                        }
                    }
                    action => {
                        self.reconnect(now, ReconnectReason::Closed(close), action, Teardown::Gone);
                    }
                }
                Ok(())
            }
            State::Closing { .. } => {
                self.finish_close(now);
                Ok(())
            }
            _ => Err(self.unexpected(InputKind::Closed)),
        }
    }

    /// Time passed: run every timer due at `now`. Calling it early is
    /// harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        for timer in TimerTable::all() {
            if self.timers.take_expired(timer, now) {
                self.on_timer(timer, now);
            }
        }
    }

    /// Feed any [`Input`]: one entry point for fuzzers, property tests and
    /// recorded sessions.
    ///
    /// # Errors
    ///
    /// Whatever the matching `handle_*` method returns.
    pub fn handle(&mut self, input: Input, now: Instant) -> Result<(), InputError> {
        match input {
            Input::Start => self.start(now),
            Input::GatewayInfo(info) => {
                self.set_gateway_info(info, now);
                Ok(())
            }
            Input::SetSession(session) => self.set_session(session),
            Input::Connected => self.handle_connected(now),
            Input::ConnectFailed => self.handle_connect_failed(now),
            Input::Text(text) => self.handle_text(&text, now),
            Input::Binary(frame) => self.handle_binary(&frame, now),
            Input::Closed { code, reason } => self.handle_closed(code, &reason, now),
            Input::Timeout => {
                self.handle_timeout(now);
                Ok(())
            }
            Input::Send(command) => self.send(&command, now).map_err(InputError::Send),
            Input::Acknowledge(seq) => {
                self.acknowledge(seq);
                Ok(())
            }
            Input::Shutdown => self.shutdown(now),
        }
    }

    // ----- Internals --------------------------------------------------------

    fn unexpected(&self, input: InputKind) -> InputError {
        InputError::Unexpected {
            input,
            state: self.state.kind(),
        }
    }

    fn check_frame_allowed(&self) -> Result<(), InputError> {
        if self.state.has_transport() {
            Ok(())
        } else {
            Err(self.unexpected(InputKind::Frame))
        }
    }

    fn import_session(&mut self, session: Session) {
        self.session = Some(SessionInfo {
            id: session.id,
            resume_url: session.resume_url,
        });
        self.latest_seq = Some(session.seq);
        self.highest_seq = Some(session.seq);
        self.acked_seq = Some(session.seq);
        self.delivered_seq = Some(session.seq);
        self.resume_failures = 0;
        self.resume_url_unreachable = false;
    }

    /// Forget the session: the next connection identifies.
    fn drop_session(&mut self) {
        self.session = None;
        self.latest_seq = None;
        self.highest_seq = None;
        self.acked_seq = None;
        self.delivered_seq = None;
        self.resume_failures = 0;
        self.resume_url_unreachable = false;
    }

    /// When the next IDENTIFY may happen, if it must wait.
    fn identify_wait(&mut self, now: Instant) -> Option<Instant> {
        let limit = self.start_limit.as_mut()?;
        // `session_start_limit` (`events/gateway.mdx`, "Session Start
        // Limit Object"): while `remaining` is 0, wait for `reset_after`.
        if limit.remaining == 0 && now >= limit.reset_at {
            limit.remaining = limit.total;
            limit.reset_at = now + START_LIMIT_PERIOD;
        }
        let mut wait = (limit.remaining == 0).then_some(limit.reset_at);
        // At most `max_concurrency` IDENTIFYs per 5 s (over that Discord
        // answers with op 9).
        while self
            .identifies
            .front()
            .is_some_and(|&t| t + IDENTIFY_WINDOW <= now)
        {
            self.identifies.pop_front();
        }
        let concurrency = usize::try_from(limit.max_concurrency).unwrap_or(usize::MAX);
        if self.identifies.len() >= concurrency {
            if let Some(&oldest) = self.identifies.front() {
                let free = oldest + IDENTIFY_WINDOW;
                wait = Some(wait.map_or(free, |w| w.max(free)));
            }
        }
        wait.filter(|&at| at > now)
    }

    /// Open a new connection now (or wait for the identify budget).
    fn connect(&mut self, now: Instant) {
        if self.session.is_none() {
            if let Some(at) = self.identify_wait(now) {
                self.link = None;
                self.state = State::WaitingToReconnect;
                self.timers.stop_all();
                self.timers.set(Timer::Reconnect, at);
                self.events.push_back(Event::Reconnecting {
                    reason: ReconnectReason::SessionStartLimit,
                    resume: false,
                    delay: at - now,
                });
                return;
            }
        }
        let resuming = self.session.is_some();
        // Resume on `resume_gateway_url`; if it could not be reached, fall
        // back to the Gateway URL (`events/gateway.mdx`, "Handling a
        // Disconnect": "If you cannot reconnect or the reconnect fails, you
        // should open a new connection using the URL from ... Get Gateway").
        let via_resume_url = resuming && !self.resume_url_unreachable;
        let base = match (&self.session, via_resume_url) {
            (Some(session), true) => session.resume_url.as_str(),
            _ => self.gateway_url.as_str(),
        };
        let url = gateway_url(base, self.compression);
        if let Some(decompressor) = &mut self.decompressor {
            // One context per connection, fresh for each one.
            if decompressor.reset().is_err() {
                self.decompressor = None;
            }
        }
        self.link = Some(Link {
            resuming,
            via_resume_url,
            opened: false,
            heartbeat: None,
            limiter: RateLimiter::default(),
            priority: VecDeque::new(),
        });
        self.timers.stop_all();
        self.timers
            .set(Timer::Phase, now + self.config.connect_timeout);
        self.state = State::Connecting;
        self.transmits.push_back(Transmit::Connect { url });
    }

    /// End the current connection (attempt) and schedule the next one.
    fn reconnect(
        &mut self,
        now: Instant,
        reason: ReconnectReason,
        action: CloseAction,
        teardown: Teardown,
    ) {
        let was_live = matches!(self.state, State::Connected { .. });
        if let Some(link) = &self.link {
            // A connection opened to resume that ends before RESUMED is a
            // failed resume.
            if link.resuming && !was_live && action == CloseAction::Resume {
                self.resume_failures = self.resume_failures.saturating_add(1);
                if !link.opened && link.via_resume_url {
                    self.resume_url_unreachable = true;
                }
            }
        }
        if action == CloseAction::NewSession {
            self.drop_session();
        } else if self.session.is_some() && self.resume_failures >= self.config.max_resume_failures
        {
            // Circuit breaker: resuming keeps failing, so stop resuming and
            // identify a new session instead of looping (openclaw #13061).
            self.drop_session();
        }
        if let State::Connected { since } = self.state {
            if now.saturating_duration_since(since) >= self.config.healthy_after {
                self.backoff.reset();
            }
        }
        let mut delay = self.backoff.next_delay(&mut self.rng);
        if reason == (ReconnectReason::InvalidSession { resumable: false }) {
            let wait = Duration::from_millis(self.rng.u64(INVALID_SESSION_DELAY_MS));
            delay = delay.max(wait);
        }
        self.link = None;
        self.timers.stop_all();
        self.events.push_back(Event::Reconnecting {
            reason,
            resume: self.session.is_some(),
            delay,
        });
        let at = now + delay;
        match teardown {
            Teardown::Close => {
                self.transmits.push_back(Transmit::Close {
                    code: RESUMABLE_CLOSE_CODE,
                    reason: reason.to_string(),
                });
                self.timers
                    .set(Timer::Phase, now + self.config.close_timeout);
                self.state = State::Closing {
                    then: AfterClose::Reconnect { at },
                };
            }
            Teardown::Drop => {
                self.transmits.push_back(Transmit::Drop);
                self.wait_to_reconnect(at);
            }
            Teardown::Gone => self.wait_to_reconnect(at),
        }
    }

    fn wait_to_reconnect(&mut self, at: Instant) {
        self.state = State::WaitingToReconnect;
        self.timers.stop_all();
        self.timers.set(Timer::Reconnect, at);
    }

    fn finish_close(&mut self, now: Instant) {
        match &self.state {
            State::Closing {
                then: AfterClose::Reconnect { at },
            } => {
                let at = (*at).max(now);
                self.wait_to_reconnect(at);
            }
            State::Closing {
                then: AfterClose::Shutdown,
            } => self.finish_shutdown(),
            _ => {}
        }
    }

    fn finish_shutdown(&mut self) {
        self.link = None;
        self.timers.stop_all();
        self.state = State::Closed;
        self.events.push_back(Event::Shutdown);
    }

    fn enter_fatal(&mut self, error: FatalError) {
        self.link = None;
        self.timers.stop_all();
        self.commands.clear();
        self.state = State::Fatal(error.clone());
        self.events.push_back(Event::Fatal(error));
    }

    fn on_timer(&mut self, timer: Timer, now: Instant) {
        match timer {
            Timer::Phase => self.on_phase_deadline(now),
            Timer::Heartbeat => self.on_heartbeat_due(now),
            Timer::Reconnect => {
                if self.state == State::WaitingToReconnect {
                    self.connect(now);
                }
            }
            Timer::SendQueue => self.flush(now),
        }
    }

    /// Every phase has a deadline; a missed one counts as a dropped
    /// connection (the transport is aborted, then we reconnect).
    fn on_phase_deadline(&mut self, now: Instant) {
        let phase = match self.state {
            State::Connecting => Phase::Connect,
            State::AwaitingHello => Phase::Hello,
            State::Identifying => Phase::Ready,
            State::Resuming { .. } => Phase::Resumed,
            State::Closing { .. } => {
                // The peer never answered our close: abort the transport
                // rather than wait forever on a dead TCP connection
                // (twilight #2380).
                self.transmits.push_back(Transmit::Drop);
                self.finish_close(now);
                return;
            }
            _ => return,
        };
        self.reconnect(
            now,
            ReconnectReason::Deadline(phase),
            CloseAction::Resume,
            Teardown::Drop,
        );
    }

    fn on_heartbeat_due(&mut self, now: Instant) {
        let Some(heartbeat) = self.link.as_mut().and_then(|l| l.heartbeat.as_mut()) else {
            return;
        };
        match heartbeat.due(now) {
            Beat::Send { next } => {
                self.timers.set(Timer::Heartbeat, next);
                let payload = codec::encode_heartbeat(self.latest_seq);
                self.send_priority(payload, now);
            }
            Beat::Zombie => {
                // Zombied connection (`events/gateway.mdx`, "Sending
                // Heartbeats"): terminate with a code other than 1000/1001
                // and resume. We drop the transport instead of waiting for a
                // close handshake that a dead connection never completes.
                self.reconnect(
                    now,
                    ReconnectReason::Zombie,
                    CloseAction::Resume,
                    Teardown::Drop,
                );
            }
        }
    }

    fn send_priority(&mut self, payload: String, now: Instant) {
        let Some(link) = &mut self.link else {
            return;
        };
        if link.priority.len() >= PRIORITY_QUEUE {
            return;
        }
        link.priority.push_back(payload);
        self.flush(now);
    }

    /// Send what the rate limit allows: first heartbeats/IDENTIFY/RESUME,
    /// then (only while connected) queued commands.
    fn flush(&mut self, now: Instant) {
        let connected = matches!(self.state, State::Connected { .. });
        let Some(link) = &mut self.link else {
            self.timers.stop(Timer::SendQueue);
            return;
        };
        while !link.priority.is_empty() && link.limiter.can_send(now, true) {
            if let Some(payload) = link.priority.pop_front() {
                link.limiter.record(now);
                self.transmits.push_back(Transmit::Send(payload));
            }
        }
        if connected && link.priority.is_empty() {
            while !self.commands.is_empty() && link.limiter.can_send(now, false) {
                if let Some(payload) = self.commands.pop_front() {
                    link.limiter.record(now);
                    self.transmits.push_back(Transmit::Send(payload));
                }
            }
        }
        let waiting = !link.priority.is_empty() || (connected && !self.commands.is_empty());
        match link.limiter.next_free().filter(|_| waiting) {
            Some(at) => self.timers.set(Timer::SendQueue, at.max(now)),
            None => self.timers.stop(Timer::SendQueue),
        }
    }

    fn bad_frame(&mut self, now: Instant, error: DecodeError) -> InputError {
        self.reconnect(
            now,
            ReconnectReason::BadFrame,
            CloseAction::Resume,
            Teardown::Drop,
        );
        InputError::Decode(error)
    }

    /// One complete (decompressed) message.
    fn on_message(&mut self, bytes: &[u8], now: Instant) -> Result<(), InputError> {
        if matches!(self.state, State::Closing { .. }) {
            // We are leaving this connection; anything still arriving will
            // be replayed on resume (it was never acknowledged).
            return Ok(());
        }
        let frame = match codec::decode_frame(bytes) {
            Ok(frame) => frame,
            Err(e) => return Err(self.bad_frame(now, e)),
        };
        match frame.op {
            OpCode::Dispatch => self.on_dispatch(&frame, now),
            OpCode::Heartbeat => {
                // Heartbeat request (`events/gateway.mdx`, "Heartbeat
                // Requests"): send one immediately, outside the interval.
                let payload = codec::encode_heartbeat(self.latest_seq);
                self.send_priority(payload, now);
                Ok(())
            }
            OpCode::HeartbeatAck => {
                if let Some(heartbeat) = self.link.as_mut().and_then(|l| l.heartbeat.as_mut()) {
                    heartbeat.on_ack(now);
                    self.latency = heartbeat.latency().or(self.latency);
                }
                Ok(())
            }
            OpCode::Hello => self.on_hello(&frame, now),
            OpCode::Reconnect => {
                // Reconnect (`events/gateway-events.mdx`, "Reconnect"):
                // reconnect and resume; it may come at any point, even
                // before HELLO.
                self.reconnect(
                    now,
                    ReconnectReason::Reconnect,
                    CloseAction::Resume,
                    Teardown::Close,
                );
                Ok(())
            }
            OpCode::InvalidSession => {
                // Invalid Session (`events/gateway-events.mdx`): `d: true`
                // -> reconnect and resume; `d: false` -> reconnect and
                // identify a new session (after a short jittered wait).
                let resumable = codec::decode_invalid_session(frame.data);
                let action = if resumable {
                    CloseAction::Resume
                } else {
                    CloseAction::NewSession
                };
                self.reconnect(
                    now,
                    ReconnectReason::InvalidSession { resumable },
                    action,
                    Teardown::Close,
                );
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn on_hello(&mut self, frame: &Frame<'_>, now: Instant) -> Result<(), InputError> {
        if self.state != State::AwaitingHello {
            // A second HELLO on the same connection: nothing to do.
            return Ok(());
        }
        let interval = match codec::decode_hello(frame.data) {
            Ok(interval) => interval,
            Err(e) => return Err(self.bad_frame(now, e)),
        };
        // First heartbeat after `heartbeat_interval * jitter`, jitter in
        // [0, 1) (`events/gateway.mdx`, "Heartbeat Interval").
        let jitter = self.rng.f64();
        let (heartbeat, first) = Heartbeat::start(interval, jitter, now);
        let Some(link) = &mut self.link else {
            return Ok(());
        };
        link.heartbeat = Some(heartbeat);
        link.limiter.set_heartbeat_interval(interval);
        let resuming = link.resuming;
        self.timers.set(Timer::Heartbeat, first);
        self.timers
            .set(Timer::Phase, now + self.config.ready_timeout);
        match (&self.session, resuming) {
            (Some(session), true) => {
                // Resume (`events/gateway.mdx`, "Preparing to Resume"):
                // token, session_id and the seq to replay from. That is the
                // acknowledged seq, so Discord replays what the application
                // has not safely handled yet.
                let payload = codec::encode_resume(
                    &self.config.token,
                    &session.id,
                    self.acked_seq.unwrap_or(0),
                );
                self.state = State::Resuming { replayed: 0 };
                self.send_priority(payload, now);
            }
            _ => {
                let payload = codec::encode_identify(&IdentifyFields {
                    token: &self.config.token,
                    intents: self.config.intents,
                    properties: &self.config.properties,
                    shard: self.config.shard,
                    large_threshold: self.config.large_threshold,
                });
                if let Some(limit) = &mut self.start_limit {
                    limit.remaining = limit.remaining.saturating_sub(1);
                }
                self.identifies.push_back(now);
                self.state = State::Identifying;
                self.send_priority(payload, now);
            }
        }
        Ok(())
    }

    fn on_dispatch(&mut self, frame: &Frame<'_>, now: Instant) -> Result<(), InputError> {
        let name = frame.name.as_deref().unwrap_or("");
        if let Some(seq) = frame.seq {
            // Cache the most recent non-null `s` for heartbeats
            // (`events/gateway.mdx`, "Dispatch Events").
            self.latest_seq = Some(seq);
            self.highest_seq = Some(self.highest_seq.map_or(seq, |h| h.max(seq)));
        }
        match name {
            "READY" => {
                let (id, resume_url) = match codec::decode_ready_session(frame.data) {
                    Ok(fields) => fields,
                    Err(e) => return Err(self.bad_frame(now, e)),
                };
                self.session = Some(SessionInfo {
                    id: id.clone(),
                    resume_url,
                });
                self.resume_failures = 0;
                self.resume_url_unreachable = false;
                self.timers.stop(Timer::Phase);
                self.state = State::Connected { since: now };
                self.events.push_back(Event::Ready { session_id: id });
            }
            "RESUMED" => {
                let replayed = match self.state {
                    State::Resuming { replayed } => replayed,
                    _ => 0,
                };
                self.resume_failures = 0;
                self.timers.stop(Timer::Phase);
                self.state = State::Connected { since: now };
                self.events.push_back(Event::Resumed { replayed });
            }
            _ => {
                if let State::Resuming { replayed } = &mut self.state {
                    *replayed += 1;
                    // A long replay is progress: push the deadline back.
                    self.timers
                        .set(Timer::Phase, now + self.config.ready_timeout);
                }
            }
        }
        self.deliver(name, frame);
        if matches!(name, "READY" | "RESUMED") {
            self.flush(now);
        }
        Ok(())
    }

    /// Hand a dispatch to the application as the filter says, and keep the
    /// acknowledged seq in step.
    fn deliver(&mut self, name: &str, frame: &Frame<'_>) {
        let decision = self.config.events.decide(name);
        let event = match codec::decode_dispatch(name, frame.data, decision) {
            Ok(event) => event,
            // A typed event with an unexpected shape is passed through raw
            // rather than lost.
            Err(_) => codec::decode_dispatch(name, frame.data, Decision::Raw).unwrap_or(None),
        };
        let seq = frame.seq;
        match event {
            Some(event) => {
                if let Some(s) = seq {
                    self.delivered_seq = Some(s);
                    if !self.config.manual_acknowledge {
                        self.acked_seq = Some(s);
                    }
                }
                self.events.push_back(Event::Dispatch(Dispatch {
                    seq: seq.unwrap_or(0),
                    event,
                }));
            }
            None => {
                // Dropped by the filter: nothing to acknowledge downstream,
                // so it counts as handled once everything delivered before
                // it has been acknowledged.
                if let Some(s) = seq {
                    let caught_up = self.delivered_seq.is_none_or(|delivered| {
                        self.acked_seq.is_some_and(|acked| acked >= delivered)
                    });
                    if !self.config.manual_acknowledge || caught_up {
                        self.acked_seq = Some(s);
                        self.delivered_seq = Some(s);
                    }
                }
            }
        }
    }
}
