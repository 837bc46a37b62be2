//! Several hub replicas sharing one event stream through a real `redis-server` (issue 10):
//! one order and one seq for every client, resume on any replica, dedupe across replicas,
//! a replica killed abruptly, Redis restarts with and without persistence.

mod redis_support;

use hub_core::rooms::{CreatedRoom, KeyState, RedisRoomStore};
use redis_support::{
    Cluster, RedisServer, TestResult, close_code, eventually, recv_json, redis_available, unix_now,
};
use serde_json::Value;

fn seq(v: &Value) -> u64 {
    v["seq"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_posted_to_any_replica_reach_every_client_in_one_order() -> TestResult {
    if !redis_available() {
        return Ok(());
    }
    let cluster = Cluster::start(false).await;
    let replicas = [cluster.replica(), cluster.replica(), cluster.replica()];
    let mut clients = Vec::new();
    for r in &replicas {
        let (ws, ack) = cluster.client(r, None).await?;
        assert_eq!(ack["resumed"], false);
        clients.push(ws);
    }
    for ws in &mut clients {
        assert_eq!(recv_json(ws).await?["type"], "snapshot");
    }
    // Posted concurrently to all three replicas.
    let n = 30u64;
    let posts = (0..n).map(|i| {
        let body = cluster.joined(Some(&format!("e{i}")), 100 + i % 3, i);
        let to = &replicas[(i % 3) as usize];
        let cluster = &cluster;
        async move { cluster.webhook(to, &body, unix_now()).await }
    });
    for (status, body) in futures_util::future::join_all(posts).await {
        assert_eq!(status, 200, "{body}");
    }
    let mut streams = Vec::new();
    for ws in &mut clients {
        let mut got = Vec::new();
        for _ in 0..n {
            got.push(recv_json(ws).await?);
        }
        streams.push(got);
    }
    // One order, one seq, contiguous from 1.
    let seqs: Vec<u64> = streams[0].iter().map(seq).collect();
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>());
    assert_eq!(streams[0], streams[1]);
    assert_eq!(streams[0], streams[2]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_a_killed_replica_resume_on_another_without_loss_or_duplicates() -> TestResult {
    if !redis_available() {
        return Ok(());
    }
    let cluster = Cluster::start(false).await;
    let a = cluster.replica();
    let b = cluster.replica();
    let (mut ws, _) = cluster.client(&a, None).await?;
    recv_json(&mut ws).await?; // snapshot
    for i in 0..5 {
        let (status, _) = cluster
            .webhook(&b, &cluster.joined(None, 10, i), unix_now())
            .await;
        assert_eq!(status, 200);
    }
    let mut last = 0;
    for _ in 0..5 {
        last = seq(&recv_json(&mut ws).await?);
    }
    assert_eq!(last, 5);
    a.kill();
    // The socket dies without a close frame; events keep flowing through B meanwhile.
    assert!(recv_json(&mut ws).await.is_err());
    for i in 5..9 {
        let (status, _) = cluster
            .webhook(&b, &cluster.joined(None, 11, i), unix_now())
            .await;
        assert_eq!(status, 200);
    }
    let (mut ws, ack) = cluster.client(&b, Some(last)).await?;
    assert_eq!(ack["resumed"], true, "{ack}");
    assert_eq!(seq(&ack), 9);
    for expected in 6..=9 {
        let ev = recv_json(&mut ws).await?;
        assert_eq!(seq(&ev), expected, "{ev}");
    }
    let (status, _) = cluster
        .webhook(&b, &cluster.joined(None, 12, 1), unix_now())
        .await;
    assert_eq!(status, 200);
    // user 1 moves from 10 to 12: left + joined, nothing replayed twice.
    assert_eq!(seq(&recv_json(&mut ws).await?), 10);
    assert_eq!(seq(&recv_json(&mut ws).await?), 11);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_dedupe_and_replay_protection_hold_across_replicas() -> TestResult {
    if !redis_available() {
        return Ok(());
    }
    let cluster = Cluster::start(false).await;
    let a = cluster.replica();
    let b = cluster.replica();
    let (mut ws, _) = cluster.client(&a, None).await?;
    recv_json(&mut ws).await?; // snapshot
    let ts = unix_now();
    let body = cluster.joined(Some("evt-1"), 10, 1);
    let (status, first) = cluster.webhook(&a, &body, ts).await;
    assert_eq!((status.as_u16(), first["duplicate"].as_bool()), (200, None));
    // A retry with the same id (new signature) on the other replica.
    let (status, retry) = cluster.webhook(&b, &body, ts + 1).await;
    assert_eq!(
        (status.as_u16(), &retry["duplicate"]),
        (200, &Value::Bool(true))
    );
    // The same signed request without an id, replayed to the other replica.
    let body = cluster.joined(None, 20, 2);
    assert_eq!(cluster.webhook(&b, &body, ts).await.0, 200);
    let (status, replay) = cluster.webhook(&a, &body, ts).await;
    assert_eq!(
        (status.as_u16(), &replay["duplicate"]),
        (200, &Value::Bool(true))
    );
    // Exactly two events were broadcast.
    assert_eq!(seq(&recv_json(&mut ws).await?), 1);
    assert_eq!(seq(&recv_json(&mut ws).await?), 2);
    let (status, _) = cluster.webhook(&a, &cluster.joined(None, 30, 3), ts).await;
    assert_eq!(status, 200);
    assert_eq!(seq(&recv_json(&mut ws).await?), 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_with_persistence_is_reported_then_recovered() -> TestResult {
    if !redis_available() {
        return Ok(());
    }
    let mut cluster = Cluster::start(true).await;
    let a = cluster.replica();
    let b = cluster.replica();
    let (mut ws, _) = cluster.client(&a, None).await?;
    recv_json(&mut ws).await?; // snapshot
    assert_eq!(
        cluster
            .webhook(&b, &cluster.joined(None, 10, 1), unix_now())
            .await
            .0,
        200
    );
    assert_eq!(seq(&recv_json(&mut ws).await?), 1);
    assert_eq!(cluster.health(&a).await.0, 200);

    cluster.redis.stop();
    let (status, body) = cluster.health(&a).await;
    assert_eq!(
        (status.as_u16(), &body["message"]),
        (503, &Value::from("redis unreachable"))
    );
    let (status, _) = cluster
        .webhook(&b, &cluster.joined(None, 10, 2), unix_now())
        .await;
    assert_eq!(status, 503, "the worker retries later");

    cluster.redis.restart().await;
    assert!(eventually(|| async { cluster.health(&a).await.0 == 200 }).await);
    assert!(eventually(|| async { cluster.health(&b).await.0 == 200 }).await);
    // The open socket survived and the stream continues where it was.
    let (status, body) = cluster
        .webhook(&b, &cluster.joined(None, 10, 2), unix_now())
        .await;
    assert_eq!(status, 200, "{body}");
    let ev = recv_json(&mut ws).await?;
    assert_eq!(seq(&ev), 2, "{ev}");
    let (_, ack) = cluster.client(&b, Some(0)).await?;
    assert_eq!((ack["resumed"].as_bool(), seq(&ack)), (Some(true), 2));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_losing_its_data_makes_clients_resume_with_a_snapshot() -> TestResult {
    if !redis_available() {
        return Ok(());
    }
    let mut cluster = Cluster::start(false).await;
    let a = cluster.replica();
    let b = cluster.replica();
    let (mut ws, _) = cluster.client(&a, None).await?;
    recv_json(&mut ws).await?; // snapshot
    let mut state_ids = Vec::new();
    for (i, to) in [&a, &b, &a].into_iter().enumerate() {
        state_ids.push(
            cluster
                .state_id(to, &cluster.joined(None, 10, i as u64))
                .await,
        );
    }
    // Every replica names the same shared state, so the worker sees no change when its
    // deliveries land on different replicas.
    assert!(
        state_ids.iter().all(|id| *id == state_ids[0]),
        "{state_ids:?}"
    );
    let mut last = 0;
    for _ in 0..3 {
        last = seq(&recv_json(&mut ws).await?);
    }
    cluster.redis.restart().await; // no persistence: everything is gone
    // The replica notices the new epoch and asks its clients to resume (1012).
    assert_eq!(close_code(&mut ws).await?, 1012);
    let (mut ws, ack) = cluster.client(&a, Some(last)).await?;
    assert_eq!(ack["resumed"], false, "{ack}");
    assert!(seq(&ack) > last, "seqs never go back: {ack}");
    let snapshot = recv_json(&mut ws).await?;
    assert_eq!(snapshot["type"], "snapshot");
    // New events continue after the new head, and the state id says the presence the
    // worker had delivered is gone (it answers with a guild.sync).
    let renewed = cluster.state_id(&a, &cluster.joined(None, 10, 9)).await;
    assert_ne!(renewed, state_ids[0]);
    assert_eq!(seq(&recv_json(&mut ws).await?), seq(&ack) + 1);
    assert_eq!(
        cluster.state_id(&b, &cluster.joined(None, 10, 8)).await,
        renewed
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_and_idempotency_keys_are_shared_by_the_replicas() -> TestResult {
    if !redis_available() {
        return Ok(());
    }
    let cluster = Cluster::start(false).await;
    let a = cluster.replica();
    let b = cluster.replica();
    let (mut ws, _) = cluster.client(&b, None).await?;
    recv_json(&mut ws).await?; // snapshot
    let (status, created) = cluster.create_room(&a, "alice", Some("key-1")).await;
    assert_eq!(status, 200, "{created}");
    // The same key on the other replica: the stored answer, Discord not called again.
    let (status, again) = cluster.create_room(&b, "alice", Some("key-1")).await;
    assert_eq!((status.as_u16(), &again), (200, &created));
    let creates = cluster
        .sim
        .rest_log()
        .into_iter()
        .filter(|c| c.method == "POST" && c.path.starts_with("/api/v10/guilds/"))
        .count();
    assert_eq!(creates, 1);
    let ev = recv_json(&mut ws).await?;
    assert_eq!(ev["event"], "room.created", "{ev}");
    // Two requests with a new key racing on both replicas: one room, one answer.
    let (first, second) = tokio::join!(
        cluster.create_room(&a, "alice", Some("key-2")),
        cluster.create_room(&b, "alice", Some("key-2")),
    );
    assert_eq!((first.0.as_u16(), second.0.as_u16()), (200, 200));
    assert_eq!(first.1, second.1);
    let creates = cluster
        .sim
        .rest_log()
        .into_iter()
        .filter(|c| c.method == "POST" && c.path.starts_with("/api/v10/guilds/"))
        .count();
    assert_eq!(creates, 2);
    assert_eq!(recv_json(&mut ws).await?["event"], "room.created");
    let channel = created["channelId"].as_str().unwrap_or_default().to_owned();
    // Ownership is known on B: another user is refused, the creator ends it.
    assert_eq!(cluster.end_room(&b, "mallory", &channel).await.0, 403);
    let (status, body) = cluster.end_room(&b, "alice", &channel).await;
    assert_eq!(status, 200, "{body}");
    let ev = recv_json(&mut ws).await?;
    assert_eq!(ev["event"], "room.deleted", "{ev}");
    assert_eq!(cluster.end_room(&a, "alice", &channel).await.0, 404);
    Ok(())
}

/// The step that makes the race above safe: reading the stored answer and claiming the key
/// is one atomic step. Were it two, a request could read "no answer", the holder could then
/// store its answer and release the claim, and the request would claim the key and create
/// a second room (seen once in CI when it was two commands).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_is_answered_or_claimed_in_one_step() -> TestResult {
    if !redis_available() {
        return Ok(());
    }
    let redis = RedisServer::start(false).await;
    let client = ::redis::Client::open(redis.url())?;
    let store = RedisRoomStore::new(client.get_connection_manager().await?);
    let (guild, sub, key) = (1, "alice", "key-1");
    assert_eq!(
        store.answer_or_claim(guild, sub, key).await?,
        KeyState::Claimed
    );
    assert_eq!(
        store.answer_or_claim(guild, sub, key).await?,
        KeyState::Busy
    );
    assert_eq!(
        store.answer_or_claim(guild, "bob", key).await?,
        KeyState::Claimed
    );
    let answer = CreatedRoom {
        channel_id: 7,
        name: "spell-coven-x".into(),
        guild_id: guild,
    };
    // Stored while the claim is still held, then released: the answer wins either way.
    store.remember(guild, sub, key, &answer, 60_000).await?;
    let answered = KeyState::Answered(answer);
    assert_eq!(store.answer_or_claim(guild, sub, key).await?, answered);
    store.release_key(guild, sub, key).await;
    assert_eq!(store.answer_or_claim(guild, sub, key).await?, answered);
    // A failed request releases without an answer: the next one claims the key.
    store.release_key(guild, "bob", key).await;
    assert_eq!(
        store.answer_or_claim(guild, "bob", key).await?,
        KeyState::Claimed
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_routes_answer_503_while_redis_is_down() -> TestResult {
    if !redis_available() {
        return Ok(());
    }
    let mut cluster = Cluster::start(false).await;
    let a = cluster.replica();
    cluster.redis.stop();
    // Not 404: the registry cannot be read, so nothing can be decided safely.
    assert_eq!(cluster.end_room(&a, "alice", "123").await.0, 503);
    let (status, body) = cluster.create_room(&a, "alice", Some("k")).await;
    assert_eq!(status, 503, "{body}");
    let (status, body) = cluster.create_room(&a, "alice", None).await;
    assert_eq!(status, 503, "{body}");
    // Refused before Discord was asked: no orphan channel.
    let creates = cluster
        .sim
        .rest_log()
        .into_iter()
        .filter(|c| c.method == "POST" && c.path.starts_with("/api/v10/guilds/"))
        .count();
    assert_eq!(creates, 0);
    Ok(())
}

/// What Redis adds per event, measured (no assertion on time): run with
/// `cargo test -p hub-core --release --test redis_replicas -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn measure_ingest_cost_with_and_without_redis() -> TestResult {
    use hub_core::hub::{Hub, HubConfig, IncomingEvent};
    use std::sync::Arc;
    if !redis_available() {
        return Ok(());
    }
    let redis = RedisServer::start(false).await;
    let n = 2000u64;
    let event = |i: u64| IncomingEvent {
        id: Some(format!("m{i}")),
        event: "voice.joined".into(),
        payload: serde_json::json!({"guildId": "1", "channelId": (10 + i % 2).to_string(), "userId": "7"}),
    };
    let metrics = Arc::new(hub_core::metrics::Metrics::default());
    let memory = Hub::new(HubConfig::new(1), metrics.clone())?;
    let shared = Hub::with_redis(HubConfig::new(1), metrics, &redis.url())?;
    for (name, hub) in [("in-process", &memory), ("redis", &shared)] {
        let started = std::time::Instant::now();
        for i in 0..n {
            hub.publish(event(i), unix_now() * 1000).await?;
        }
        let per = started.elapsed() / u32::try_from(n)?;
        eprintln!("{name}: {per:?} per ingested event (sequential, 2 frames each)");
    }
    Ok(())
}
