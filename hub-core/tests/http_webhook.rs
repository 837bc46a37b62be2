//! Contract §4: the signed webhook.

mod support;

use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use hub_core::auth::sign_webhook;
use support::{TestHub, unix_now};

fn joined(hub: &TestHub, id: Option<&str>, user: u64) -> String {
    let id = id.map(|i| format!(r#""id":"{i}","#)).unwrap_or_default();
    format!(
        r#"{{{id}"event":"voice.joined","payload":{{"guildId":"{}","channelId":"{}","userId":"{user}"}}}}"#,
        hub.sim.guild_id(),
        discord_sim::DEFAULT_VOICE_1_ID
    )
}

fn seq(hub: &TestHub) -> u64 {
    // The in-process hub never awaits: the future is ready at once.
    futures_util::FutureExt::now_or_never(hub.server().app().hub.head())
        .expect("ready")
        .expect("head")
}

#[tokio::test]
async fn bad_signatures_and_skew_are_403_and_not_broadcast() {
    let hub = TestHub::start().await;
    let body = joined(&hub, Some("e-1"), 1);
    let now = unix_now();
    let before = seq(&hub);
    let signed = |secret: &[u8], ts: i64, sig_ts: i64, body: &str| {
        hub.request(Method::POST, "/internal/events")
            .header("x-hub-timestamp", ts.to_string())
            .header(
                "x-hub-signature",
                sign_webhook(secret, sig_ts, body.as_bytes()),
            )
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap()
    };
    let wrong_secret = b"another-secret-0123456789-abcdefghijklmnop";
    let cases = vec![
        ("wrong secret", signed(wrong_secret, now, now, &body)),
        (
            "skew +61",
            signed(support::HUB_SECRET.as_bytes(), now + 61, now + 61, &body),
        ),
        (
            "skew -61",
            signed(support::HUB_SECRET.as_bytes(), now - 61, now - 61, &body),
        ),
        (
            "ts changed",
            signed(support::HUB_SECRET.as_bytes(), now, now - 1, &body),
        ),
        (
            "no signature",
            hub.request(Method::POST, "/internal/events")
                .header("x-hub-timestamp", now.to_string())
                .body(Full::new(Bytes::from(body.clone())))
                .unwrap(),
        ),
        (
            "body changed",
            hub.request(Method::POST, "/internal/events")
                .header("x-hub-timestamp", now.to_string())
                .header(
                    "x-hub-signature",
                    sign_webhook(support::HUB_SECRET.as_bytes(), now, body.as_bytes()),
                )
                .body(Full::new(Bytes::from(format!("{body}\n"))))
                .unwrap(),
        ),
        (
            "bad sig + bad json",
            signed(wrong_secret, now, now, "{nope"),
        ),
    ];
    for (what, req) in cases {
        let res = hub.send(req).await;
        assert_eq!(res.status, 403, "{what}: {}", res.text());
        assert!(res.json()["message"].is_string());
    }
    assert_eq!(seq(&hub), before);
    // Within the skew window it is accepted.
    let res = hub
        .send(signed(
            support::HUB_SECRET.as_bytes(),
            now - 59,
            now - 59,
            &body,
        ))
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    hub.stop().await;
}

#[tokio::test]
async fn duplicates_and_replays_are_not_broadcast_twice() {
    let hub = TestHub::start().await;
    let now = unix_now();
    let base = seq(&hub);
    let first = hub
        .send(hub.webhook_request(&joined(&hub, Some("e-1"), 1), now))
        .await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.json(), serde_json::json!({"ok": true}));
    assert_eq!(seq(&hub), base + 1);
    // The same id again (a retry, newly signed) -> duplicate.
    let retry = hub
        .send(hub.webhook_request(&joined(&hub, Some("e-1"), 1), now + 1))
        .await;
    assert_eq!(
        retry.json(),
        serde_json::json!({"ok": true, "duplicate": true})
    );
    // Every 200 names the hub's state; it stays the same while the process lives.
    let state_id = |a: &support::Answer| {
        a.headers
            .get("x-hub-state-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert!(state_id(&first).is_some_and(|id| id.len() == 16));
    assert_eq!(state_id(&first), state_id(&retry));
    // A captured request without id, replayed byte for byte.
    let leave = format!(
        r#"{{"event":"voice.left","payload":{{"guildId":"{}","channelId":"{}","userId":"1"}}}}"#,
        hub.sim.guild_id(),
        discord_sim::DEFAULT_VOICE_1_ID
    );
    assert_eq!(hub.send(hub.webhook_request(&leave, now)).await.status, 200);
    let join_again = joined(&hub, None, 1);
    assert_eq!(
        hub.send(hub.webhook_request(&join_again, now)).await.status,
        200
    );
    let head = seq(&hub);
    assert_eq!(head, base + 3);
    let replay = hub.send(hub.webhook_request(&join_again, now)).await;
    assert_eq!(replay.status, 200);
    assert_eq!(replay.json()["duplicate"], true);
    assert_eq!(seq(&hub), head);
    hub.stop().await;
}

#[tokio::test]
async fn other_guild_ignored_bad_json_400_and_room_deleted_cleans_registry() {
    let hub = TestHub::start().await;
    let now = unix_now();
    let base = seq(&hub);
    let other = format!(
        r#"{{"id":"o-1","event":"voice.joined","payload":{{"guildId":"42","channelId":"{}","userId":"1"}}}}"#,
        discord_sim::DEFAULT_VOICE_1_ID
    );
    let res = hub.send(hub.webhook_request(&other, now)).await;
    assert_eq!(res.status, 200);
    assert_eq!(seq(&hub), base);
    for body in ["{nope", r#"{"payload":{}}"#, "[]"] {
        let res = hub.send(hub.webhook_request(body, now)).await;
        assert_eq!(res.status, 400, "{body}: {}", res.text());
    }
    // room.deleted from the worker removes a room from the registry.
    let created = hub.create_room("alice", "{}").await;
    let id = created.json()["channelId"].as_str().unwrap().to_owned();
    let deleted = format!(
        r#"{{"id":"d-1","event":"room.deleted","payload":{{"guildId":"{}","channelId":"{id}"}}}}"#,
        hub.sim.guild_id()
    );
    assert_eq!(
        hub.send(hub.webhook_request(&deleted, now)).await.status,
        200
    );
    assert!(
        hub.server()
            .app()
            .rooms
            .get(hub.sim.guild_id(), id.parse().unwrap())
            .await
            .is_ok_and(|room| room.is_none())
    );
    let deleted_count = &hub.server().app().metrics.rooms_deleted;
    assert_eq!(deleted_count.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(hub.end_room("alice", &id).await.status, 404);
    hub.stop().await;
}

#[tokio::test]
async fn webhook_body_over_64_kib_is_413() {
    let hub = TestHub::start().await;
    let body = format!(
        r#"{{"event":"x","payload":{{"pad":"{}"}}}}"#,
        "a".repeat(70 * 1024)
    );
    let res = hub.send(hub.webhook_request(&body, unix_now())).await;
    assert_eq!(res.status, 413);
    hub.stop().await;
}

#[tokio::test]
async fn previous_secret_is_accepted_during_rotation() {
    const OLD: &str = "the-previous-hub-secret-0123456789abcdef";
    let hub = TestHub::start_with(support::Options {
        vars: vec![("HUB_SECRET_PREVIOUS", OLD.into())],
        ..support::Options::default()
    })
    .await;
    let now = unix_now();
    let body = joined(&hub, Some("r-1"), 7);
    let req = hub
        .request(Method::POST, "/internal/events")
        .header("x-hub-timestamp", now.to_string())
        .header(
            "x-hub-signature",
            sign_webhook(OLD.as_bytes(), now, body.as_bytes()),
        )
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let res = hub.send(req).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(!res.text().contains(OLD));
    hub.stop().await;
}
