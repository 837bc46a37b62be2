//! JWKS documents (what `JWT_PUBLIC_JWK_URL` or the file returns): arbitrary bytes through
//! `parse_jwks`. Invariants: an accepted set is non-empty, within `MAX_KEYS`, every `kid`
//! within `MAX_KID_LEN`, and every key can be looked up by its own `kid`.
#![no_main]

use hub_core::auth::{KeyLookup, MAX_KEYS, MAX_KID_LEN, parse_jwks};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(set) = parse_jwks(data) else {
        return;
    };
    assert!(set.keys().len() <= MAX_KEYS, "too many keys accepted");
    for key in set.keys() {
        if let Some(kid) = key.kid() {
            assert!(kid.len() <= MAX_KID_LEN, "oversized kid accepted");
            assert!(
                !matches!(set.find(Some(kid)), KeyLookup::NotFound),
                "a key cannot be found by its own kid"
            );
        }
    }
    let _ = set.find(None);
});
