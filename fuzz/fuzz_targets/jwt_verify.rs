//! JWT parsing, ES256 verification and claim validation against a fixed JWKS at a fixed `now`.
//!
//! Modes: an arbitrary token string; a valid token mutated (bytes flipped, inserted, removed,
//! segments swapped); and arbitrary header/payload bytes correctly signed by the trusted key,
//! which reaches the header and claim checks behind the signature.
//!
//! Invariant: an accepted token has our `iss`, a non-empty `sub`, an `exp` within the leeway,
//! and a header with `alg` `ES256`.
#![no_main]

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use hub_core::auth::{
    DEFAULT_LEEWAY_SECS, JwkSet, TestIssuer, Validation, parse_jwks, sign_raw, verify_with_keys,
};
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_800_000_000;
const ISS: &str = "https://issuer.example";
const AUD: &str = "spell-coven";

struct Fixture {
    issuer: TestIssuer,
    keys: JwkSet,
    rules: Validation,
    valid: String,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let issuer = TestIssuer::new("fuzz-key");
    let other = TestIssuer::new("other-key");
    let keys = parse_jwks(TestIssuer::jwks(&[&issuer, &other]).as_bytes()).expect("fixed jwks");
    let valid = issuer.token_for(ISS, AUD, "user-1", NOW + 3600);
    Fixture {
        issuer,
        keys,
        rules: Validation::new(ISS, AUD),
        valid,
    }
});

#[derive(Debug, Arbitrary)]
enum Edit {
    Flip { at: u16, bit: u8 },
    Insert { at: u16, byte: u8 },
    Remove { at: u16 },
    Truncate { at: u16 },
    SwapSegments { a: u8, b: u8 },
}

#[derive(Debug, Arbitrary)]
enum Case<'a> {
    Token(&'a str),
    Mutated(Vec<Edit>),
    Signed { header: &'a [u8], payload: &'a [u8] },
    SignedClaims { header: &'a str, claims: &'a str },
}

fuzz_target!(|case: Case<'_>| {
    let f = &*FIXTURE;
    let token = match case {
        Case::Token(t) => t.to_owned(),
        Case::Mutated(edits) => mutate(&f.valid, &edits),
        Case::Signed { header, payload } => sign_raw(f.issuer.signing_key(), header, payload),
        // Mostly-JSON text in both parts reaches deeper than raw bytes.
        Case::SignedClaims { header, claims } => {
            let header = format!(r#"{{"alg":"ES256","kid":"fuzz-key"{header}}}"#);
            sign_raw(f.issuer.signing_key(), header.as_bytes(), claims.as_bytes())
        }
    };
    if let Ok(claims) = verify_with_keys(&token, &f.keys, &f.rules, NOW) {
        assert_eq!(claims.iss, ISS);
        assert!(!claims.sub.is_empty());
        assert!(
            claims.exp > NOW - DEFAULT_LEEWAY_SECS,
            "expired token accepted"
        );
        let header = token.split('.').next().unwrap_or_default();
        let header = base64url(header).expect("accepted header is base64url");
        let header: serde_json::Value =
            serde_json::from_slice(&header).expect("accepted header is JSON");
        assert_eq!(header["alg"], "ES256", "accepted a non-ES256 header");
    }
});

fn mutate(valid: &str, edits: &[Edit]) -> String {
    let mut bytes = valid.as_bytes().to_vec();
    for edit in edits.iter().take(8) {
        let len = bytes.len().max(1);
        match *edit {
            Edit::Flip { at, bit } => {
                if let Some(b) = bytes.get_mut(usize::from(at) % len) {
                    *b ^= 1 << (bit % 8);
                }
            }
            Edit::Insert { at, byte } => bytes.insert(usize::from(at) % (bytes.len() + 1), byte),
            Edit::Remove { at } => {
                if !bytes.is_empty() {
                    bytes.remove(usize::from(at) % len);
                }
            }
            Edit::Truncate { at } => bytes.truncate(usize::from(at) % len),
            Edit::SwapSegments { a, b } => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let mut parts: Vec<&str> = text.split('.').collect();
                let n = parts.len();
                parts.swap(usize::from(a) % n, usize::from(b) % n);
                bytes = parts.join(".").into_bytes();
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Minimal base64url (no padding) decoder for the invariant check only.
fn base64url(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}
