//! Whole HTTP/1 requests (arbitrary bytes) through the hub's real service (`routes::handle`),
//! served by hyper with the listener's settings over an in-memory duplex: no socket per input.
//!
//! The hub is built once by `server::start` (JWKS from a file, data in a temp dir, Discord
//! REST pointed at a closed loopback port) on a current-thread runtime whose clock is paused,
//! so timeouts (header read, WebSocket auth) elapse instantly when nothing else can run.
//!
//! Invariants: no panic; every response hyper writes is well-formed HTTP/1.1; the hub never
//! answers `500` (an unhandled internal error) to any request.
#![no_main]

#[path = "common/hub_fixture.rs"]
mod hub_fixture;

use std::sync::Arc;
use std::time::Duration;

use hub_core::App;
use hub_fixture::FIXTURE;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fuzz_target!(|data: &[u8]| {
    let f = &*FIXTURE;
    f.rt.block_on(serve(Arc::clone(&f.app), data));
});

async fn serve(app: Arc<App>, data: &[u8]) {
    let (mut client, conn) = hub_fixture::connect(app);
    // The write side stays open (hyper closes a half-closed connection at once, before
    // answering); the header-read timeout or the virtual-time limit ends the exchange.
    let _ = client.write_all(data).await;
    let (out, _ended) = read_all(&mut client, Duration::from_secs(120)).await;
    conn.abort();
    drop(client);
    // Let every task this input spawned (WebSocket sessions) see the hang-up and finish, so
    // nothing outlives the input (LeakSanitizer would report it at exit).
    tokio::time::sleep(Duration::from_secs(120)).await;
    check(&out);
}

fn check(out: &[u8]) {
    let mut rest = out;
    // Every response starts with a status line; look at each one hyper wrote.
    while let Some(at) = find(rest, b"HTTP/1.1 ") {
        let line = &rest[at..];
        let code = line.get(9..12).unwrap_or_default();
        assert!(code.iter().all(u8::is_ascii_digit), "malformed status line");
        assert_ne!(
            code,
            b"500",
            "internal server error: {}",
            String::from_utf8_lossy(out)
        );
        rest = &line[12.min(line.len())..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads until the server closes (`true`) or `limit` of (virtual) silence passes (`false`).
async fn read_all(client: &mut tokio::io::DuplexStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(limit, client.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, false),
        }
    }
}
