//! Discord failures: 429 short (retried once) / long (503 + Retry-After), 5xx (502).

mod support;

use discord_sim::RestFault;
use support::TestHub;

#[tokio::test]
async fn short_429_is_retried_once() {
    let hub = TestHub::start().await;
    hub.sim
        .fail_rest(
            RestFault::RateLimited {
                retry_after: 0.2,
                global: false,
            },
            1,
        )
        .await;
    let res = hub.create_room("alice", "{}").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let calls = hub.discord_calls("POST", "/api/v10/guilds/");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].status, 429);
    assert!((200..300).contains(&calls[1].status));
    hub.stop().await;
}

#[tokio::test]
async fn long_429_is_503_with_retry_after_and_no_loop() {
    let hub = TestHub::start().await;
    hub.sim
        .fail_rest(
            RestFault::RateLimited {
                retry_after: 30.0,
                global: false,
            },
            5,
        )
        .await;
    let res = hub.create_room("alice", "{}").await;
    assert_eq!(res.status, 503, "{}", res.text());
    let retry: u64 = res
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((29..=31).contains(&retry), "{retry}");
    assert_eq!(hub.discord_calls("POST", "/api/v10/guilds/").len(), 1);
    // The bucket is now known empty: the next request waits for nobody and calls nobody.
    let res = hub.create_room("alice", "{}").await;
    assert_eq!(res.status, 503);
    assert!(res.header("retry-after").is_some());
    assert_eq!(hub.discord_calls("POST", "/api/v10/guilds/").len(), 1);
    hub.stop().await;
}

#[tokio::test]
async fn two_short_429s_are_not_a_loop() {
    let hub = TestHub::start().await;
    hub.sim
        .fail_rest(
            RestFault::RateLimited {
                retry_after: 0.1,
                global: true,
            },
            2,
        )
        .await;
    let res = hub.create_room("alice", "{}").await;
    assert_eq!(res.status, 503, "{}", res.text());
    assert!(res.header("retry-after").is_some());
    assert_eq!(hub.discord_calls("POST", "/api/v10/guilds/").len(), 2);
    hub.stop().await;
}

#[tokio::test]
async fn server_errors_are_502() {
    let hub = TestHub::start().await;
    hub.sim
        .fail_rest(RestFault::ServerError { status: 502 }, 1)
        .await;
    let res = hub.create_room("alice", "{}").await;
    assert_eq!(res.status, 502, "{}", res.text());
    assert!(res.json()["message"].is_string());
    assert_eq!(hub.discord_calls("POST", "/api/v10/guilds/").len(), 1);
    // Nothing was registered.
    assert!(
        hub.server()
            .app()
            .rooms
            .rooms(hub.sim.guild_id())
            .await
            .is_ok_and(|rooms| rooms.is_empty())
    );
    hub.stop().await;
}

#[tokio::test]
async fn discord_form_errors_are_400() {
    let hub = TestHub::start().await;
    // A category id that does not exist: Discord answers 50035 Invalid Form Body.
    let res = hub.create_room("alice", r#"{"parentId":"999"}"#).await;
    assert_eq!(res.status, 400, "{}", res.text());
    hub.stop().await;
}

#[tokio::test]
async fn a_bucket_known_empty_is_waited_for_or_refused_without_a_call() {
    // One request per bucket window: the second create finds the bucket empty.
    let mut options = support::Options::default();
    options.sim.rest_rate_limit.bucket_limit = 1;
    options.sim.rest_rate_limit.bucket_reset_after = std::time::Duration::from_secs(30);
    let hub = TestHub::start_with(options).await;
    assert_eq!(hub.create_room("alice", "{}").await.status, 200);
    let res = hub.create_room("bob", "{}").await;
    assert_eq!(res.status, 503, "{}", res.text());
    assert!(res.header("retry-after").is_some());
    assert_eq!(
        hub.discord_calls("POST", "/api/v10/guilds/").len(),
        1,
        "no call into an empty bucket"
    );
    hub.stop().await;

    // A short window is simply waited out.
    let mut options = support::Options::default();
    options.sim.rest_rate_limit.bucket_limit = 1;
    options.sim.rest_rate_limit.bucket_reset_after = std::time::Duration::from_millis(500);
    let hub = TestHub::start_with(options).await;
    assert_eq!(hub.create_room("alice", "{}").await.status, 200);
    let res = hub.create_room("bob", "{}").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let calls = hub.discord_calls("POST", "/api/v10/guilds/");
    assert_eq!(calls.len(), 2);
    assert!(
        calls.iter().all(|c| c.status != 429),
        "waited instead of hitting a 429"
    );
    hub.stop().await;
}

#[tokio::test]
async fn a_wrong_bot_token_is_502_and_never_retried() {
    let hub = TestHub::start_with(support::Options {
        vars: vec![("DISCORD_BOT_TOKEN", "not-the-sim-token".into())],
        ..support::Options::default()
    })
    .await;
    let res = hub.create_room("alice", "{}").await;
    assert_eq!(res.status, 502, "{}", res.text());
    assert!(!res.text().contains("not-the-sim-token"));
    let calls = hub.discord_calls("POST", "/api/v10/guilds/");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].status, 401);
    // The token rests after a 401: the next request fails without a call.
    assert_eq!(hub.create_room("alice", "{}").await.status, 502);
    assert_eq!(hub.discord_calls("POST", "/api/v10/guilds/").len(), 1);
    assert!(
        support::captured_logs()
            .iter()
            .all(|l| !l.contains("not-the-sim-token"))
    );
    hub.stop().await;
}

#[tokio::test]
async fn discord_unreachable_is_502() {
    // A loopback port with nobody listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hub = TestHub::start_with(support::Options {
        vars: vec![(
            "DISCORD_API_BASE",
            format!("http://127.0.0.1:{port}/api/v10"),
        )],
        ..support::Options::default()
    })
    .await;
    let res = hub.create_room("alice", "{}").await;
    assert_eq!(res.status, 502, "{}", res.text());
    assert!(res.json()["message"].is_string());
    hub.stop().await;
}
