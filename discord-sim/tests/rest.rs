//! REST behaviour over real loopback sockets, checked against Discord's documentation.

mod support;

use std::time::Duration;

use discord_sim::{DEFAULT_CATEGORY_ID, DEFAULT_VOICE_1_ID, RestFault, RestRateLimit, SimConfig};
use serde_json::{Value, json};
use support::{Client, config, http, rest, start};

#[tokio::test]
async fn missing_or_wrong_token_is_401() {
    let sim = start(config()).await;
    let url = format!("{}/gateway/bot", sim.api_base());
    let (status, _, body) = http("GET", &url, &[], None).await;
    assert_eq!(status, 401);
    assert_eq!(
        serde_json::from_str::<Value>(&body).ok(),
        Some(json!({"message": "401: Unauthorized", "code": 0}))
    );
    let (status, _, _) = http("GET", &url, &[("authorization", "Bot wrong")], None).await;
    assert_eq!(status, 401);
    // The raw token without the "Bot " prefix is refused too.
    let (status, _, _) = http("GET", &url, &[("authorization", "sim-token")], None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn gateway_bot_reports_url_and_session_start_limit() {
    let sim = start(config()).await;
    let (status, headers, body) = rest(&sim, "GET", "/gateway/bot", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["url"], sim.gateway_url());
    assert_eq!(body["shards"], 1);
    let limit = &body["session_start_limit"];
    assert_eq!(limit["total"], 1000);
    assert_eq!(limit["remaining"], 1000);
    assert_eq!(
        limit["max_concurrency"],
        sim.config().session_start_limit.max_concurrency
    );
    assert!(limit["reset_after"].as_u64().is_some());
    for h in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-reset-after",
        "x-ratelimit-bucket",
    ] {
        assert!(headers.contains_key(h), "missing {h}");
    }
    let _c = Client::identified(&sim).await;
    let (_, _, body) = rest(&sim, "GET", "/gateway/bot", None).await;
    assert_eq!(body["session_start_limit"]["remaining"], 999);
}

#[tokio::test]
async fn create_channel_validates_like_discord() {
    let sim = start(config()).await;
    let path = format!("/guilds/{}/channels", sim.guild_id());
    let (status, _, body) = rest(
        &sim,
        "POST",
        &path,
        Some(json!({"name": "x".repeat(101), "type": 2})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"code": 50035, "errors": {"name": {"_errors": [
            {"code": "BASE_TYPE_BAD_LENGTH", "message": "Must be between 1 and 100 in length."}
        ]}}, "message": "Invalid Form Body"})
    );
    let (status, _, body) = rest(
        &sim,
        "POST",
        &path,
        Some(json!({"name": "ok", "type": 2, "user_limit": 100})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["errors"]["user_limit"]["_errors"][0]["code"],
        "NUMBER_TYPE_MAX"
    );
    let (status, _, body) = rest(&sim, "POST", &path, Some(json!({"name": "ok", "type": 1}))).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["errors"]["type"]["_errors"][0]["code"],
        "BASE_TYPE_CHOICES"
    );
    let (status, _, body) = rest(
        &sim,
        "POST",
        &path,
        Some(json!({"name": "ok", "type": 2, "parent_id": DEFAULT_VOICE_1_ID.to_string()})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["errors"]["parent_id"].is_object());
    let (status, _, body) = rest(&sim, "POST", &path, Some(json!({"type": 2}))).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["errors"]["name"]["_errors"][0]["code"],
        "BASE_TYPE_REQUIRED"
    );
    let url = format!("{}{path}", sim.api_base());
    let auth = support::bot_auth(&sim);
    let (status, _, body) = http(
        "POST",
        &url,
        &[("authorization", &auth)],
        Some("{oops".into()),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&body)
            .ok()
            .map(|b| b["code"].clone()),
        Some(json!(50109))
    );
    let (status, _, body) = rest(
        &sim,
        "POST",
        "/guilds/1234567890123456789/channels",
        Some(json!({"name": "ok", "type": 2})),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body, json!({"message": "Unknown Guild", "code": 10004}));
    assert_eq!(sim.channels().len(), 3, "nothing was created");
}

#[tokio::test]
async fn create_channel_dispatches_channel_create_and_logs_reason() {
    let sim = start(config()).await;
    let (mut c, _, _) = Client::identified(&sim).await;
    let url = format!("{}/guilds/{}/channels", sim.api_base(), sim.guild_id());
    let auth = support::bot_auth(&sim);
    let body = json!({"name": "spell-coven-abc", "type": 2, "user_limit": 4, "parent_id": DEFAULT_CATEGORY_ID.to_string()});
    let (status, _, text) = http(
        "POST",
        &url,
        &[
            ("authorization", &auth),
            ("x-audit-log-reason", "room%20for%20user%201"),
        ],
        Some(body.to_string()),
    )
    .await;
    assert_eq!(status, 201);
    let created: Value = serde_json::from_str(&text).unwrap_or_default();
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    assert!(
        id.bytes().all(|b| b.is_ascii_digit()) && (18..=19).contains(&id.len()),
        "{id}"
    );
    assert_eq!(created["type"], 2);
    assert_eq!(created["user_limit"], 4);
    assert_eq!(created["parent_id"], DEFAULT_CATEGORY_ID.to_string());
    let event = c.expect_dispatch("CHANNEL_CREATE").await;
    assert_eq!(event["d"]["id"], id);
    let log = sim.rest_log();
    let call = log.iter().find(|r| r.method == "POST").cloned();
    assert_eq!(
        call.as_ref()
            .and_then(|r| r.audit_log_reason.clone())
            .as_deref(),
        Some("room for user 1")
    );
    assert_eq!(call.map(|r| r.status), Some(201));

    let (status, _, list) = rest(
        &sim,
        "GET",
        &format!("/guilds/{}/channels", sim.guild_id()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        list.as_array()
            .is_some_and(|l| l.iter().any(|ch| ch["id"] == id))
    );
}

#[tokio::test]
async fn delete_channel_dispatches_delete_then_occupants_leave() {
    let sim = start(config()).await;
    sim.join(11, DEFAULT_VOICE_1_ID).await.expect("join");
    let (mut c, _, _) = Client::identified(&sim).await;
    let (status, _, body) = rest(
        &sim,
        "DELETE",
        &format!("/channels/{DEFAULT_VOICE_1_ID}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], DEFAULT_VOICE_1_ID.to_string());
    let del = c.expect_dispatch("CHANNEL_DELETE").await;
    assert_eq!(del["d"]["id"], DEFAULT_VOICE_1_ID.to_string());
    let left = c.expect_dispatch("VOICE_STATE_UPDATE").await;
    assert_eq!(left["d"]["user_id"], "11");
    assert!(left["d"]["channel_id"].is_null());
    assert!(sim.voice_states().is_empty());

    let (status, _, body) = rest(
        &sim,
        "DELETE",
        &format!("/channels/{DEFAULT_VOICE_1_ID}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body, json!({"message": "Unknown Channel", "code": 10003}));
}

#[tokio::test]
async fn exhausted_bucket_gets_429_with_headers() {
    let sim = start(SimConfig {
        rest_rate_limit: RestRateLimit {
            bucket_limit: 2,
            bucket_reset_after: Duration::from_secs(30),
            global_per_second: 50,
        },
        ..config()
    })
    .await;
    let path = format!("/guilds/{}/channels", sim.guild_id());
    let (_, h1, _) = rest(&sim, "GET", &path, None).await;
    assert_eq!(
        h1.get("x-ratelimit-remaining")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let (_, h2, _) = rest(&sim, "GET", &path, None).await;
    assert_eq!(
        h2.get("x-ratelimit-remaining")
            .and_then(|v| v.to_str().ok()),
        Some("0")
    );
    let (status, h3, body) = rest(&sim, "GET", &path, None).await;
    assert_eq!(status, 429);
    assert_eq!(body["global"], false);
    assert_eq!(body["message"], "You are being rate limited.");
    assert!(
        body["retry_after"]
            .as_f64()
            .is_some_and(|r| r > 0.0 && r <= 30.0)
    );
    assert!(
        h3.get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some()
    );
    assert_eq!(
        h3.get("x-ratelimit-scope").and_then(|v| v.to_str().ok()),
        Some("user")
    );
    assert_eq!(h3.get("x-ratelimit-bucket"), h1.get("x-ratelimit-bucket"));
    // Another route has its own bucket.
    let (status, _, _) = rest(&sim, "GET", "/gateway/bot", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn injected_429_and_5xx() {
    let sim = start(config()).await;
    sim.fail_rest(
        RestFault::RateLimited {
            retry_after: 2.5,
            global: true,
        },
        1,
    )
    .await;
    let (status, headers, body) = rest(&sim, "GET", "/gateway/bot", None).await;
    assert_eq!(status, 429);
    assert_eq!(
        body,
        json!({"message": "You are being rate limited.", "retry_after": 2.5, "global": true})
    );
    assert_eq!(
        headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("3")
    );
    assert_eq!(
        headers
            .get("x-ratelimit-global")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    sim.fail_rest(RestFault::ServerError { status: 503 }, 2)
        .await;
    for _ in 0..2 {
        let (status, _, body) = rest(&sim, "GET", "/gateway/bot", None).await;
        assert_eq!(status, 503);
        assert!(body.is_null(), "edge errors are not JSON");
    }
    let (status, _, _) = rest(&sim, "GET", "/gateway/bot", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn unknown_routes_are_404() {
    let sim = start(config()).await;
    let (status, _, body) = rest(&sim, "GET", "/nope", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], 0);
    let (status, _, _) = rest(&sim, "PUT", "/gateway/bot", None).await;
    assert_eq!(status, 405);
}
