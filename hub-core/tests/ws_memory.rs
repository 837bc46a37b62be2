//! Memory per idle authenticated connection (target: under 8 KiB of hub memory).
//!
//! Ignored by default (it opens 2000 sockets and takes a few seconds):
//! `cargo test -p hub-core --test ws_memory -- --ignored --nocapture`.
//! The figure is the process RSS growth divided by the connections; it includes the
//! test's own client side (a raw `TcpStream` each), so it over-estimates the hub's share.

mod ws_support;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use ws_support::*;

const CONNECTIONS: usize = 2000;

fn rss_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// A masked client text frame of any length below 64 KiB.
fn text_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x81];
    if payload.len() < 126 {
        out.push(0x80 | payload.len() as u8);
    } else {
        out.push(0x80 | 126);
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    let key = [1u8, 2, 3, 4];
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

async fn open(
    t: &TestHub,
    auth: &[u8],
) -> Result<TcpStream, Box<dyn std::error::Error + Send + Sync>> {
    let (mut s, head) = raw_upgrade(t.addr, "").await?;
    if !head.starts_with("HTTP/1.1 101") {
        return Err(head.into());
    }
    s.write_all(auth).await?;
    // Read the ack and the snapshot (two small frames) so nothing stays queued.
    let mut buf = [0u8; 512];
    let mut got = 0;
    while got < 2 {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Err("closed".into());
        }
        // Count frame starts roughly: every frame here is a short text frame.
        got += buf[..n].iter().filter(|&&b| b == 0x81).count();
    }
    Ok(s)
}

#[tokio::test]
#[ignore = "opens 2000 sockets; run on demand to measure memory"]
async fn idle_authenticated_connection_memory() -> TestResult {
    let t = TestHub::start(Options::default()).await?;
    let auth = text_frame(
        serde_json::json!({"type": "auth", "token": t.token()})
            .to_string()
            .as_bytes(),
    );
    // Warm up allocator, runtime and token cache.
    let mut warm = Vec::new();
    for _ in 0..100 {
        warm.push(open(&t, &auth).await?);
    }
    eventually(|| t.hub.subscribers() == 100).await?;
    let before = rss_bytes().ok_or("no /proc/self/statm")?;
    let mut conns = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        conns.push(open(&t, &auth).await?);
    }
    eventually(|| t.hub.subscribers() == CONNECTIONS + 100).await?;
    // Let the hyper connection tasks finish and free their buffers.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let after = rss_bytes().ok_or("no /proc/self/statm")?;
    let per_conn = after.saturating_sub(before) / CONNECTIONS;
    eprintln!(
        "RSS growth for {CONNECTIONS} idle authenticated connections: {} KiB, {per_conn} bytes per connection (client side included)",
        after.saturating_sub(before) / 1024
    );
    assert!(per_conn < 8 * 1024, "{per_conn} bytes per connection");

    // After a burst of events (every socket's write buffer was used), idle again.
    for user in 0..100 {
        t.join(10, user);
    }
    let out = (CONNECTIONS as u64 + 100) * 100;
    eventually(|| {
        t.metrics
            .events_out
            .load(std::sync::atomic::Ordering::Relaxed)
            >= out
    })
    .await?;
    let mut sink = vec![0u8; 64 * 1024];
    for c in warm.iter_mut().chain(conns.iter_mut()) {
        // Drain what arrived so kernel buffers empty (kernel memory is not RSS anyway).
        while let Ok(Ok(n)) =
            tokio::time::timeout(std::time::Duration::from_millis(1), c.read(&mut sink)).await
        {
            if n == 0 {
                break;
            }
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let burst = rss_bytes().ok_or("no /proc/self/statm")?;
    let per_conn = burst.saturating_sub(before) / CONNECTIONS;
    // RSS keeps what the allocator does not hand back after the burst (each queue briefly
    // held up to 100 frames), so this is a loose upper bound of live memory.
    eprintln!(
        "after a 100-event burst: {per_conn} bytes per connection (allocator retention included)"
    );
    assert!(
        per_conn < 16 * 1024,
        "{per_conn} bytes per connection after a burst"
    );
    Ok(())
}
