//! `POST /internal/events` (contract §4): the worker's signed webhook.
//!
//! The body is read (64 KiB cap) and its HMAC checked BEFORE it is parsed: any signature or
//! timestamp failure is `403` and nothing is broadcast. Then `{"id"?, "event", "payload"}` is
//! parsed (400 if malformed) and handed to the hub, which drops replays (the MAC is the
//! replay key) and duplicate ids (`{"ok":true,"duplicate":true}`). A `room.deleted` for our
//! guild also removes the room from the registry. Every `200` carries [`STATE_ID`]. No CORS
//! headers on this route.

use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use serde::Deserialize;

use super::{App, body, now_ms};
use crate::config::parse_snowflake_str;
use crate::error::ApiError;
use crate::hub::{IncomingEvent, IngestError, IngestOutcome};
use crate::metrics::inc;
use crate::response::{self, Body};

#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    id: Option<String>,
    event: String,
    payload: serde_json::Value,
}

/// The single value of a header; `None` when absent or repeated (a repeated signature or
/// timestamp is ambiguous and therefore refused).
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(v), None) => Some(v.as_bytes()),
        _ => None,
    }
}

/// Handles `POST /internal/events`.
pub(crate) async fn handle<B>(req: Request<B>, app: &App) -> Response<Body>
where
    B: hyper::body::Body<Data = bytes::Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match run(req, app).await {
        Ok(duplicate) => {
            let body = if duplicate {
                serde_json::json!({ "ok": true, "duplicate": true })
            } else {
                serde_json::json!({ "ok": true })
            };
            let mut resp = response::json(StatusCode::OK, &body);
            if let Ok(id) = HeaderValue::from_str(&app.hub.state_id()) {
                resp.headers_mut().insert(STATE_ID, id);
            }
            resp
        }
        Err(e) => response::error(&e),
    }
}

/// Names the hub's state on every accepted delivery: when it changes, the hub may have lost
/// presence it had accepted (a restart after `kill -9`, Redis losing its data) and the
/// worker repairs it with a `guild.sync` (see [`crate::hub::Hub::state_id`]).
const STATE_ID: &str = "x-hub-state-id";

/// Returns whether the delivery was a duplicate.
async fn run<B>(req: Request<B>, app: &App) -> Result<bool, ApiError>
where
    B: hyper::body::Body<Data = bytes::Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    let bytes = body::read(&parts.headers, body).await?;
    let now = now_ms();
    let verified = app
        .webhook
        .verify(
            single(&parts.headers, "x-hub-timestamp"),
            single(&parts.headers, "x-hub-signature"),
            &bytes,
            now / 1000,
        )
        .map_err(|e| {
            inc(&app.metrics.webhook_rejected);
            tracing::warn!(reason = e.reason(), "webhook refused");
            ApiError::Forbidden(e.to_string())
        })?;
    let wire: Wire = serde_json::from_slice(&bytes).map_err(|_| {
        inc(&app.metrics.webhook_rejected);
        ApiError::BadRequest("body must be {\"id\"?, \"event\", \"payload\"}".into())
    })?;
    let room_deleted = (wire.event == "room.deleted")
        .then(|| deleted_channel(&wire.payload, app.guild_id))
        .flatten();
    let event = IncomingEvent {
        id: wire.id,
        event: wire.event,
        payload: wire.payload,
    };
    let outcome = app
        .hub
        .ingest_webhook(verified.mac, verified.timestamp, event, now)
        .await
        .map_err(|e| match e {
            IngestError::Unavailable => ApiError::Unavailable {
                message: "event backend unavailable".into(),
                retry_after: Some(std::time::Duration::from_secs(1)),
            },
            other => ApiError::BadRequest(other.to_string()),
        })?;
    if let Some(channel_id) = room_deleted {
        // Deleted in Discord (by anyone): the room no longer exists to be ended or swept.
        match app.rooms.remove(app.guild_id, channel_id).await {
            Ok(Some(_)) => inc(&app.metrics.rooms_deleted),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, channel_id, "could not remove a deleted room from the registry");
            }
        }
    }
    Ok(matches!(outcome, IngestOutcome::Duplicate))
}

/// The channel of a `room.deleted` payload for our guild.
fn deleted_channel(payload: &serde_json::Value, guild_id: u64) -> Option<u64> {
    let guild = payload
        .get("guildId")?
        .as_str()
        .and_then(parse_snowflake_str)?;
    let channel = payload
        .get("channelId")?
        .as_str()
        .and_then(parse_snowflake_str)?;
    (guild == guild_id).then_some(channel)
}
