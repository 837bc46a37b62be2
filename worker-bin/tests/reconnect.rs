//! Gateway resilience against discord-sim: zombie, op 7, op 9 both ways,
//! dropped TCP, resumable and new-session close codes, fatal close codes.

mod support;

use discord_sim::{CloseInfo, DEFAULT_VOICE_1_ID as V1, DEFAULT_VOICE_2_ID as V2, Listener};
use support::*;
use worker::RunError;

async fn started() -> (discord_sim::Sim, TestHub, RunningWorker) {
    let sim = sim().await;
    let hub = TestHub::start().await;
    let worker = RunningWorker::start(config(&sim, &hub, &[]));
    wait_until("first guild.sync", || {
        hub.events().iter().any(|r| r.event == "guild.sync")
    })
    .await;
    (sim, hub, worker)
}

fn reconnects(worker: &RunningWorker, reason: &str) -> u64 {
    worker
        .telemetry
        .lock()
        .reconnects
        .get(reason)
        .copied()
        .unwrap_or(0)
}

/// After a reconnect, a live event still arrives exactly once.
async fn still_forwards(sim: &discord_sim::Sim, hub: &TestHub, user: u64) {
    sim.join(user, V2).await.unwrap();
    wait_until("event after reconnect", || {
        summary(&hub.room_events()).contains(&ev("voice.joined", V2, user))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zombie_connection_resumes_on_the_resume_url() {
    let (sim, hub, worker) = started().await;
    sim.set_heartbeat_ack(false).await;
    wait_until("zombie detected", || reconnects(&worker, "zombie") >= 1).await;
    sim.set_heartbeat_ack(true).await;
    wait_until("resumed", || sim.resume_count() >= 1).await;
    assert_eq!(sim.identify_count(), 1, "no new session");
    let conns = sim.connections();
    let first = conns.iter().min_by_key(|c| c.id).unwrap();
    // Closed without 1000/1001 (those would invalidate the session).
    match &first.close {
        Some(CloseInfo::Client { code }) => assert!(!matches!(code, Some(1000 | 1001))),
        Some(CloseInfo::Dropped) => {}
        other => panic!("unexpected close {other:?}"),
    }
    assert!(
        conns
            .iter()
            .any(|c| c.listener == Listener::Resume && c.query.contains("v=10")),
        "resumed on resume_gateway_url with the query parameters"
    );
    still_forwards(&sim, &hub, 11).await;
    worker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn op7_and_op9_resumable_and_dropped_tcp_resume() {
    let (sim, hub, worker) = started().await;
    assert!(sim.send_reconnect().await >= 1);
    wait_until("resumed after op 7", || sim.resume_count() >= 1).await;
    still_forwards(&sim, &hub, 21).await;

    assert!(sim.send_invalid_session(true).await >= 1);
    wait_until("resumed after op 9 true", || sim.resume_count() >= 2).await;
    still_forwards(&sim, &hub, 22).await;

    assert!(sim.drop_all().await >= 1);
    wait_until("resumed after dropped TCP", || sim.resume_count() >= 3).await;
    still_forwards(&sim, &hub, 23).await;

    // A resumable close code (4000) resumes too.
    assert!(sim.close_all(4000, "test").await >= 1);
    wait_until("resumed after 4000", || sim.resume_count() >= 4).await;
    still_forwards(&sim, &hub, 24).await;

    assert_eq!(sim.identify_count(), 1, "never a new session");
    let ids: Vec<_> = hub
        .all()
        .iter()
        .filter(|r| !r.duplicate)
        .map(|r| r.id.clone())
        .collect();
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
    worker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn op9_false_identifies_and_reports_the_gap() {
    let (sim, hub, worker) = started().await;
    sim.join(31, V1).await.unwrap();
    wait_until("join", || {
        summary(&hub.room_events()).contains(&ev("voice.joined", V1, 31))
    })
    .await;
    assert!(sim.send_invalid_session(false).await >= 1);
    wait_until("op 9 seen", || reconnects(&worker, "invalid_session") >= 1).await;
    // While the session is lost: a move and a join.
    sim.move_user(31, V2).await.unwrap();
    sim.join(32, V1).await.unwrap();
    wait_until("new session", || sim.identify_count() >= 2).await;
    wait_until("gap reported", || {
        let got = summary(&hub.room_events());
        got.contains(&ev("voice.left", V1, 31))
            && got.contains(&ev("voice.joined", V2, 31))
            && got.contains(&ev("voice.joined", V1, 32))
    })
    .await;
    wait_until("second guild.sync", || {
        hub.events()
            .iter()
            .filter(|r| r.event == "guild.sync")
            .count()
            >= 2
    })
    .await;
    let got = summary(&hub.room_events());
    let left = got
        .iter()
        .position(|e| *e == ev("voice.left", V1, 31))
        .unwrap();
    let joined = got
        .iter()
        .position(|e| *e == ev("voice.joined", V2, 31))
        .unwrap();
    assert!(left < joined, "a move is leave then join");
    worker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_4009_starts_a_new_session() {
    let (sim, hub, worker) = started().await;
    assert!(sim.close_all(4009, "session timed out").await >= 1);
    wait_until("new session", || sim.identify_count() >= 2).await;
    wait_until("session_start_limit refreshed", || {
        sim.rest_log()
            .iter()
            .filter(|c| c.path.ends_with("/gateway/bot"))
            .count()
            >= 2
    })
    .await;
    still_forwards(&sim, &hub, 41).await;
    worker.shutdown().await.unwrap();
}

async fn fatal(code: u16) {
    let (sim, hub, mut worker) = started().await;
    // Something queued while the hub fails: the fatal exit still tries it.
    hub.set_mode(HubMode::Status(503));
    sim.join(51, V1).await.unwrap();
    wait_until("queued", || worker.telemetry.lock().outbox_depth >= 1).await;
    hub.set_mode(HubMode::Accept);
    assert!(sim.close_all(code, "fatal").await >= 1);
    let started = tokio::time::Instant::now();
    match worker.join().await {
        Err(RunError::Fatal(message)) => {
            assert!(message.contains(&code.to_string()), "{message}");
        }
        other => panic!("expected a fatal error, got {other:?}"),
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "fatal close ends the worker within 5 s"
    );
    let conns = sim.connections().len();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        sim.connections().len(),
        conns,
        "no reconnect after a fatal code"
    );
    assert_eq!(sim.identify_count(), 1);
    assert!(summary(&hub.room_events()).contains(&ev("voice.joined", V1, 51)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_4004_is_fatal() {
    fatal(4004).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_4014_is_fatal() {
    fatal(4014).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_is_fatal_without_a_loop() {
    let sim = sim().await;
    let hub = TestHub::start().await;
    let mut cfg = config(&sim, &hub, &[]);
    cfg.token = worker::Secret::new("not-the-token");
    let mut worker = RunningWorker::start(cfg);
    match worker.join().await {
        Err(RunError::Fatal(message)) => {
            assert!(
                !message.contains("not-the-token"),
                "the token never appears"
            );
        }
        other => panic!("expected a fatal error, got {other:?}"),
    }
}
