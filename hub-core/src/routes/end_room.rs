//! `DELETE /end-room/{channelId}` (contract §2).
//!
//! The registry is consulted first: a channel this hub did not create -> 404 and a room of
//! another user -> 403, in both cases without calling Discord. Then Discord
//! `DELETE /channels/{id}` (URL from the parsed integer); success or "Unknown Channel"
//! (10003, already gone) removes the room and publishes `room.deleted`.

use http::{Request, Response, StatusCode};

use super::{App, bearer, now_ms};
use crate::discord::{DiscordError, audit_reason};
use crate::error::ApiError;
use crate::hub::IncomingEvent;
use crate::metrics::inc;
use crate::response::{self, Body};

/// Handles `DELETE /end-room/{channel_id}`.
pub(crate) async fn handle<B>(req: Request<B>, channel_id: u64, app: &App) -> Response<Body> {
    match run(&req, channel_id, app).await {
        Ok(()) => response::json(StatusCode::OK, &serde_json::json!({ "ok": true })),
        Err(e) => response::error(&e),
    }
}

async fn run<B>(req: &Request<B>, channel_id: u64, app: &App) -> Result<(), ApiError> {
    let claims = bearer::authenticate(req.headers(), &app.jwt, now_ms() / 1000).await?;
    let Some(room) = app
        .rooms
        .get(app.guild_id, channel_id)
        .await
        .map_err(registry_unavailable)?
    else {
        return Err(ApiError::NotFound("unknown room".into()));
    };
    if room.owner != claims.sub {
        return Err(ApiError::Forbidden(
            "only the user who created this room can end it".into(),
        ));
    }
    end_room(app, channel_id, audit_reason("room ended", &claims.sub)).await
}

/// Deletes a registered room on Discord, forgets it and publishes `room.deleted`
/// (shared with the idle sweeper).
pub(crate) async fn end_room(
    app: &App,
    channel_id: u64,
    reason: http::HeaderValue,
) -> Result<(), ApiError> {
    match app.discord.delete_channel(channel_id, reason).await {
        Ok(()) | Err(DiscordError::UnknownChannel) => {}
        Err(e) => return Err(e.into()),
    }
    if let Err(e) = app.rooms.remove(app.guild_id, channel_id).await {
        // The channel is gone; a later end-room finds Discord's 10003 and retries the removal.
        tracing::error!(error = %e, channel_id, "could not remove an ended room from the registry");
    }
    inc(&app.metrics.rooms_deleted);
    let event = IncomingEvent {
        id: None,
        event: "room.deleted".into(),
        payload: serde_json::json!({
            "guildId": app.guild_id.to_string(),
            "channelId": channel_id.to_string(),
        }),
    };
    if let Err(e) = app.hub.publish(event, now_ms()).await {
        tracing::warn!(error = %e, "could not publish room.deleted");
    }
    tracing::info!(channel_id, "room ended");
    Ok(())
}

/// The registry (Redis) cannot be reached: 503, try again.
pub(crate) fn registry_unavailable(e: crate::rooms::StoreError) -> ApiError {
    tracing::warn!(error = %e, "room registry unavailable");
    ApiError::Unavailable {
        message: "room registry unavailable".into(),
        retry_after: Some(std::time::Duration::from_secs(1)),
    }
}
