//! Incoming messages: opcodes, HELLO, dispatches and their delivery.

use std::time::Instant;

use super::{Gateway, SessionInfo, Teardown};
use crate::close_code::CloseAction;
use crate::codec::{self, Frame, IdentifyFields};
use crate::dispatch::{Decision, Dispatch};
use crate::error::{DecodeError, InputError};
use crate::event::{Event, ReconnectReason};
use crate::heartbeat::Heartbeat;
use crate::opcode::OpCode;
use crate::state::State;
use crate::timer::Timer;

impl Gateway {
    pub(super) fn bad_frame(&mut self, now: Instant, error: DecodeError) -> InputError {
        self.reconnect(
            now,
            ReconnectReason::BadFrame,
            CloseAction::Resume,
            Teardown::Drop,
        );
        InputError::Decode(error)
    }

    /// One complete (decompressed) message.
    pub(super) fn on_message(&mut self, bytes: &[u8], now: Instant) -> Result<(), InputError> {
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

    pub(super) fn on_hello(&mut self, frame: &Frame<'_>, now: Instant) -> Result<(), InputError> {
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
                // Identify (`events/gateway.mdx`, "Identifying"): token,
                // intents, properties, optional shard and large_threshold.
                // The identify budget was checked before connecting.
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
                if self.identifies.len() >= super::IDENTIFY_HISTORY {
                    self.identifies.pop_front();
                }
                self.identifies.push_back(now);
                self.state = State::Identifying;
                self.send_priority(payload, now);
            }
        }
        Ok(())
    }

    pub(super) fn on_dispatch(
        &mut self,
        frame: &Frame<'_>,
        now: Instant,
    ) -> Result<(), InputError> {
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
    pub(super) fn deliver(&mut self, name: &str, frame: &Frame<'_>) {
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
