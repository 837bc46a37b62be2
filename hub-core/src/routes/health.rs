//! `GET /health` (contract §2): `200 ok` (text/plain) while the hub can serve; `503` with
//! `{"message"}` naming what is down: the event backend (`Hub::health`) or the room
//! registry (its last write failed).

use http::{Response, StatusCode};

use super::App;
use crate::error::ApiError;
use crate::response::{self, Body};

/// Answers `/health`.
pub async fn health(app: &App) -> Response<Body> {
    let hub = app.hub.health().await;
    match hub.and_then(|()| app.rooms.health()) {
        Ok(()) => response::text(StatusCode::OK, "ok", "text/plain; charset=utf-8"),
        Err(what) => response::error(&ApiError::Unavailable {
            message: what,
            retry_after: None,
        }),
    }
}
