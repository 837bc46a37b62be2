//! Delivery to the hub: outages, 5xx, configuration errors, overflow repair,
//! and restarts with the state file (graceful and `kill -9`).

mod support;

use std::collections::HashSet;
use std::time::Duration;

use discord_sim::{CloseInfo, DEFAULT_VOICE_1_ID as V1, DEFAULT_VOICE_2_ID as V2, SessionStatus};
use support::*;
use worker::Tuning;

fn assert_ids_unique(hub: &TestHub) {
    let ids: Vec<String> = hub.events().iter().map(|r| r.id.clone().unwrap()).collect();
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "an id delivered twice as new: {ids:?}"
    );
}

async fn first_sync(hub: &TestHub) {
    wait_until("first guild.sync", || {
        hub.events().iter().any(|r| r.event == "guild.sync")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_down_then_503_then_back_every_event_once_in_order() {
    let sim = sim().await;
    let hub = TestHub::start().await;
    let worker = RunningWorker::start(config(&sim, &hub, &[]));
    first_sync(&hub).await;

    hub.set_mode(HubMode::Down);
    let mut expected = Vec::new();
    for user in 1..=6 {
        sim.join(user, V1).await.unwrap();
        expected.push(ev("voice.joined", V1, user));
    }
    wait_until("delivery failing", || {
        worker.telemetry.lock().last_delivery_error.is_some()
    })
    .await;
    hub.set_mode(HubMode::Status(503));
    for user in 1..=3 {
        sim.move_user(user, V2).await.unwrap();
        expected.push(ev("voice.left", V1, user));
        expected.push(ev("voice.joined", V2, user));
    }
    wait_until("503s seen", || hub.refused() >= 2).await;
    assert!(worker.telemetry.lock().outbox_depth > 0);
    hub.set_mode(HubMode::Accept);
    wait_until("all delivered", || {
        hub.room_events().len() >= expected.len()
    })
    .await;
    assert_eq!(summary(&hub.room_events()), expected);
    assert_ids_unique(&hub);
    wait_until("outbox drained", || {
        worker.telemetry.lock().outbox_depth == 0
    })
    .await;
    assert!(worker.telemetry.lock().last_delivery_error.is_none());
    worker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_restarted_between_deliveries_gets_a_guild_sync() {
    let sim = sim().await;
    let hub = TestHub::start().await;
    hub.set_state_id("00000000000000aa");
    let worker = RunningWorker::start(config(&sim, &hub, &[]));
    first_sync(&hub).await;
    let syncs = |hub: &TestHub| {
        hub.events()
            .iter()
            .filter(|r| r.event == "guild.sync")
            .count()
    };
    sim.join(1, V1).await.unwrap();
    wait_until("join delivered", || hub.room_events().len() == 1).await;
    assert_eq!(syncs(&hub), 1, "the same state id: no repair");
    // The hub restarted (kill -9) between two deliveries: no delivery failed, but its state
    // id is new, so the worker repairs the presence the hub lost.
    hub.set_state_id("00000000000000bb");
    sim.join(2, V2).await.unwrap();
    wait_until("repair sync", || syncs(&hub) == 2).await;
    let events = hub.events();
    let last = events.last().unwrap();
    assert_eq!(last.event, "guild.sync");
    let states = last.payload["voiceStates"].as_array().unwrap();
    assert_eq!(states.len(), 2, "{states:?}");
    sim.join(3, V1).await.unwrap();
    wait_until("next join", || hub.room_events().len() == 3).await;
    assert_eq!(syncs(&hub), 2, "the new id is remembered");
    assert_ids_unique(&hub);
    worker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_guild_is_resynced_so_a_restarted_hub_recovers() {
    let sim = sim().await;
    let hub = TestHub::start().await;
    hub.set_state_id("00000000000000aa");
    let worker = RunningWorker::start_tuned(
        config(&sim, &hub, &[]),
        Tuning {
            idle_resync: Duration::from_millis(300),
            ..tuning()
        },
    );
    first_sync(&hub).await;
    sim.join(1, V1).await.unwrap();
    wait_until("join delivered", || hub.room_events().len() == 1).await;
    // Quiet: resyncs keep coming, each with the full occupancy, and never anything else.
    let syncs = |hub: &TestHub| {
        hub.events()
            .iter()
            .filter(|r| r.event == "guild.sync")
            .count()
    };
    wait_until("two idle resyncs", || syncs(&hub) >= 3).await;
    let events = hub.events();
    let last = events.last().unwrap();
    assert_eq!(last.event, "guild.sync");
    assert_eq!(last.payload["voiceStates"].as_array().unwrap().len(), 1);
    assert_eq!(hub.room_events().len(), 1, "only the join besides syncs");
    assert_ids_unique(&hub);
    worker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_is_a_configuration_error_retried_slowly_not_dropped() {
    let sim = sim().await;
    let hub = TestHub::start().await;
    let worker = RunningWorker::start(config(&sim, &hub, &[]));
    first_sync(&hub).await;
    hub.set_mode(HubMode::Status(403));
    sim.join(7, V1).await.unwrap();
    wait_until("403 seen", || hub.refused() >= 1).await;
    wait_until("error reported", || {
        worker
            .telemetry
            .lock()
            .last_delivery_error
            .as_deref()
            .is_some_and(|e| e.contains("HUB_SECRET"))
    })
    .await;
    // No tight loop: the retry waits the 10 s cap.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        hub.refused() <= 2,
        "retried {} times in a second",
        hub.refused()
    );
    hub.set_mode(HubMode::Accept);
    wait_until("delivered after the fix", || {
        summary(&hub.room_events()).contains(&ev("voice.joined", V1, 7))
    })
    .await;
    worker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflow_drops_oldest_and_guild_sync_repairs() {
    let sim = sim().await;
    let hub = TestHub::start().await;
    let worker = RunningWorker::start(config(&sim, &hub, &[("WORKER_OUTBOX_CAPACITY", "3")]));
    first_sync(&hub).await;
    hub.set_mode(HubMode::Down);
    for user in 1..=10 {
        sim.join(user, V1).await.unwrap();
    }
    sim.move_user(10, V2).await.unwrap();
    wait_until("overflow", || worker.telemetry.lock().events_dropped >= 1).await;
    let target = sim.sessions()[0].seq;
    wait_until("all dispatches processed", || {
        worker.telemetry.lock().seq >= Some(target)
    })
    .await;
    assert!(worker.telemetry.lock().outbox_depth <= 3, "bounded");
    hub.set_mode(HubMode::Accept);
    wait_until("repair sync", || {
        hub.events().iter().any(|r| {
            r.event == "guild.sync" && r.id.as_deref().is_some_and(|i| i.contains("repair"))
        })
    })
    .await;
    let events = hub.events();
    let repair = events.last().unwrap();
    assert_eq!(repair.event, "guild.sync", "the repair comes last");
    let mut occupancy: Vec<(String, String)> = repair.payload["voiceStates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["channelId"].as_str().unwrap().to_owned(),
                v["userId"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    occupancy.sort();
    let mut expected: Vec<(String, String)> = (1..=9)
        .map(|u| (V1.to_string(), u.to_string()))
        .chain([(V2.to_string(), "10".to_owned())])
        .collect();
    expected.sort();
    assert_eq!(occupancy, expected);
    assert_ids_unique(&hub);
    worker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_restart_resumes_and_delivers_what_happened_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_path(&dir);
    let path_str = path.to_str().unwrap().to_owned();
    let sim = sim().await;
    let hub = TestHub::start().await;
    let cfg = config(&sim, &hub, &[("WORKER_STATE_FILE", &path_str)]);
    let worker = RunningWorker::start(cfg.clone());
    first_sync(&hub).await;
    sim.join(1, V1).await.unwrap();
    wait_until("join", || hub.room_events().len() == 1).await;

    worker.shutdown().await.unwrap();
    assert!(path.exists(), "session saved");
    let conn = sim.connections().into_iter().next().unwrap();
    assert_eq!(
        conn.close,
        Some(CloseInfo::Client { code: Some(4000) }),
        "closed with a resumable code"
    );
    assert!(matches!(
        sim.sessions()[0].status,
        SessionStatus::Disconnected
    ));

    // While the worker is down: a move (needs the saved cache) and a join.
    sim.move_user(1, V2).await.unwrap();
    sim.join(2, V1).await.unwrap();

    let worker = RunningWorker::start(cfg);
    wait_until("resumed", || sim.resume_count() >= 1).await;
    wait_until("missed events", || hub.room_events().len() >= 4).await;
    assert_eq!(
        summary(&hub.room_events()),
        vec![
            ev("voice.joined", V1, 1),
            ev("voice.left", V1, 1),
            ev("voice.joined", V2, 1),
            ev("voice.joined", V1, 2),
        ]
    );
    assert_eq!(sim.identify_count(), 1, "resumed, not identified");
    assert_ids_unique(&hub);
    worker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_restarted_while_the_hub_restarted_repairs_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_path(&dir);
    let path_str = path.to_str().unwrap().to_owned();
    let sim = sim().await;
    let hub = TestHub::start().await;
    hub.set_state_id("00000000000000aa");
    let cfg = config(&sim, &hub, &[("WORKER_STATE_FILE", &path_str)]);
    let syncs = |hub: &TestHub| {
        hub.events()
            .iter()
            .filter(|r| r.event == "guild.sync")
            .count()
    };
    let worker = RunningWorker::start(cfg.clone());
    first_sync(&hub).await;
    sim.join(1, V1).await.unwrap();
    wait_until("join", || hub.room_events().len() == 1).await;
    worker.shutdown().await.unwrap();
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(saved["hub_state"], "00000000000000aa", "{saved}");

    // Restarted against the same hub: it resumes and sends no repair.
    let worker = RunningWorker::start(cfg.clone());
    sim.join(2, V2).await.unwrap();
    wait_until("second join", || hub.room_events().len() == 2).await;
    assert_eq!(syncs(&hub), 1, "the same hub: no repair");
    worker.shutdown().await.unwrap();

    // The hub restarted (kill -9) while the worker was down too: the worker's first
    // delivery reveals the new id, although this worker process never saw the old one.
    hub.set_state_id("00000000000000bb");
    let worker = RunningWorker::start(cfg);
    sim.join(3, V1).await.unwrap();
    wait_until("repair sync", || syncs(&hub) == 2).await;
    let events = hub.events();
    let last = events.last().unwrap();
    assert_eq!(last.event, "guild.sync");
    assert_eq!(last.payload["voiceStates"].as_array().unwrap().len(), 3);
    assert_eq!(sim.identify_count(), 1, "every restart resumed");
    assert_ids_unique(&hub);
    worker.shutdown().await.unwrap();
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(saved["hub_state"], "00000000000000bb", "{saved}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_while_the_hub_is_down_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path_str = state_path(&dir).to_str().unwrap().to_owned();
    let sim = sim().await;
    let hub = TestHub::start().await;
    let cfg = config(&sim, &hub, &[("WORKER_STATE_FILE", &path_str)]);
    let worker = RunningWorker::start(cfg.clone());
    first_sync(&hub).await;
    sim.join(1, V1).await.unwrap();
    sim.join(2, V1).await.unwrap();
    wait_until("delivered", || hub.room_events().len() == 2).await;
    // Let the checkpoint catch up (it is coalesced).
    let delivered_seq = sim.sessions()[0].seq;
    wait_until("checkpoint", || {
        std::fs::read_to_string(&path_str).is_ok_and(|s| {
            serde_json::from_str::<serde_json::Value>(&s)
                .is_ok_and(|v| v["session"]["seq"].as_u64() >= Some(delivered_seq))
        })
    })
    .await;

    hub.set_mode(HubMode::Down);
    sim.move_user(1, V2).await.unwrap();
    sim.leave(2).await.unwrap();
    let target = sim.sessions()[0].seq;
    wait_until("received but undelivered", || {
        let t = worker.telemetry.lock();
        t.seq >= Some(target) && t.outbox_depth >= 1
    })
    .await;
    worker.kill(); // no flush, no save: like kill -9

    hub.set_mode(HubMode::Accept);
    let worker = RunningWorker::start(cfg);
    wait_until("resumed", || sim.resume_count() >= 1).await;
    wait_until("replayed events delivered", || hub.room_events().len() >= 5).await;
    assert_eq!(
        summary(&hub.room_events()),
        vec![
            ev("voice.joined", V1, 1),
            ev("voice.joined", V1, 2),
            ev("voice.left", V1, 1),
            ev("voice.joined", V2, 1),
            ev("voice.left", V1, 2),
        ]
    );
    assert_ids_unique(&hub);
    worker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_state_file_starts_a_new_session() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_path(&dir);
    std::fs::write(&path, b"{ this is not json").unwrap();
    let sim = sim().await;
    let hub = TestHub::start().await;
    let worker = RunningWorker::start(config(
        &sim,
        &hub,
        &[("WORKER_STATE_FILE", path.to_str().unwrap())],
    ));
    first_sync(&hub).await;
    assert_eq!(sim.identify_count(), 1);
    worker.shutdown().await.unwrap();
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(
        saved["session"]["id"].is_string(),
        "replaced by a good file"
    );
}
