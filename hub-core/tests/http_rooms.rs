//! Contract §2: create-room and end-room against discord-sim, through the real server.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use support::{Options, TestHub};

fn channel_id(answer: &support::Answer) -> String {
    answer.json()["channelId"]
        .as_str()
        .expect("channelId")
        .to_owned()
}

#[tokio::test]
async fn create_room_creates_a_voice_channel_with_an_audit_reason() {
    let hub = TestHub::start().await;
    let long = "é".repeat(150);
    let res = hub
        .create_room("alice", &format!(r#"{{"name":"{long}","userLimit":5}}"#))
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let body = res.json();
    assert_eq!(body["guildId"], hub.sim.guild_id().to_string());
    assert_eq!(body["name"].as_str().unwrap().chars().count(), 100);
    let calls = hub.discord_calls(
        "POST",
        &format!("/api/v10/guilds/{}/channels", hub.sim.guild_id()),
    );
    assert_eq!(calls.len(), 1);
    let sent = calls[0].body.clone().expect("json body");
    assert_eq!(sent["type"], 2);
    assert_eq!(sent["user_limit"], 5);
    assert_eq!(sent["name"].as_str().unwrap().chars().count(), 100);
    assert_eq!(
        calls[0].audit_log_reason.as_deref(),
        Some("room created by alice")
    );
    // The channel exists in "Discord" and the registry knows its owner.
    let id: u64 = channel_id(&res).parse().unwrap();
    assert!(hub.sim.channels().iter().any(|c| c.id == id));
    let room = hub
        .server()
        .app()
        .rooms
        .get(hub.sim.guild_id(), id)
        .await
        .expect("registry answers")
        .expect("registered");
    assert_eq!(room.owner, "alice");
    hub.stop().await;
}

#[tokio::test]
async fn create_room_defaults_and_parent() {
    let hub = TestHub::start_with(Options {
        vars: vec![(
            "ROOM_PARENT_ID",
            discord_sim::DEFAULT_CATEGORY_ID.to_string(),
        )],
        ..Options::default()
    })
    .await;
    let res = hub.create_room("alice", "").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let name = res.json()["name"].as_str().unwrap().to_owned();
    assert!(name.starts_with("spell-coven-"), "{name}");
    let calls = hub.discord_calls("POST", "/api/v10/guilds/");
    let sent = calls[0].body.clone().unwrap();
    assert_eq!(
        sent["parent_id"],
        discord_sim::DEFAULT_CATEGORY_ID.to_string()
    );
    assert!(sent.get("user_limit").is_none());
    hub.stop().await;
}

#[tokio::test]
async fn create_room_rejects_bad_bodies_without_calling_discord() {
    let hub = TestHub::start().await;
    for body in [
        "nope",
        "[]",
        r#"{"userLimit":100}"#,
        r#"{"userLimit":-1}"#,
        r#"{"userLimit":2.5}"#,
        r#"{"name":7}"#,
        r#"{"parentId":42}"#,
        r#"{"parentId":"12/34"}"#,
    ] {
        let res = hub.create_room("alice", body).await;
        assert_eq!(res.status, 400, "{body}: {}", res.text());
        assert!(res.json()["message"].is_string());
    }
    // 413: over 64 KiB.
    let big = format!(r#"{{"name":"{}"}}"#, "a".repeat(70 * 1024));
    let res = hub.create_room("alice", &big).await;
    assert_eq!(res.status, 413);
    assert!(res.json()["message"].is_string());
    assert!(hub.discord_calls("POST", "/api/v10/guilds/").is_empty());
    hub.stop().await;
}

#[tokio::test]
async fn bad_tokens_get_401() {
    let hub = TestHub::start().await;
    let other = hub_core::auth::TestIssuer::new("another-key");
    let now = support::unix_now();
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("not bearer", Some(format!("Basic {}", hub.token("alice")))),
        ("garbage", Some("Bearer not.a.jwt".into())),
        (
            "expired",
            Some(format!(
                "Bearer {}",
                hub.issuer
                    .token_for(support::ISSUER, support::AUDIENCE, "alice", now - 3600)
            )),
        ),
        (
            "wrong issuer",
            Some(format!(
                "Bearer {}",
                hub.issuer
                    .token_for("https://evil", support::AUDIENCE, "alice", now + 600)
            )),
        ),
        (
            "wrong audience",
            Some(format!(
                "Bearer {}",
                hub.issuer
                    .token_for(support::ISSUER, "other", "alice", now + 600)
            )),
        ),
        (
            "unknown key",
            Some(format!(
                "Bearer {}",
                other.token_for(support::ISSUER, support::AUDIENCE, "alice", now + 600)
            )),
        ),
    ];
    for (what, auth) in cases {
        for (method, path) in [
            (Method::POST, "/create-room"),
            (Method::DELETE, "/end-room/123"),
        ] {
            let mut req = hub.request(method.clone(), path);
            if let Some(auth) = &auth {
                req = req.header("authorization", auth);
            }
            let res = hub
                .send(req.body(Full::new(Bytes::from_static(b"{}"))).unwrap())
                .await;
            assert_eq!(res.status, 401, "{what} {method} {path}: {}", res.text());
            assert_eq!(res.header("www-authenticate"), Some("Bearer"));
            assert!(res.json()["message"].is_string());
        }
    }
    assert!(hub.sim.rest_log().is_empty());
    hub.stop().await;
}

#[tokio::test]
async fn per_user_rate_limit_answers_429_with_retry_after() {
    let hub = TestHub::start_with(Options {
        vars: vec![("ROOM_CREATE_PER_MINUTE", "2".into())],
        ..Options::default()
    })
    .await;
    assert_eq!(hub.create_room("alice", "{}").await.status, 200);
    assert_eq!(hub.create_room("alice", "{}").await.status, 200);
    let res = hub.create_room("alice", "{}").await;
    assert_eq!(res.status, 429);
    let retry: u64 = res
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(hub.create_room("bob", "{}").await.status, 200, "per user");
    assert_eq!(hub.discord_calls("POST", "/api/v10/guilds/").len(), 3);
    hub.stop().await;
}

#[tokio::test]
async fn idempotency_key_calls_discord_once_even_concurrently() {
    let hub = TestHub::start().await;
    let send = |key: &'static str, sub: &'static str| {
        let req = hub
            .request(Method::POST, "/create-room")
            .header("authorization", format!("Bearer {}", hub.token(sub)))
            .header("x-idempotency-key", key)
            .body(Full::new(Bytes::from_static(b"{\"name\":\"game\"}")))
            .unwrap();
        hub.send(req)
    };
    let (a, b, c) = tokio::join!(
        send("k-1", "alice"),
        send("k-1", "alice"),
        send("k-1", "alice")
    );
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.body, b.body);
    assert_eq!(a.body, c.body);
    let again = send("k-1", "alice").await;
    assert_eq!(again.body, a.body);
    assert_eq!(hub.discord_calls("POST", "/api/v10/guilds/").len(), 1);
    // Another user with the same key gets their own room.
    let bob = send("k-1", "bob").await;
    assert_ne!(bob.body, a.body);
    assert_eq!(hub.discord_calls("POST", "/api/v10/guilds/").len(), 2);
    hub.stop().await;
}

#[tokio::test]
async fn end_room_only_for_the_creator_of_a_registered_room() {
    let mut hub = TestHub::start().await;
    // A channel this hub did not create: 404, Discord not called.
    let foreign = discord_sim::DEFAULT_VOICE_1_ID.to_string();
    let res = hub.end_room("alice", &foreign).await;
    assert_eq!(res.status, 404, "{}", res.text());
    assert!(hub.sim.rest_log().is_empty());
    // Path tricks never reach Discord.
    for path in [
        "123/messages",
        "123%2F..%2Fguilds%2F1",
        "-1",
        "1e3",
        "123456789012345678901",
        "18446744073709551616",
    ] {
        let res = hub.end_room("alice", path).await;
        assert!(
            res.status == 404 || res.status == 400,
            "{path}: {}",
            res.status
        );
    }
    let res = hub.end_room("alice", "123?x=1").await;
    assert_eq!(res.status, 404);
    assert!(hub.sim.rest_log().is_empty());

    let created = hub.create_room("alice", "{}").await;
    let id = channel_id(&created);
    // Ownership survives a restart (new server, same DATA_DIR).
    hub.restart().await;
    let res = hub.end_room("bob", &id).await;
    assert_eq!(res.status, 403, "{}", res.text());
    assert!(hub.discord_calls("DELETE", "/api/v10/channels/").is_empty());
    let res = hub.end_room("alice", &id).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json(), serde_json::json!({"ok": true}));
    let deletes = hub.discord_calls("DELETE", "/api/v10/channels/");
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0].path, format!("/api/v10/channels/{id}"));
    assert_eq!(
        deletes[0].audit_log_reason.as_deref(),
        Some("room ended by alice")
    );
    // Gone from the registry: a second end is 404 without another Discord call.
    assert_eq!(hub.end_room("alice", &id).await.status, 404);
    assert_eq!(hub.discord_calls("DELETE", "/api/v10/channels/").len(), 1);
    hub.stop().await;
}

#[tokio::test]
async fn end_room_treats_an_already_deleted_channel_as_ended() {
    let hub = TestHub::start().await;
    let id = channel_id(&hub.create_room("alice", "{}").await);
    hub.sim.delete_channel(id.parse().unwrap()).await.unwrap();
    let res = hub.end_room("alice", &id).await;
    assert_eq!(res.status, 200, "{}", res.text());
    hub.stop().await;
}

#[tokio::test]
async fn idle_rooms_are_deleted() {
    let hub = TestHub::start_with(Options {
        vars: vec![("ROOM_IDLE_TIMEOUT_SECS", "1".into())],
        ..Options::default()
    })
    .await;
    let id: u64 = channel_id(&hub.create_room("alice", "{}").await)
        .parse()
        .unwrap();
    let gone = support::wait_until(20, || !hub.sim.channels().iter().any(|c| c.id == id)).await;
    assert!(gone, "idle room deleted in Discord");
    assert!(
        support::wait_until(5, || futures_util::FutureExt::now_or_never(
            hub.server().app().rooms.get(hub.sim.guild_id(), id)
        )
        .is_some_and(|room| matches!(room, Ok(None))))
        .await
    );
    let _ = Duration::ZERO;
    hub.stop().await;
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_create_still_gets_its_room_recorded() {
    use tokio::io::AsyncWriteExt;
    let hub = TestHub::start().await;
    hub.sim.set_rest_latency(Duration::from_millis(800)).await;
    let mut stream = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
    let head = format!(
        "POST /create-room HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 2\r\n\r\n{{}}",
        hub.token("alice")
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // Hang up while Discord is still working on it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(stream);
    let guild = hub.sim.guild_id();
    let recorded = support::wait_until(20, || room_count(&hub, guild) == 1).await;
    assert!(
        recorded,
        "the channel Discord created is in the registry, not orphaned"
    );
    hub.stop().await;
}

/// Rooms in the registry (the file registry never awaits: the future is ready at once).
fn room_count(hub: &TestHub, guild: u64) -> usize {
    futures_util::FutureExt::now_or_never(hub.server().app().rooms.rooms(guild))
        .and_then(Result::ok)
        .map_or(0, |rooms| rooms.len())
}
