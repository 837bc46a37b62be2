//! The router: arbitrary method and path through `router::route`.
//!
//! Invariants: it never panics; `EndRoom(id)` only for `/end-room/<digits>` whose value is
//! `id` (non-zero); every other accepted route is one of the documented fixed paths.
#![no_main]

use arbitrary::Arbitrary;
use http::Method;
use hub_core::{Route, route};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Case<'a> {
    method: &'a [u8],
    path: &'a str,
}

fuzz_target!(|case: Case<'_>| {
    let Ok(method) = Method::from_bytes(case.method) else {
        return;
    };
    let path = case.path;
    match route(&method, path) {
        Ok(Route::EndRoom(id)) => {
            assert_eq!(method, Method::DELETE);
            let digits = path.strip_prefix("/end-room/").expect("end-room prefix");
            assert!(!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
            assert_eq!(digits.parse::<u64>().ok(), Some(id));
            assert_ne!(id, 0);
        }
        Ok(Route::Preflight) => {
            assert_eq!(method, Method::OPTIONS);
            assert!(path == "/create-room" || path.starts_with("/end-room/"));
        }
        Ok(Route::Health) => assert_eq!((&method, path), (&Method::GET, "/health")),
        Ok(Route::Ws) => assert_eq!((&method, path), (&Method::GET, "/ws")),
        Ok(Route::CreateRoom) => assert_eq!((&method, path), (&Method::POST, "/create-room")),
        Ok(Route::InternalEvents) => {
            assert_eq!((&method, path), (&Method::POST, "/internal/events"));
        }
        Ok(other) => panic!("unexpected route {other:?} for {method} {path}"),
        Err(_) => {}
    }
});
