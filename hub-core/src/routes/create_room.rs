//! `POST /create-room` (contract §2).
//!
//! Order: bearer JWT (401) -> body (413/400) -> idempotency replay -> per-user rate limit
//! (429) -> Discord `POST /guilds/{guild}/channels` (type 2, audit reason) -> record the room
//! and its creator in the registry -> remember the idempotency key -> publish
//! `room.created` -> `200 {"channelId","name","guildId"}`.

use std::sync::Arc;
use std::time::Instant;

use http::{Request, Response, StatusCode};
use serde_json::Value;

use super::{App, bearer, body, now_ms};
use crate::config::parse_snowflake_str;
use crate::discord::{CreateChannel, audit_reason};
use crate::error::ApiError;
use crate::hub::IncomingEvent;
use crate::metrics::inc;
use crate::response::{self, Body};
use crate::rooms::{CreatedRoom, IDEMPOTENCY_TTL_MS, KeyState, Room};

/// Discord's channel name limit: 1–100 characters (`developers/resources/guild.mdx`,
/// "Create Guild Channel"). Longer names are cut, counting characters, not bytes.
pub(crate) const MAX_NAME_CHARS: usize = 100;
/// Longest `X-Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// A validated request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CreateRoomRequest {
    pub(crate) name: Option<String>,
    pub(crate) parent_id: Option<u64>,
    pub(crate) user_limit: Option<u8>,
}

/// Validates `{"parentId"?: string, "name"?: string, "userLimit"?: 0..99}`. An empty body
/// means `{}`; unknown fields are ignored; `null` means absent.
pub(crate) fn parse_request(bytes: &[u8]) -> Result<CreateRoomRequest, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(CreateRoomRequest {
            name: None,
            parent_id: None,
            user_limit: None,
        });
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|_| ApiError::BadRequest("body must be a json object".into()))?;
    let Value::Object(obj) = value else {
        return Err(ApiError::BadRequest("body must be a json object".into()));
    };
    let name = match obj.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.chars().take(MAX_NAME_CHARS).collect()),
        Some(_) => return Err(ApiError::BadRequest("name must be a string".into())),
    };
    let parent_id = match obj.get("parentId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(parse_snowflake_str(s).ok_or_else(|| {
            ApiError::BadRequest("parentId must be a Discord snowflake string (digits only)".into())
        })?),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "parentId must be a Discord snowflake string (digits only)".into(),
            ));
        }
    };
    let user_limit = match obj.get("userLimit") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| *n <= 99)
                .and_then(|n| u8::try_from(n).ok())
                .ok_or_else(|| {
                    ApiError::BadRequest("userLimit must be an integer from 0 to 99".into())
                })?,
        ),
    };
    Ok(CreateRoomRequest {
        name,
        parent_id,
        user_limit,
    })
}

/// `spell-coven-<8 random lowercase letters and digits>`.
fn default_name() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let suffix: String = (0..8)
        .map(|_| char::from(ALPHABET[fastrand::usize(..ALPHABET.len())]))
        .collect();
    format!("spell-coven-{suffix}")
}

/// The `X-Idempotency-Key` header: 1–255 visible ASCII characters, at most one header.
fn idempotency_key(req: &Request<impl Sized>) -> Result<Option<String>, ApiError> {
    let mut values = req.headers().get_all("x-idempotency-key").iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let bad = || {
        ApiError::BadRequest("x-idempotency-key must be 1 to 255 visible ascii characters".into())
    };
    if values.next().is_some() {
        return Err(bad());
    }
    let key = value.to_str().map_err(|_| bad())?;
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(bad());
    }
    Ok(Some(key.to_owned()))
}

fn created(answer: &CreatedRoom) -> Response<Body> {
    response::json(
        StatusCode::OK,
        &serde_json::to_value(answer).unwrap_or_default(),
    )
}

/// Handles `POST /create-room`.
pub(crate) async fn handle<B>(req: Request<B>, app: &Arc<App>) -> Response<Body>
where
    B: hyper::body::Body<Data = bytes::Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match run(req, app).await {
        Ok(answer) => created(&answer),
        Err(e) => response::error(&e),
    }
}

async fn run<B>(req: Request<B>, app: &Arc<App>) -> Result<CreatedRoom, ApiError>
where
    B: hyper::body::Body<Data = bytes::Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    body::check_length(req.headers())?;
    let claims = bearer::authenticate(req.headers(), &app.jwt, now_ms() / 1000).await?;
    let key = idempotency_key(&req)?;
    let (parts, body) = req.into_parts();
    let bytes = body::read(&parts.headers, body).await?;
    let request = parse_request(&bytes)?;
    let sub = claims.sub;
    // From here on the work runs on its own task: if the client goes away (or the request
    // deadline passes) after Discord created the channel, the room is still recorded, so
    // it can be ended or swept instead of being orphaned.
    let app = Arc::clone(app);
    tokio::spawn(async move { create_once(&app, sub, key, request).await })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "create-room task failed");
            ApiError::Internal
        })?
}

/// [`create`], at most once per idempotency key: concurrent requests with the same key
/// queue on the key's slot, later ones get the stored answer and Discord is called once.
async fn create_once(
    app: &App,
    sub: String,
    key: Option<String>,
    request: CreateRoomRequest,
) -> Result<CreatedRoom, ApiError> {
    let Some(key) = key else {
        return create(app, &sub, request).await;
    };
    let slot = {
        let mut in_flight = App::lock(&app.in_flight);
        Arc::clone(in_flight.entry((sub.clone(), key.clone())).or_default())
    };
    let result = {
        let _guard = slot.lock().await;
        serve_key(app, &sub, &key, request).await
    };
    let mut in_flight = App::lock(&app.in_flight);
    // Only the map and this request hold the slot: nobody else waits, drop it.
    if Arc::strong_count(&slot) <= 2 {
        in_flight.remove(&(sub, key));
    }
    result
}

/// The stored answer of `key`, or [`create`] once and store its answer. With Redis the key
/// is also claimed across replicas, so a request racing on another replica waits for the
/// answer instead of creating a second room.
async fn serve_key(
    app: &App,
    sub: &str,
    key: &str,
    request: CreateRoomRequest,
) -> Result<CreatedRoom, ApiError> {
    let unavailable = super::end_room::registry_unavailable;
    let deadline = tokio::time::Instant::now() + KEY_WAIT;
    loop {
        let state = app
            .rooms
            .answer_or_claim(app.guild_id, sub, key, now_ms())
            .await;
        match state.map_err(unavailable)? {
            KeyState::Answered(answer) => return Ok(answer),
            KeyState::Claimed => break,
            KeyState::Busy => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::Unavailable {
                message: "a request with this idempotency key is still in progress".into(),
                retry_after: Some(std::time::Duration::from_secs(1)),
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let result = create(app, sub, request).await;
    if let Ok(answer) = &result {
        let now = now_ms();
        let expires = now.saturating_add(IDEMPOTENCY_TTL_MS);
        let stored = app
            .rooms
            .remember(app.guild_id, sub, key, answer.clone(), expires, now)
            .await;
        if let Err(e) = stored {
            tracing::error!(error = %e, "could not store an idempotency key");
        }
    }
    // Only now that the answer is stored: whoever claims the key next reads it instead.
    app.rooms.release_key(app.guild_id, sub, key).await;
    result
}

/// How long a request waits for another replica's request with the same idempotency key.
const KEY_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// Rate limit, Discord, registry, event.
async fn create(app: &App, sub: &str, request: CreateRoomRequest) -> Result<CreatedRoom, ApiError> {
    App::lock(&app.create_limiter)
        .check(sub, Instant::now())
        .map_err(ApiError::RateLimited)?;
    // With Redis: do not create a channel that could not be recorded (nobody could end it).
    if app.hub.redis().is_some() {
        if let Err(what) = app.hub.health().await {
            return Err(ApiError::Unavailable {
                message: what,
                retry_after: Some(std::time::Duration::from_secs(1)),
            });
        }
    }
    let channel = CreateChannel {
        name: request.name.unwrap_or_else(default_name),
        user_limit: request.user_limit,
        parent_id: request.parent_id.or(app.room_parent_id),
    };
    let created = app
        .discord
        .create_voice_channel(app.guild_id, &channel, audit_reason("room created", sub))
        .await?;
    let now = now_ms();
    let room = Room {
        owner: sub.to_owned(),
        name: created.name.clone(),
        created_at: now,
        last_nonempty: now,
    };
    // The room is recorded (durably) before anyone hears of it: ownership must survive a
    // restart, or nobody could end it.
    if let Err(e) = app.rooms.insert(app.guild_id, created.id, room).await {
        tracing::error!(error = %e, channel_id = created.id, "could not record a new room; deleting it again");
        let _ = app
            .discord
            .delete_channel(created.id, audit_reason("room not recorded", sub))
            .await;
        return Err(ApiError::Unavailable {
            message: "could not record the room; try again".into(),
            retry_after: None,
        });
    }
    inc(&app.metrics.rooms_created);
    let answer = CreatedRoom {
        channel_id: created.id,
        name: created.name,
        guild_id: app.guild_id,
    };
    let event = IncomingEvent {
        id: None,
        event: "room.created".into(),
        payload: serde_json::json!({
            "guildId": app.guild_id.to_string(),
            "channelId": answer.channel_id.to_string(),
            "name": answer.name,
        }),
    };
    if let Err(e) = app.hub.publish(event, now_ms()).await {
        tracing::warn!(error = %e, "could not publish room.created");
    }
    tracing::info!(channel_id = answer.channel_id, "room created");
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_the_body() {
        let ok = |s: &str| parse_request(s.as_bytes()).unwrap();
        let bad = |s: &str| parse_request(s.as_bytes()).unwrap_err().status();
        assert_eq!(
            ok(""),
            CreateRoomRequest {
                name: None,
                parent_id: None,
                user_limit: None
            }
        );
        assert_eq!(ok("{}").name, None);
        assert_eq!(ok(r#"{"userLimit":0}"#).user_limit, Some(0));
        assert_eq!(ok(r#"{"userLimit":99}"#).user_limit, Some(99));
        assert_eq!(ok(r#"{"parentId":"123"}"#).parent_id, Some(123));
        assert_eq!(ok(r#"{"name":"  "}"#).name, None);
        assert_eq!(ok(r#"{"other":1}"#).name, None);
        let long = format!(r#"{{"name":"{}"}}"#, "é".repeat(150));
        assert_eq!(ok(&long).name.unwrap().chars().count(), 100);
        for body in [
            "[]",
            "nope",
            r#"{"userLimit":100}"#,
            r#"{"userLimit":-1}"#,
            r#"{"userLimit":1.5}"#,
            r#"{"userLimit":"5"}"#,
            r#"{"name":5}"#,
            r#"{"parentId":123}"#,
            r#"{"parentId":"12a"}"#,
        ] {
            assert_eq!(bad(body), 400, "{body}");
        }
    }

    #[test]
    fn default_names() {
        let n = default_name();
        assert!(n.starts_with("spell-coven-") && n.len() == 20);
        assert_ne!(default_name(), default_name());
    }
}
