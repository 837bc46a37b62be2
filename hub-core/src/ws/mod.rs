//! The `/ws` WebSocket protocol (contract §3).
//!
//! [`upgrade`] handles `GET /ws` fully: the `Origin` check (403), RFC 6455 upgrade
//! validation (405/426/400), the 101 response, and it spawns the connection task, which:
//! 1. waits for `{"type":"auth","token":..,"since"?:n}` (close 4408 after
//!    [`WsSettings::auth_timeout`], 4401 for an invalid token or a first message that is not
//!    an auth message);
//! 2. sends the ack, then the replayed events after `since` or one snapshot, then live events;
//! 3. answers pings at any time (before auth too), pings idle clients every
//!    [`WsSettings::ping_interval`] and closes (1001) one silent for a whole interval;
//! 4. after auth ignores every client message (unknown types, a second auth);
//! 5. closes with 1013 when its queue overflows, 1001 on shutdown, 1002/1007/1009 on
//!    protocol errors / invalid UTF-8 / messages over 4 KiB, 1011 when the stream backend
//!    or the JWT keys are unavailable.
//!
//! Memory: tungstenite is configured with small buffers ([`websocket_config`]); an idle
//! authenticated connection holds its task, the read buffer and an empty queue.

mod close;
mod handshake;
mod message;
mod session;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::auth::JwtVerifier;
use crate::hub::Hub;
use crate::metrics::Metrics;

pub use close::{
    AUTH_TIMEOUT, GOING_AWAY, INTERNAL_ERROR, INVALID_PAYLOAD, MESSAGE_TOO_BIG, PROTOCOL_ERROR,
    TRY_AGAIN_LATER, UNAUTHORIZED, close_for_error,
};
pub use handshake::{Refusal, accept_key, check_origin, switching_protocols};
pub use message::{AuthMessage, parse_auth};

/// Largest client message, counted across fragments (contract §3.6: over 4 KiB -> 1009).
pub const MAX_CLIENT_MESSAGE: usize = 4096;

/// Timing of a WebSocket session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsSettings {
    /// Time allowed for a valid auth message (contract §3.1: 10 s).
    pub auth_timeout: Duration,
    /// Idle sockets are pinged this often; one that sent nothing for a whole interval after
    /// a ping is closed.
    pub ping_interval: Duration,
    /// Longest a single write (one batch of events, the preamble, a ping) may take. A client
    /// that reads nothing and gets no new events to be evicted by is dropped after it.
    pub write_timeout: Duration,
    /// Time allowed to deliver a close frame before the socket is dropped. Generous on
    /// purpose: an evicted client (1013) gets its close frame only after it has read what the
    /// kernel already buffered for it, so one that resumes reading within this time still
    /// learns why it was closed. Shutdown does not wait for it (see `Hub::shutdown`).
    pub close_timeout: Duration,
}

impl Default for WsSettings {
    fn default() -> Self {
        Self {
            auth_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(30),
            write_timeout: Duration::from_secs(60),
            close_timeout: Duration::from_secs(30),
        }
    }
}

/// What a WebSocket session needs. Build it with [`WsContext::new`].
#[derive(Debug)]
pub struct WsContext {
    /// The guild stream.
    pub hub: Hub,
    /// Verifies the token of the auth message.
    pub jwt: JwtVerifier,
    /// `CORS_ORIGINS`: allowed `Origin` values (empty: any).
    pub allowed_origins: Vec<String>,
    /// Metrics (connections, auth results).
    pub metrics: Arc<Metrics>,
    /// Timeouts (defaults: the contract's).
    pub settings: WsSettings,
}

impl WsContext {
    /// A context with the default [`WsSettings`].
    pub fn new(
        hub: Hub,
        jwt: JwtVerifier,
        allowed_origins: Vec<String>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            hub,
            jwt,
            allowed_origins,
            metrics,
            settings: WsSettings::default(),
        }
    }
}

/// The tungstenite configuration of every hub socket: small buffers for a small idle
/// footprint, a bounded write buffer, 4 KiB client messages (also across fragments), and
/// unmasked client frames refused (RFC 6455 §5.1).
///
/// tungstenite's output buffer never shrinks: it keeps the capacity of the largest batch
/// (about `write_buffer_size` plus one frame, or the snapshot if larger). A 1 KiB write
/// threshold keeps that small while still batching several events per write.
pub fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(1024)
        .max_write_buffer_size(4 << 20)
        .max_message_size(Some(MAX_CLIENT_MESSAGE))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE))
        .accept_unmasked_frames(false)
}

/// Handles `GET /ws` fully: `Origin` check (403), upgrade validation (405/426/400), the 101
/// response, and spawns the connection task. The router just calls this (inside a tokio
/// runtime, on a connection served with `with_upgrades()`).
pub fn upgrade<B>(mut req: Request<B>, ctx: Arc<WsContext>) -> Response<Full<Bytes>> {
    if let Err(refusal) = check_origin(req.headers(), &ctx.allowed_origins) {
        return refusal.response();
    }
    let accept = match accept_key(req.method(), req.headers()) {
        Ok(accept) => accept,
        Err(refusal) => return refusal.response(),
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    drop(req);
    let guard = ctx.hub.session_started();
    tokio::spawn(session::run(on_upgrade, ctx, guard));
    switching_protocols(&accept)
}
