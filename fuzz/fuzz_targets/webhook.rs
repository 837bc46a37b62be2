//! `POST /internal/events`: the `X-Hub-Timestamp` / `X-Hub-Signature` headers and the body
//! through `WebhookVerifier::verify` (fixed secrets, fixed `now`), then, when it verifies, the
//! body parse the route does (`{"id"?, "event", "payload"}` and `hub::event::parse_event`).
//!
//! Modes: arbitrary header bytes; and correctly signed bodies with an arbitrary timestamp
//! offset, optionally tampered after signing.
//!
//! Invariants: accepted means the timestamp is ASCII digits within 60 s of `now` and the
//! signature is exactly `sha256=<lowercase hex HMAC>` under the current or previous secret;
//! a tampered request is never accepted.
#![no_main]

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use hub_core::Secret;
use hub_core::auth::{MAX_SKEW_SECS, WebhookVerifier, sign_webhook};
use hub_core::hub::event::parse_event;
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_800_000_000;
const CURRENT: &str = "fuzz-current-secret-0123456789abcdef";
const PREVIOUS: &str = "fuzz-previous-secret-0123456789abcdef";

static VERIFIER: LazyLock<WebhookVerifier> =
    LazyLock::new(|| WebhookVerifier::new(Secret::new(CURRENT), Some(Secret::new(PREVIOUS))));

#[derive(Debug, Arbitrary)]
enum Case<'a> {
    Raw {
        timestamp: Option<&'a [u8]>,
        signature: Option<&'a [u8]>,
        body: &'a [u8],
    },
    Signed {
        offset: i16,
        previous: bool,
        body: &'a [u8],
        /// Flip one bit of the body (`Some((at, bit))`) after signing.
        tamper: Option<(u16, u8)>,
    },
}

fuzz_target!(|case: Case<'_>| match case {
    Case::Raw {
        timestamp,
        signature,
        body,
    } => {
        if VERIFIER.verify(timestamp, signature, body, NOW).is_ok() {
            let ts = timestamp.expect("accepted without a timestamp");
            assert!(ts.iter().all(u8::is_ascii_digit));
            let ts: i64 = std::str::from_utf8(ts).unwrap().parse().unwrap();
            assert!((ts - NOW).abs() <= MAX_SKEW_SECS);
            let sig = signature.expect("accepted without a signature");
            assert!(
                sig == sign_webhook(CURRENT.as_bytes(), ts, body).as_bytes()
                    || sig == sign_webhook(PREVIOUS.as_bytes(), ts, body).as_bytes(),
                "accepted a signature that is not the MAC"
            );
            parse_body(body);
        }
    }
    Case::Signed {
        offset,
        previous,
        body,
        tamper,
    } => {
        let ts = NOW + i64::from(offset);
        let secret = if previous { PREVIOUS } else { CURRENT };
        let signature = sign_webhook(secret.as_bytes(), ts, body);
        let mut body = body.to_vec();
        let tampered = match tamper {
            Some((at, bit)) if !body.is_empty() => {
                let at = usize::from(at) % body.len();
                body[at] ^= 1 << (bit % 8);
                true
            }
            _ => false,
        };
        let ts_text = ts.to_string();
        let result = VERIFIER.verify(
            Some(ts_text.as_bytes()),
            Some(signature.as_bytes()),
            &body,
            NOW,
        );
        let in_window = (ts - NOW).abs() <= MAX_SKEW_SECS;
        assert_eq!(
            result.is_ok(),
            in_window && !tampered,
            "verdict wrong for offset {offset}, tampered {tampered}"
        );
        if result.is_ok() {
            parse_body(&body);
        }
    }
});

/// What the route does with a verified body.
fn parse_body(body: &[u8]) {
    let Ok(serde_json::Value::Object(wire)) = serde_json::from_slice::<serde_json::Value>(body)
    else {
        return;
    };
    if let (Some(serde_json::Value::String(event)), Some(payload)) =
        (wire.get("event"), wire.get("payload"))
    {
        let _ = parse_event(event, payload);
    }
}
