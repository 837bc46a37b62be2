//! A state-file write that does not finish must not hold up the gateway or
//! the deliveries to the hub, and a shutdown still ends with the newest
//! state durable on disk.
//!
//! The stuck write is real, without a test hook: the worker's first scratch
//! file (`<state>.<pid>-0.tmp`: the worker runs in this process, and this is
//! its first write) is a FIFO, and opening a FIFO for writing blocks until a
//! reader opens it, like a write stuck on a slow disk. The test is the only
//! reader, so it decides when the write ends.

#![cfg(unix)]

mod support;

use std::path::PathBuf;

use discord_sim::DEFAULT_VOICE_1_ID as V1;
use support::*;

/// Read the FIFO to its end on a plain thread (a stuck read must not keep
/// the runtime from shutting down when the test fails).
async fn read_fifo(path: PathBuf) -> Vec<u8> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::fs::read(&path));
    });
    tokio::time::timeout(WAIT, rx)
        .await
        .expect("no state-file write was in flight")
        .expect("the reader thread stopped")
        .expect("reading the FIFO failed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_continue_while_a_state_file_write_is_stuck() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_path(&dir);
    let tmp = dir
        .path()
        .join(format!("worker-state.json.{}-0.tmp", std::process::id()));
    // Two names for one FIFO: the worker opens `tmp`, the test later reads
    // through `fifo` after putting a regular file at `tmp`.
    let fifo = dir.path().join("stuck.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo failed");
    std::fs::hard_link(&fifo, &tmp).unwrap();

    let sim = sim().await;
    let hub = TestHub::start().await;
    let path_str = path.to_str().unwrap().to_owned();
    let worker = RunningWorker::start(config(&sim, &hub, &[("WORKER_STATE_FILE", &path_str)]));

    // The first checkpoint is due at once (nothing saved yet), so it is stuck
    // from before the session starts; everything below happens meanwhile.
    wait_until("first guild.sync", || {
        hub.events().iter().any(|r| r.event == "guild.sync")
    })
    .await;
    for user in 1..=3 {
        sim.join(user, V1).await.unwrap();
    }
    wait_until("joins delivered", || hub.room_events().len() == 3).await;
    assert_eq!(
        summary(&hub.room_events()),
        vec![
            ev("voice.joined", V1, 1),
            ev("voice.joined", V1, 2),
            ev("voice.joined", V1, 3),
        ]
    );

    // Shutdown closes the gateway and flushes while the write is stuck, but
    // does not return before its state is durable.
    let stopping = tokio::spawn(worker.shutdown());
    wait_until("gateway closed", || {
        sim.connections().iter().all(|c| c.close.is_some())
    })
    .await;
    assert!(
        !stopping.is_finished(),
        "returned while a state-file write was in flight"
    );

    // Unstick: the stuck write ends (fsync on a FIFO fails, so it counts as
    // a failed write); later writes use scratch files of their own.
    let stuck: serde_json::Value = serde_json::from_slice(&read_fifo(fifo).await).unwrap();
    assert!(
        stuck["session"].is_null(),
        "the stuck write was captured before any delivery: {stuck}"
    );

    tokio::time::timeout(WAIT, stopping)
        .await
        .expect("shutdown did not finish")
        .expect("worker panicked")
        .unwrap();
    let saved = worker::state_file::load(&path, &sim.guild_id().to_string())
        .unwrap()
        .expect("the state file was written at shutdown");
    let session = saved.session.expect("a session to resume");
    assert_eq!(session.seq, sim.sessions()[0].seq, "the last delivered seq");
    for user in 1..=3 {
        assert_eq!(
            saved.cache.channel_of(&user.to_string()),
            Some(V1.to_string().as_str())
        );
    }
    let scratch: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(
        scratch.is_empty(),
        "every write renamed or removed its scratch file: {scratch:?}"
    );
}
