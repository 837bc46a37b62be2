//! Faults a test can switch on to make the sim behave like Discord on a bad day.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What REST answers instead of doing the work, for the next N calls
/// ([`crate::Sim::fail_rest`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum RestFault {
    /// A 429 shaped as in rate-limits.mdx ("Exceeding A Rate Limit"): JSON
    /// `{message, retry_after, global}`, `Retry-After` and `X-RateLimit-Scope` headers.
    RateLimited {
        /// Seconds the client must wait (float, as Discord sends it).
        retry_after: f64,
        /// Whether it is the global limit.
        global: bool,
    },
    /// A 5xx from the edge (502 or 503, an HTML body as Cloudflare sends, not JSON).
    ServerError {
        /// The status (500-599).
        status: u16,
    },
}

/// The switchable fault state, held inside the world.
#[derive(Debug, Clone)]
pub(crate) struct Faults {
    /// Answer op 1 with op 11 (off = a zombied connection as seen by the client).
    pub(crate) ack_heartbeats: bool,
    /// Added before every gateway frame the sim sends.
    pub(crate) gateway_latency: Duration,
    /// Added before every REST response.
    pub(crate) rest_latency: Duration,
    /// Pending REST failures: the fault and how many calls are left.
    pub(crate) rest_failure: Option<(RestFault, u32)>,
    /// New connections left that get op 7 in place of HELLO.
    pub(crate) reconnect_before_hello: u32,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            ack_heartbeats: true,
            gateway_latency: Duration::ZERO,
            rest_latency: Duration::ZERO,
            rest_failure: None,
            reconnect_before_hello: 0,
        }
    }
}

impl Faults {
    /// Takes one pending REST failure, if any.
    pub(crate) fn take_rest_failure(&mut self) -> Option<RestFault> {
        let (fault, left) = self.rest_failure.as_mut()?;
        let fault = *fault;
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.rest_failure = None;
        }
        Some(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_failure_counts_down() {
        let mut f = Faults {
            rest_failure: Some((RestFault::ServerError { status: 502 }, 2)),
            ..Faults::default()
        };
        assert!(f.take_rest_failure().is_some());
        assert!(f.take_rest_failure().is_some());
        assert!(f.take_rest_failure().is_none());
    }
}
