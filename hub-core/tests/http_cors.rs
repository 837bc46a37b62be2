//! Contract §2 CORS: exact echo, `Vary: Origin`, preflight, none on /internal/events.

mod support;

use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use support::{ORIGIN, TestHub};

#[tokio::test]
async fn cors_echoes_allowed_origins_only() {
    let hub = TestHub::start().await;
    let preflight = |origin: &'static str, path: &'static str| {
        let req = hub
            .request(Method::OPTIONS, path)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type, x-idempotency-key",
            )
            .body(Full::new(Bytes::new()))
            .unwrap();
        hub.send(req)
    };
    for path in ["/create-room", "/end-room/123"] {
        let res = preflight(ORIGIN, path).await;
        assert_eq!(res.status, 204);
        assert_eq!(res.header("access-control-allow-origin"), Some(ORIGIN));
        assert_eq!(res.header("vary"), Some("Origin"));
        assert_eq!(
            res.header("access-control-allow-methods"),
            Some("POST, DELETE")
        );
        let allowed = res
            .header("access-control-allow-headers")
            .unwrap()
            .to_ascii_lowercase();
        for h in ["authorization", "content-type", "x-idempotency-key"] {
            assert!(allowed.contains(h), "{allowed}");
        }
        let res = preflight("https://evil.example", path).await;
        assert!(res.header("access-control-allow-origin").is_none());
        assert_eq!(res.header("vary"), Some("Origin"));
    }
    // Actual requests: allowed origin echoed (also on errors), others not.
    for (origin, echoed) in [
        (ORIGIN, true),
        ("https://evil.example", false),
        ("null", false),
    ] {
        let req = hub
            .request(Method::POST, "/create-room")
            .header("origin", origin)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let res = hub.send(req).await;
        assert_eq!(res.status, 401);
        assert_eq!(res.header("vary"), Some("Origin"));
        assert_eq!(
            res.header("access-control-allow-origin").is_some(),
            echoed,
            "{origin}"
        );
        if echoed {
            assert_eq!(res.header("access-control-allow-origin"), Some(origin));
        }
    }
    let ok = hub
        .request(Method::POST, "/create-room")
        .header("origin", ORIGIN)
        .header("authorization", format!("Bearer {}", hub.token("alice")))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = hub.send(ok).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("access-control-allow-origin"), Some(ORIGIN));
    // The webhook route never has CORS headers.
    let req = hub
        .request(Method::POST, "/internal/events")
        .header("origin", ORIGIN)
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let res = hub.send(req).await;
    assert_eq!(res.status, 403);
    assert!(res.header("access-control-allow-origin").is_none());
    assert!(res.header("vary").is_none());
    let req = hub
        .request(Method::OPTIONS, "/internal/events")
        .header("origin", ORIGIN)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = hub.send(req).await;
    assert!(res.header("access-control-allow-origin").is_none());
    hub.stop().await;
}
