//! The control endpoint: the [`Sim`] API over HTTP, for the demo and for tests in
//! other processes. It is not part of the Discord surface and lives on its own port.
//!
//! | request | body | effect |
//! |---|---|---|
//! | `GET /control/state` | | channels, voice states, sessions, connections, counts, URLs |
//! | `GET /control/received` | | every gateway payload clients sent |
//! | `GET /control/rest-log` | | every REST call |
//! | `POST /control/join` | `{user_id, channel_id}` | user joins (or moves) |
//! | `POST /control/move` | `{user_id, channel_id}` | user in voice moves |
//! | `POST /control/leave` | `{user_id}` | user leaves voice |
//! | `POST /control/voice-flags` | `{user_id, mute?, deaf?, self_mute?, self_deaf?, self_stream?, self_video?}` | flags change |
//! | `POST /control/create-channel` | `{name, type?, parent_id?, user_limit?}` | CHANNEL_CREATE |
//! | `POST /control/delete-channel` | `{channel_id}` | CHANNEL_DELETE + occupants leave |
//! | `POST /control/reconnect` | | op 7 to every connection |
//! | `POST /control/invalid-session` | `{resumable}` | op 9 to every connection |
//! | `POST /control/reconnect-before-hello` | `{count}` | the next `count` connections get op 7 instead of HELLO |
//! | `POST /control/heartbeat-request` | | op 1 to every connection |
//! | `POST /control/heartbeat-ack` | `{enabled}` | ACKs on/off |
//! | `POST /control/close` | `{code, reason?}` | close every connection |
//! | `POST /control/drop` | | drop every TCP connection, no close frame |
//! | `POST /control/rest-fault` | `{fault: {kind: "rate_limited", retry_after, global} or {kind: "server_error", status}, count}` | next `count` REST calls fail |
//! | `POST /control/latency` | `{gateway_ms?, rest_ms?}` | added latency |
//! | `POST /control/clear-faults` | | all faults off |
//!
//! Ids may be JSON strings or numbers. Answers are JSON; errors are `{"message"}` with 400
//! (bad request or refused action) or 404 (unknown path).

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{Map, Value, json};

use crate::config::channel_type;
use crate::faults::RestFault;
use crate::http_util::{Body, json_response, read_body};
use crate::introspect::VoiceFlags;
use crate::sim::Sim;

type Obj = Map<String, Value>;

fn bad(message: impl Into<String>) -> Response<Body> {
    json_response(StatusCode::BAD_REQUEST, &json!({"message": message.into()}))
}

fn ok(extra: Value) -> Response<Body> {
    let mut v = json!({"ok": true});
    if let (Some(dst), Value::Object(src)) = (v.as_object_mut(), extra) {
        dst.extend(src);
    }
    json_response(StatusCode::OK, &v)
}

fn id(obj: &Obj, field: &str) -> Result<u64, String> {
    match obj.get(field) {
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| format!("{field} must be a snowflake")),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| format!("{field} must be a snowflake")),
        None => Err(format!("{field} is required")),
    }
}

fn opt_id(obj: &Obj, field: &str) -> Result<Option<u64>, String> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => id(obj, field).map(Some),
    }
}

fn flag(obj: &Obj, field: &str) -> Result<bool, String> {
    obj.get(field)
        .and_then(Value::as_bool)
        .ok_or_else(|| format!("{field} must be true or false"))
}

/// Answers one control request.
pub(crate) async fn handle(sim: Arc<Sim>, req: http::Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().trim_end_matches('/').to_owned();
    let Some(action) = path.strip_prefix("/control/") else {
        return json_response(StatusCode::NOT_FOUND, &json!({"message": "not found"}));
    };
    let action = action.to_owned();
    if parts.method == Method::GET {
        return match action.as_str() {
            "state" => json_response(StatusCode::OK, &state(&sim)),
            "received" => json_response(StatusCode::OK, &json!(sim.received())),
            "rest-log" => json_response(StatusCode::OK, &json!(sim.rest_log())),
            _ => json_response(StatusCode::NOT_FOUND, &json!({"message": "not found"})),
        };
    }
    if parts.method != Method::POST {
        return json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"message": "use GET or POST"}),
        );
    }
    let obj: Obj = match read_body(body).await {
        Some(b) if b.is_empty() => Map::new(),
        Some(b) => match serde_json::from_slice::<Value>(&b) {
            Ok(Value::Object(o)) => o,
            _ => return bad("body must be a JSON object"),
        },
        None => return bad("body unreadable or too large"),
    };
    match post(&sim, &action, &obj).await {
        Ok(resp) => resp,
        Err(message) => bad(message),
    }
}

async fn post(sim: &Sim, action: &str, obj: &Obj) -> Result<Response<Body>, String> {
    let err = |e: crate::ControlError| e.to_string();
    Ok(match action {
        "join" => {
            let vs = sim
                .join(id(obj, "user_id")?, id(obj, "channel_id")?)
                .await
                .map_err(err)?;
            ok(json!({"voice_state": vs}))
        }
        "move" => {
            let vs = sim
                .move_user(id(obj, "user_id")?, id(obj, "channel_id")?)
                .await
                .map_err(err)?;
            ok(json!({"voice_state": vs}))
        }
        "leave" => {
            let vs = sim.leave(id(obj, "user_id")?).await.map_err(err)?;
            ok(json!({"voice_state": vs}))
        }
        "voice-flags" => {
            let user = id(obj, "user_id")?;
            let mut rest = obj.clone();
            rest.remove("user_id");
            let flags: VoiceFlags = serde_json::from_value(Value::Object(rest))
                .map_err(|e| format!("bad flags: {e}"))?;
            let vs = sim.set_voice_flags(user, flags).await.map_err(err)?;
            ok(json!({"voice_state": vs}))
        }
        "create-channel" => {
            let name = obj
                .get("name")
                .and_then(Value::as_str)
                .ok_or("name is required")?;
            let kind = match obj.get("type") {
                None => channel_type::GUILD_VOICE,
                Some(v) => v
                    .as_u64()
                    .and_then(|n| u8::try_from(n).ok())
                    .ok_or("type must be a channel type number")?,
            };
            let limit = match obj.get("user_limit") {
                None => 0,
                Some(v) => v
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or("user_limit must be a number")?,
            };
            let c = sim
                .create_channel(name, kind, opt_id(obj, "parent_id")?, limit)
                .await
                .map_err(err)?;
            ok(json!({"channel": c}))
        }
        "delete-channel" => {
            let c = sim
                .delete_channel(id(obj, "channel_id")?)
                .await
                .map_err(err)?;
            ok(json!({"channel": c}))
        }
        "reconnect" => ok(json!({"connections": sim.send_reconnect().await})),
        "invalid-session" => {
            let n = sim.send_invalid_session(flag(obj, "resumable")?).await;
            ok(json!({"connections": n}))
        }
        "reconnect-before-hello" => {
            let count = obj
                .get("count")
                .and_then(Value::as_u64)
                .and_then(|c| u32::try_from(c).ok())
                .ok_or("count must be a number")?;
            sim.reconnect_before_hello(count).await;
            ok(json!({}))
        }
        "heartbeat-request" => ok(json!({"connections": sim.request_heartbeat().await})),
        "heartbeat-ack" => {
            sim.set_heartbeat_ack(flag(obj, "enabled")?).await;
            ok(json!({}))
        }
        "close" => {
            let code = obj
                .get("code")
                .and_then(Value::as_u64)
                .and_then(|c| u16::try_from(c).ok())
                .filter(|c| *c >= 1000)
                .ok_or("code must be a close code (1000-4999)")?;
            let reason = obj.get("reason").and_then(Value::as_str).unwrap_or("");
            ok(json!({"connections": sim.close_all(code, reason).await}))
        }
        "drop" => ok(json!({"connections": sim.drop_all().await})),
        "rest-fault" => {
            let fault: RestFault =
                serde_json::from_value(obj.get("fault").cloned().unwrap_or(Value::Null))
                    .map_err(|e| format!("bad fault: {e}"))?;
            let count = obj
                .get("count")
                .and_then(Value::as_u64)
                .and_then(|c| u32::try_from(c).ok())
                .ok_or("count must be a number")?;
            sim.fail_rest(fault, count).await;
            ok(json!({}))
        }
        "latency" => {
            let ms = |field: &str| -> Result<Option<Duration>, String> {
                match obj.get(field) {
                    None => Ok(None),
                    Some(v) => v
                        .as_u64()
                        .map(|m| Some(Duration::from_millis(m)))
                        .ok_or_else(|| format!("{field} must be milliseconds")),
                }
            };
            if let Some(d) = ms("gateway_ms")? {
                sim.set_gateway_latency(d).await;
            }
            if let Some(d) = ms("rest_ms")? {
                sim.set_rest_latency(d).await;
            }
            ok(json!({}))
        }
        "clear-faults" => {
            sim.clear_faults().await;
            ok(json!({}))
        }
        other => return Err(format!("unknown action {other:?}")),
    })
}

fn state(sim: &Sim) -> Value {
    json!({
        "gateway_url": sim.gateway_url(),
        "resume_gateway_url": sim.resume_gateway_url(),
        "api_base": sim.api_base(),
        "control_url": sim.control_url(),
        "guild_id": sim.guild_id().to_string(),
        "channels": sim.channels(),
        "voice_states": sim.voice_states(),
        "sessions": sim.sessions(),
        "connections": sim.connections(),
        "identify_count": sim.identify_count(),
        "resume_count": sim.resume_count(),
        "session_start_remaining": sim.session_start_remaining(),
    })
}
