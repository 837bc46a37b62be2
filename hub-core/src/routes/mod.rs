//! The request handlers, one file per route, and [`App`]: everything they share.
//!
//! [`handle`] is the service of the public listener: it routes with [`crate::router::route`],
//! applies CORS to the browser routes and answers errors as `{"message": "..."}`.

mod bearer;
mod body;
mod create_room;
mod end_room;
mod health;
mod internal_events;
mod metrics;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use http::{Request, Response};
use hyper::body::Incoming;

use crate::auth::{JwtVerifier, WebhookVerifier};
use crate::cors::Cors;
use crate::discord::DiscordClient;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::response::{self, Body};
use crate::rooms::{CreateRateLimiter, Registry};
use crate::router::{self, Route};
use crate::ws::WsContext;

pub use body::MAX_BODY_BYTES;
pub(crate) use end_room::end_room;
pub use health::health;
pub use metrics::handle_metrics;

/// One idempotency key being served: later requests with the same key wait on it.
pub type InFlight = Arc<tokio::sync::Mutex<()>>;

/// Everything the handlers share. Built once by [`crate::server::start`].
pub struct App {
    /// `PRIMARY_GUILD_ID`: every request and event is pinned to it.
    pub guild_id: u64,
    /// `ROOM_PARENT_ID`: default category of new rooms.
    pub room_parent_id: Option<u64>,
    /// The event stream and presence.
    pub hub: Hub,
    /// Bearer JWT verification.
    pub jwt: JwtVerifier,
    /// Webhook signature verification.
    pub webhook: WebhookVerifier,
    /// Discord REST.
    pub discord: DiscordClient,
    /// The room registry and idempotency keys (a file, or Redis with `REDIS_URL`).
    pub rooms: Registry,
    /// `ROOM_CREATE_PER_MINUTE`.
    pub create_limiter: Mutex<CreateRateLimiter>,
    /// Idempotency keys being served right now: a second request with the same key waits
    /// for the first instead of calling Discord again.
    pub in_flight: Mutex<HashMap<(String, String), InFlight>>,
    /// The CORS allow-list.
    pub cors: Cors,
    /// What `/ws` needs.
    pub ws: Arc<WsContext>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("guild_id", &self.guild_id)
            .finish_non_exhaustive()
    }
}

impl App {
    pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The public listener's service: route, handle, add CORS headers where they apply.
pub async fn handle(req: Request<Incoming>, app: Arc<App>) -> Response<Body> {
    let path = req.uri().path();
    // CORS headers also go on errors of the browser routes, so the app can read them.
    let cors_path = path == "/create-room" || path.starts_with("/end-room/");
    let route = router::route(req.method(), path);
    let origin_headers = cors_path.then(|| req.headers().clone());
    let mut res = match route {
        Err(e) => response::error(&e.into()),
        Ok(Route::Ws) => crate::ws::upgrade(req, Arc::clone(&app.ws)),
        Ok(Route::Health) => health(&app).await,
        Ok(Route::Preflight) => return app.cors.preflight(req.headers()),
        Ok(Route::CreateRoom) => create_room::handle(req, &app).await,
        Ok(Route::EndRoom(id)) => end_room::handle(req, id, &app).await,
        Ok(Route::InternalEvents) => internal_events::handle(req, &app).await,
        Ok(_) => response::error(&crate::error::ApiError::NotFound("not found".into())),
    };
    if let Some(headers) = origin_headers {
        app.cors.apply(&headers, &mut res);
    }
    res
}
