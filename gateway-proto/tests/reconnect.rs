//! Op 7, op 9, close codes, fatal errors, the resume-URL fallback and the
//! resume circuit breaker.

mod support;

use std::time::Duration;

use gateway_proto::{CloseCode, Event, FatalError, Intents, ReconnectReason, StateKind};
use serde_json::json;
use support::{Harness, INTERVAL, Out, RESUME_URL, Script, base_config};

const GATEWAY: &str = "wss://gateway.discord.gg/?v=10&encoding=json";

fn resume_url() -> String {
    format!("{RESUME_URL}/?v=10&encoding=json")
}

fn reconnected(h: &mut Harness) {
    h.run_until(Duration::from_secs(300), |h| {
        h.gw.state() == StateKind::Connected && !h.connects().is_empty()
    });
}

#[test]
fn op7_closes_resumably_and_resumes() {
    let mut h = Harness::connected(base_config().build());
    let seq = h.dispatch("TYPING_START", json!({}));
    h.clear_log();
    h.server(json!({"op": 7, "d": null}));
    assert_eq!(h.count(|o| matches!(o, Out::Close(4000))), 1);
    assert_eq!(h.reconnect_events()[0].1, ReconnectReason::Reconnect);
    reconnected(&mut h);
    assert_eq!(h.connects()[0].1, resume_url());
    assert_eq!(h.sent_op(6)[0].1["d"]["seq"], seq);
    assert!(h.sent_op(2).is_empty());
}

#[test]
fn op7_before_hello_is_honoured() {
    let mut h = Harness::connected(base_config().build());
    h.dispatch("TYPING_START", json!({}));
    h.server_close(Some(4000));
    h.script.hello = false;
    h.clear_log();
    h.run_until(Duration::from_secs(120), |h| !h.connects().is_empty());
    assert_eq!(h.gw.state(), StateKind::AwaitingHello);
    // Discord asks to reconnect before (instead of) HELLO.
    h.server(json!({"op": 7, "d": null}));
    assert_eq!(h.count(|o| matches!(o, Out::Close(4000))), 1);
    h.script.hello = true;
    h.clear_log();
    reconnected(&mut h);
    assert_eq!(h.connects()[0].1, resume_url());
    assert_eq!(h.sent_op(6).len(), 1);
    assert!(h.sent_op(2).is_empty());
}

#[test]
fn op9_true_resumes() {
    let mut h = Harness::connected(base_config().build());
    h.dispatch("TYPING_START", json!({}));
    h.clear_log();
    h.server(json!({"op": 9, "d": true}));
    let (_, reason, resume, _) = h.reconnect_events()[0];
    assert_eq!(reason, ReconnectReason::InvalidSession { resumable: true });
    assert!(resume);
    reconnected(&mut h);
    assert_eq!(h.connects()[0].1, resume_url());
    assert_eq!(h.sent_op(6).len(), 1);
    assert!(h.sent_op(2).is_empty());
}

#[test]
fn op9_false_waits_one_to_five_seconds_then_identifies_on_the_gateway_url() {
    for seed in 0..10 {
        let mut h = Harness::connected(base_config().seed(seed).build());
        h.dispatch("TYPING_START", json!({}));
        h.clear_log();
        let at = h.now;
        h.server(json!({"op": 9, "d": false}));
        let (_, reason, resume, delay) = h.reconnect_events()[0];
        assert_eq!(reason, ReconnectReason::InvalidSession { resumable: false });
        assert!(!resume);
        assert!(
            delay >= Duration::from_secs(1) && delay <= Duration::from_secs(5),
            "{delay:?}"
        );
        assert!(h.gw.session().is_none());
        reconnected(&mut h);
        let connect_at = h.connects()[0].0;
        assert_eq!(connect_at - at, delay);
        assert_eq!(h.connects()[0].1, GATEWAY);
        assert!(h.sent_op(6).is_empty());
        assert_eq!(h.sent_op(2).len(), 1);
        assert_eq!(h.gw.session().unwrap().id, "session-2");
    }
}

#[test]
fn session_ending_close_codes_identify_directly() {
    for code in [4007, 4009] {
        let mut h = Harness::connected(base_config().build());
        h.dispatch("TYPING_START", json!({}));
        h.clear_log();
        h.server_close(Some(code));
        let (_, reason, resume, _) = h.reconnect_events()[0];
        assert_eq!(
            reason,
            ReconnectReason::Closed(CloseCode::from_code(Some(code)))
        );
        assert!(!resume, "{code}");
        reconnected(&mut h);
        assert_eq!(h.connects()[0].1, GATEWAY);
        assert!(h.sent_op(6).is_empty(), "{code}: no wasted RESUME");
        assert_eq!(h.sent_op(2).len(), 1);
    }
}

#[test]
fn resumable_close_codes_and_drops_resume() {
    for code in [
        None,
        Some(1000),
        Some(1001),
        Some(1006),
        Some(4000),
        Some(4001),
        Some(4002),
        Some(4003),
        Some(4005),
        Some(4008),
        Some(4999),
    ] {
        let mut h = Harness::connected(base_config().build());
        h.dispatch("TYPING_START", json!({}));
        h.clear_log();
        h.server_close(code);
        reconnected(&mut h);
        assert_eq!(h.connects()[0].1, resume_url(), "{code:?}");
        assert_eq!(h.sent_op(6).len(), 1, "{code:?}");
        assert!(h.sent_op(2).is_empty(), "{code:?}");
    }
}

#[test]
fn fatal_close_codes_stop_with_an_operator_message() {
    let intents = Intents::GUILDS | Intents::GUILD_VOICE_STATES | Intents::MESSAGE_CONTENT;
    for (code, needle) in [
        (4004, "token is wrong or was reset"),
        (4010, "shard"),
        (4011, "several shards"),
        (4012, "api version"),
        (4013, "intents"),
        (4014, "MESSAGE_CONTENT"),
    ] {
        let config = base_config().build();
        let config = gateway_proto::Config::builder("test-token", intents)
            .compression(config.compression())
            .build();
        let mut h = Harness::connected(config);
        h.clear_log();
        h.server_close(Some(code));
        let fatal = h
            .events
            .iter()
            .find_map(|(_, e)| match e {
                Event::Fatal(f) => Some(f.clone()),
                _ => None,
            })
            .expect("fatal event");
        assert_eq!(fatal.close_code().code(), Some(code));
        let message = fatal.to_string();
        assert!(message.contains(needle), "{code}: {message}");
        assert!(!message.contains("test-token"));
        assert_eq!(h.gw.state(), StateKind::Fatal);
        assert_eq!(h.gw.fatal_error(), Some(&fatal));
        assert_eq!(h.gw.poll_timeout(), None, "no timers after a fatal close");
        h.advance(Duration::from_secs(3600));
        assert!(h.connects().is_empty(), "{code}: no reconnect loop");
        assert!(h.reconnect_events().is_empty());
    }
}

#[test]
fn disallowed_intents_lists_only_configured_privileged_intents() {
    let config = gateway_proto::Config::builder(
        "t",
        Intents::GUILDS | Intents::GUILD_MEMBERS | Intents::GUILD_PRESENCES,
    )
    .compression(gateway_proto::Compression::None)
    .build();
    let mut h = Harness::connected(config);
    h.server_close(Some(4014));
    let Some(FatalError::DisallowedIntents { privileged, .. }) = h.gw.fatal_error().cloned() else {
        panic!("expected disallowed intents");
    };
    assert_eq!(privileged.len(), 2);
    let message = h.gw.fatal_error().unwrap().to_string();
    assert!(message.contains("GUILD_MEMBERS") && message.contains("GUILD_PRESENCES"));
    assert!(!message.contains("MESSAGE_CONTENT"));
    assert!(message.contains("developer portal"));
}

#[test]
fn unreachable_resume_url_falls_back_to_the_gateway_url() {
    let mut h = Harness::connected(base_config().build());
    let seq = h.dispatch("TYPING_START", json!({}));
    h.script.accept_only_prefix = Some("wss://gateway.discord.gg".into());
    h.clear_log();
    h.server_close(None);
    reconnected(&mut h);
    let connects = h.connects();
    assert_eq!(connects[0].1, resume_url());
    assert_eq!(connects[1].1, GATEWAY);
    assert_eq!(connects.len(), 2);
    // Still a RESUME, not an IDENTIFY: only the host changed.
    assert_eq!(h.sent_op(6).len(), 1);
    assert_eq!(h.sent_op(6)[0].1["d"]["seq"], seq);
    assert!(h.sent_op(2).is_empty());
}

#[test]
fn connect_deadline_on_the_resume_url_also_falls_back() {
    let mut h = Harness::connected(base_config().build());
    h.dispatch("TYPING_START", json!({}));
    h.script.hang_connect = true;
    h.clear_log();
    h.server_close(None);
    h.run_until(Duration::from_secs(120), |h| h.connects().len() == 2);
    assert_eq!(h.connects()[0].1, resume_url());
    assert_eq!(h.connects()[1].1, GATEWAY);
    assert!(
        h.reconnect_events()
            .iter()
            .any(|(_, r, _, _)| *r == ReconnectReason::Deadline(gateway_proto::Phase::Connect))
    );
}

#[test]
fn circuit_breaker_identifies_after_three_failed_resumes() {
    let mut h = Harness::connected(base_config().build());
    h.dispatch("TYPING_START", json!({}));
    // Every RESUME is met with silence (no RESUMED): the deadline fires.
    h.script.resumed = false;
    h.clear_log();
    h.server_close(Some(4000));
    h.run_until(Duration::from_secs(600), |h| !h.sent_op(2).is_empty());
    assert_eq!(h.sent_op(6).len(), 3, "three resumes, then identify");
    let last_connect = h.connects().last().unwrap().1.clone();
    assert_eq!(last_connect, GATEWAY);
    h.settle();
    assert_eq!(h.gw.state(), StateKind::Connected);
    assert_eq!(h.gw.session().unwrap().id, "session-2");
    let resumes_flags: Vec<bool> = h.reconnect_events().iter().map(|e| e.2).collect();
    assert_eq!(resumes_flags, [true, true, true, false]);
}

#[test]
fn resumes_that_get_closed_count_towards_the_breaker() {
    let mut h = Harness::connected(base_config().build());
    h.dispatch("TYPING_START", json!({}));
    h.script.resumed = false;
    h.clear_log();
    h.server_close(Some(4000));
    for _ in 0..10 {
        h.run_until(Duration::from_secs(300), |h| {
            matches!(
                h.gw.state(),
                StateKind::Resuming | StateKind::Identifying | StateKind::Connected
            )
        });
        if h.gw.state() != StateKind::Resuming {
            break;
        }
        h.server_close(Some(4000));
    }
    assert_eq!(h.sent_op(6).len(), 3);
    assert_eq!(h.sent_op(2).len(), 1);
}

#[test]
fn deadlines_for_every_phase_count_as_drops() {
    use gateway_proto::Phase;
    let cases: [(Script, Phase, bool); 4] = [
        (
            Script {
                hang_connect: true,
                ..Script::default()
            },
            Phase::Connect,
            false,
        ),
        (
            Script {
                hello: false,
                ..Script::default()
            },
            Phase::Hello,
            false,
        ),
        (
            Script {
                ready: false,
                ..Script::default()
            },
            Phase::Ready,
            false,
        ),
        (
            Script {
                resumed: false,
                ..Script::default()
            },
            Phase::Resumed,
            true,
        ),
    ];
    for (script, phase, needs_session) in cases {
        let mut h = Harness::new(base_config().build());
        if needs_session {
            h.start();
            h.script = script;
            h.server_close(None);
            h.clear_log();
            h.run_until(Duration::from_secs(120), |h| !h.connects().is_empty());
        } else {
            h.script = script;
            h.start();
        }
        let began = h.now;
        h.run_until(Duration::from_secs(60), |h| {
            !h.reconnect_events().is_empty()
        });
        let (_, reason, _, _) = h.reconnect_events()[0];
        assert_eq!(reason, ReconnectReason::Deadline(phase));
        assert!(h.now - began <= Duration::from_secs(20), "{phase:?}");
        assert_eq!(h.count(|o| matches!(o, Out::Drop)), 1, "{phase:?}");
    }
}

#[test]
fn close_handshake_deadline_drops_the_transport() {
    let mut h = Harness::connected(base_config().build());
    h.script.echo_close = false;
    h.clear_log();
    h.server(json!({"op": 7, "d": null}));
    assert_eq!(h.gw.state(), StateKind::Closing);
    let closed_at = h.now;
    h.run_until(Duration::from_secs(30), |h| {
        h.count(|o| matches!(o, Out::Drop)) == 1
    });
    assert!(h.now - closed_at <= Duration::from_secs(20));
    h.script.echo_close = true;
    reconnected(&mut h);
}

#[test]
fn backoff_grows_caps_and_resets_after_a_healthy_session() {
    let mut h = Harness::connected(base_config().build());
    h.script.accept = false;
    h.clear_log();
    h.server_close(None);
    h.run_until(Duration::from_secs(3600), |h| {
        h.reconnect_events().len() >= 12
    });
    let delays: Vec<Duration> = h.reconnect_events().iter().map(|e| e.3).collect();
    for (i, delay) in delays.iter().enumerate() {
        let ceiling = Duration::from_secs(1 << i.min(6)).min(Duration::from_secs(60));
        assert!(*delay <= ceiling, "attempt {i}: {delay:?} > {ceiling:?}");
    }
    assert!(
        delays[6..].iter().any(|d| *d > Duration::from_secs(8)),
        "delays must grow: {delays:?}"
    );
    // A connection that stays up for the healthy period resets the backoff.
    h.script.accept = true;
    h.run_until(Duration::from_secs(120), |h| {
        h.gw.state() == StateKind::Connected
    });
    h.advance(Duration::from_secs(61));
    h.clear_log();
    h.server_close(None);
    let delay = h.reconnect_events()[0].3;
    assert!(delay <= Duration::from_secs(1), "{delay:?}");
}

#[test]
fn backoff_is_not_reset_by_a_short_lived_connection() {
    let mut bigger = 0;
    for seed in 0..8 {
        let mut h = Harness::connected(base_config().seed(seed).build());
        for _ in 0..6 {
            h.server_close(None);
            h.run_until(Duration::from_secs(300), |h| {
                h.gw.state() == StateKind::Connected
            });
            h.advance(Duration::from_secs(5));
        }
        h.clear_log();
        h.server_close(None);
        if h.reconnect_events()[0].3 > Duration::from_secs(1) {
            bigger += 1;
        }
    }
    assert!(
        bigger >= 4,
        "flapping connections keep backing off ({bigger}/8)"
    );
}

#[test]
fn heartbeats_stop_with_the_connection() {
    let mut h = Harness::connected(base_config().build());
    h.server_close(None);
    h.script.accept = false;
    h.clear_log();
    h.advance(INTERVAL * 4);
    assert!(h.sent_op(1).is_empty(), "no heartbeat without a connection");
}
