//! Prometheus counters and gauges of the hub, rendered as text for `GET /metrics`.
//!
//! Counters are plain atomics: incrementing one is a single relaxed add on the hot path.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every metric the hub exports. Shared as `Arc<Metrics>`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Open WebSocket connections (gauge).
    pub ws_connections: AtomicU64,
    /// Successful WebSocket authentications.
    pub auth_ok: AtomicU64,
    /// Failed authentications, invalid token.
    pub auth_failed_invalid: AtomicU64,
    /// Failed authentications, no auth message in time.
    pub auth_failed_timeout: AtomicU64,
    /// Failed authentications, malformed first message.
    pub auth_failed_malformed: AtomicU64,
    /// Events accepted from the worker and appended to the stream.
    pub events_in: AtomicU64,
    /// Webhook deliveries recognised as duplicates or replays.
    pub events_duplicate: AtomicU64,
    /// Frames queued to clients (one per client per event).
    pub events_out: AtomicU64,
    /// Clients closed with 1013 because their queue overflowed.
    pub evictions: AtomicU64,
    /// `since` resumes served from the replay buffer.
    pub replays_served: AtomicU64,
    /// Snapshots sent (auth without resumable `since`).
    pub snapshots_served: AtomicU64,
    /// Webhook requests rejected (bad signature, skew, malformed).
    pub webhook_rejected: AtomicU64,
    /// Discord REST requests by outcome class.
    pub discord_requests_2xx: AtomicU64,
    /// Discord REST requests answered 4xx (429 excluded).
    pub discord_requests_4xx: AtomicU64,
    /// Discord REST requests answered 429.
    pub discord_requests_429: AtomicU64,
    /// Discord REST requests answered 5xx or failed in transport.
    pub discord_requests_5xx: AtomicU64,
    /// Sum of Discord REST latencies in microseconds (with the count, gives the mean).
    pub discord_latency_us_sum: AtomicU64,
    /// Number of Discord REST requests timed.
    pub discord_latency_count: AtomicU64,
    /// Rooms created.
    pub rooms_created: AtomicU64,
    /// Rooms deleted (end-room, idle sweeper or Discord).
    pub rooms_deleted: AtomicU64,
}

/// Adds one to a counter.
pub fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    /// Renders every metric in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        metric(
            "hub_ws_connections",
            "gauge",
            "Open WebSocket connections.",
            &[("", get(&self.ws_connections))],
        );
        metric(
            "hub_auth_total",
            "counter",
            "WebSocket authentications by result.",
            &[
                ("{result=\"ok\"}", get(&self.auth_ok)),
                ("{result=\"invalid_token\"}", get(&self.auth_failed_invalid)),
                ("{result=\"timeout\"}", get(&self.auth_failed_timeout)),
                ("{result=\"malformed\"}", get(&self.auth_failed_malformed)),
            ],
        );
        metric(
            "hub_events_in_total",
            "counter",
            "Events accepted from the worker.",
            &[("", get(&self.events_in))],
        );
        metric(
            "hub_events_duplicate_total",
            "counter",
            "Webhook deliveries dropped as duplicates or replays.",
            &[("", get(&self.events_duplicate))],
        );
        metric(
            "hub_events_out_total",
            "counter",
            "Event frames queued to clients.",
            &[("", get(&self.events_out))],
        );
        metric(
            "hub_evictions_total",
            "counter",
            "Clients closed with 1013 for a full queue.",
            &[("", get(&self.evictions))],
        );
        metric(
            "hub_replays_served_total",
            "counter",
            "Resumes served from the replay buffer.",
            &[("", get(&self.replays_served))],
        );
        metric(
            "hub_snapshots_served_total",
            "counter",
            "Snapshots sent to clients.",
            &[("", get(&self.snapshots_served))],
        );
        metric(
            "hub_webhook_rejected_total",
            "counter",
            "Webhook requests rejected.",
            &[("", get(&self.webhook_rejected))],
        );
        metric(
            "hub_discord_requests_total",
            "counter",
            "Discord REST requests by status class.",
            &[
                ("{status=\"2xx\"}", get(&self.discord_requests_2xx)),
                ("{status=\"4xx\"}", get(&self.discord_requests_4xx)),
                ("{status=\"429\"}", get(&self.discord_requests_429)),
                ("{status=\"5xx\"}", get(&self.discord_requests_5xx)),
            ],
        );
        let _ = writeln!(
            out,
            "# HELP hub_discord_latency_seconds Discord REST latency.\n\
             # TYPE hub_discord_latency_seconds summary\n\
             hub_discord_latency_seconds_sum {}\nhub_discord_latency_seconds_count {}",
            get(&self.discord_latency_us_sum) as f64 / 1e6,
            get(&self.discord_latency_count)
        );
        let _ = writeln!(
            out,
            "# HELP hub_rooms_total Rooms created and deleted.\n# TYPE hub_rooms_total counter\n\
             hub_rooms_total{{op=\"created\"}} {}\nhub_rooms_total{{op=\"deleted\"}} {}",
            get(&self.rooms_created),
            get(&self.rooms_deleted)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters() {
        let m = Metrics::default();
        inc(&m.auth_ok);
        let text = m.render();
        assert!(text.contains("hub_auth_total{result=\"ok\"} 1"));
        assert!(text.contains("# TYPE hub_ws_connections gauge"));
    }
}
