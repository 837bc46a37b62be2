//! Connection lifecycle: connecting, reconnecting (backoff, resume
//! accounting, circuit breaker), closing, timers and deadlines.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{
    Gateway, IDENTIFY_WINDOW, INVALID_SESSION_DELAY_MS, Link, RESUMABLE_CLOSE_CODE,
    START_LIMIT_PERIOD, SessionInfo, Teardown,
};
use crate::close_code::CloseAction;
use crate::codec;
use crate::error::FatalError;
use crate::event::{Event, Phase, ReconnectReason};
use crate::heartbeat::Beat;
use crate::ratelimit::RateLimiter;
use crate::session::Session;
use crate::state::{AfterClose, State};
use crate::timer::Timer;
use crate::transmit::Transmit;
use crate::url::gateway_url;

impl Gateway {
    pub(super) fn import_session(&mut self, session: Session) {
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
    pub(super) fn drop_session(&mut self) {
        self.session = None;
        self.latest_seq = None;
        self.highest_seq = None;
        self.acked_seq = None;
        self.delivered_seq = None;
        self.resume_failures = 0;
        self.resume_url_unreachable = false;
    }

    /// When the next IDENTIFY may happen, if it must wait.
    pub(super) fn identify_wait(&mut self, now: Instant) -> Option<Instant> {
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
    pub(super) fn connect(&mut self, now: Instant) {
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
    pub(super) fn reconnect(
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

    pub(super) fn wait_to_reconnect(&mut self, at: Instant) {
        self.state = State::WaitingToReconnect;
        self.timers.stop_all();
        self.timers.set(Timer::Reconnect, at);
    }

    pub(super) fn finish_close(&mut self, now: Instant) {
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

    pub(super) fn finish_shutdown(&mut self) {
        self.link = None;
        self.timers.stop_all();
        self.state = State::Closed;
        self.events.push_back(Event::Shutdown);
    }

    pub(super) fn enter_fatal(&mut self, error: FatalError) {
        self.link = None;
        self.timers.stop_all();
        self.commands.clear();
        self.state = State::Fatal(error.clone());
        self.events.push_back(Event::Fatal(error));
    }

    pub(super) fn on_timer(&mut self, timer: Timer, now: Instant) {
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
    pub(super) fn on_phase_deadline(&mut self, now: Instant) {
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

    pub(super) fn on_heartbeat_due(&mut self, now: Instant) {
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
}
