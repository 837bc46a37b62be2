//! The demo's own small HTTP server: the dashboard's files, `GET /demo/config.json`
//! (hub URL and a fresh session token), `GET /demo/state` and the `POST /demo/...`
//! controls.
//!
//! It listens on 127.0.0.1 only. Because it hands out tokens and drives the sim, it answers
//! only requests whose `Host` is its own address (no DNS rebinding) and takes controls only
//! as `application/json` POSTs whose `Origin`, when present, is its own (another site's
//! page cannot send those without a CORS preflight, which this server never grants).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HOST, ORIGIN};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::controls;
use crate::keys::DEMO_USER;
use crate::stack::Stack;

/// Control bodies are a few fields; anything bigger is refused.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// What the request handlers share.
#[derive(Debug)]
pub(crate) struct DemoState {
    /// The running services.
    pub(crate) stack: Stack,
    /// `127.0.0.1:<port>` of this server (the only accepted `Host`).
    pub(crate) authority: String,
}

impl DemoState {
    fn origin(&self) -> String {
        format!("http://{}", self.authority)
    }
}

/// Serves until `stop` turns true, then aborts the open connections.
pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<DemoState>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "dashboard accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let state = Arc::clone(&state);
                conns.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(handle(req, &state).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.shutdown().await;
}

fn respond(status: u16, content_type: &str, body: Bytes) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(body));
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = content_type.parse() {
        res.headers_mut().insert(CONTENT_TYPE, v);
    }
    res.headers_mut().insert(
        CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    res
}

fn json_response(status: u16, body: &Value) -> Response<Full<Bytes>> {
    respond(status, "application/json", Bytes::from(body.to_string()))
}

fn message(status: u16, text: &str) -> Response<Full<Bytes>> {
    json_response(status, &json!({ "message": text }))
}

async fn handle(req: Request<Incoming>, state: &DemoState) -> Response<Full<Bytes>> {
    let host_ok = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h == state.authority);
    if !host_ok {
        return message(421, "unexpected host");
    }
    let path = req.uri().path().to_owned();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/demo/config.json") => {
            let hub = state.stack.hub_addr();
            json_response(
                200,
                &json!({
                    "hubUrl": format!("http://{hub}"),
                    "wsUrl": format!("ws://{hub}/ws"),
                    "guildId": state.stack.sim().guild_id().to_string(),
                    "user": DEMO_USER,
                    "token": state.stack.keys().mint(DEMO_USER),
                }),
            )
        }
        (&Method::GET, "/demo/state") => json_response(200, &controls::state(&state.stack)),
        (&Method::GET, "/favicon.ico") => respond(204, "text/plain", Bytes::new()),
        (&Method::GET, p) => match crate::assets::find(p) {
            Some(asset) => respond(
                200,
                asset.content_type,
                Bytes::from_static(asset.body.as_bytes()),
            ),
            None => message(404, "not found"),
        },
        (&Method::POST, p) if p.starts_with("/demo/") => {
            let action = p.trim_start_matches("/demo/").to_owned();
            post_control(req, state, &action).await
        }
        _ => message(405, "method not allowed"),
    }
}

async fn post_control(
    req: Request<Incoming>,
    state: &DemoState,
    action: &str,
) -> Response<Full<Bytes>> {
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let origin_ok = req
        .headers()
        .get(ORIGIN)
        .is_none_or(|o| o.to_str().is_ok_and(|o| o == state.origin()));
    if !is_json || !origin_ok {
        return message(403, "controls take a same-origin application/json post");
    }
    let body = match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(_) => return message(413, "body too large"),
    };
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => return message(400, "body is not json"),
        }
    };
    let (status, answer) = controls::run(&state.stack, action, &body).await;
    tracing::info!(action, status, "demo control");
    json_response(status, &answer)
}
