//! Faults on the worker's side of the system, each with the same end invariant: the view of a
//! WebSocket client connected throughout equals Discord's truth (the sim's voice states),
//! every event it read had seq = previous + 1, and no event contradicted its view (a double
//! or out-of-order delivery would).
//!
//! - `worker_sigkill_resumes_and_loses_nothing`: the worker is killed with SIGKILL
//!   mid-session and restarted with its state file; it RESUMEs (counted by the sim) and
//!   everything Discord replays reaches the hub once.
//! - `gateway_drops_during_a_burst_lose_nothing`: the sim drops every gateway TCP connection
//!   repeatedly during a burst; the worker resumes each time.
//! - `hub_answering_500_to_a_share_of_webhooks_loses_nothing`: a proxy answers 500 to every
//!   3rd webhook post, half of them after the hub applied it; retries are deduplicated.

use std::time::Duration;

use discord_sim::{DEFAULT_VOICE_1_ID, DEFAULT_VOICE_2_ID};
use system_tests::{Stack, WAIT, WsClient, sim_truth, wait_until};

fn channel(user: u64) -> u64 {
    if user % 3 == 0 {
        DEFAULT_VOICE_1_ID
    } else {
        DEFAULT_VOICE_2_ID
    }
}

fn other(channel: u64) -> u64 {
    if channel == DEFAULT_VOICE_1_ID {
        DEFAULT_VOICE_2_ID
    } else {
        DEFAULT_VOICE_1_ID
    }
}

async fn watcher(stack: &Stack) -> WsClient {
    let mut client = WsClient::connect(&stack.hub.ws_url(), &stack.token("watcher"), None).await;
    client
        .read_until("the first snapshot", WAIT, |v| v.snapshots > 0)
        .await;
    client
}

async fn converge(stack: &Stack, client: &mut WsClient) {
    let truth = sim_truth(&stack.sim);
    client
        .read_until("the view to equal the sim", WAIT, |v| v.rooms == truth)
        .await;
    // Nothing more (a late duplicate) trickles in.
    client.drain(Duration::from_millis(300)).await;
    assert_eq!(client.view.rooms, truth);
    client.view.assert_no_anomalies();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_sigkill_resumes_and_loses_nothing() {
    let mut stack = Stack::start(None).await;
    let mut client = watcher(&stack).await;
    let state_file = stack.dir.path().join("worker-state.json");
    for user in 1..=10 {
        stack.sim.join(user, channel(user)).await.expect("join");
    }
    converge(&stack, &mut client).await;
    wait_until("the worker to persist its session", WAIT, || {
        let exists = state_file.exists();
        async move { exists.then_some(()) }
    })
    .await;

    for user in 11..=20 {
        stack.sim.join(user, channel(user)).await.expect("join");
    }
    stack.worker.kill9();
    // While the worker is dead, Discord keeps the events for the session's replay.
    for user in 21..=30 {
        stack.sim.join(user, channel(user)).await.expect("join");
    }
    for user in 1..=3 {
        stack.sim.leave(user).await.expect("leave");
    }
    let resumes = stack.sim.resume_count();
    stack.worker.restart();
    wait_until("the restarted worker to RESUME", WAIT, || {
        let n = stack.sim.resume_count();
        async move { (n > resumes).then_some(()) }
    })
    .await;
    for user in 31..=35 {
        stack.sim.join(user, channel(user)).await.expect("join");
    }
    converge(&stack, &mut client).await;
    assert_eq!(
        stack.sim.identify_count(),
        1,
        "the restart resumed, no new session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_drops_during_a_burst_lose_nothing() {
    let stack = Stack::start(None).await;
    let mut client = watcher(&stack).await;
    let mut dropped = 0;
    for user in 1..=40 {
        stack.sim.join(user, channel(user)).await.expect("join");
        if user % 8 == 0 {
            let resumes = stack.sim.resume_count();
            dropped += stack.sim.drop_all().await;
            // Wait for the worker to be back, so the next drop hits a live session.
            wait_until("the worker to resume after a drop", WAIT, || {
                let n = stack.sim.resume_count();
                async move { (n > resumes).then_some(()) }
            })
            .await;
        }
        if user % 5 == 0 {
            stack.sim.leave(user - 4).await.expect("leave");
        }
    }
    assert!(dropped >= 5, "the drops hit live connections ({dropped})");
    converge(&stack, &mut client).await;
    assert_eq!(stack.sim.identify_count(), 1, "every drop was resumed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_answering_500_to_a_share_of_webhooks_loses_nothing() {
    let stack = Stack::start(Some(3)).await;
    let mut client = watcher(&stack).await;
    for user in 1..=30 {
        stack.sim.join(user, channel(user)).await.expect("join");
    }
    for user in 1..=6 {
        stack
            .sim
            .join(user, other(channel(user)))
            .await
            .expect("move");
    }
    for user in 25..=30 {
        stack.sim.leave(user).await.expect("leave");
    }
    converge(&stack, &mut client).await;
    let proxy = stack.proxy.as_ref().expect("proxy");
    let before = proxy
        .stats
        .failed_before
        .load(std::sync::atomic::Ordering::SeqCst);
    let after = proxy
        .stats
        .failed_after
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        before > 0 && after > 0,
        "both kinds of failure happened ({before}, {after})"
    );
}
