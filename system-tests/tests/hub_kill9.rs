//! Invariant: killing the hub with SIGKILL in the middle of a burst of voice events loses
//! nothing and duplicates nothing. After the hub restarts, the worker's outbox delivers what
//! the dead hub never acknowledged; a client resuming with `since` (or taking a snapshot)
//! ends with exactly Discord's truth, every event it reads has seq = previous + 1, and no
//! event contradicts its view (a join of a user already present or a leave of one absent
//! would be a double delivery).
//!
//! Presence the dead hub had acknowledged is not in its saved state (a SIGKILL saves
//! nothing): the worker repairs it with a `guild.sync` after its first delivery that
//! follows failed attempts, or that the restarted hub answers with a new
//! `X-Hub-State-Id`, or by its idle `guild.sync` when no event follows; the full-equality
//! tests check each.

use system_tests::{Stack, WAIT, WsClient, burst, sim_truth};

/// The whole stack, a watcher's token and its client, past its first snapshot.
async fn stack_with_watcher() -> (Stack, String, WsClient) {
    let stack = Stack::start(None).await;
    let token = stack.token("watcher");
    let mut client = WsClient::connect(&stack.hub.ws_url(), &token, None).await;
    client
        .read_until("the first snapshot", WAIT, |v| v.snapshots > 0)
        .await;
    (stack, token, client)
}

async fn burst_with_hub_sigkill() -> (Stack, WsClient, system_tests::Occupancy) {
    let t0 = std::time::Instant::now();
    let (mut stack, token, mut client) = stack_with_watcher().await;
    eprintln!("{:?} stack up", t0.elapsed());

    // First part of the burst, seen live.
    burst::join(&stack.sim, 1..=10).await;
    let truth = sim_truth(&stack.sim);
    client
        .read_until("the first joins", WAIT, |v| v.rooms == truth)
        .await;
    let seen = client.view.seq;
    eprintln!("{:?} first joins seen", t0.elapsed());

    // More events; the hub dies while they are in flight and stays down for some of them.
    burst::around(&stack.sim, || stack.hub.kill9()).await;
    eprintln!("{:?} hub killed, events sent", t0.elapsed());
    stack.hub.restart().await;
    eprintln!("{:?} hub restarted", t0.elapsed());
    burst::join(&stack.sim, 31..=35).await;
    let truth = sim_truth(&stack.sim);

    // The old client comes back with `since`: resumed or a snapshot, then live events.
    let resumed = WsClient::connect(&stack.hub.ws_url(), &token, Some(seen)).await;

    (stack, resumed, truth)
}

/// Users 9..=20 last changed before the kill: the hub may have acknowledged them, and then
/// loses them (see the module docs). Every other user changed after the kill.
fn changed_after_kill(occupancy: &system_tests::Occupancy) -> system_tests::Occupancy {
    occupancy
        .iter()
        .map(|(c, users)| {
            (
                *c,
                users
                    .iter()
                    .copied()
                    .filter(|u| !(9..=20).contains(u))
                    .collect(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_sigkill_during_a_burst_delivers_the_outbox_once() {
    let (stack, mut resumed, truth) = burst_with_hub_sigkill().await;
    let want = changed_after_kill(&truth);
    resumed
        .read_until("every event after the kill", WAIT, |v| {
            changed_after_kill(&v.rooms) == want
        })
        .await;
    resumed.view.assert_no_anomalies();
    // A fresh client's snapshot agrees with the resumed client (same stream, same seq).
    let mut fresh = WsClient::connect(&stack.hub.ws_url(), &stack.token("fresh"), None).await;
    fresh
        .read_until("a fresh snapshot", WAIT, |v| v.snapshots > 0)
        .await;
    resumed.drain(std::time::Duration::from_millis(300)).await;
    assert_eq!(fresh.view.rooms, resumed.view.rooms);
    assert_eq!(
        fresh.view.seq, resumed.view.seq,
        "both clients at the same seq"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_sigkill_during_a_burst_ends_with_discords_truth() {
    let (_stack, mut resumed, truth) = burst_with_hub_sigkill().await;
    resumed
        .read_until("the resumed view to equal the sim", WAIT, |v| {
            v.rooms == truth
        })
        .await;
    resumed.view.assert_no_anomalies();
}

/// Ten users join while a client watches, then the hub is killed with SIGKILL and
/// restarted: the stack, a token, and the sim's truth before the kill.
async fn ten_joins_then_hub_restart_after_kill9() -> (Stack, String, system_tests::Occupancy) {
    let (mut stack, token, mut client) = stack_with_watcher().await;
    burst::join(&stack.sim, 1..=10).await;
    let truth = sim_truth(&stack.sim);
    client
        .read_until("every join acknowledged and seen", WAIT, |v| {
            v.rooms == truth
        })
        .await;
    stack.hub.kill9();
    stack.hub.restart().await;
    (stack, token, truth)
}

/// The hub dies and comes back between two events: no delivery fails, so only the hub's new
/// `X-Hub-State-Id` tells the worker that the presence it had delivered is gone. Its repair
/// `guild.sync` after the next event makes a new client's view equal Discord's again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_sigkill_between_events_is_repaired_by_the_next_delivery() {
    let (stack, token, _) = ten_joins_then_hub_restart_after_kill9().await;
    burst::join(&stack.sim, 11..=11).await;
    let truth = sim_truth(&stack.sim);
    let mut fresh = WsClient::connect(&stack.hub.ws_url(), &token, None).await;
    fresh
        .read_until("a fresh view equal to the sim", WAIT, |v| v.rooms == truth)
        .await;
    fresh.view.assert_no_anomalies();
}

/// The hub dies and comes back while the guild is quiet: no event follows, so nothing but
/// the worker's idle `guild.sync` (after 15 s without deliveries) can give the restarted hub
/// the presence it lost. A fresh client's view reaches Discord's truth without any new
/// voice event (with the former 60 s period it would not within [`WAIT`]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_sigkill_in_a_quiet_guild_is_repaired_by_the_idle_resync() {
    let (stack, token, truth) = ten_joins_then_hub_restart_after_kill9().await;
    let mut fresh = WsClient::connect(&stack.hub.ws_url(), &token, None).await;
    fresh
        .read_until("the idle guild.sync to restore presence", WAIT, |v| {
            v.rooms == truth
        })
        .await;
    fresh.view.assert_no_anomalies();
}
