//! Heartbeat rules: jittered first beat, `d` = latest seq, op 1, the ACK
//! watchdog and its burst tolerance.

mod support;

use std::time::Duration;

use gateway_proto::{Event, ReconnectReason, StateKind};
use serde_json::json;
use support::{Harness, INTERVAL, Out, RESUME_URL, Script, base_config};

#[test]
fn first_heartbeat_is_jittered_within_the_interval() {
    let mut firsts = Vec::new();
    for seed in 0..20 {
        let mut h = Harness::new(base_config().seed(seed).build());
        h.start();
        let hello_at = h.now;
        h.advance(INTERVAL * 2);
        let beats = h.sent_op(1);
        let first = beats[0].0 - hello_at;
        assert!(first < INTERVAL, "seed {seed}: first beat after {first:?}");
        firsts.push(first);
        // Then every interval exactly.
        assert_eq!(beats[1].0 - beats[0].0, INTERVAL);
    }
    firsts.sort();
    firsts.dedup();
    assert!(
        firsts.len() > 10,
        "jitter must vary with the seed: {firsts:?}"
    );
}

#[test]
fn heartbeat_carries_null_before_any_dispatch() {
    let script = Script {
        ready: false,
        ..Script::default()
    };
    let mut h = Harness::with_script(base_config().build(), script);
    h.start();
    h.advance(INTERVAL);
    let beats = h.sent_op(1);
    assert!(!beats.is_empty());
    assert!(beats[0].1["d"].is_null());
}

#[test]
fn heartbeat_carries_latest_seq_not_the_highest() {
    let mut h = Harness::connected(base_config().build());
    h.dispatch("TYPING_START", json!({}));
    // Discord's `s` is what we track: the last non-null one received.
    h.server(json!({"op": 0, "s": 40, "t": "TYPING_START", "d": {}}));
    h.server(json!({"op": 0, "s": 39, "t": "TYPING_START", "d": {}}));
    h.server(json!({"op": 11, "s": null}));
    h.clear_log();
    h.advance(INTERVAL);
    assert_eq!(h.sent_op(1)[0].1["d"], 39);
}

#[test]
fn op1_gets_an_immediate_heartbeat() {
    let mut h = Harness::connected(base_config().build());
    let seq = h.dispatch("TYPING_START", json!({}));
    h.clear_log();
    h.server(json!({"op": 1, "d": null}));
    let beats = h.sent_op(1);
    assert_eq!(beats.len(), 1);
    assert_eq!(beats[0].0, h.now);
    assert_eq!(beats[0].1["d"], seq);
}

#[test]
fn missing_ack_is_a_zombie_and_resumes_on_the_resume_url_with_query() {
    let script = Script {
        ack: false,
        ..Script::default()
    };
    let config = base_config()
        .compression(gateway_proto::Compression::ZlibStream)
        .build();
    let mut h = Harness::with_script(config, script);
    h.start();
    assert_eq!(h.gw.state(), StateKind::Connected);
    let seq = h.dispatch("TYPING_START", json!({}));
    h.clear_log();
    h.run_until(INTERVAL * 3, |h| {
        h.reconnect_events()
            .iter()
            .any(|(_, r, _, _)| *r == ReconnectReason::Zombie)
    });
    // Dropped without a handshake, never closed with 1000/1001.
    assert_eq!(h.count(|o| matches!(o, Out::Drop)), 1);
    assert_eq!(h.count(|o| matches!(o, Out::Close(_))), 0);
    let (_, _, resume, _) = h.reconnect_events()[0];
    assert!(resume);
    h.script.ack = true;
    h.run_until(Duration::from_secs(120), |h| !h.connects().is_empty());
    // (Without the `zlib` feature the machine connects uncompressed.)
    let compress = match h.gw.compression() {
        gateway_proto::Compression::ZlibStream => "&compress=zlib-stream",
        _ => "",
    };
    assert_eq!(
        h.connects()[0].1,
        format!("{RESUME_URL}/?v=10&encoding=json{compress}")
    );
    h.settle();
    let resume = &h.sent_op(6)[0].1;
    assert_eq!(resume["d"]["seq"], seq);
    assert_eq!(resume["d"]["session_id"], "session-1");
}

#[test]
fn zombie_is_detected_at_the_second_due_beat() {
    let script = Script {
        ack: false,
        ..Script::default()
    };
    let mut h = Harness::with_script(base_config().build(), script);
    h.start();
    let hello_at = h.now;
    h.run_until(INTERVAL * 3, |h| !h.reconnect_events().is_empty());
    let beats = h.sent_op(1);
    assert_eq!(
        beats.len(),
        1,
        "one unanswered beat, then the zombie verdict"
    );
    assert_eq!(h.now - beats[0].0, INTERVAL);
    assert!(h.now - hello_at < INTERVAL * 2);
}

#[test]
fn burst_before_the_ack_is_not_a_false_zombie() {
    let script = Script {
        ack: false,
        ..Script::default()
    };
    let mut h = Harness::with_script(base_config().build(), script);
    h.start();
    for round in 0..5 {
        // Wait for our heartbeat.
        let beats_before = h.sent_op(1).len();
        h.run_until(INTERVAL * 2, |h| h.sent_op(1).len() > beats_before);
        // A big GUILD_CREATE arrives after it; the ACK is stuck behind it
        // and only read after the next heartbeat was due.
        h.advance(Duration::from_millis(500));
        let channels: Vec<_> = (0..500)
            .map(|i| json!({"id": i.to_string(), "type": 2, "name": format!("voice {i}")}))
            .collect();
        h.dispatch(
            "GUILD_CREATE",
            json!({"id": "100", "channels": channels, "voice_states": []}),
        );
        let beats_before = h.sent_op(1).len();
        h.run_until(INTERVAL * 2, |h| h.sent_op(1).len() > beats_before);
        h.advance(Duration::from_millis(200));
        h.server(json!({"op": 11}));
        h.server(json!({"op": 11}));
        assert!(
            h.reconnect_events().is_empty(),
            "round {round}: false zombie {:?}",
            h.reconnect_events()
        );
    }
    assert_eq!(h.gw.state(), StateKind::Connected);
}

#[test]
fn traffic_without_acks_is_still_a_zombie_within_two_intervals() {
    let script = Script {
        ack: false,
        ..Script::default()
    };
    let mut h = Harness::with_script(base_config().build(), script);
    h.start();
    let beats_before = h.sent_op(1).len();
    h.run_until(INTERVAL * 2, |h| h.sent_op(1).len() > beats_before);
    let first_beat = h.now;
    // Events keep flowing, but no ACK ever comes.
    for _ in 0..200 {
        h.advance(Duration::from_secs(1));
        h.dispatch("TYPING_START", json!({}));
        if !h.reconnect_events().is_empty() {
            break;
        }
    }
    let events = h.reconnect_events();
    assert_eq!(events[0].1, ReconnectReason::Zombie);
    assert!(events[0].0 - first_beat <= INTERVAL * 2);
    assert!(h.events.iter().all(|(_, e)| !matches!(e, Event::Fatal(_))));
}
