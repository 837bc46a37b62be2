//! Outgoing payloads under the rate limit.

use std::time::Instant;

use super::{Gateway, PRIORITY_QUEUE};
use crate::state::State;
use crate::timer::Timer;
use crate::transmit::Transmit;

impl Gateway {
    pub(super) fn send_priority(&mut self, payload: String, now: Instant) {
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
    pub(super) fn flush(&mut self, now: Instant) {
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
}
