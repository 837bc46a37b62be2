//! The server itself: /health, /metrics on METRICS_ADDR, routing errors, limits, shutdown,
//! and that no answer or log line carries a secret.

mod support;

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::Method;
use http_body_util::Full;
use support::{HUB_SECRET, Options, TestHub};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::test]
async fn health_and_routing_errors() {
    let hub = TestHub::start().await;
    let get = |method: Method, path: &'static str| {
        hub.send(
            hub.request(method, path)
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
    };
    let res = get(Method::GET, "/health").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.text(), "ok");
    assert!(
        res.header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let res = get(Method::GET, "/nope").await;
    assert_eq!(res.status, 404);
    assert!(res.json()["message"].is_string());
    let res = get(Method::GET, "/metrics").await;
    assert_eq!(res.status, 404, "metrics only on METRICS_ADDR");
    let res = get(Method::PUT, "/create-room").await;
    assert_eq!(res.status, 405);
    assert!(res.header("allow").is_some());
    hub.stop().await;
}

#[tokio::test]
async fn metrics_are_served_on_their_own_listener() {
    let hub = TestHub::start_with(Options {
        vars: vec![("METRICS_ADDR", "127.0.0.1:0".into())],
        ..Options::default()
    })
    .await;
    assert_eq!(hub.create_room("alice", "{}").await.status, 200);
    let addr = hub.server().metrics_addr().expect("metrics listener");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut text))
        .await
        .unwrap()
        .unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("hub_rooms_total{op=\"created\"} 1"), "{text}");
    assert!(
        text.contains("hub_discord_requests_total{status=\"2xx\"} 1"),
        "{text}"
    );
    hub.stop().await;
}

#[tokio::test]
async fn oversized_headers_and_bodies_are_refused() {
    let hub = TestHub::start().await;
    // A chunked body over 64 KiB (no Content-Length) -> 413.
    let mut stream = TcpStream::connect(hub.addr).await.unwrap();
    let token = hub.token("alice");
    let head = format!(
        "POST /create-room HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'a'; 16 * 1024];
    for _ in 0..5 {
        let _ = stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await;
        let _ = stream.write_all(&chunk).await;
        let _ = stream.write_all(b"\r\n").await;
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut text = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut text)).await;
    let text = String::from_utf8_lossy(&text);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    // 100 KB of headers -> 431, never a crash.
    let mut stream = TcpStream::connect(hub.addr).await.unwrap();
    let big = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100_000)
    );
    let _ = stream.write_all(big.as_bytes()).await;
    let mut text = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut text)).await;
    assert!(String::from_utf8_lossy(&text).starts_with("HTTP/1.1 431"));
    assert!(hub.discord_calls("POST", "/").is_empty());
    hub.stop().await;
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let hub = TestHub::start().await;
    // Both wait for the real header read timeout, so they run side by side.
    let slow_head = async {
        let mut stream = TcpStream::connect(hub.addr).await.unwrap();
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        // Never finish the head: the server closes the connection at its header read timeout.
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut buf))
            .await
            .is_ok()
    };
    // An idle keep-alive connection after a first request is closed too: hyper restarts the
    // header read timer whenever it waits for the next request head.
    let idle_keep_alive = async {
        let mut stream = TcpStream::connect(hub.addr).await.unwrap();
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut buf))
            .await
            .is_ok();
        (
            closed,
            String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"),
        )
    };
    let (slow_closed, (idle_closed, answered)) = tokio::join!(slow_head, idle_keep_alive);
    assert!(slow_closed, "connection closed by the header read timeout");
    assert!(
        answered && idle_closed,
        "idle keep-alive connection answered, then closed"
    );
    hub.stop().await;
}

#[tokio::test]
async fn shutdown_closes_websockets_with_1001_and_keeps_rooms() {
    let mut hub = TestHub::start().await;
    let created = hub.create_room("alice", "{}").await;
    let id = created.json()["channelId"].as_str().unwrap().to_owned();
    let mut ws = connect_and_auth(&hub, "alice").await;
    let ack = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(ack.to_text().unwrap().contains("auth.ok"), "{ack:?}");

    let server = hub.server.take().unwrap();
    let started = std::time::Instant::now();
    let shutdown = tokio::spawn(server.shutdown());
    let code = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .expect("close frame in time");
    assert_eq!(code, Some(1001));
    tokio::time::timeout(Duration::from_secs(15), shutdown)
        .await
        .unwrap()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown within 10 s"
    );
    // State kept: a new server on the same DATA_DIR still knows the room and its owner.
    hub.restart().await;
    assert_eq!(hub.end_room("bob", &id).await.status, 403);
    hub.stop().await;
}

#[tokio::test]
async fn no_log_line_contains_a_secret() {
    let hub = TestHub::start().await;
    // Exercise the paths that log: Discord errors, bad webhooks, bad tokens, success.
    hub.sim
        .fail_rest(discord_sim::RestFault::ServerError { status: 500 }, 1)
        .await;
    let _ = hub.create_room("alice", "{}").await;
    let _ = hub.create_room("alice", "{}").await;
    let _ = hub.send(hub.webhook_request("{}", 0)).await;
    let req = hub
        .request(Method::POST, "/create-room")
        .header("authorization", "Bearer x.y.z")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let _ = hub.send(req).await;
    let logs = support::captured_logs();
    assert!(!logs.is_empty());
    for line in logs {
        assert!(
            !line.contains(discord_sim::DEFAULT_TOKEN),
            "bot token in a log line: {line}"
        );
        assert!(
            !line.contains(HUB_SECRET),
            "hub secret in a log line: {line}"
        );
    }
    hub.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_an_in_flight_request() {
    let mut hub = TestHub::start().await;
    hub.sim.set_rest_latency(Duration::from_millis(1500)).await;
    let req = hub
        .request(Method::POST, "/create-room")
        .header("authorization", format!("Bearer {}", hub.token("alice")))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let in_flight = tokio::spawn(client.request(req));
    // Wait until the request is being served (Discord has seen it), then shut down.
    assert!(
        support::wait_until(20, || !hub.sim.rest_log().is_empty()
            || in_flight.is_finished())
        .await
    );
    let server = hub.server.take().unwrap();
    server.shutdown().await;
    let res = in_flight.await.unwrap().expect("answered, not dropped");
    assert_eq!(res.status(), 200);
    // The room it created was recorded and persisted.
    hub.restart().await;
    let rooms = hub.server().app().rooms.rooms(hub.sim.guild_id()).await;
    assert_eq!(rooms.map(|r| r.len()).ok(), Some(1));
    hub.stop().await;
}

/// Invariant: a room in the registry is in every snapshot, even when the hub's saved stream
/// state was lost (a crash saves nothing; the registry is written before create-room answers).
#[tokio::test]
async fn rooms_survive_a_lost_stream_state() {
    let mut hub = TestHub::start().await;
    let created = hub.create_room("alice", r#"{"name":"after-crash"}"#).await;
    let id = created.json()["channelId"].as_str().unwrap().to_owned();
    hub.server.take().unwrap().shutdown().await;
    let guild = hub.sim.guild_id();
    std::fs::remove_file(hub.data_dir.path().join(format!("stream-{guild}.json")))
        .expect("the stream state was saved at shutdown");
    hub.restart().await;

    let mut ws = connect_and_auth(&hub, "bob").await;
    let mut snapshot = None;
    while snapshot.is_none() {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("ack and snapshot in time")
            .unwrap()
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        if v["type"] == "snapshot" {
            snapshot = Some(v);
        }
    }
    let rooms = &snapshot.unwrap()["payload"]["rooms"];
    assert_eq!(
        rooms
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["channelId"] == id.as_str())
            .map(|r| &r["name"]),
        Some(&serde_json::json!("after-crash")),
        "{rooms}"
    );
    hub.stop().await;
}

/// Opens `/ws` from the allowed origin and sends the auth message of `sub`.
async fn connect_and_auth(
    hub: &TestHub,
    sub: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
    let mut req = format!("ws://{}/ws", hub.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("origin", support::ORIGIN.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("ws connects");
    let auth = serde_json::json!({"type": "auth", "token": hub.token(sub)}).to_string();
    futures_util::SinkExt::send(&mut ws, Message::text(auth))
        .await
        .unwrap();
    ws
}
