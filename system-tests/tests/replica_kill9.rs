//! Invariant: with hub replicas sharing Redis (`REDIS_URL`), killing one with SIGKILL in the
//! middle of a burst of voice events loses nothing and duplicates nothing. Its clients
//! resume with `since` on another replica and read on with seq = previous + 1; the worker
//! redelivers what the dead replica never acknowledged once it is back, and Redis's
//! webhook dedupe drops what the dead replica had already committed. Presence lives in
//! Redis, so every view ends equal to Discord's truth, with no repair needed.
//!
//! The in-process replica tests (`hub-core/tests/redis_replicas.rs`) stop a replica by
//! dropping its runtime, and `api-bin/tests/redis_binary.rs` checks that a webhook the
//! killed binary accepted is a duplicate on the other; this one kills the real
//! `spell-coven-api` process under the whole stack and follows its clients.

use system_tests::{ReplicaStack, WAIT, WsClient, burst, redis_available, sim_truth};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_sigkill_mid_burst_its_clients_resume_on_another_without_loss() {
    if !redis_available() {
        return;
    }
    let mut stack = ReplicaStack::start(2).await;
    let (a, b) = (stack.replicas[0].ws_url(), stack.replicas[1].ws_url());
    let token = stack.token("watcher");
    // One client on the replica that takes the worker's posts (and will die), one on the other.
    let mut on_a = WsClient::connect(&a, &token, None).await;
    let mut on_b = WsClient::connect(&b, &token, None).await;
    for client in [&mut on_a, &mut on_b] {
        client
            .read_until("the first snapshot", WAIT, |v| v.snapshots > 0)
            .await;
    }

    burst::join(&stack.sim, 1..=10).await;
    let truth = sim_truth(&stack.sim);
    for client in [&mut on_a, &mut on_b] {
        client
            .read_until("the first joins", WAIT, |v| v.rooms == truth)
            .await;
    }

    // Replica A dies with events in flight and stays down for more of them.
    burst::around(&stack.sim, || stack.replicas[0].kill9()).await;

    // A's client reads what reached it and loses the socket.
    on_a.read_to_end(WAIT).await;

    // A comes back; the worker delivers its outbox there, and B's client sees all of it.
    stack.replicas[0].restart().await;
    burst::join(&stack.sim, 31..=35).await;
    let truth = sim_truth(&stack.sim);
    on_b.read_until("a view equal to Discord's", WAIT, |v| v.rooms == truth)
        .await;

    // A's client resumes on B: B replays from the shared stream what it missed.
    let missed = on_b.view.seq - on_a.view.seq;
    assert!(missed > 0, "the client missed events while away");
    let mut moved = WsClient::reconnect(&b, &token, on_a.view).await;
    assert!(
        moved.view.resumed,
        "B holds the shared stream: a resume, not a snapshot"
    );
    moved
        .read_until("the missed events", WAIT, |v| v.seq == on_b.view.seq)
        .await;
    assert_eq!(moved.view.rooms, truth);
    for client in [&moved, &on_b] {
        client.view.assert_no_anomalies();
    }

    // A fresh client of the restarted replica sees the same state at the same seq.
    let mut fresh = WsClient::connect(&a, &stack.token("fresh"), None).await;
    fresh
        .read_until("a fresh snapshot", WAIT, |v| v.snapshots > 0)
        .await;
    fresh.drain(std::time::Duration::from_millis(300)).await;
    on_b.drain(std::time::Duration::from_millis(300)).await;
    assert_eq!(fresh.view.rooms, truth);
    assert_eq!(
        fresh.view.seq, on_b.view.seq,
        "the same seq on both replicas"
    );
}
