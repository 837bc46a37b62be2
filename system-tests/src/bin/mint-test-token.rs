//! `mint-test-token`: writes a JWKS file with a fresh ES256 public key and prints one token
//! signed by it, for scripts that run the hub (`scripts/api-fuzz.sh`).
//!
//! Usage: `mint-test-token <jwks-path> [sub] [ttl-secs]`. The token's `iss` and `aud` are
//! [`system_tests::ISSUER`] and [`system_tests::AUDIENCE`]. Test use only: the key is derived
//! from the process id and the time, not from a secure random source.

use std::process::ExitCode;

use hub_core::auth::TestIssuer;
use system_tests::{AUDIENCE, ISSUER, now_unix};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: mint-test-token <jwks-path> [sub] [ttl-secs]");
        return ExitCode::from(2);
    };
    let sub = args.next().unwrap_or_else(|| "api-fuzz".to_owned());
    let Ok(ttl) = args.next().map_or(Ok(3600), |t| t.parse::<i64>()) else {
        eprintln!("ttl-secs must be an integer");
        return ExitCode::from(2);
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let issuer = TestIssuer::new(&format!("mint-{}-{nanos}", std::process::id()));
    if let Err(e) = std::fs::write(&path, TestIssuer::jwks(&[&issuer])) {
        eprintln!("cannot write {path}: {e}");
        return ExitCode::FAILURE;
    }
    println!(
        "{}",
        issuer.token_for(ISSUER, AUDIENCE, &sub, now_unix() + ttl)
    );
    ExitCode::SUCCESS
}
