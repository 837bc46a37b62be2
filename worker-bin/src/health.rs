//! `HEALTH_ADDR`: `GET /health` (JSON) and `GET /metrics` (Prometheus text).
//!
//! The driver updates one [`Telemetry`] value; the server renders it. The
//! server is plain hyper HTTP/1.1; anything but these two GETs is a 404.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;

/// What the worker reports about itself.
#[derive(Debug, Clone, Default)]
pub struct TelemetryData {
    /// Gateway machine state (`connected`, `resuming`, ...).
    pub state: String,
    /// Whether a Gateway session exists.
    pub session: bool,
    /// Latest seq received.
    pub seq: Option<u64>,
    /// Acknowledged seq (all its events delivered to the hub).
    pub acked_seq: Option<u64>,
    /// Last heartbeat round trip.
    pub heartbeat_rtt_ms: Option<u64>,
    /// Events waiting for the hub.
    pub outbox_depth: usize,
    /// The last delivery failure, cleared by the next success.
    pub last_delivery_error: Option<String>,
    /// Reconnects by reason.
    pub reconnects: BTreeMap<String, u64>,
    /// Dispatches received.
    pub dispatches_received: u64,
    /// Events delivered to the hub.
    pub events_forwarded: u64,
    /// Events dropped on outbox overflow.
    pub events_dropped: u64,
    /// Sum and count of heartbeat round trips, in seconds.
    pub heartbeat_rtt_sum_secs: f64,
    /// Number of heartbeat round trips summed.
    pub heartbeat_rtt_count: u64,
    /// Where the health server listens (useful with port 0).
    pub health_addr: Option<SocketAddr>,
}

/// Shared, cheaply cloned telemetry.
#[derive(Debug, Clone, Default)]
pub struct Telemetry(Arc<Mutex<TelemetryData>>);

impl Telemetry {
    /// Lock for reading or updating. A poisoned lock still yields the data
    /// (it holds only counters).
    pub fn lock(&self) -> MutexGuard<'_, TelemetryData> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The `GET /health` body.
    #[must_use]
    pub fn health_json(&self) -> String {
        let d = self.lock();
        json!({
            "state": d.state,
            "session": d.session,
            "seq": d.seq,
            "ackedSeq": d.acked_seq,
            "heartbeatRttMs": d.heartbeat_rtt_ms,
            "outboxDepth": d.outbox_depth,
            "lastDeliveryError": d.last_delivery_error,
        })
        .to_string()
    }

    /// The `GET /metrics` body (Prometheus text exposition format 0.0.4).
    #[must_use]
    pub fn metrics_text(&self) -> String {
        let d = self.lock();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP worker_gateway_reconnects_total Gateway reconnects by reason.\n# TYPE worker_gateway_reconnects_total counter"
        );
        for (reason, n) in &d.reconnects {
            let _ = writeln!(
                out,
                "worker_gateway_reconnects_total{{reason=\"{}\"}} {n}",
                escape_label(reason)
            );
        }
        let counters = [
            (
                "worker_dispatches_received_total",
                "Gateway dispatches received.",
                d.dispatches_received,
            ),
            (
                "worker_events_forwarded_total",
                "Events delivered to the hub.",
                d.events_forwarded,
            ),
            (
                "worker_events_dropped_total",
                "Events dropped on outbox overflow (repaired by guild.sync).",
                d.events_dropped,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP worker_outbox_depth Events waiting for the hub.\n# TYPE worker_outbox_depth gauge\nworker_outbox_depth {}",
            d.outbox_depth
        );
        let _ = writeln!(
            out,
            "# HELP worker_gateway_session Whether a gateway session exists.\n# TYPE worker_gateway_session gauge\nworker_gateway_session {}",
            u8::from(d.session)
        );
        let _ = writeln!(
            out,
            "# HELP worker_heartbeat_rtt_seconds Gateway heartbeat round trip.\n# TYPE worker_heartbeat_rtt_seconds summary\nworker_heartbeat_rtt_seconds_sum {}\nworker_heartbeat_rtt_seconds_count {}",
            d.heartbeat_rtt_sum_secs, d.heartbeat_rtt_count
        );
        out
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn respond(
    telemetry: &Telemetry,
    method: &http::Method,
    path: &str,
) -> http::Response<Full<Bytes>> {
    let (status, content_type, body) = match (method, path) {
        (&http::Method::GET, "/health") => (200, "application/json", telemetry.health_json()),
        (&http::Method::GET, "/metrics") => (
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            telemetry.metrics_text(),
        ),
        _ => (
            404,
            "application/json",
            json!({"message": "not found"}).to_string(),
        ),
    };
    let mut response = http::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or_default();
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    response
}

/// Bind `addr` and serve health and metrics until the task is aborted.
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    telemetry: Telemetry,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let telemetry = telemetry.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let response = respond(&telemetry, req.method(), req.uri().path());
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((local, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_has_the_documented_fields() {
        let t = Telemetry::default();
        {
            let mut d = t.lock();
            d.state = "connected".into();
            d.session = true;
            d.seq = Some(5);
            d.acked_seq = Some(4);
            d.outbox_depth = 1;
        }
        let v: serde_json::Value = serde_json::from_str(&t.health_json()).unwrap();
        assert_eq!(v["state"], "connected");
        assert_eq!(v["session"], true);
        assert_eq!(v["seq"], 5);
        assert_eq!(v["ackedSeq"], 4);
        assert_eq!(v["outboxDepth"], 1);
        assert!(v["heartbeatRttMs"].is_null());
        assert!(v["lastDeliveryError"].is_null());
    }

    #[test]
    fn metrics_render() {
        let t = Telemetry::default();
        t.lock().reconnects.insert("zombie".into(), 2);
        let text = t.metrics_text();
        assert!(text.contains("worker_gateway_reconnects_total{reason=\"zombie\"} 2"));
        assert!(text.contains("worker_outbox_depth 0"));
        assert!(text.contains("worker_events_dropped_total 0"));
    }

    #[test]
    fn routes() {
        let t = Telemetry::default();
        assert_eq!(respond(&t, &http::Method::GET, "/health").status(), 200);
        assert_eq!(respond(&t, &http::Method::GET, "/metrics").status(), 200);
        assert_eq!(respond(&t, &http::Method::GET, "/x").status(), 404);
        assert_eq!(respond(&t, &http::Method::POST, "/health").status(), 404);
    }
}
