//! Faults and limits at the hub, against the real `spell-coven-api` binary.
//!
//! - `rest_429_storm_during_create_room`: Discord answers every REST call with 429. Invariant:
//!   create-room answers only the documented 502/503 (503 with `Retry-After`), never another
//!   5xx, and makes at most 2 Discord calls per request (no retry loop, no storm).
//! - `jwks_down_keeps_cached_keys_and_rotation_is_picked_up`: the JWKS URL starts failing:
//!   tokens signed by a known key keep working. Then the JWKS rotates to a new key: a token
//!   with the new `kid` is accepted within one refetch cooldown (30 s), and the hub fetched
//!   the JWKS only a bounded number of times while refusing the unknown `kid`.
//! - `unauthenticated_sockets_are_closed_on_time_with_bounded_memory`: 2000 WebSockets that
//!   never authenticate are each closed with 4408 after the 10 s deadline, and the hub's RSS
//!   stays bounded.
//! - `oversized_requests_and_messages_are_refused`: a 100 KB header -> 431, a 70 KB body ->
//!   413, a 5 KiB WebSocket message -> close 1009.

use std::time::Duration;

use discord_sim::{RestFault, Sim};
use futures_util::StreamExt as _;
use hub_core::auth::TestIssuer;
use system_tests::client::http_request;
use system_tests::process::rss_kib;
use system_tests::{
    AUDIENCE, HubProcess, HubSetup, ISSUER, JwksServer, WAIT, WsClient, free_port, now_unix,
    sim_config, wait_until,
};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

struct Setup {
    sim: Sim,
    hub: HubProcess,
    issuer: TestIssuer,
    _dir: tempfile::TempDir,
}

async fn hub_with_file_keys() -> Setup {
    let sim = Sim::start(sim_config()).await.expect("sim");
    let dir = tempfile::tempdir().expect("dir");
    let issuer = TestIssuer::new("system-test");
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, TestIssuer::jwks(&[&issuer])).expect("jwks");
    let hub = HubProcess::start(HubSetup {
        port: free_port(),
        guild_id: sim.guild_id(),
        discord_api_base: sim.api_base().to_owned(),
        data_dir: dir.path().join("data"),
        jwks: ("JWT_PUBLIC_JWKS_FILE".into(), jwks.display().to_string()),
        extra: Vec::new(),
        log_dir: dir.path().to_path_buf(),
    })
    .await;
    Setup {
        sim,
        hub,
        issuer,
        _dir: dir,
    }
}

fn token(issuer: &TestIssuer, sub: &str) -> String {
    issuer.token_for(ISSUER, AUDIENCE, sub, now_unix() + 3600)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_429_storm_during_create_room() {
    let s = hub_with_file_keys().await;
    s.sim
        .fail_rest(
            RestFault::RateLimited {
                retry_after: 3.0,
                global: false,
            },
            10_000,
        )
        .await;
    let url = format!("{}/create-room", s.hub.base_url());
    let requests = 4;
    for i in 0..requests {
        let bearer = format!("Bearer {}", token(&s.issuer, &format!("user-{i}")));
        let reply = http_request(
            "POST",
            &url,
            &[
                ("authorization", &bearer),
                ("content-type", "application/json"),
            ],
            br#"{"name":"storm"}"#.to_vec(),
        )
        .await
        .expect("the hub answers");
        assert!(
            matches!(reply.status, 502 | 503),
            "undocumented answer {} {:?}",
            reply.status,
            reply.body
        );
        if reply.status == 503 {
            assert!(
                reply.headers.contains_key("retry-after"),
                "503 without Retry-After"
            );
        }
        assert!(
            reply.json()["message"].is_string(),
            "error shape {:?}",
            reply.body
        );
    }
    let calls = s
        .sim
        .rest_log()
        .iter()
        .filter(|c| c.method == "POST" && c.path.ends_with("/channels"))
        .count();
    assert!(
        (1..=2 * requests).contains(&calls),
        "{calls} Discord calls for {requests} requests: a retry loop"
    );

    // Discord recovers: once the announced Retry-After has passed, creating works again.
    s.sim.clear_faults().await;
    let attempt = std::sync::atomic::AtomicU32::new(0);
    wait_until("create-room to succeed after the storm", WAIT, || {
        let n = attempt.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let bearer = format!("Bearer {}", token(&s.issuer, &format!("after-{n}")));
        let url = url.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let reply = http_request(
                "POST",
                &url,
                &[
                    ("authorization", &bearer),
                    ("content-type", "application/json"),
                ],
                b"{}".to_vec(),
            )
            .await?;
            assert!(matches!(reply.status, 200 | 502 | 503), "{}", reply.status);
            (reply.status == 200).then_some(())
        }
    })
    .await;
}

/// 404 = authenticated (the channel is not ours), 401 = refused, 503 = keys unavailable.
async fn auth_probe(hub: &HubProcess, token: &str) -> u16 {
    let bearer = format!("Bearer {token}");
    http_request(
        "DELETE",
        &format!("{}/end-room/123456789", hub.base_url()),
        &[("authorization", &bearer)],
        Vec::new(),
    )
    .await
    .map_or(0, |r| r.status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_down_keeps_cached_keys_and_rotation_is_picked_up() {
    let sim = Sim::start(sim_config()).await.expect("sim");
    let dir = tempfile::tempdir().expect("dir");
    let old = TestIssuer::new("old-key");
    let new = TestIssuer::new("new-key");
    let jwks = JwksServer::start(TestIssuer::jwks(&[&old])).await;
    let hub = HubProcess::start(HubSetup {
        port: free_port(),
        guild_id: sim.guild_id(),
        discord_api_base: sim.api_base().to_owned(),
        data_dir: dir.path().join("data"),
        jwks: ("JWT_PUBLIC_JWK_URL".into(), jwks.url()),
        extra: Vec::new(),
        log_dir: dir.path().to_path_buf(),
    })
    .await;
    assert_eq!(auth_probe(&hub, &token(&old, "a")).await, 404);

    // The JWKS URL goes down: cached keys keep working (a new token, not a cached verdict).
    jwks.serve(500, "down".into());
    assert_eq!(auth_probe(&hub, &token(&old, "b")).await, 404);
    assert_eq!(
        auth_probe(&hub, &token(&new, "c")).await,
        401,
        "unknown key refused"
    );

    // Rotation: the new key is picked up within the refetch cooldown.
    jwks.serve(200, TestIssuer::jwks(&[&old, &new]));
    let fetches_before = jwks.fetches();
    let new_token = token(&new, "d");
    wait_until(
        "the rotated key to be accepted",
        Duration::from_secs(60),
        || {
            let (hub, t) = (&hub, new_token.clone());
            async move {
                tokio::time::sleep(Duration::from_millis(500)).await;
                (auth_probe(hub, &t).await == 404).then_some(())
            }
        },
    )
    .await;
    assert_eq!(
        auth_probe(&hub, &token(&old, "e")).await,
        404,
        "old key still valid"
    );
    let refetches = jwks.fetches() - fetches_before;
    assert!(
        refetches <= 2,
        "{refetches} JWKS fetches while polling with an unknown kid: no cooldown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_sockets_are_closed_on_time_with_bounded_memory() {
    const SOCKETS: usize = 2000;
    let s = hub_with_file_keys().await;
    let pid = s.hub.pid().expect("hub pid");
    let rss_before = rss_kib(pid).expect("rss");
    let url = s.hub.ws_url();
    let mut sockets = Vec::with_capacity(SOCKETS);
    for _ in 0..SOCKETS / 100 {
        let batch = futures_util::future::join_all(
            (0..100).map(|_| tokio_tungstenite::connect_async(url.clone())),
        )
        .await;
        for conn in batch {
            sockets.push(conn.expect("websocket handshake").0);
        }
    }
    let rss_open = rss_kib(pid).expect("rss");
    // Every socket must get a 4408 close frame; wait on each (deadline 10 s in the binary).
    let closes = futures_util::future::join_all(sockets.into_iter().map(|mut ws| async move {
        let wait = async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
                    Some(Ok(_)) => {}
                    _ => return None,
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(40), wait)
            .await
            .ok()
            .flatten()
    }))
    .await;
    let bad = closes
        .iter()
        .filter(|c| **c != Some(CloseCode::Library(4408)))
        .count();
    assert_eq!(
        bad, 0,
        "{bad} of {SOCKETS} sockets were not closed with 4408"
    );
    let rss_after = rss_kib(pid).expect("rss");
    eprintln!(
        "hub rss: {rss_before} KiB idle, {rss_open} KiB with {SOCKETS} sockets, {rss_after} KiB after"
    );
    assert!(
        rss_open.saturating_sub(rss_before) < 64 * 1024,
        "{SOCKETS} unauthenticated sockets cost more than 64 MiB"
    );
    assert!(
        rss_after.saturating_sub(rss_before) < 64 * 1024,
        "memory not given back after the sockets closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_and_messages_are_refused() {
    let s = hub_with_file_keys().await;
    let base = s.hub.base_url();
    let big_header = "x".repeat(100 * 1024);
    let reply = http_request(
        "GET",
        &format!("{base}/health"),
        &[("x-big", &big_header)],
        Vec::new(),
    )
    .await;
    // hyper answers 431 for a header section over its buffer; a reset is tolerated only
    // after that answer, so require the answer.
    assert_eq!(reply.map(|r| r.status), Some(431), "100 KB header");

    let bearer = format!("Bearer {}", token(&s.issuer, "big"));
    let body = format!(r#"{{"name":"{}"}}"#, "n".repeat(70 * 1024));
    let reply = http_request(
        "POST",
        &format!("{base}/create-room"),
        &[
            ("authorization", &bearer),
            ("content-type", "application/json"),
        ],
        body.into_bytes(),
    )
    .await;
    assert_eq!(reply.map(|r| r.status), Some(413), "70 KB body");
    assert!(s.sim.rest_log().is_empty(), "Discord was not called");

    let mut client = WsClient::connect(&s.hub.ws_url(), &token(&s.issuer, "ws"), None).await;
    client
        .read_until("snapshot", WAIT, |v| v.snapshots > 0)
        .await;
    let code = client
        .send_and_wait_close(Message::text("m".repeat(5 * 1024)))
        .await;
    assert_eq!(code, Some(CloseCode::Size), "5 KiB message");
}
