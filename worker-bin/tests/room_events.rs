//! End to end against discord-sim: the IDENTIFY the sim saw, heartbeats, and
//! the room-event semantics (join, leave with the channel left, move = leave +
//! join, nothing for mute, room.deleted only) delivered signed to a test hub.

mod support;

use discord_sim::{DEFAULT_VOICE_1_ID as V1, DEFAULT_VOICE_2_ID as V2, VoiceFlags, VoiceStateSpec};
use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identify_heartbeats_and_room_events() {
    let sim = sim_with(|c| {
        c.voice_states = vec![VoiceStateSpec {
            user_id: 500,
            channel_id: V1,
        }];
    })
    .await;
    let hub = TestHub::start().await;
    let worker = RunningWorker::start(config(&sim, &hub, &[]));

    // GUILD_CREATE -> guild.sync with the full occupancy.
    wait_until("initial guild.sync", || {
        hub.events().iter().any(|r| r.event == "guild.sync")
    })
    .await;
    let sync = hub
        .events()
        .into_iter()
        .find(|r| r.event == "guild.sync")
        .unwrap();
    assert_eq!(
        sync.payload,
        json!({"guildId": sim.guild_id().to_string(),
               "voiceStates": [{"channelId": V1.to_string(), "userId": "500"}]})
    );
    assert!(
        hub.room_events().is_empty(),
        "a fresh start reports only the sync"
    );

    // IDENTIFY as the sim recorded it.
    let identify = sim
        .received()
        .into_iter()
        .find(|p| p.op == Some(2))
        .expect("identify");
    assert_eq!(identify.d["intents"], 129);
    assert_eq!(
        identify.d["token"], "[redacted]",
        "the sim redacts the token it checked"
    );
    assert_eq!(identify.d["properties"]["browser"], "spell-coven-worker");
    assert!(identify.d["properties"]["os"].is_string());
    assert_eq!(sim.identify_count(), 1);
    let conn = &sim.connections()[0];
    assert!(conn.zlib_stream, "transport compression is used");
    assert!(conn.query.contains("v=10") && conn.query.contains("encoding=json"));

    // Heartbeats run, and op 1 gets an immediate one.
    let beats = || sim.received().iter().filter(|p| p.op == Some(1)).count();
    wait_until("two heartbeats", || beats() >= 2).await;
    let before = beats();
    assert!(sim.request_heartbeat().await >= 1);
    wait_until("heartbeat answering op 1", || beats() > before).await;

    // Room semantics.
    sim.join(1, V1).await.unwrap();
    sim.set_voice_flags(
        1,
        VoiceFlags {
            self_mute: Some(true),
            self_deaf: Some(true),
            ..VoiceFlags::default()
        },
    )
    .await
    .unwrap();
    sim.set_voice_flags(
        1,
        VoiceFlags {
            self_stream: Some(true),
            ..VoiceFlags::default()
        },
    )
    .await
    .unwrap();
    sim.move_user(1, V2).await.unwrap();
    sim.leave(1).await.unwrap();
    sim.join(2, V2).await.unwrap();
    sim.delete_channel(V1).await.unwrap(); // user 500 is inside
    let expected = vec![
        ev("voice.joined", V1, 1),
        ev("voice.left", V1, 1),
        ev("voice.joined", V2, 1),
        ev("voice.left", V2, 1),
        ev("voice.joined", V2, 2),
        ("room.deleted".to_owned(), V1.to_string(), String::new()),
    ];
    wait_until("room events", || hub.room_events().len() >= expected.len()).await;
    // Give stray events (a leave for user 500, a mute "join") a chance to show.
    sim.join(3, V2).await.unwrap();
    wait_until("marker", || hub.room_events().len() > expected.len()).await;
    let mut got = summary(&hub.room_events());
    assert_eq!(got.pop(), Some(ev("voice.joined", V2, 3)));
    assert_eq!(got, expected);
    let deleted = hub
        .room_events()
        .into_iter()
        .find(|r| r.event == "room.deleted")
        .unwrap();
    assert_eq!(
        deleted.payload,
        json!({"guildId": sim.guild_id().to_string(), "channelId": V1.to_string()})
    );

    // Ids: unique, "<session>:<seq>:<k>".
    let ids: Vec<String> = hub.events().iter().map(|r| r.id.clone().unwrap()).collect();
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
    for id in &ids {
        assert_eq!(id.split(':').count(), 3, "{id}");
    }
    assert_eq!(hub.bad_signatures(), 0);

    worker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_guilds_are_ignored() {
    let sim = sim().await;
    let hub = TestHub::start().await;
    // The worker follows a guild the bot's session does not carry, and
    // connects straight to DISCORD_GATEWAY_URL.
    let mut cfg = config(&sim, &hub, &[("DISCORD_GATEWAY_URL", sim.gateway_url())]);
    cfg.guild_id = "999".to_owned();
    let worker = RunningWorker::start(cfg);
    sim.wait_for_clients(1, WAIT).await.unwrap();
    sim.join(1, V1).await.unwrap();
    sim.leave(1).await.unwrap();
    // Wait until the worker has processed those dispatches.
    let target = sim.sessions()[0].seq;
    wait_until("dispatches processed", || {
        worker.telemetry.lock().seq >= Some(target)
    })
    .await;
    wait_until("acknowledged", || {
        worker.telemetry.lock().acked_seq >= Some(target)
    })
    .await;
    assert!(
        hub.all().is_empty(),
        "nothing of another guild: {:?}",
        hub.all()
    );
    worker.shutdown().await.unwrap();
}
