//! `/ws` over real sockets: auth, snapshot, resume, closes, pings, Origin (contract §3).

mod ws_support;

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use hub_core::hub::IngestOutcome;
use hub_core::ws::WsSettings;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use ws_support::*;

#[tokio::test]
async fn auth_ok_gets_ack_then_snapshot_then_live_events() -> TestResult {
    let t = TestHub::start(Options::default()).await?;
    t.event("room.created", 10, None);
    t.join(10, 1);
    t.join(20, 2);
    let (mut c, ack) = t.authed(None).await?;
    assert_eq!(
        ack,
        json!({"v":1,"type":"ack","event":"auth.ok","guildId":GUILD.to_string(),"seq":3,"resumed":false})
    );
    let snap = recv_json(&mut c).await?;
    assert_eq!(
        snap,
        json!({"v":1,"type":"snapshot","seq":3,"payload":{"rooms":[
            {"channelId":"10","name":"room-10","members":["1"]},
            {"channelId":"20","name":null,"members":["2"]}
        ]}})
    );
    assert_eq!(t.leave(20, 2), IngestOutcome::Applied { emitted: 1 });
    let ev = recv_json(&mut c).await?;
    assert_eq!(ev["type"], "event");
    assert_eq!(ev["event"], "voice.left");
    assert_eq!(ev["seq"], 4);
    assert_eq!(
        ev["payload"],
        json!({"guildId":GUILD.to_string(),"channelId":"20","userId":"2"})
    );
    assert!(ev["ts"].as_i64().is_some_and(|ts| ts > 0));
    assert_eq!(
        t.metrics.auth_ok.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    Ok(())
}

#[tokio::test]
async fn no_auth_in_time_closes_4408() -> TestResult {
    let settings = WsSettings {
        auth_timeout: Duration::from_millis(300),
        ..WsSettings::default()
    };
    let t = TestHub::start(Options {
        settings,
        ..Options::default()
    })
    .await?;
    let mut c = t.connect().await?;
    assert_eq!(close_code(&mut c).await?, 4408);
    Ok(())
}

#[tokio::test]
async fn invalid_token_or_non_auth_first_message_closes_4401() -> TestResult {
    let t = TestHub::start(Options::default()).await?;
    let other = hub_core::auth::TestIssuer::new("someone-else");
    let cases = [
        json!({"type":"auth","token":"garbage"}).to_string(),
        json!({"type":"auth","token": other.token_for(ISS, AUD, "u", unix_now() + 60)}).to_string(),
        json!({"type":"auth","token": t.issuer.token_for(ISS, AUD, "u", unix_now() - 3600)})
            .to_string(),
        json!({"type":"auth","token": t.issuer.token_for(ISS, "other-aud", "u", unix_now() + 60)})
            .to_string(),
        json!({"type":"hello"}).to_string(),
        "not json".to_owned(),
    ];
    for text in cases {
        let mut c = t.connect().await?;
        c.send(Message::text(text.clone())).await?;
        assert_eq!(close_code(&mut c).await?, 4401, "{text}");
    }
    Ok(())
}

#[tokio::test]
async fn resume_with_since_replays_in_order_then_live_none_twice() -> TestResult {
    let t = TestHub::start(Options::default()).await?;
    for u in 1..=5 {
        t.join(10, u);
    }
    let (mut c, ack) = t.authed(Some(2)).await?;
    assert_eq!(ack["resumed"], true);
    assert_eq!(ack["seq"], 5);
    for seq in 3..=5 {
        let ev = recv_json(&mut c).await?;
        assert_eq!(ev["seq"], seq);
    }
    t.join(10, 6);
    assert_eq!(recv_json(&mut c).await?["seq"], 6);

    // A resume at the head: resumed, nothing replayed, then live.
    let (mut c2, ack) = t.authed(Some(6)).await?;
    assert_eq!(ack["resumed"], true);
    t.join(10, 7);
    assert_eq!(recv_json(&mut c2).await?["seq"], 7);
    assert_eq!(recv_json(&mut c).await?["seq"], 7);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_while_events_flow_has_no_gap_and_no_duplicate() -> TestResult {
    let t = TestHub::start(Options::default()).await?;
    for u in 1..=10 {
        t.join(10, u);
    }
    let hub = t.hub.clone();
    let publisher = tokio::spawn(async move {
        for u in 11..=400u64 {
            let payload =
                json!({"guildId": GUILD.to_string(), "channelId": "10", "userId": u.to_string()});
            let _ = hub
                .publish(
                    hub_core::hub::IncomingEvent {
                        id: None,
                        event: "voice.joined".into(),
                        payload,
                    },
                    unix_now() * 1000,
                )
                .await;
            if u % 20 == 0 {
                tokio::task::yield_now().await;
            }
        }
    });
    let (mut c, ack) = t.authed(Some(5)).await?;
    assert_eq!(ack["resumed"], true);
    let mut expected = 6;
    while expected <= 400 {
        let ev = recv_json(&mut c).await?;
        assert_eq!(ev["seq"], expected, "gap or duplicate");
        expected += 1;
    }
    publisher.await?;
    Ok(())
}

#[tokio::test]
async fn since_too_old_gets_a_snapshot() -> TestResult {
    let t = TestHub::start(Options {
        replay_max_events: 3,
        ..Options::default()
    })
    .await?;
    for u in 1..=10 {
        t.join(10, u);
    }
    let (mut c, ack) = t.authed(Some(1)).await?;
    assert_eq!(ack["resumed"], false);
    assert_eq!(ack["seq"], 10);
    let snap = recv_json(&mut c).await?;
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["seq"], 10);
    assert_eq!(
        snap["payload"]["rooms"][0]["members"]
            .as_array()
            .map(Vec::len),
        Some(10)
    );
    // `since` ahead of the stream: also a snapshot.
    let (mut c, ack) = t.authed(Some(99)).await?;
    assert_eq!(ack["resumed"], false);
    assert_eq!(recv_json(&mut c).await?["type"], "snapshot");
    Ok(())
}

#[tokio::test]
async fn messages_over_4_kib_close_1009_also_across_fragments() -> TestResult {
    let t = TestHub::start(Options::default()).await?;
    // Exactly 4096 bytes is allowed (and ignored after auth).
    let (mut c, _) = t.authed(None).await?;
    recv_json(&mut c).await?; // snapshot
    c.send(Message::text("x".repeat(4096))).await?;
    t.join(1, 1);
    assert_eq!(recv_json(&mut c).await?["seq"], 1);
    c.send(Message::text("x".repeat(4097))).await?;
    assert_eq!(close_code(&mut c).await?, 1009);

    // Two fragments of 2100 bytes: 4200 in all.
    let (mut c, _) = t.authed(None).await?;
    recv_json(&mut c).await?;
    c.send(Message::Frame(Frame::message(
        vec![b'a'; 2100],
        OpCode::Data(Data::Text),
        false,
    )))
    .await?;
    c.send(Message::Frame(Frame::message(
        vec![b'a'; 2100],
        OpCode::Data(Data::Continue),
        true,
    )))
    .await?;
    assert_eq!(close_code(&mut c).await?, 1009);

    // Before auth too.
    let mut c = t.connect().await?;
    c.send(Message::text("x".repeat(5000))).await?;
    assert_eq!(close_code(&mut c).await?, 1009);
    Ok(())
}

#[tokio::test]
async fn invalid_utf8_closes_1007() -> TestResult {
    let t = TestHub::start(Options::default()).await?;
    let (mut c, _) = t.authed(None).await?;
    recv_json(&mut c).await?;
    c.send(Message::Frame(Frame::message(
        vec![b'{', 0xff, 0xfe, b'}'],
        OpCode::Data(Data::Text),
        true,
    )))
    .await?;
    assert_eq!(close_code(&mut c).await?, 1007);
    Ok(())
}

#[tokio::test]
async fn rfc6455_violations_close_1002() -> TestResult {
    let t = TestHub::start(Options::default()).await?;
    let cases: [(&str, Vec<u8>); 5] = [
        ("unmasked text frame", frame(0x81, b"hello", false)),
        ("rsv1 set", frame(0x81 | 0x40, b"hello", true)),
        ("reserved data opcode 3", frame(0x83, b"hello", true)),
        ("reserved control opcode 11", frame(0x8b, b"", true)),
        ("fragmented ping", frame(0x09, b"", true)),
    ];
    for (what, bytes) in cases {
        let (mut s, head) = raw_upgrade(t.addr, "").await?;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        s.write_all(&bytes).await?;
        assert_eq!(raw_close_code(&mut s).await?, 1002, "{what}");
    }
    Ok(())
}

#[tokio::test]
async fn origin_not_allowed_is_refused_403() -> TestResult {
    let t = TestHub::start(Options {
        allowed_origins: vec!["https://app.example".into()],
        ..Options::default()
    })
    .await?;
    let (_, head) = raw_upgrade(t.addr, "Origin: https://evil.example\r\n").await?;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let (_, head) = raw_upgrade(t.addr, "Origin: https://app.example\r\n").await?;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    Ok(())
}

#[tokio::test]
async fn bad_upgrades_get_426_or_400() -> TestResult {
    let t = TestHub::start(Options::default()).await?;
    let mut s = tokio::net::TcpStream::connect(t.addr).await?;
    s.write_all(
        format!(
            "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            t.addr
        )
        .as_bytes(),
    )
    .await?;
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(WAIT, tokio::io::AsyncReadExt::read(&mut s, &mut buf)).await??;
    let head = String::from_utf8_lossy(&buf[..n]).to_lowercase();
    assert!(head.starts_with("http/1.1 426"), "{head}");
    assert!(head.contains("sec-websocket-version: 13"), "{head}");
    Ok(())
}

#[tokio::test]
async fn pings_are_answered_before_auth() -> TestResult {
    let t = TestHub::start(Options::default()).await?;
    let mut c = t.connect().await?;
    c.send(Message::Ping(b"are-you-there".to_vec().into()))
        .await?;
    let msg = tokio::time::timeout(WAIT, c.next())
        .await?
        .ok_or("ended")??;
    assert_eq!(msg, Message::Pong(b"are-you-there".to_vec().into()));
    c.send(Message::text(
        json!({"type":"auth","token":t.token()}).to_string(),
    ))
    .await?;
    assert_eq!(recv_json(&mut c).await?["event"], "auth.ok");
    Ok(())
}

#[tokio::test]
async fn second_auth_and_unknown_messages_are_ignored() -> TestResult {
    let t = TestHub::start(Options::default()).await?;
    let (mut c, _) = t.authed(None).await?;
    recv_json(&mut c).await?;
    c.send(Message::text(
        json!({"type":"auth","token":"garbage"}).to_string(),
    ))
    .await?;
    c.send(Message::text(json!({"type":"subscribe"}).to_string()))
        .await?;
    c.send(Message::binary(vec![1, 2, 3])).await?;
    t.join(1, 1);
    assert_eq!(recv_json(&mut c).await?["seq"], 1);
    Ok(())
}

#[tokio::test]
async fn silent_clients_are_closed_after_a_missed_ping() -> TestResult {
    let settings = WsSettings {
        ping_interval: Duration::from_millis(500),
        ..WsSettings::default()
    };
    let t = TestHub::start(Options {
        settings,
        ..Options::default()
    })
    .await?;
    // A client that answers pings (by reading) stays connected across many intervals.
    let (mut alive, _) = t.authed(None).await?;
    recv_json(&mut alive).await?;
    let reader = tokio::spawn(async move {
        let mut events: Vec<Value> = Vec::new();
        while let Some(Ok(msg)) = alive.next().await {
            match msg {
                Message::Text(t) => {
                    events.push(serde_json::from_str(&t).unwrap_or(Value::Null));
                    return Ok(events);
                }
                Message::Close(f) => return Err(format!("closed: {f:?}")),
                _ => {}
            }
        }
        Err("ended".to_owned())
    });
    // A client that never reads never answers: closed with 1001. Wait until the hub has
    // dropped it (between one and two intervals), so the reading client has lived through
    // several pings by then.
    let (mut silent, _) = t.authed(None).await?;
    eventually(|| t.hub.subscribers() == 1).await?;
    t.join(1, 1);
    let events = reader.await?.map_err(|e| e.to_string())?;
    assert_eq!(events[0]["seq"], 1);
    assert_eq!(close_code(&mut silent).await?, 1001);
    Ok(())
}

#[tokio::test]
async fn shutdown_closes_every_socket_1001_and_refuses_new_ones() -> TestResult {
    let t = TestHub::start(Options::default()).await?;
    let (mut a, _) = t.authed(None).await?;
    let mut pending = t.connect().await?; // not yet authenticated
    recv_json(&mut a).await?;
    let hub = t.hub.clone();
    let shutdown = tokio::spawn(async move { hub.shutdown().await });
    assert_eq!(close_code(&mut a).await?, 1001);
    assert_eq!(close_code(&mut pending).await?, 1001);
    shutdown.await?;
    assert!(t.hub.health().await.is_err());
    // Sockets opened after shutdown began are closed 1001 too.
    let mut late = t.connect().await?;
    late.send(Message::text(
        json!({"type":"auth","token":t.token()}).to_string(),
    ))
    .await?;
    assert_eq!(close_code(&mut late).await?, 1001);
    Ok(())
}

#[tokio::test]
async fn a_client_close_is_answered() -> TestResult {
    let t = TestHub::start(Options::default()).await?;
    let (mut c, _) = t.authed(None).await?;
    recv_json(&mut c).await?;
    c.close(None).await?;
    // The reply arrives and the connection ends cleanly.
    let end = tokio::time::timeout(WAIT, async {
        while let Some(msg) = c.next().await {
            msg?;
        }
        Ok::<(), tokio_tungstenite::tungstenite::Error>(())
    })
    .await?;
    assert!(end.is_ok(), "{end:?}");
    eventually(|| t.hub.subscribers() == 0).await?;
    eventually(|| {
        t.metrics
            .ws_connections
            .load(std::sync::atomic::Ordering::Relaxed)
            == 0
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn large_replays_and_snapshots_arrive_intact() -> TestResult {
    let t = TestHub::start(Options::default()).await?;
    // 4000 users with full-size snowflakes: a snapshot over 64 KiB (8-byte length header).
    let base = 100_000_000_000_000_000u64;
    for u in 0..4000 {
        t.join(10, base + u);
    }
    let (mut c, ack) = t.authed(Some(0)).await?;
    assert_eq!(ack["resumed"], true);
    for seq in 1..=4000u64 {
        assert_eq!(recv_json(&mut c).await?["seq"], seq);
    }
    let (mut c, ack) = t.authed(None).await?;
    assert_eq!(ack["resumed"], false);
    let snap = recv_json(&mut c).await?;
    let members = snap["payload"]["rooms"][0]["members"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(members, 4000);
    assert!(snap.to_string().len() > 65_536);
    // Live events follow through the normal path.
    t.join(11, 1);
    let ev = recv_json(&mut c).await?;
    assert_eq!(
        (ev["seq"].as_u64(), ev["event"].as_str()),
        (Some(4001), Some("voice.joined"))
    );
    Ok(())
}
