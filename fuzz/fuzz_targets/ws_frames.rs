//! WebSocket frames (arbitrary bytes) sent by a client to the hub's real `/ws` after a valid
//! upgrade, optionally after a valid auth message (so the authenticated session's frame
//! handling is reached too): served by hyper and the hub's WebSocket session over an
//! in-memory duplex, no socket per input.
//!
//! The hub is built once by `server::start` (JWKS from a file, data in a temp dir, Discord
//! REST pointed at a closed loopback port) on a current-thread runtime whose clock is paused,
//! so timeouts (header read, WebSocket auth) elapse instantly when nothing else can run.
//!
//! Invariants: no panic; the upgrade is answered `101`; whatever the client sends, the
//! connection ends (no hang: the paused clock lets every deadline fire).
#![no_main]

#[path = "common/hub_fixture.rs"]
mod hub_fixture;

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use hub_core::App;
use hub_core::auth::TestIssuer;
use hub_fixture::FIXTURE;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const UPGRADE: &[u8] = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: https://app.example\r\n\r\n";

/// A masked (zero mask) client text frame.
fn text_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x81];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(payload);
    frame
}

static AUTH: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let token = TestIssuer::new("fuzz-key").token_for(
        "https://issuer.example",
        "spell-coven",
        "fuzz-user",
        4_000_000_000,
    );
    text_frame(format!(r#"{{"type":"auth","token":"{token}"}}"#).as_bytes())
});

fuzz_target!(|data: &[u8]| {
    let Some((&mode, frames)) = data.split_first() else {
        return;
    };
    let mut input = UPGRADE.to_vec();
    if mode & 1 == 0 {
        input.extend_from_slice(&AUTH);
    }
    input.extend_from_slice(frames);
    let f = &*FIXTURE;
    f.rt.block_on(serve(Arc::clone(&f.app), &input));
});

async fn serve(app: Arc<App>, data: &[u8]) {
    let (mut client, conn) = hub_fixture::connect(app);
    // The write side stays open (hyper closes a half-closed connection at once): the hub
    // must end the session by itself, by the auth deadline or the ping/close timeouts, which
    // the paused clock lets fire as soon as nothing else can run.
    let _ = client.write_all(data).await;
    let (out, ended) = read_all(&mut client, Duration::from_secs(600)).await;
    assert!(ended, "the hub never ended the WebSocket session");
    conn.abort();
    drop(client);
    // Let every task this input spawned (WebSocket sessions) see the hang-up and finish, so
    // nothing outlives the input (LeakSanitizer would report it at exit).
    tokio::time::sleep(Duration::from_secs(120)).await;
    check(&out);
}

fn check(out: &[u8]) {
    assert!(
        out.starts_with(b"HTTP/1.1 101 "),
        "upgrade not accepted: {}",
        String::from_utf8_lossy(&out[..out.len().min(200)])
    );
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
