//! Property tests over random input sequences (simulated time).
//!
//! Invariants: never more than 120 sends in any 60 s window of one
//! connection; heartbeats carry the latest seq; no IDENTIFY while a
//! resumable session exists unless Discord ended it (op 9 false, 4007,
//! 4009) or the resume circuit breaker opened; never a close with
//! 1000/1001; no panic on any input.

use std::time::{Duration, Instant};

use gateway_proto::{
    Command, Compression, Config, Gateway, GatewayInfo, Input, Intents, Session, SessionStartLimit,
    StateKind, Transmit,
};
use proptest::prelude::*;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
enum Step {
    Advance(u64),
    ConnectOk,
    ConnectFail,
    Hello(u64),
    Dispatch(&'static str, Option<u64>),
    Ready,
    Resumed,
    Ack,
    HeartbeatRequest,
    Reconnect,
    InvalidSession(bool),
    Garbage(Vec<u8>),
    Close(Option<u16>),
    Send(u8),
    Acknowledge(u64),
    Shutdown,
    Start,
    Info(u32),
    Import(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u64..70_000).prop_map(Step::Advance),
        2 => (0u64..2_000).prop_map(Step::Advance),
        3 => Just(Step::ConnectOk),
        1 => Just(Step::ConnectFail),
        3 => (500u64..60_000).prop_map(Step::Hello),
        6 => (
            prop::sample::select(vec!["TYPING_START", "GUILD_CREATE", "VOICE_STATE_UPDATE", "CHANNEL_DELETE", "MESSAGE_CREATE"]),
            prop::option::weighted(0.9, 0u64..10_000),
        ).prop_map(|(n, s)| Step::Dispatch(n, s)),
        2 => Just(Step::Ready),
        2 => Just(Step::Resumed),
        4 => Just(Step::Ack),
        1 => Just(Step::HeartbeatRequest),
        1 => Just(Step::Reconnect),
        1 => any::<bool>().prop_map(Step::InvalidSession),
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(Step::Garbage),
        2 => prop::option::weighted(0.8, prop_oneof![
            Just(1000u16), Just(1001), Just(4000), Just(4001), Just(4007), Just(4009),
            Just(4004), Just(4014), 3000u16..5000,
        ]).prop_map(Step::Close),
        3 => (3u8..5).prop_map(Step::Send),
        1 => (0u64..10_000).prop_map(Step::Acknowledge),
        1 => Just(Step::Shutdown),
        1 => Just(Step::Start),
        1 => (0u32..3).prop_map(Step::Info),
        1 => (0u64..100).prop_map(Step::Import),
    ]
}

/// How the simulated Discord answers, chosen per test case.
#[derive(Debug, Clone, Copy)]
struct Peer {
    connect: bool,
    hello: bool,
    ready: bool,
    resumed: bool,
    ack: bool,
}

fn peer() -> impl Strategy<Value = Peer> {
    (
        prop::bool::weighted(0.9),
        prop::bool::weighted(0.9),
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.7),
        prop::bool::weighted(0.8),
    )
        .prop_map(|(connect, hello, ready, resumed, ack)| Peer {
            connect,
            hello,
            ready,
            resumed,
            ack,
        })
}

#[derive(Default)]
struct Model {
    /// Send instants on the current connection.
    window: Vec<Instant>,
    session_exists: bool,
    session_id: Option<String>,
    discord_ended_it: bool,
    resume_attempts: u32,
    identifies: u32,
    /// Answers of the simulated peer, fed after the current input.
    replies: Vec<Input>,
    next_seq: u64,
}

fn frame(v: &Value) -> Input {
    Input::Text(v.to_string())
}

#[allow(clippy::disallowed_methods, reason = "virtual clock origin")]
fn epoch() -> Instant {
    Instant::now()
}

const MAX_RESUME_FAILURES: u32 = 3;

fn step_input(
    step: &Step,
    gw: &mut Gateway,
    model: &mut Model,
    peer: Peer,
    now: &mut Instant,
) -> Result<Input, TestCaseError> {
    Ok(match step {
        Step::Advance(ms) => {
            // Fire every timer on the way, as a driver would.
            let target = *now + Duration::from_millis(*ms);
            while let Some(at) = gw.poll_timeout() {
                if at > target {
                    break;
                }
                *now = (*now).max(at);
                gw.handle_timeout(*now);
                check(gw, model, peer, *now)?;
                feed_replies(gw, model, peer, *now)?;
            }
            *now = target;
            Input::Timeout
        }
        Step::ConnectOk => Input::Connected,
        Step::ConnectFail => Input::ConnectFailed,
        Step::Hello(ms) => frame(&json!({"op": 10, "d": {"heartbeat_interval": ms}})),
        Step::Dispatch(name, s) => frame(
            &json!({"op": 0, "s": s, "t": name, "d": {"id": "1", "channels": [], "voice_states": [], "user_id": "2", "channel_id": null, "type": 2}}),
        ),
        Step::Ready => frame(&json!({"op": 0, "s": 1, "t": "READY",
            "d": {"user": {"id": "1"}, "session_id": "s", "resume_gateway_url": "wss://resume.example"}})),
        Step::Resumed => frame(&json!({"op": 0, "s": null, "t": "RESUMED", "d": null})),
        Step::Ack => frame(&json!({"op": 11})),
        Step::HeartbeatRequest => frame(&json!({"op": 1, "d": null})),
        Step::Reconnect => frame(&json!({"op": 7, "d": null})),
        Step::InvalidSession(d) => frame(&json!({"op": 9, "d": d})),
        Step::Garbage(bytes) => Input::Binary(bytes.clone()),
        Step::Close(code) => Input::Closed {
            code: *code,
            reason: String::new(),
        },
        Step::Send(op) => match Command::from_data(*op, &json!({"guild_id": "1"})) {
            Ok(cmd) => Input::Send(cmd),
            Err(_) => Input::Timeout,
        },
        Step::Acknowledge(seq) => Input::Acknowledge(*seq),
        Step::Shutdown => Input::Shutdown,
        Step::Start => Input::Start,
        Step::Info(remaining) => Input::GatewayInfo(GatewayInfo {
            url: "wss://gw.example/?v=6".into(),
            shards: None,
            session_start_limit: Some(SessionStartLimit {
                total: 5,
                remaining: *remaining,
                reset_after: 10_000,
                max_concurrency: 1,
            }),
        }),
        Step::Import(seq) => Input::SetSession(Session {
            id: "imported".into(),
            seq: *seq,
            resume_url: "wss://resume.example".into(),
        }),
    })
}

/// Feed one input and keep the model's view of the session in step.
fn feed(
    gw: &mut Gateway,
    model: &mut Model,
    peer: Peer,
    input: Input,
    now: Instant,
) -> Result<(), TestCaseError> {
    let ends_session = match &input {
        Input::Text(t) => t.contains(r#""op":9"#) && t.contains(r#""d":false"#),
        Input::Closed {
            code: Some(4007 | 4009),
            ..
        } => true,
        _ => false,
    };
    let had_session = gw.session().is_some();
    let was_resuming = gw.state() == StateKind::Resuming;
    let ok = gw.handle(input, now).is_ok();
    if ok && ends_session && had_session && gw.session().is_none() {
        model.discord_ended_it = true;
    }
    if let Some(session) = gw.session() {
        let new_id = model.session_id.as_deref() != Some(session.id.as_str());
        if !had_session || new_id {
            model.session_exists = true;
            model.session_id = Some(session.id);
            model.discord_ended_it = false;
            model.resume_attempts = 0;
        }
    }
    if was_resuming && gw.state() == StateKind::Connected {
        model.resume_attempts = 0;
    }
    check(gw, model, peer, now)
}

fn feed_replies(
    gw: &mut Gateway,
    model: &mut Model,
    peer: Peer,
    now: Instant,
) -> Result<(), TestCaseError> {
    for _ in 0..50 {
        if model.replies.is_empty() {
            return Ok(());
        }
        let input = model.replies.remove(0);
        feed(gw, model, peer, input, now)?;
    }
    Ok(())
}

fn run(steps: &[Step], manual_ack: bool, peer: Peer) -> Result<(), TestCaseError> {
    let config = Config::builder("tok", Intents::GUILDS | Intents::GUILD_VOICE_STATES)
        .compression(Compression::None)
        .manual_acknowledge(manual_ack)
        .command_queue(1000)
        .seed(9)
        .build();
    let mut gw = Gateway::new(config);
    let mut now = epoch();
    let mut model = Model::default();
    feed(&mut gw, &mut model, peer, Input::Start, now)?;
    feed_replies(&mut gw, &mut model, peer, now)?;
    for step in steps {
        let input = step_input(step, &mut gw, &mut model, peer, &mut now)?;
        feed(&mut gw, &mut model, peer, input, now)?;
        feed_replies(&mut gw, &mut model, peer, now)?;
    }
    Ok(())
}

fn check(
    gw: &mut Gateway,
    model: &mut Model,
    peer: Peer,
    now: Instant,
) -> Result<(), TestCaseError> {
    while let Some(t) = gw.poll_transmit() {
        match t {
            Transmit::Connect { url } => {
                prop_assert!(url.contains("?v=10&encoding=json"), "{}", url);
                model.window.clear();
                model.replies.clear();
                if model.session_exists {
                    model.resume_attempts += 1;
                }
                if peer.connect {
                    model.replies.push(Input::Connected);
                    if peer.hello {
                        model.replies.push(frame(
                            &json!({"op": 10, "d": {"heartbeat_interval": 41250}}),
                        ));
                    }
                }
            }
            Transmit::Send(text) => {
                prop_assert!(text.len() <= 4096);
                model.window.push(now);
                let in_window = model
                    .window
                    .iter()
                    .filter(|t| **t + Duration::from_secs(60) > now)
                    .count();
                prop_assert!(in_window <= 120, "{} sends within 60 s", in_window);
                let v: Value = serde_json::from_str(&text).unwrap();
                match v["op"].as_u64() {
                    Some(1) => {
                        let expected = gw.latest_seq().map_or(Value::Null, Value::from);
                        prop_assert_eq!(&v["d"], &expected, "heartbeat must carry the latest seq");
                        if peer.ack {
                            model.replies.push(frame(&json!({"op": 11})));
                        }
                    }
                    Some(2) => {
                        model.identifies += 1;
                        if model.session_exists {
                            prop_assert!(
                                model.discord_ended_it
                                    || model.resume_attempts >= MAX_RESUME_FAILURES,
                                "IDENTIFY while a resumable session exists"
                            );
                        }
                        model.session_exists = false;
                        model.discord_ended_it = false;
                        model.resume_attempts = 0;
                        if peer.ready {
                            model.next_seq += 1;
                            model.replies.push(frame(&json!({"op": 0, "s": 1, "t": "READY",
                                "d": {"user": {"id": "1"}, "session_id": format!("s{}", model.next_seq),
                                      "resume_gateway_url": "wss://resume.example"}})));
                        }
                    }
                    Some(6) if peer.resumed => {
                        model.replies.push(frame(
                            &json!({"op": 0, "s": null, "t": "RESUMED", "d": null}),
                        ));
                    }
                    _ => {}
                }
            }
            Transmit::Close { code, .. } => {
                prop_assert!(code != 1000 && code != 1001, "closed with {}", code);
                model.replies.clear();
                model.replies.push(Input::Closed {
                    code: Some(code),
                    reason: String::new(),
                });
            }
            Transmit::Drop => model.replies.clear(),
            _ => {}
        }
    }
    while gw.poll_event().is_some() {}
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_for_random_inputs(
        steps in prop::collection::vec(step(), 1..250),
        manual in any::<bool>(),
        peer in peer(),
    ) {
        run(&steps, manual, peer)?;
    }

    #[test]
    fn arbitrary_frames_never_panic(frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 1..20)) {
        let mut gw = Gateway::new(Config::builder("t", Intents::GUILDS).seed(1).build());
        let now = epoch();
        gw.start(now).unwrap();
        gw.handle_connected(now).unwrap();
        for f in frames {
            let _ = gw.handle_binary(&f, now);
            let _ = gw.handle_text(&String::from_utf8_lossy(&f), now);
            while gw.poll_transmit().is_some() {}
            while gw.poll_event().is_some() {}
        }
    }

    #[test]
    fn codec_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(frame) = gateway_proto::codec::decode_frame(&bytes) {
            let name = frame.name.as_deref().unwrap_or("");
            for decision in [gateway_proto::Decision::Raw, gateway_proto::Decision::Drop,
                             gateway_proto::Decision::Typed(gateway_proto::EventKind::GuildCreate)] {
                let _ = gateway_proto::codec::decode_dispatch(name, frame.data, decision);
            }
            let _ = gateway_proto::codec::decode_hello(frame.data);
        }
    }

    #[test]
    fn send_limit_under_command_floods(bursts in prop::collection::vec((0u64..5_000, 0usize..80), 1..60)) {
        let mut gw = Gateway::new(Config::builder("t", Intents::GUILDS)
            .compression(Compression::None).command_queue(10_000).seed(2).build());
        let mut now = epoch();
        let mut model = Model::default();
        let peer = Peer { connect: false, hello: false, ready: false, resumed: false, ack: false };
        gw.start(now).unwrap();
        gw.handle_connected(now).unwrap();
        gw.handle_text(r#"{"op":10,"d":{"heartbeat_interval":41250}}"#, now).unwrap();
        gw.handle_text(r#"{"op":0,"s":1,"t":"READY","d":{"user":{"id":"1"},"session_id":"s","resume_gateway_url":"wss://r"}}"#, now).unwrap();
        check(&mut gw, &mut model, peer, now)?;
        let cmd = Command::update_voice_state("1", None, false, false).unwrap();
        for (gap, count) in bursts {
            let target = now + Duration::from_millis(gap);
            while let Some(at) = gw.poll_timeout() {
                if at > target { break; }
                now = now.max(at);
                gw.handle_timeout(now);
                // Answer heartbeats so the connection stays up.
                let _ = gw.handle_text(r#"{"op":11}"#, now);
                check(&mut gw, &mut model, peer, now)?;
            }
            now = target;
            for _ in 0..count {
                gw.send(&cmd, now).unwrap();
            }
            check(&mut gw, &mut model, peer, now)?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// The byte-driven sequences the fuzz targets use hold every invariant.
    #[test]
    fn fuzz_sequences_hold_invariants(data in prop::collection::vec(any::<u8>(), 0..1500)) {
        if let Err(violation) = gateway_proto::fuzzing::run_at(&data, epoch()) {
            prop_assert!(false, "{}", violation);
        }
    }
}
