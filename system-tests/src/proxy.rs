//! A fault proxy for the worker -> hub webhook: forwards requests to the hub, except that
//! every `nth` request fails with `500`. Failures alternate between "never reached the hub"
//! and "the hub applied it, but the answer was lost" (the worker must retry and the hub must
//! not broadcast the retry twice).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::client::http_request;

/// Counters of what the proxy did.
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Requests received.
    pub requests: AtomicU64,
    /// Answered 500 without forwarding.
    pub failed_before: AtomicU64,
    /// Forwarded, then answered 500 anyway.
    pub failed_after: AtomicU64,
}

/// The proxy.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    /// What it did.
    pub stats: Arc<ProxyStats>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Forwards to `upstream` (`http://127.0.0.1:<port>`), failing every `nth` request.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start(upstream: String, nth: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stats = Arc::new(ProxyStats::default());
        let shared = Arc::clone(&stats);
        let upstream = Arc::new(upstream);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (stats, upstream) = (Arc::clone(&shared), Arc::clone(&upstream));
                tokio::spawn(async move {
                    let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let (stats, upstream) = (Arc::clone(&stats), Arc::clone(&upstream));
                        async move { Ok::<_, Infallible>(forward(req, &stats, &upstream, nth).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, stats, task }
    }

    /// The proxy's `/internal/events` URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}/internal/events", self.addr)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn status(code: u16, body: Bytes) -> http::Response<Full<Bytes>> {
    let mut res = http::Response::new(Full::new(body));
    *res.status_mut() = http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::BAD_GATEWAY);
    res
}

async fn forward(
    req: http::Request<hyper::body::Incoming>,
    stats: &ProxyStats,
    upstream: &str,
    nth: u64,
) -> http::Response<Full<Bytes>> {
    let n = stats.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let fail = nth > 0 && n % nth == 0;
    let fail_before = fail && (n / nth) % 2 == 1;
    if fail_before {
        stats.failed_before.fetch_add(1, Ordering::SeqCst);
        return status(500, Bytes::from_static(b"{\"message\":\"proxy fault\"}"));
    }
    let (parts, body) = req.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return status(502, Bytes::new());
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter(|(k, _)| *k != http::header::HOST)
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let url = format!("{upstream}{path}");
    match http_request(parts.method.as_str(), &url, &headers, body.to_vec()).await {
        Some(reply) if fail => {
            let _ = reply;
            stats.failed_after.fetch_add(1, Ordering::SeqCst);
            status(500, Bytes::from_static(b"{\"message\":\"proxy fault\"}"))
        }
        Some(reply) => status(reply.status, reply.body),
        None => status(502, Bytes::new()),
    }
}
