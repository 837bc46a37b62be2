//! A client that stops reading is closed with 1013 once its queue is over the bound, while a
//! normal client receives every event (contract §3.6).

mod ws_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt as _;
use hub_core::hub::{IncomingEvent, IngestOutcome};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use ws_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_client_is_evicted_1013_while_a_normal_one_gets_everything() -> TestResult {
    let t = TestHub::start(Options {
        client_queue_max_bytes: 16 * 1024,
        ..Options::default()
    })
    .await?;
    let mut stalled = t.connect_small_rcvbuf().await?;
    t.auth(&mut stalled, None).await?;
    let (mut normal, _) = t.authed(None).await?;
    recv_json(&mut normal).await?; // snapshot

    // The normal client reads everything and records the seqs it saw.
    let last_seen = Arc::new(AtomicU64::new(0));
    let seen = last_seen.clone();
    let reader = tokio::spawn(async move {
        let mut expected = 1u64;
        while let Some(Ok(msg)) = normal.next().await {
            match msg {
                Message::Text(text) => {
                    let ev: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
                    let seq = ev["seq"].as_u64().ok_or("no seq")?;
                    if seq != expected {
                        return Err(format!("expected seq {expected}, got {seq}"));
                    }
                    expected += 1;
                    seen.store(seq, Ordering::Release);
                }
                Message::Close(f) => return Err(format!("normal client closed: {f:?}")),
                _ => {}
            }
        }
        Ok::<u64, String>(expected - 1)
    });

    // Publish in small bursts, each one only after the normal client caught up, until the
    // stalled client (which reads nothing) has filled the kernel buffers and its queue.
    let mut seq = 0u64;
    let mut user = 0u64;
    while t.metrics.evictions.load(Ordering::Relaxed) == 0 {
        for _ in 0..32 {
            user += 1;
            let payload = json!({"guildId": GUILD.to_string(), "channelId": "10", "userId": user.to_string()});
            let out = t
                .hub
                .publish(
                    IncomingEvent {
                        id: None,
                        event: "voice.joined".into(),
                        payload,
                    },
                    unix_now() * 1000,
                )
                .await;
            assert_eq!(out, Ok(IngestOutcome::Applied { emitted: 1 }));
            seq += 1;
        }
        let target = seq;
        eventually(|| last_seen.load(Ordering::Acquire) >= target).await?;
        assert!(seq < 2_000_000, "the stalled client was never evicted");
    }
    eprintln!("stalled client evicted after {seq} events");
    // A few more after the eviction: the normal client still gets them.
    for _ in 0..10 {
        user += 1;
        t.join(10, user);
        seq += 1;
    }
    eventually(|| last_seen.load(Ordering::Acquire) >= seq).await?;
    assert_eq!(t.hub.subscribers(), 1);
    assert_eq!(t.metrics.evictions.load(Ordering::Relaxed), 1);

    // The stalled client finally reads: what was in flight, then the 1013 close frame.
    assert_eq!(close_code(&mut stalled).await?, 1013);
    reader.abort();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reads_nothing_is_dropped_even_without_new_events() -> TestResult {
    let t = TestHub::start(Options {
        client_queue_max_bytes: 64 << 20,
        settings: hub_core::ws::WsSettings {
            write_timeout: std::time::Duration::from_millis(500),
            ..hub_core::ws::WsSettings::default()
        },
        ..Options::default()
    })
    .await?;
    let mut stalled = t.connect_small_rcvbuf().await?;
    t.auth(&mut stalled, None).await?;
    // Far more than the kernel buffers hold, far less than the queue bound: the writer
    // blocks, nobody is evicted, and then no event comes.
    for user in 0..30_000u64 {
        t.join(10, user);
    }
    eventually(|| t.hub.subscribers() == 0).await?;
    assert_eq!(t.metrics.evictions.load(Ordering::Relaxed), 0);
    Ok(())
}
