//! The session machine: its state, the public API, and the inputs.

mod inbound;
mod lifecycle;
mod outbound;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::close_code::{CloseAction, CloseCode};
use crate::command::Command;
use crate::compression::Decompressor;
use crate::config::{Compression, Config};
use crate::error::{FatalError, InputError, InputKind, SendError};
use crate::event::{Event, ReconnectReason};
use crate::heartbeat::Heartbeat;
use crate::input::Input;
use crate::ratelimit::RateLimiter;
use crate::session::{GatewayInfo, Session};
use crate::state::{AfterClose, State, StateKind};
use crate::timer::{Timer, TimerTable};
use crate::transmit::Transmit;

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

/// How many IDENTIFY instants are remembered (far more than any
/// `max_concurrency` within 5 s needs).
const IDENTIFY_HISTORY: usize = 64;

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
    /// When recent IDENTIFYs were sent (for `max_concurrency`); at most
    /// [`IDENTIFY_HISTORY`] entries.
    identifies: VecDeque<Instant>,
    backoff: Backoff,
    resume_failures: u32,
    resume_url_unreachable: bool,
    link: Option<Link>,
    decompressor: Option<Decompressor>,
    compression: Compression,
    /// Commands waiting for a connection or the rate limit; bounded by
    /// `Config::command_queue` (a full queue refuses `send`).
    commands: VecDeque<String>,
    /// Output queues. Each input adds a small, fixed number of entries (at
    /// most a few transmits and events, plus the commands the rate limit
    /// releases), and the driver drains them after every input, so they stay
    /// small by construction.
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

    // ----- Internals (see also lifecycle.rs, inbound.rs, outbound.rs) -----

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
}
