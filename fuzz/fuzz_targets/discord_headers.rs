//! What the hub sends to and reads from Discord REST: the `X-Audit-Log-Reason` built from a
//! JWT `sub` (user data), and the rate-limit table fed arbitrary response headers and 429s
//! on a virtual clock.
//!
//! Invariants: the audit reason is at most 512 characters of RFC 3986 unreserved characters
//! and `%XX`, and percent-decodes to a prefix of `"<action> by <sub>"` cut at a character
//! boundary; a `Wait` verdict is never longer than the longest wait observed (a day at most,
//! what the client's header parser allows).
#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use hub_core::discord::{RateLimits, Verdict, audit_reason};
use libfuzzer_sys::fuzz_target;

const ROUTES: [&str; 3] = [
    "POST /guilds/{id}/channels",
    "DELETE /channels/{id}",
    "GET /gateway/bot",
];
/// The client parses seconds into at most a day.
const DAY_MS: u64 = 86_400_000;

#[derive(Debug, Arbitrary)]
enum Op<'a> {
    Check {
        route: u8,
        major: u8,
    },
    Observe {
        route: u8,
        major: u8,
        bucket: Option<&'a str>,
        remaining: Option<u64>,
        reset_ms: Option<u32>,
    },
    Observe429 {
        route: u8,
        major: u8,
        wait_ms: u32,
        global: bool,
    },
    Advance {
        ms: u16,
    },
}

#[derive(Debug, Arbitrary)]
struct Case<'a> {
    sub: &'a str,
    ops: Vec<Op<'a>>,
}

fuzz_target!(|case: Case<'_>| {
    check_audit(case.sub);
    let origin = Instant::now();
    let mut now = origin;
    let mut limits = RateLimits::new();
    let mut longest = Duration::ZERO;
    for op in case.ops.iter().take(256) {
        match *op {
            Op::Check { route, major } => {
                if let Verdict::Wait(wait) = limits.check(route_of(route), u64::from(major), now) {
                    assert!(
                        wait <= longest,
                        "waits {wait:?}, longest observed {longest:?}"
                    );
                }
            }
            Op::Observe {
                route,
                major,
                bucket,
                remaining,
                reset_ms,
            } => {
                let reset = reset_ms.map(|ms| Duration::from_millis(u64::from(ms) % (DAY_MS + 1)));
                if let Some(r) = reset {
                    longest = longest.max(r);
                }
                limits.observe(
                    route_of(route),
                    u64::from(major),
                    bucket,
                    remaining,
                    reset,
                    now,
                );
            }
            Op::Observe429 {
                route,
                major,
                wait_ms,
                global,
            } => {
                let wait = Duration::from_millis(u64::from(wait_ms) % (DAY_MS + 1));
                longest = longest.max(wait);
                limits.observe_429(route_of(route), u64::from(major), wait, global, now);
            }
            Op::Advance { ms } => now += Duration::from_millis(u64::from(ms)),
        }
    }
});

fn route_of(i: u8) -> &'static str {
    ROUTES[usize::from(i) % ROUTES.len()]
}

fn check_audit(sub: &str) {
    let value = audit_reason("create-room", sub);
    let text = value.to_str().expect("ASCII header value");
    assert!(text.len() <= 512);
    let mut decoded = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex");
            decoded.push(u8::from_str_radix(hex, 16).expect("hex digits"));
            i += 3;
        } else {
            assert!(
                b.is_ascii_alphanumeric() || b"-._~".contains(&b),
                "reserved byte {b}"
            );
            decoded.push(b);
            i += 1;
        }
    }
    let decoded = String::from_utf8(decoded).expect("cut at a character boundary");
    let full = format!("create-room by {sub}");
    assert!(full.starts_with(&decoded), "not a prefix of the reason");
}
