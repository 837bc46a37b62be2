//! The control API (Rust and HTTP) and fault injection, seen from a gateway client.

mod support;

use discord_sim::{
    DEFAULT_VOICE_1_ID, DEFAULT_VOICE_2_ID, SessionStatus, VoiceFlags, channel_type,
};
use serde_json::json;
use support::{Client, Event, WAIT, config, http, start};

#[tokio::test]
async fn join_move_mute_leave_dispatch_voice_state_updates() {
    let sim = start(config()).await;
    let (mut c, _, guild) = Client::identified(&sim).await;
    let mut seq = guild["s"].as_u64().unwrap_or_default();
    let mut next = async |c: &mut Client| {
        let p = c.expect_dispatch("VOICE_STATE_UPDATE").await;
        seq += 1;
        assert_eq!(p["s"], seq, "sequence increases by one");
        p
    };
    sim.join(1, DEFAULT_VOICE_1_ID).await.expect("join");
    let p = next(&mut c).await;
    assert_eq!(p["d"]["channel_id"], DEFAULT_VOICE_1_ID.to_string());
    assert_eq!(p["d"]["member"]["user"]["id"], "1");
    sim.move_user(1, DEFAULT_VOICE_2_ID).await.expect("move");
    assert_eq!(
        next(&mut c).await["d"]["channel_id"],
        DEFAULT_VOICE_2_ID.to_string()
    );
    sim.set_voice_flags(
        1,
        VoiceFlags {
            self_mute: Some(true),
            ..VoiceFlags::default()
        },
    )
    .await
    .expect("mute");
    let p = next(&mut c).await;
    assert_eq!(p["d"]["channel_id"], DEFAULT_VOICE_2_ID.to_string());
    assert_eq!(p["d"]["self_mute"], true);
    sim.leave(1).await.expect("leave");
    assert!(next(&mut c).await["d"]["channel_id"].is_null());
    assert!(sim.voice_states().is_empty());
    assert!(sim.leave(1).await.is_err());
    assert!(sim.join(1, 42).await.is_err());
}

#[tokio::test]
async fn control_created_and_deleted_channels_dispatch() {
    let sim = start(config()).await;
    let (mut c, _, _) = Client::identified(&sim).await;
    let ch = sim
        .create_channel("from-client", channel_type::GUILD_VOICE, None, 0)
        .await
        .expect("create");
    assert_eq!(
        c.expect_dispatch("CHANNEL_CREATE").await["d"]["id"],
        ch.id.to_string()
    );
    sim.join(5, ch.id).await.expect("join");
    c.expect_dispatch("VOICE_STATE_UPDATE").await;
    sim.delete_channel(ch.id).await.expect("delete");
    c.expect_dispatch("CHANNEL_DELETE").await;
    let left = c.expect_dispatch("VOICE_STATE_UPDATE").await;
    assert!(left["d"]["channel_id"].is_null());
}

#[tokio::test]
async fn http_control_mirrors_the_rust_api() {
    let sim = start(config()).await;
    let (mut c, _, _) = Client::identified(&sim).await;
    let url = format!("{}/join", sim.control_url());
    let body = json!({"user_id": "77", "channel_id": DEFAULT_VOICE_1_ID.to_string()}).to_string();
    let (status, _, _) = http("POST", &url, &[], Some(body)).await;
    assert_eq!(status, 200);
    assert_eq!(
        c.expect_dispatch("VOICE_STATE_UPDATE").await["d"]["user_id"],
        "77"
    );
    let (status, _, text) = http("GET", &format!("{}/state", sim.control_url()), &[], None).await;
    assert_eq!(status, 200);
    let state: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    assert_eq!(state["voice_states"][0]["user_id"], "77");
    assert_eq!(state["identify_count"], 1);
    let (status, _, _) = http(
        "POST",
        &format!("{}/leave", sim.control_url()),
        &[],
        Some(json!({"user_id": 99}).to_string()),
    )
    .await;
    assert_eq!(status, 400, "user 99 is not in voice");
    let (status, _, _) = http(
        "POST",
        &format!("{}/reconnect", sim.control_url()),
        &[],
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(c.expect_op(7).await["op"], 7);
}

#[tokio::test]
async fn op7_op9_and_heartbeat_request() {
    let sim = start(config()).await;
    let (mut c, ready, guild) = Client::identified(&sim).await;
    let session_id = ready["d"]["session_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let resume =
        json!({"op": 6, "d": {"token": "sim-token", "session_id": session_id, "seq": guild["s"]}});
    assert_eq!(sim.send_reconnect().await, 1);
    assert_eq!(c.expect_op(7).await["d"], serde_json::Value::Null);
    assert_eq!(sim.request_heartbeat().await, 1);
    c.expect_op(1).await;

    // op 9 true: the session stays resumable, here on the same socket.
    assert_eq!(sim.send_invalid_session(true).await, 1);
    assert_eq!(c.expect_op(9).await["d"], true);
    c.send(resume.clone()).await;
    c.expect_dispatch("RESUMED").await;

    // op 9 false: the session is gone; RESUME is refused, IDENTIFY works.
    assert_eq!(sim.send_invalid_session(false).await, 1);
    assert_eq!(c.expect_op(9).await["d"], false);
    assert!(
        sim.sessions()
            .iter()
            .all(|s| matches!(s.status, SessionStatus::Invalid { .. }))
    );
    c.send(resume).await;
    assert_eq!(c.expect_op(9).await["d"], false);
    c.send(support::identify_payload("sim-token", support::INTENTS))
        .await;
    c.expect_dispatch("READY").await;
    assert_eq!(sim.identify_count(), 2);
}

#[tokio::test]
async fn heartbeat_acks_can_be_stopped() {
    let sim = start(config()).await;
    let (mut c, _, _) = Client::identified(&sim).await;
    sim.set_heartbeat_ack(false).await;
    c.send(json!({"op": 1, "d": 2})).await;
    // Once the sim has taken the heartbeat, anything it sends next comes after the
    // (absent) ACK; the next payload must be the dispatch, not op 11.
    sim.wait_for(WAIT, |s| s.received().iter().any(|p| p.op == Some(1)))
        .await
        .expect("heartbeat received");
    sim.join(3, DEFAULT_VOICE_1_ID).await.expect("join");
    let p = c.next_payload().await;
    assert_eq!(
        p["t"], "VOICE_STATE_UPDATE",
        "no ACK while the fault is on: {p}"
    );
    sim.set_heartbeat_ack(true).await;
    c.send(json!({"op": 1, "d": 3})).await;
    assert_eq!(c.next_payload().await["op"], 11);
}

#[tokio::test]
async fn drop_and_close_keep_the_session_resumable() {
    let sim = start(config()).await;
    let (mut c, _, _) = Client::identified(&sim).await;
    assert_eq!(sim.drop_all().await, 1);
    assert!(
        matches!(c.next_event().await, Event::Dropped),
        "no close frame"
    );
    sim.wait_for(WAIT, |s| {
        s.sessions()
            .iter()
            .all(|x| x.status == SessionStatus::Disconnected)
    })
    .await
    .expect("resumable after drop");

    let (mut c, _, _) = Client::identified(&sim).await;
    sim.wait_for_clients(1, WAIT).await.expect("one client");
    assert_eq!(sim.close_all(4000, "test").await, 1);
    assert!(matches!(c.next_event().await, Event::Closed(Some(4000))));
    sim.wait_for(WAIT, |s| {
        s.sessions()
            .iter()
            .all(|x| x.status == SessionStatus::Disconnected)
    })
    .await
    .expect("resumable after 4000");
}

#[tokio::test]
async fn op7_can_replace_hello() {
    let sim = start(config()).await;
    sim.reconnect_before_hello(1).await;
    let mut c = Client::connect(sim.gateway_url()).await;
    let first = c.next_payload().await;
    assert_eq!(first["op"], 7, "op 7 in place of HELLO: {first}");
    c.close(4000).await;
    // Only the next connection was affected.
    let (_c, interval) = Client::connect_hello(sim.gateway_url()).await;
    assert_eq!(interval, 30_000);
}
