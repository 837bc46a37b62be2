//! The JWKS URL source against a tiny local server (127.0.0.1:0) that can rotate keys,
//! fail, hang, send too much and count requests. Time for the cooldown and max-age rules
//! is passed in (`now`), so no test sleeps to let a rule expire.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt as _, Full, StreamBody};
use hub_core::auth::{
    JwksError, JwksOptions, JwtConfig, JwtError, JwtOptions, JwtVerifier, KeySource, TestIssuer,
};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Notify;

const ISS: &str = "https://app.example";
const AUD: &str = "spell-coven";
const NOW: i64 = 1_800_000_000;

#[derive(Clone)]
enum Reply {
    Jwks(String),
    Status(u16),
    /// Never answers.
    Hang,
    /// `n` bytes without a Content-Length (chunked).
    Chunked(usize),
    /// Waits for `release` before sending this JWKS.
    Gated(String),
}

struct Server {
    url: String,
    reply: Mutex<Reply>,
    hits: AtomicUsize,
    release: Notify,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Server {
    async fn start(reply: Reply) -> Arc<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let port = listener.local_addr().expect("addr").port();
        let server = Arc::new(Self {
            url: format!("http://127.0.0.1:{port}/.well-known/jwks.json"),
            reply: Mutex::new(reply),
            hits: AtomicUsize::new(0),
            release: Notify::new(),
            task: Mutex::new(None),
        });
        let shared = Arc::clone(&server);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let shared = Arc::clone(&shared);
                        async move { shared.answer(req).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        *server.task.lock().expect("lock") = Some(task);
        server
    }

    fn set(&self, reply: Reply) {
        *self.reply.lock().expect("lock") = reply;
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Stops accepting connections (the URL goes down).
    fn stop(&self) {
        if let Some(task) = self.task.lock().expect("lock").take() {
            task.abort();
        }
    }

    async fn answer(
        &self,
        _req: Request<Incoming>,
    ) -> Result<Response<http_body_util::combinators::BoxBody<Bytes, Infallible>>, Infallible> {
        self.hits.fetch_add(1, Ordering::SeqCst);
        let reply = self.reply.lock().expect("lock").clone();
        let full = |status: u16, body: String| {
            Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)).boxed())
                .expect("response")
        };
        Ok(match reply {
            Reply::Jwks(body) => full(200, body),
            Reply::Status(status) => full(status, "{}".into()),
            Reply::Hang => {
                std::future::pending::<()>().await;
                unreachable!()
            }
            Reply::Gated(body) => {
                self.release.notified().await;
                full(200, body)
            }
            Reply::Chunked(n) => {
                let chunks = (0..n.div_ceil(1024))
                    .map(|_| Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b' '; 1024]))));
                let body = StreamBody::new(futures_util::stream::iter(chunks));
                Response::builder()
                    .status(200)
                    .body(body.boxed())
                    .expect("response")
            }
        })
    }
}

fn claims(sub: &str) -> serde_json::Value {
    json!({ "iss": ISS, "aud": AUD, "sub": sub, "exp": NOW + 3600 })
}

fn verifier(url: &str, fetch_timeout: Duration) -> JwtVerifier {
    let cfg = JwtConfig {
        issuer: ISS.into(),
        audience: AUD.into(),
        keys: KeySource::Url(url.into()),
    };
    let options = JwtOptions {
        jwks: JwksOptions {
            fetch_timeout,
            ..JwksOptions::default()
        },
        ..JwtOptions::default()
    };
    JwtVerifier::with_options(cfg, options).expect("verifier")
}

/// Polls `cond` until it holds (up to 20 s): for background work on real sockets.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..400 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn loads_verifies_and_refetches_unknown_kid_once_per_cooldown() {
    let (old, new) = (TestIssuer::new("old"), TestIssuer::new("new"));
    let server = Server::start(Reply::Jwks(TestIssuer::jwks(&[&old]))).await;
    let v = verifier(&server.url, Duration::from_secs(10));
    v.load_at(NOW).await.expect("load");
    assert_eq!(server.hits(), 1);
    assert!(v.verify(&old.token(&claims("a")), NOW).await.is_ok());

    // An unknown kid right after the load: within the 30 s cooldown, no fetch.
    let stranger = TestIssuer::new("stranger");
    assert_eq!(
        v.verify(&stranger.token(&claims("a")), NOW + 5).await,
        Err(JwtError::UnknownKey)
    );
    assert_eq!(server.hits(), 1);

    // After the cooldown: one fetch, and then none again for a flood of unknown kids.
    assert_eq!(
        v.verify(&stranger.token(&claims("a")), NOW + 30).await,
        Err(JwtError::UnknownKey)
    );
    assert_eq!(server.hits(), 2);
    for i in 0..50 {
        let made_up = TestIssuer::new(&format!("made-up-{i}"));
        assert_eq!(
            v.verify(&made_up.token(&claims("a")), NOW + 31 + i / 10)
                .await,
            Err(JwtError::UnknownKey)
        );
    }
    assert_eq!(server.hits(), 2);

    // Rotation: the issuer publishes a new key; the first token with it triggers the refetch.
    server.set(Reply::Jwks(TestIssuer::jwks(&[&old, &new])));
    assert_eq!(
        v.verify(&new.token(&claims("b")), NOW + 60)
            .await
            .expect("rotated")
            .sub,
        "b"
    );
    assert_eq!(server.hits(), 3);
    assert!(v.verify(&old.token(&claims("c")), NOW + 61).await.is_ok());
    assert_eq!(server.hits(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_unknown_kids_share_one_fetch() {
    let (old, new) = (TestIssuer::new("old"), TestIssuer::new("new"));
    let server = Server::start(Reply::Jwks(TestIssuer::jwks(&[&old]))).await;
    let v = verifier(&server.url, Duration::from_secs(20));
    v.load_at(NOW).await.expect("load");
    server.set(Reply::Gated(TestIssuer::jwks(&[&old, &new])));

    let token = new.token(&claims("n"));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (v, token) = (v.clone(), token.clone());
        tasks.spawn(async move { v.verify(&token, NOW + 100).await });
    }
    eventually("the refetch to reach the server", || server.hits() == 2).await;
    // Give the other tasks a chance to queue behind the fetch in flight, then release it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.release.notify_waiters();
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result.expect("task").expect("verified").sub, "n");
    }
    assert_eq!(server.hits(), 2, "one load + one shared refetch");
}

#[tokio::test]
async fn keeps_the_last_good_keys_while_the_url_is_down() {
    let key = TestIssuer::new("k");
    let server = Server::start(Reply::Jwks(TestIssuer::jwks(&[&key]))).await;
    let v = verifier(&server.url, Duration::from_secs(10));
    v.load_at(NOW).await.expect("load");

    // 500s: stale keys (past the 10 min max age) are still served; the refresh fails quietly.
    server.set(Reply::Status(500));
    assert!(v.verify(&key.token(&claims("a")), NOW + 700).await.is_ok());
    eventually("the background refresh", || server.hits() == 2).await;
    eventually("the refresh error", || v.key_store().last_error().is_some()).await;
    assert_eq!(v.key_store().last_error(), Some(JwksError::Status(500)));
    assert!(v.verify(&key.token(&claims("b")), NOW + 701).await.is_ok());

    // A published document that is invalid (private key) does not replace good keys either.
    let mut leaked = key.jwk();
    leaked["d"] = json!("AAAA");
    server.set(Reply::Jwks(json!({ "keys": [leaked] }).to_string()));
    assert!(v.verify(&key.token(&claims("c")), NOW + 800).await.is_ok());
    eventually("the second refresh", || server.hits() == 3).await;
    eventually("the refresh error", || {
        v.key_store().last_error() == Some(JwksError::PrivateKey)
    })
    .await;

    // Connection refused: still served, including from the token cache and after it.
    server.stop();
    let stranger = TestIssuer::new("s");
    assert_eq!(
        v.verify(&stranger.token(&claims("d")), NOW + 900).await,
        Err(JwtError::UnknownKey)
    );
    assert!(matches!(
        v.key_store().last_error(),
        Some(JwksError::Fetch(_))
    ));
    assert!(v.verify(&key.token(&claims("e")), NOW + 901).await.is_ok());
}

#[tokio::test]
async fn max_age_refreshes_in_the_background() {
    let (old, new) = (TestIssuer::new("old"), TestIssuer::new("new"));
    let server = Server::start(Reply::Jwks(TestIssuer::jwks(&[&old]))).await;
    let v = verifier(&server.url, Duration::from_secs(10));
    v.load_at(NOW).await.expect("load");
    assert!(v.verify(&old.token(&claims("a")), NOW + 599).await.is_ok());
    assert_eq!(server.hits(), 1, "fresh keys are not refetched");

    // The issuer dropped the old key. After the max age the next request refreshes.
    server.set(Reply::Jwks(TestIssuer::jwks(&[&new])));
    let _ = v.verify(&old.token(&claims("b")), NOW + 600).await;
    eventually("the max-age refresh", || server.hits() == 2).await;
    eventually("the new key set", || {
        v.key_store()
            .current()
            .is_some_and(|k| k.keys()[0].kid() == Some("new"))
    })
    .await;
    // The removed key no longer verifies, not even through the token cache.
    assert_eq!(
        v.verify(&old.token(&claims("a")), NOW + 601).await,
        Err(JwtError::UnknownKey)
    );
    assert!(v.verify(&new.token(&claims("c")), NOW + 601).await.is_ok());
}

#[tokio::test]
async fn first_verify_without_load_fetches() {
    let key = TestIssuer::new("k");
    let server = Server::start(Reply::Status(503)).await;
    let v = verifier(&server.url, Duration::from_secs(10));
    assert_eq!(
        v.verify(&key.token(&claims("a")), NOW).await,
        Err(JwtError::KeysUnavailable)
    );
    server.set(Reply::Jwks(TestIssuer::jwks(&[&key])));
    // Cooldown applies to retries after an error too.
    assert_eq!(
        v.verify(&key.token(&claims("a")), NOW + 10).await,
        Err(JwtError::KeysUnavailable)
    );
    assert_eq!(server.hits(), 1);
    assert!(v.verify(&key.token(&claims("a")), NOW + 30).await.is_ok());
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn fetch_errors_are_typed() {
    let server = Server::start(Reply::Status(404)).await;
    let v = verifier(&server.url, Duration::from_secs(20));
    assert_eq!(v.load_at(NOW).await, Err(JwksError::Status(404)));
    server.set(Reply::Status(302));
    assert_eq!(v.load_at(NOW).await, Err(JwksError::Status(302)));
    server.set(Reply::Jwks(" ".repeat(64 * 1024 + 1)));
    assert_eq!(v.load_at(NOW).await, Err(JwksError::TooLarge));
    server.set(Reply::Chunked(70 * 1024));
    assert_eq!(v.load_at(NOW).await, Err(JwksError::TooLarge));
    server.set(Reply::Jwks("not json".into()));
    assert!(matches!(v.load_at(NOW).await, Err(JwksError::Invalid(_))));
    // The only case where real time must pass: a short timeout, asserted by kind only.
    server.set(Reply::Hang);
    let impatient = verifier(&server.url, Duration::from_millis(300));
    assert_eq!(impatient.load_at(NOW).await, Err(JwksError::Timeout));
    server.stop();
    assert!(matches!(v.load_at(NOW).await, Err(JwksError::Fetch(_))));
}

#[test]
fn urls_must_be_https_or_loopback_http() {
    let cfg = |url: &str| JwtConfig {
        issuer: ISS.into(),
        audience: AUD.into(),
        keys: KeySource::Url(url.into()),
    };
    for ok in [
        "https://issuer.example/.well-known/jwks.json",
        "http://127.0.0.1:8080/jwks",
        "http://127.9.9.9/jwks",
        "http://localhost:1/jwks",
        "http://[::1]:9/jwks",
    ] {
        assert!(JwtVerifier::new(cfg(ok)).is_ok(), "{ok}");
    }
    for bad in [
        "http://issuer.example/jwks",
        "http://10.0.0.1/jwks",
        "http://0.0.0.0/jwks",
        "http://localhost.evil.example/jwks",
        "ftp://issuer.example/jwks",
        "https://user:pass@issuer.example/jwks",
        "issuer.example/jwks",
        "",
        "https:///jwks",
    ] {
        assert!(
            matches!(JwtVerifier::new(cfg(bad)), Err(JwksError::InvalidUrl(_))),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn https_urls_go_through_tls() {
    // An https URL pointed at a plain-HTTP listener: the TLS handshake fails, so no request
    // is ever served in clear text.
    let server = Server::start(Reply::Jwks(TestIssuer::jwks(&[&TestIssuer::new("k")]))).await;
    let url = server.url.replace("http://", "https://");
    let v = verifier(&url, Duration::from_secs(20));
    assert!(matches!(v.load_at(NOW).await, Err(JwksError::Fetch(_))));
    assert_eq!(server.hits(), 0);
}
