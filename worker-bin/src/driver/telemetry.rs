//! Keeping the shared telemetry (health and metrics) current.

use gateway_proto::ReconnectReason;

use super::Driver;

pub(super) fn reason_label(reason: &ReconnectReason) -> String {
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
    pub(super) fn update_telemetry(&mut self) {
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
