//! Delivery of one event to the hub's `POST /internal/events` (contract §4),
//! and the retry policy around it (contract §5).
//!
//! One kept-alive HTTP/1.1 connection pool (hyper-util's client; https via
//! hyper-rustls). Every attempt is signed afresh: `X-Hub-Timestamp` is the
//! current unix time and `X-Hub-Signature` is
//! `sha256=<hex HMAC-SHA256(secret, "<ts>.<body>")>`, so a retry after a long
//! outage is never refused for skew.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::Sha256;

use crate::secret::Secret;

/// How long one delivery attempt may take, connect to response body.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Contract §5: retries back off exponentially, "capped at 10 s".
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// The first retry delay bound.
pub const BASE_BACKOFF: Duration = Duration::from_millis(100);
/// The largest response body read.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// `sha256=<lowercase hex HMAC-SHA256(secret, "<ts>.<body>")>` (contract §4).
///
/// ```
/// let sig = worker::hub_client::signature(b"0123456789abcdef0123456789abcdef", 1_700_000_000, "{\"id\":\"a\"}");
/// assert_eq!(sig, "sha256=f384d53c3d8e9292f316b9f8c44af3b4f07b0ec48becbdd931fa18520bed6565");
/// ```
#[must_use]
pub fn signature(secret: &[u8], timestamp: u64, body: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        unreachable_hmac()
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cold]
fn unreachable_hmac() -> ! {
    unreachable!("HMAC-SHA256 accepts keys of every length")
}

/// The response header naming the hub's state (see [`Outcome::Delivered`]).
const HUB_STATE_ID: &str = "x-hub-state-id";
/// A longer value is not a state id the hub would send; it is ignored.
const MAX_STATE_ID_LEN: usize = 64;

/// What one attempt ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// 2xx: the hub has the event (possibly as a duplicate of a retry).
    Delivered {
        /// The hub said `"duplicate": true`.
        duplicate: bool,
        /// The hub's `X-Hub-State-Id`: it changes when the hub may have lost state it had
        /// accepted (a restart after `kill -9`), which a `guild.sync` repairs.
        hub_state: Option<String>,
    },
    /// A transient failure: keep the event and retry with backoff.
    Retry {
        /// What went wrong.
        error: DeliveryError,
        /// The hub's `Retry-After`, if it gave one (429/503).
        retry_after: Option<Duration>,
    },
    /// A 4xx other than 408/429: a configuration problem (403 = wrong
    /// `HUB_SECRET` or clock skew, 404 = wrong `HUB_ENDPOINT`). Retried
    /// slowly, never dropped.
    Rejected {
        /// What the hub answered.
        error: DeliveryError,
    },
    /// 413: the hub will never accept this body (a `guild.sync` of a huge
    /// occupancy). Retrying cannot help and would block every later event,
    /// so the event is skipped with an error log.
    TooLarge,
}

/// Why an attempt failed. Messages never include the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The hub answered with this status.
    Status(u16),
    /// No answer within [`REQUEST_TIMEOUT`].
    Timeout,
    /// Connecting or talking to the hub failed.
    Connection(String),
}

impl std::fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Status(403) => f.write_str(
                "hub answered 403: check that HUB_SECRET matches the hub's and that the clocks agree",
            ),
            Self::Status(404) => {
                f.write_str("hub answered 404: check that HUB_ENDPOINT is the hub's /internal/events")
            }
            Self::Status(code) => write!(f, "hub answered {code}"),
            Self::Timeout => write!(f, "hub did not answer within {}s", REQUEST_TIMEOUT.as_secs()),
            Self::Connection(e) => write!(f, "cannot reach the hub: {e}"),
        }
    }
}

impl std::error::Error for DeliveryError {}

/// Classify a response status (contract §5; RFC 9110 for 408/429).
#[must_use]
pub fn classify(status: u16, retry_after: Option<Duration>, duplicate: bool) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered {
            duplicate,
            hub_state: None,
        },
        413 => Outcome::TooLarge,
        408 | 429 | 500..=599 => Outcome::Retry {
            error: DeliveryError::Status(status),
            retry_after,
        },
        _ => Outcome::Rejected {
            error: DeliveryError::Status(status),
        },
    }
}

/// Capped exponential backoff with full jitter: attempt `n` (0-based) waits
/// a uniform time in `[0, min(MAX_BACKOFF, BASE_BACKOFF * 2^n)]`, never less
/// than a `Retry-After` the hub asked for (itself capped). A rejection
/// (configuration error) always waits the cap so it never spins.
#[must_use]
pub fn retry_delay(attempt: u32, outcome: &Outcome, rng: &mut fastrand::Rng) -> Duration {
    match outcome {
        Outcome::Delivered { .. } | Outcome::TooLarge => Duration::ZERO,
        Outcome::Rejected { .. } => MAX_BACKOFF,
        Outcome::Retry { retry_after, .. } => {
            let ceiling = BASE_BACKOFF
                .saturating_mul(1u32 << attempt.min(16))
                .min(MAX_BACKOFF);
            let jittered = ceiling.mul_f64(rng.f64());
            match retry_after {
                Some(after) => jittered.max((*after).min(MAX_BACKOFF)),
                None => jittered,
            }
        }
    }
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The hub webhook client.
#[derive(Clone)]
pub struct HubClient {
    client: HttpsClient,
    endpoint: http::Uri,
    secret: Secret,
}

impl std::fmt::Debug for HubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubClient")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl HubClient {
    /// A client for `endpoint`, signing with `secret`.
    ///
    /// # Errors
    /// When the TLS configuration cannot be built.
    pub fn new(endpoint: http::Uri, secret: Secret) -> Result<Self, rustls::Error> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(crate::tls::client_config()?)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(1)
            .build(connector);
        Ok(Self {
            client,
            endpoint,
            secret,
        })
    }

    /// POST one body (already `{"id","event","payload"}`), signed now.
    pub async fn deliver(&self, body: &str) -> Outcome {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let signature = signature(self.secret.expose().as_bytes(), timestamp, body);
        let request = http::Request::builder()
            .method(http::Method::POST)
            .uri(self.endpoint.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, "spell-coven-worker")
            .header("x-hub-timestamp", timestamp.to_string())
            .header("x-hub-signature", signature)
            .body(Full::new(Bytes::copy_from_slice(body.as_bytes())));
        let request = match request {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Rejected {
                    error: DeliveryError::Connection(e.to_string()),
                };
            }
        };
        let attempt = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| DeliveryError::Connection(describe(&e)))?;
            let status = response.status().as_u16();
            let state_id = response
                .headers()
                .get(HUB_STATE_ID)
                .and_then(|v| v.to_str().ok())
                .filter(|v| v.len() <= MAX_STATE_ID_LEN)
                .map(str::to_owned);
            let retry_after = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map(http_body_util::Collected::to_bytes)
                .unwrap_or_default();
            let duplicate = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("duplicate").and_then(serde_json::Value::as_bool))
                .unwrap_or(false);
            let mut outcome = classify(status, retry_after, duplicate);
            if let Outcome::Delivered { hub_state, .. } = &mut outcome {
                *hub_state = state_id;
            }
            Ok::<_, DeliveryError>(outcome)
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, attempt).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(error)) => Outcome::Retry {
                error,
                retry_after: None,
            },
            Err(_) => Outcome::Retry {
                error: DeliveryError::Timeout,
                retry_after: None,
            },
        }
    }
}

/// The error and its sources, one line (hyper's top-level message alone is
/// often just "client error (Connect)").
fn describe(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector() {
        assert_eq!(
            signature(
                b"0123456789abcdef0123456789abcdef",
                1_700_000_000,
                "{\"id\":\"a\"}"
            ),
            "sha256=f384d53c3d8e9292f316b9f8c44af3b4f07b0ec48becbdd931fa18520bed6565"
        );
    }

    #[test]
    fn statuses_are_classified() {
        assert_eq!(
            classify(200, None, true),
            Outcome::Delivered {
                duplicate: true,
                hub_state: None
            }
        );
        assert_eq!(
            classify(204, None, false),
            Outcome::Delivered {
                duplicate: false,
                hub_state: None
            }
        );
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(matches!(classify(code, None, false), Outcome::Retry { .. }));
        }
        assert_eq!(classify(413, None, false), Outcome::TooLarge);
        for code in [400, 401, 403, 404, 422] {
            assert!(matches!(
                classify(code, None, false),
                Outcome::Rejected { .. }
            ));
        }
    }

    #[test]
    fn backoff_is_capped_jittered_and_honours_retry_after() {
        let mut rng = fastrand::Rng::with_seed(7);
        let transient = Outcome::Retry {
            error: DeliveryError::Status(503),
            retry_after: None,
        };
        for attempt in 0..40 {
            let d = retry_delay(attempt, &transient, &mut rng);
            assert!(d <= MAX_BACKOFF);
            let ceiling = BASE_BACKOFF.saturating_mul(1 << attempt.min(16));
            assert!(d <= ceiling);
        }
        let limited = Outcome::Retry {
            error: DeliveryError::Status(429),
            retry_after: Some(Duration::from_secs(3)),
        };
        assert!(retry_delay(0, &limited, &mut rng) >= Duration::from_secs(3));
        let huge = Outcome::Retry {
            error: DeliveryError::Status(429),
            retry_after: Some(Duration::from_secs(3600)),
        };
        assert_eq!(retry_delay(0, &huge, &mut rng), MAX_BACKOFF);
        let rejected = Outcome::Rejected {
            error: DeliveryError::Status(403),
        };
        assert_eq!(retry_delay(0, &rejected, &mut rng), MAX_BACKOFF);
    }

    #[test]
    fn errors_say_what_to_check() {
        assert!(
            DeliveryError::Status(403)
                .to_string()
                .contains("HUB_SECRET")
        );
        assert!(
            DeliveryError::Status(404)
                .to_string()
                .contains("HUB_ENDPOINT")
        );
    }
}
