//! A tiny JWKS endpoint for `JWT_PUBLIC_JWK_URL`: serves whatever document (or status) the
//! test sets, and counts fetches.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

#[derive(Debug)]
struct State {
    status: u16,
    body: String,
}

/// A JWKS server on loopback.
#[derive(Debug)]
pub struct JwksServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    fetches: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl JwksServer {
    /// Serves `body` with 200.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start(body: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State { status: 200, body }));
        let fetches = Arc::new(AtomicU64::new(0));
        let (s, f) = (Arc::clone(&state), Arc::clone(&fetches));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (s, f) = (Arc::clone(&s), Arc::clone(&f));
                tokio::spawn(async move {
                    let service = service_fn(move |_req| {
                        f.fetch_add(1, Ordering::SeqCst);
                        let (status, body) = {
                            let st = s.lock().unwrap_or_else(PoisonError::into_inner);
                            (st.status, st.body.clone())
                        };
                        let mut res = http::Response::new(Full::new(Bytes::from(body)));
                        *res.status_mut() =
                            http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
                        res.headers_mut().insert(
                            http::header::CONTENT_TYPE,
                            http::HeaderValue::from_static("application/json"),
                        );
                        async move { Ok::<_, Infallible>(res) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            state,
            fetches,
            task,
        }
    }

    /// The URL to give the hub.
    pub fn url(&self) -> String {
        format!("http://{}/jwks.json", self.addr)
    }

    /// Answer `status` with `body` from now on.
    pub fn serve(&self, status: u16, body: String) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.status = status;
        st.body = body;
    }

    /// Requests served so far.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
