//! Session export/import, acknowledgements, shutdown, the identify budget,
//! commands and the send rate limit, unexpected inputs.

mod support;

use std::time::{Duration, Instant};

use gateway_proto::{
    Command, Event, EventFilter, EventKind, EventKinds, Gateway, GatewayInfo, InputError,
    InputKind, ReconnectReason, SendError, Session, SessionStartLimit, StateKind, Unwanted,
};
use serde_json::json;
use support::{Harness, INTERVAL, Out, RESUME_URL, base_config};

#[test]
fn exported_session_carries_the_acknowledged_seq_and_resumes_from_it() {
    let mut h = Harness::connected(base_config().manual_acknowledge(true).build());
    let mut seqs = Vec::new();
    for _ in 0..5 {
        seqs.push(h.dispatch("TYPING_START", json!({})));
    }
    h.gw.acknowledge(seqs[2]);
    let session = h.gw.session().unwrap();
    assert_eq!(session.seq, seqs[2]);
    assert_eq!(session.id, "session-1");
    assert_eq!(session.resume_url, RESUME_URL);
    // Heartbeats still carry the latest seq received.
    h.clear_log();
    h.advance(INTERVAL);
    assert_eq!(h.sent_op(1)[0].1["d"], seqs[4]);
    // A reconnect in the same process resumes from the acknowledged seq.
    h.clear_log();
    h.server_close(None);
    h.run_until(Duration::from_secs(120), |h| {
        h.gw.state() == StateKind::Connected
    });
    assert_eq!(h.sent_op(6)[0].1["d"]["seq"], seqs[2]);
    // And so does a new process importing the persisted session.
    let persisted = serde_json::to_string(&h.gw.session().unwrap()).unwrap();
    let restored: Session = serde_json::from_str(&persisted).unwrap();
    let mut next = Harness::new(base_config().session(restored).build());
    next.start();
    assert_eq!(
        next.connects()[0].1,
        format!("{RESUME_URL}/?v=10&encoding=json")
    );
    let resume = &next.sent_op(6)[0].1;
    assert_eq!(resume["d"]["seq"], seqs[2]);
    assert_eq!(resume["d"]["session_id"], "session-1");
    assert!(next.sent_op(2).is_empty());
    assert_eq!(next.gw.state(), StateKind::Connected);
}

#[test]
fn replayed_events_after_resuming_from_an_earlier_seq_are_delivered() {
    let mut h = Harness::connected(base_config().manual_acknowledge(true).build());
    for _ in 0..4 {
        h.dispatch("TYPING_START", json!({}));
    }
    h.gw.acknowledge(2);
    h.script.resumed = false;
    h.server_close(None);
    h.clear_log();
    h.run_until(Duration::from_secs(120), |h| {
        h.gw.state() == StateKind::Resuming
    });
    // Discord replays 3..=5, then RESUMED.
    for s in 3..=5u64 {
        h.server(json!({"op": 0, "s": s, "t": "TYPING_START", "d": {}}));
    }
    h.server(json!({"op": 0, "s": null, "t": "RESUMED", "d": {}}));
    let replayed: Vec<u64> = h
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Dispatch(d) if d.name() == "TYPING_START" => Some(d.seq),
            _ => None,
        })
        .collect();
    assert_eq!(replayed, [3, 4, 5]);
    assert!(
        h.events
            .iter()
            .any(|(_, e)| matches!(e, Event::Resumed { replayed: 3 }))
    );
    assert_eq!(h.gw.latest_seq(), Some(5));
    assert_eq!(h.gw.acknowledged_seq(), Some(2));
    h.gw.acknowledge(99);
    assert_eq!(
        h.gw.acknowledged_seq(),
        Some(5),
        "clamped to what was received"
    );
}

#[test]
fn automatic_acknowledgement_follows_delivery() {
    let mut h = Harness::connected(base_config().build());
    let seq = h.dispatch("TYPING_START", json!({}));
    assert_eq!(h.gw.session().unwrap().seq, seq);
}

#[test]
fn dropped_events_advance_the_acknowledgement_only_when_caught_up() {
    let filter = EventFilter::new(
        [EventKind::VoiceStateUpdate]
            .into_iter()
            .collect::<EventKinds>(),
        Unwanted::Drop,
    );
    let mut h = Harness::connected(
        base_config()
            .events(filter)
            .manual_acknowledge(true)
            .build(),
    );
    h.clear_log();
    let vs = json!({"channel_id": null, "user_id": "1", "session_id": "s"});
    let wanted = h.dispatch("VOICE_STATE_UPDATE", vs.clone());
    let dropped = h.dispatch("TYPING_START", json!({}));
    assert_eq!(h.events.len(), 1, "unwanted event dropped: {:?}", h.events);
    // Not caught up: the delivered event is unacknowledged.
    assert!(h.gw.acknowledged_seq() < Some(wanted));
    h.gw.acknowledge(wanted);
    let dropped2 = h.dispatch("TYPING_START", json!({}));
    assert!(dropped2 > dropped);
    assert_eq!(h.gw.acknowledged_seq(), Some(dropped2));
}

#[test]
fn shutdown_closes_resumably_and_can_restart() {
    let mut h = Harness::connected(base_config().build());
    let seq = h.dispatch("TYPING_START", json!({}));
    h.clear_log();
    h.gw.shutdown(h.now).unwrap();
    h.settle();
    assert_eq!(h.log.len(), 1);
    assert!(matches!(h.log[0].1, Out::Close(4000)));
    assert!(h.events.iter().any(|(_, e)| matches!(e, Event::Shutdown)));
    assert_eq!(h.gw.state(), StateKind::Closed);
    assert_eq!(h.gw.poll_timeout(), None);
    assert_eq!(h.gw.session().unwrap().seq, seq);
    assert!(matches!(
        h.gw.shutdown(h.now),
        Err(InputError::Unexpected {
            input: InputKind::Shutdown,
            state: StateKind::Closed
        })
    ));
    assert_eq!(
        h.gw.send(
            &Command::update_voice_state("1", None, false, false).unwrap(),
            h.now
        ),
        Err(SendError::Stopped)
    );
    h.clear_log();
    h.start();
    assert_eq!(h.sent_op(6).len(), 1);
    assert_eq!(h.gw.state(), StateKind::Connected);
}

#[test]
fn shutdown_without_a_close_echo_finishes_at_the_deadline() {
    let mut h = Harness::connected(base_config().build());
    h.script.echo_close = false;
    h.gw.shutdown(h.now).unwrap();
    h.settle();
    h.run_until(Duration::from_secs(25), |h| {
        h.events.iter().any(|(_, e)| matches!(e, Event::Shutdown))
    });
    assert_eq!(h.count(|o| matches!(o, Out::Drop)), 1);
}

#[test]
fn identify_waits_for_the_session_start_limit() {
    let mut h = Harness::new(base_config().build());
    h.gw.set_gateway_info(
        GatewayInfo {
            url: "wss://gw.example".into(),
            shards: Some(1),
            session_start_limit: Some(SessionStartLimit {
                total: 1000,
                remaining: 0,
                reset_after: 30_000,
                max_concurrency: 1,
            }),
        },
        h.now,
    );
    let began = h.now;
    h.start();
    assert!(h.connects().is_empty());
    let (_, reason, resume, delay) = h.reconnect_events()[0];
    assert_eq!(reason, ReconnectReason::SessionStartLimit);
    assert!(!resume);
    assert_eq!(delay, Duration::from_secs(30));
    h.run_until(Duration::from_secs(60), |h| {
        h.gw.state() == StateKind::Connected
    });
    assert_eq!(h.connects()[0].0 - began, Duration::from_secs(30));
    assert_eq!(h.connects()[0].1, "wss://gw.example/?v=10&encoding=json");
}

#[test]
fn each_identify_spends_the_budget() {
    let mut h = Harness::new(base_config().build());
    h.gw.set_gateway_info(
        GatewayInfo {
            url: "wss://gw.example".into(),
            shards: None,
            session_start_limit: Some(SessionStartLimit {
                total: 1000,
                remaining: 1,
                reset_after: 600_000,
                max_concurrency: 1,
            }),
        },
        h.now,
    );
    let began = h.now;
    h.start();
    assert_eq!(h.gw.state(), StateKind::Connected);
    // The session is lost: the next IDENTIFY must wait for the reset.
    h.server_close(Some(4009));
    h.run_until(Duration::from_secs(700), |h| h.sent_op(2).len() == 2);
    assert!(h.now - began >= Duration::from_secs(600));
    // Resumes are not limited.
    h.settle();
    h.server_close(None);
    h.clear_log();
    h.run_until(Duration::from_secs(120), |h| !h.sent_op(6).is_empty());
}

#[test]
fn commands_wait_for_the_session_and_the_rate_limit() {
    let mut h = Harness::new(base_config().command_queue(512).build());
    let cmd = Command::update_voice_state("100", Some("5"), false, false).unwrap();
    h.gw.send(&cmd, h.now).unwrap();
    h.start();
    assert_eq!(h.sent_op(4).len(), 1, "queued command goes out after READY");
    let started = h.now;
    for _ in 0..300 {
        h.gw.send(&cmd, h.now).unwrap();
    }
    h.settle();
    h.advance(Duration::from_secs(190));
    let sends: Vec<Instant> = h.sent().iter().map(|(t, _)| *t).collect();
    for (i, t) in sends.iter().enumerate() {
        let in_window = sends[i..]
            .iter()
            .take_while(|u| **u < *t + Duration::from_secs(60))
            .count();
        assert!(
            in_window <= 120,
            "{in_window} sends in 60 s from {:?}",
            *t - started
        );
    }
    assert_eq!(h.sent_op(4).len(), 301, "every command eventually sent");
    // Heartbeats were never held back by the commands.
    let beats: Vec<Instant> = h.sent_op(1).iter().map(|(t, _)| *t).collect();
    assert!(beats.len() >= 4);
    assert!(beats.windows(2).all(|w| w[1] - w[0] == INTERVAL));
    assert!(h.reconnect_events().is_empty());
}

#[test]
fn command_queue_is_bounded_and_oversized_payloads_are_refused() {
    let mut h = Harness::new(base_config().command_queue(2).build());
    let cmd = Command::update_voice_state("100", None, false, false).unwrap();
    h.gw.send(&cmd, h.now).unwrap();
    h.gw.send(&cmd, h.now).unwrap();
    assert_eq!(
        h.gw.send(&cmd, h.now),
        Err(SendError::QueueFull { capacity: 2 })
    );
    assert_eq!(h.gw.queued_commands(), 2);
    let big = json!({"status": "x".repeat(5000)});
    assert!(matches!(
        Command::from_data(3, &big),
        Err(SendError::TooLarge { limit: 4096, .. })
    ));
    assert_eq!(
        Command::from_data(1, &json!(null)),
        Err(SendError::ReservedOpcode(1))
    );
}

#[test]
fn unexpected_inputs_are_errors_not_panics() {
    let mut h = Harness::new(base_config().build());
    let now = h.now;
    let gw: &mut Gateway = &mut h.gw;
    assert!(matches!(
        gw.handle_text("{}", now),
        Err(InputError::Unexpected {
            input: InputKind::Frame,
            ..
        })
    ));
    assert!(gw.handle_binary(b"x", now).is_err());
    assert!(gw.handle_connected(now).is_err());
    assert!(gw.handle_connect_failed(now).is_err());
    assert!(gw.handle_closed(Some(4000), "", now).is_err());
    gw.handle_timeout(now);
    gw.start(now).unwrap();
    assert!(gw.start(now).is_err());
    assert!(
        gw.set_session(Session {
            id: "a".into(),
            seq: 1,
            resume_url: "wss://x".into()
        })
        .is_err()
    );
    gw.handle_connected(now).unwrap();
    assert!(gw.handle_connected(now).is_err());
    // Garbage frames drop the connection to resume, with an error value.
    assert!(matches!(
        gw.handle_text("not json", now),
        Err(InputError::Decode(_))
    ));
    assert_eq!(gw.state(), StateKind::WaitingToReconnect);
    while gw.poll_transmit().is_some() {}
    while gw.poll_event().is_some() {}
}

#[test]
fn bad_frames_after_ready_resume() {
    let mut h = Harness::connected(base_config().build());
    h.clear_log();
    h.server(json!({"op": 10, "d": {"heartbeat_interval": 0}}));
    assert!(h.reconnect_events().is_empty(), "a second HELLO is ignored");
    h.push(json!({"op": 0, "s": 2, "t": "READY", "d": {"nonsense": true}}));
    h.settle();
    assert_eq!(h.reconnect_events()[0].1, ReconnectReason::BadFrame);
    assert_eq!(h.errors.len(), 1);
}
