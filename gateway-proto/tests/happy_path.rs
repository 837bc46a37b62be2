//! Connect, HELLO, IDENTIFY, READY, heartbeats, dispatches, resume.

mod support;

use std::time::Duration;

use gateway_proto::{DispatchEvent, Event, StateKind};
use serde_json::json;
use support::{Harness, INTERVAL, Out, RESUME_URL, base_config};

#[test]
fn identifies_and_becomes_ready() {
    let h = Harness::connected(base_config().shard(0, 1).large_threshold(100).build());
    let connects = h.connects();
    assert_eq!(connects.len(), 1);
    assert_eq!(
        connects[0].1,
        "wss://gateway.discord.gg/?v=10&encoding=json"
    );
    let identify = &h.sent_op(2)[0].1;
    assert_eq!(identify["d"]["token"], "test-token");
    assert_eq!(identify["d"]["intents"], 129);
    assert_eq!(identify["d"]["shard"], json!([0, 1]));
    assert_eq!(identify["d"]["large_threshold"], 100);
    assert!(identify["d"]["properties"]["os"].is_string());
    assert!(identify["d"]["properties"]["browser"].is_string());
    assert!(identify["d"]["properties"]["device"].is_string());
    assert!(
        h.events
            .iter()
            .any(|(_, e)| matches!(e, Event::Ready { session_id } if session_id == "session-1"))
    );
    let ready = h.events.iter().find_map(|(_, e)| match e {
        Event::Dispatch(d) => match &d.event {
            DispatchEvent::Ready(r) => Some(r.clone()),
            _ => None,
        },
        _ => None,
    });
    let ready = ready.expect("typed READY dispatch");
    assert_eq!(ready.session_id, "session-1");
    assert_eq!(ready.resume_gateway_url, RESUME_URL);
    assert!(h.errors.is_empty(), "{:?}", h.errors);
}

#[test]
fn heartbeats_every_interval_with_latest_seq() {
    let mut h = Harness::connected(base_config().build());
    h.dispatch(
        "GUILD_CREATE",
        json!({"id": "100", "channels": [], "voice_states": []}),
    );
    let seq = h.dispatch("TYPING_START", json!({"channel_id": "1"}));
    h.advance(INTERVAL * 3);
    let beats = h.sent_op(1);
    assert!(beats.len() >= 3, "{beats:?}");
    for (_, beat) in &beats {
        assert_eq!(beat["d"], seq);
    }
    let gaps: Vec<Duration> = beats.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert!(gaps.iter().all(|g| *g == INTERVAL), "{gaps:?}");
    assert_eq!(h.gw.state(), StateKind::Connected);
    assert!(h.gw.latency().is_some());
}

#[test]
fn dispatches_are_typed_or_raw() {
    let mut h = Harness::connected(base_config().build());
    h.clear_log();
    h.dispatch(
        "VOICE_STATE_UPDATE",
        json!({"guild_id": "100", "channel_id": "5", "user_id": "7", "session_id": "x",
               "deaf": false, "mute": false, "self_deaf": false, "self_mute": true}),
    );
    h.dispatch("MESSAGE_CREATE", json!({"id": "1", "content": "hi"}));
    let dispatches: Vec<_> = h
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Dispatch(d) => Some(d.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(dispatches.len(), 2);
    assert!(
        matches!(&dispatches[0].event, DispatchEvent::VoiceStateUpdate(v) if v.self_mute && v.channel_id.as_deref() == Some("5"))
    );
    match &dispatches[1].event {
        DispatchEvent::Raw(raw) => {
            assert_eq!(raw.name, "MESSAGE_CREATE");
            assert_eq!(raw.data.get(), r#"{"content":"hi","id":"1"}"#);
        }
        other => panic!("expected raw, got {other:?}"),
    }
    assert_eq!(dispatches[1].seq, dispatches[0].seq + 1);
}

#[test]
fn resumes_on_resume_url_after_a_drop() {
    let mut h = Harness::connected(base_config().build());
    let seq = h.dispatch("TYPING_START", json!({}));
    h.clear_log();
    h.server_close(None);
    h.run_until(Duration::from_secs(120), |h| {
        h.gw.state() == StateKind::Connected
    });
    let connects = h.connects();
    assert_eq!(connects.len(), 1);
    assert_eq!(connects[0].1, format!("{RESUME_URL}/?v=10&encoding=json"));
    let resume = &h.sent_op(6)[0].1;
    assert_eq!(resume["d"]["session_id"], "session-1");
    assert_eq!(resume["d"]["seq"], seq);
    assert_eq!(resume["d"]["token"], "test-token");
    assert!(h.sent_op(2).is_empty(), "no identify on resume");
    assert!(
        h.events
            .iter()
            .any(|(_, e)| matches!(e, Event::Resumed { .. }))
    );
    assert!(h.count(|o| matches!(o, Out::Close(1000 | 1001))) == 0);
}
