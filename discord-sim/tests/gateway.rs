//! Gateway behaviour over real loopback sockets, checked against Discord's documentation.

mod support;

use std::time::Duration;

use discord_sim::{
    DEFAULT_VOICE_1_ID, DEFAULT_VOICE_2_ID, SessionStartLimit, SessionStatus, SimConfig,
    VoiceStateSpec,
};
use serde_json::json;
use support::{Client, Event, INTENTS, WAIT, config, identify_payload, start};

#[tokio::test]
async fn hello_carries_the_configured_interval() {
    let sim = start(SimConfig {
        heartbeat_interval: Duration::from_millis(12_345),
        ..config()
    })
    .await;
    let (_c, interval) = Client::connect_hello(sim.gateway_url()).await;
    assert_eq!(interval, 12_345);
}

#[tokio::test]
async fn identify_gets_ready_then_guild_create_with_voice_states() {
    let sim = start(SimConfig {
        voice_states: vec![VoiceStateSpec {
            user_id: 777,
            channel_id: DEFAULT_VOICE_1_ID,
        }],
        ..config()
    })
    .await;
    let (_c, ready, guild) = Client::identified(&sim).await;
    assert_eq!(ready["s"], 1);
    let d = &ready["d"];
    assert_eq!(d["v"], 10);
    assert_eq!(d["user"]["bot"], true);
    assert_eq!(d["guilds"][0]["id"], sim.guild_id().to_string());
    assert_eq!(d["guilds"][0]["unavailable"], true);
    assert!(d["session_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(d["resume_gateway_url"], sim.resume_gateway_url());
    assert_ne!(sim.resume_gateway_url(), sim.gateway_url());
    assert!(d["application"]["id"].is_string());

    assert_eq!(guild["s"], 2);
    let g = &guild["d"];
    assert_eq!(g["id"], sim.guild_id().to_string());
    assert_eq!(g["channels"].as_array().map(Vec::len), Some(3));
    let vs = &g["voice_states"][0];
    assert_eq!(vs["user_id"], "777");
    assert_eq!(vs["channel_id"], DEFAULT_VOICE_1_ID.to_string());
    assert!(
        vs.get("guild_id").is_none(),
        "GUILD_CREATE voice states have no guild_id"
    );
    let members = g["members"].as_array().cloned().unwrap_or_default();
    assert!(members.iter().any(|m| m["user"]["id"] == "777"));
    assert_eq!(sim.identify_count(), 1);
}

#[tokio::test]
async fn heartbeat_is_acknowledged() {
    let sim = start(config()).await;
    let (mut c, _) = Client::connect_hello(sim.gateway_url()).await;
    c.send(json!({"op": 1, "d": null})).await;
    let ack = c.next_payload().await;
    assert_eq!(ack["op"], 11);
}

async fn close_code_after(sim: &discord_sim::Sim, payloads: Vec<String>) -> Option<u16> {
    let (mut c, _) = Client::connect_hello(sim.gateway_url()).await;
    for p in payloads {
        c.send_text(p).await;
    }
    c.expect_close().await
}

#[tokio::test]
async fn bad_identify_closes_with_documented_codes() {
    let sim = start(config()).await;
    let wrong_token = identify_payload("not-the-token", INTENTS).to_string();
    assert_eq!(close_code_after(&sim, vec![wrong_token]).await, Some(4004));
    let unknown_bits = identify_payload("sim-token", 1 << 40).to_string();
    assert_eq!(close_code_after(&sim, vec![unknown_bits]).await, Some(4013));
    let privileged = identify_payload("sim-token", INTENTS | (1 << 1)).to_string();
    assert_eq!(close_code_after(&sim, vec![privileged]).await, Some(4014));
    let no_properties = json!({"op": 2, "d": {"token": "sim-token", "intents": 129}}).to_string();
    assert_eq!(
        close_code_after(&sim, vec![no_properties]).await,
        Some(4002)
    );
    let mut bad_shard = identify_payload("sim-token", INTENTS);
    bad_shard["d"]["shard"] = json!([2, 2]);
    assert_eq!(
        close_code_after(&sim, vec![bad_shard.to_string()]).await,
        Some(4010)
    );
    assert_eq!(sim.identify_count(), 0);
}

#[tokio::test]
async fn protocol_errors_close_with_documented_codes() {
    let sim = start(config()).await;
    assert_eq!(
        close_code_after(&sim, vec!["{not json".into()]).await,
        Some(4002)
    );
    let oversize = json!({"op": 1, "d": null, "pad": "x".repeat(5000)}).to_string();
    assert_eq!(close_code_after(&sim, vec![oversize]).await, Some(4002));
    let presence_first =
        json!({"op": 3, "d": {"since": null, "activities": [], "status": "online", "afk": false}});
    assert_eq!(
        close_code_after(&sim, vec![presence_first.to_string()]).await,
        Some(4003)
    );
    assert_eq!(
        close_code_after(&sim, vec![json!({"op": 99, "d": null}).to_string()]).await,
        Some(4001)
    );
    assert_eq!(
        close_code_after(&sim, vec![json!({"op": 11, "d": null}).to_string()]).await,
        Some(4001)
    );

    let (mut c, _, _) = Client::identified(&sim).await;
    c.send(identify_payload("sim-token", INTENTS)).await;
    assert_eq!(c.expect_close().await, Some(4005));

    let (mut c, _, _) = Client::identified(&sim).await;
    c.send(json!({"op": 4, "d": "not an object"})).await;
    assert_eq!(c.expect_close().await, Some(4002));
}

#[tokio::test]
async fn bad_query_is_refused() {
    let sim = start(config()).await;
    let mut c = Client::connect_with(sim.gateway_url(), "v=9&encoding=json").await;
    assert!(matches!(c.next_event().await, Event::Closed(Some(4012))));
    let mut c = Client::connect_with(sim.gateway_url(), "v=10&encoding=etf").await;
    assert!(matches!(c.next_event().await, Event::Closed(Some(4002))));
}

#[tokio::test]
async fn more_than_120_payloads_a_minute_closes_4008() {
    let sim = start(config()).await;
    let beats: Vec<String> = (0..121)
        .map(|_| json!({"op": 1, "d": null}).to_string())
        .collect();
    assert_eq!(close_code_after(&sim, beats).await, Some(4008));
}

#[tokio::test]
async fn missing_heartbeats_close_4009_and_end_the_session() {
    let sim = start(SimConfig {
        // Long enough for HELLO -> IDENTIFY -> READY on a loaded machine.
        heartbeat_interval: Duration::from_millis(1_000),
        ..config()
    })
    .await;
    let (mut c, ready, _) = Client::identified(&sim).await;
    assert_eq!(c.expect_close().await, Some(4009));
    let session_id = ready["d"]["session_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    sim.wait_for(WAIT, |s| {
        s.sessions().iter().any(|x| {
            x.session_id == session_id && matches!(x.status, SessionStatus::Invalid { .. })
        })
    })
    .await
    .expect("session invalid after 4009");
}

fn resume_payload(session_id: &str, seq: u64) -> serde_json::Value {
    json!({"op": 6, "d": {"token": "sim-token", "session_id": session_id, "seq": seq}})
}

#[tokio::test]
async fn resume_replays_missed_dispatches_then_resumed() {
    let sim = start(config()).await;
    let (c, ready, guild) = Client::identified(&sim).await;
    let session_id = ready["d"]["session_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let seq = guild["s"].as_u64().unwrap_or_default();
    c.close(4000).await;
    sim.wait_for(WAIT, |s| {
        s.sessions()
            .iter()
            .any(|x| x.status == SessionStatus::Disconnected)
    })
    .await
    .expect("disconnected");

    // Dispatches while disconnected are buffered for the session.
    sim.join(501, DEFAULT_VOICE_1_ID).await.expect("join");
    sim.move_user(501, DEFAULT_VOICE_2_ID).await.expect("move");

    let (mut c, _) = Client::connect_hello(sim.resume_gateway_url()).await;
    c.send(resume_payload(&session_id, seq)).await;
    let first = c.expect_dispatch("VOICE_STATE_UPDATE").await;
    assert_eq!(first["s"], seq + 1);
    assert_eq!(first["d"]["channel_id"], DEFAULT_VOICE_1_ID.to_string());
    assert_eq!(first["d"]["guild_id"], sim.guild_id().to_string());
    let second = c.expect_dispatch("VOICE_STATE_UPDATE").await;
    assert_eq!(second["s"], seq + 2);
    assert_eq!(second["d"]["channel_id"], DEFAULT_VOICE_2_ID.to_string());
    let resumed = c.expect_dispatch("RESUMED").await;
    assert_eq!(resumed["s"], seq + 3);
    assert_eq!(sim.resume_count(), 1);

    // Live dispatches continue on the resumed connection.
    sim.leave(501).await.expect("leave");
    let left = c.expect_dispatch("VOICE_STATE_UPDATE").await;
    assert!(left["d"]["channel_id"].is_null());
    assert_eq!(left["s"], seq + 4);
}

#[tokio::test]
async fn resume_works_on_the_main_gateway_too_and_supersedes_old_connection() {
    let sim = start(config()).await;
    let (mut old, ready, guild) = Client::identified(&sim).await;
    let session_id = ready["d"]["session_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (mut c, _) = Client::connect_hello(sim.gateway_url()).await;
    c.send(resume_payload(
        &session_id,
        guild["s"].as_u64().unwrap_or_default(),
    ))
    .await;
    c.expect_dispatch("RESUMED").await;
    // The old connection of the session goes away.
    assert!(matches!(
        old.next_event().await,
        Event::Dropped | Event::Closed(_)
    ));
}

#[tokio::test]
async fn close_1000_invalidates_the_session() {
    let sim = start(config()).await;
    let (c, ready, guild) = Client::identified(&sim).await;
    let session_id = ready["d"]["session_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    c.close(1000).await;
    sim.wait_for(WAIT, |s| {
        s.sessions()
            .iter()
            .any(|x| matches!(x.status, SessionStatus::Invalid { .. }))
    })
    .await
    .expect("invalid after 1000");
    let (mut c, _) = Client::connect_hello(sim.resume_gateway_url()).await;
    c.send(resume_payload(
        &session_id,
        guild["s"].as_u64().unwrap_or_default(),
    ))
    .await;
    let op9 = c.expect_op(9).await;
    assert_eq!(op9["d"], false);
}

#[tokio::test]
async fn resume_of_unknown_session_gets_op9_false() {
    let sim = start(config()).await;
    let (mut c, _) = Client::connect_hello(sim.resume_gateway_url()).await;
    c.send(resume_payload("no-such-session", 3)).await;
    assert_eq!(c.expect_op(9).await["d"], false);
}

#[tokio::test]
async fn resume_with_future_seq_closes_4007() {
    let sim = start(config()).await;
    let (c, ready, _) = Client::identified(&sim).await;
    let session_id = ready["d"]["session_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    c.drop_tcp();
    let (mut c, _) = Client::connect_hello(sim.resume_gateway_url()).await;
    c.send(resume_payload(&session_id, 99)).await;
    assert_eq!(c.expect_close().await, Some(4007));
}

#[tokio::test]
async fn resume_after_the_timeout_gets_op9_false() {
    let sim = start(SimConfig {
        resume_timeout: Duration::from_millis(200),
        ..config()
    })
    .await;
    let (c, ready, guild) = Client::identified(&sim).await;
    let session_id = ready["d"]["session_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    c.close(4000).await;
    sim.wait_for(WAIT, |s| {
        s.sessions()
            .iter()
            .any(|x| x.status == SessionStatus::Disconnected)
    })
    .await
    .expect("disconnected");
    // Not an assertion: real time must pass for the session to expire (200 ms timeout).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (mut c, _) = Client::connect_hello(sim.resume_gateway_url()).await;
    c.send(resume_payload(
        &session_id,
        guild["s"].as_u64().unwrap_or_default(),
    ))
    .await;
    assert_eq!(c.expect_op(9).await["d"], false);
}

#[tokio::test]
async fn zlib_stream_output_inflates() {
    let sim = start(config()).await;
    let mut c =
        Client::connect_with(sim.gateway_url(), "v=10&encoding=json&compress=zlib-stream").await;
    let hello = c.expect_op(10).await;
    assert_eq!(hello["d"]["heartbeat_interval"], 30_000);
    c.send(identify_payload("sim-token", INTENTS)).await;
    c.expect_dispatch("READY").await;
    c.expect_dispatch("GUILD_CREATE").await;
    sim.join(9, DEFAULT_VOICE_1_ID).await.expect("join");
    let vsu = c.expect_dispatch("VOICE_STATE_UPDATE").await;
    assert_eq!(vsu["d"]["user_id"], "9");
    assert!(sim.connections().iter().any(|x| x.zlib_stream));
}

#[tokio::test]
async fn identify_concurrency_and_start_limit() {
    let sim = start(SimConfig {
        session_start_limit: SessionStartLimit::default(),
        ..config()
    })
    .await;
    let (_a, _, _) = Client::identified(&sim).await;
    // max_concurrency 1 per 5 s: a second IDENTIFY right away gets op 9 false.
    let (mut b, _) = Client::connect_hello(sim.gateway_url()).await;
    b.send(identify_payload("sim-token", INTENTS)).await;
    assert_eq!(b.expect_op(9).await["d"], false);
    assert_eq!(sim.identify_count(), 1);
    assert_eq!(sim.session_start_remaining(), 999);
}

#[tokio::test]
async fn received_payloads_are_logged_without_the_token() {
    let sim = start(config()).await;
    let (_c, _, _) = Client::identified(&sim).await;
    let broken = r#"{"op":2,"d":{"token":"sim-token","intents":129"#.to_owned();
    assert_eq!(close_code_after(&sim, vec![broken]).await, Some(4002));
    let log = sim.received();
    assert!(log.iter().any(|p| p.op == Some(2)));
    assert!(log.iter().any(|p| p.op.is_none()));
    let text = format!("{log:?}");
    assert!(!text.contains("sim-token"), "token leaked into the log");
}
