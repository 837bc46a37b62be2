//! Arbitrary input sequences to the session machine (time steps, transport events, Discord
//! frames, application requests), decoded by `gateway_proto::fuzzing::inputs`.
//!
//! Fails on any broken invariant, not only on panics: the send limit (120 per 60 s), the
//! 4096-byte payload cap, heartbeats carrying the latest seq, no session-ending close, connect
//! URLs with `v=10&encoding=json`, timers that make progress (see `fuzzing::Violation`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = gateway_proto::fuzzing::run(data) {
        panic!("invariant violated: {violation}");
    }
});
