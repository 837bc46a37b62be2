//! The hub's parse of a client's first WebSocket message (`{"type":"auth","token",..}`).
//!
//! Invariant: a parsed message came from a JSON object whose `type` is `"auth"` and whose
//! `token` string is the one returned; `since` is kept only when it is a non-negative integer.
//! A field the hub ignores may hold a number too large for `serde_json::Value` (e.g.
//! `1e555`): the hub skips it without converting it, so such a message is still accepted and
//! only checked for a missing `since` (the number cannot be in it).
#![no_main]

use hub_core::ws::parse_auth;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Some(msg) = parse_auth(text) else {
        return;
    };
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => {
            // serde_json files "number out of range" under Syntax; any other error would mean
            // the hub accepted text that is not JSON.
            assert!(
                e.to_string().starts_with("number out of range"),
                "accepted text is not JSON: {e}"
            );
            assert_eq!(msg.since, None);
            return;
        }
    };
    assert_eq!(value["type"], "auth");
    assert_eq!(value["token"].as_str(), Some(msg.token.as_str()));
    assert_eq!(
        msg.since,
        value.get("since").and_then(serde_json::Value::as_u64)
    );
});
