//! The hub's parse of a client's first WebSocket message (`{"type":"auth","token",..}`).
//!
//! Invariant: a parsed message came from a JSON object whose `type` is `"auth"` and whose
//! `token` string is the one returned; `since` is kept only when it is a non-negative integer.
#![no_main]

use hub_core::ws::parse_auth;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Some(msg) = parse_auth(text) else {
        return;
    };
    let value: serde_json::Value = serde_json::from_str(text).expect("accepted text is JSON");
    assert_eq!(value["type"], "auth");
    assert_eq!(value["token"].as_str(), Some(msg.token.as_str()));
    assert_eq!(
        msg.since,
        value.get("since").and_then(serde_json::Value::as_u64)
    );
});
