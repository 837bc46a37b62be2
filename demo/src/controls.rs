//! `/demo/...`: what the dashboard may ask of the demo, mapped onto discord-sim's control
//! API (simulated users, "Discord client" actions, gateway faults) and the hub restart.
//! Not part of the hub's contract: the real hub never sees these.

use serde_json::{Value, json};

use crate::stack::{SEEDED_USERS, Stack};

/// A control's answer: HTTP status and JSON body.
pub(crate) type Answer = (u16, Value);

fn ok(extra: Value) -> Answer {
    let mut body = json!({ "ok": true });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    (200, body)
}

fn bad(message: impl Into<String>) -> Answer {
    (400, json!({ "message": message.into() }))
}

fn conflict(message: impl std::fmt::Display) -> Answer {
    (409, json!({ "message": message.to_string() }))
}

/// A snowflake given as a JSON string (as the hub sends them: they exceed 2^53) or number.
fn id(body: &Value, field: &str) -> Result<u64, Answer> {
    let parsed = match body.get(field) {
        Some(Value::String(s)) => s.parse().ok(),
        Some(Value::Number(n)) => n.as_u64(),
        _ => None,
    };
    parsed
        .filter(|&v| v > 0)
        .ok_or_else(|| bad(format!("{field}: expected a snowflake (digits)")))
}

fn flag(body: &Value, field: &str) -> Result<bool, Answer> {
    body.get(field)
        .and_then(Value::as_bool)
        .ok_or_else(|| bad(format!("{field}: expected true or false")))
}

/// `GET /demo/state`: the sim's truth (voice channels and who is in them), the worker's
/// health and whether the hub is up.
pub(crate) fn state(stack: &Stack) -> Value {
    let sim = stack.sim();
    let channels: Vec<Value> = sim
        .channels()
        .into_iter()
        .filter(|c| discord_sim::channel_type::is_voice(c.kind))
        .map(|c| json!({ "id": c.id.to_string(), "name": c.name }))
        .collect();
    let voice: Vec<Value> = sim
        .voice_states()
        .into_iter()
        .map(|v| {
            json!({
                "userId": v.user_id.to_string(), "channelId": v.channel_id.to_string(),
                "mute": v.mute || v.self_mute,
            })
        })
        .collect();
    json!({
        "channels": channels,
        "voiceStates": voice,
        "seededUsers": SEEDED_USERS.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "worker": stack.worker_health(),
        "hubUp": stack.hub_up(),
    })
}

/// `POST /demo/<action>` with a JSON body.
pub(crate) async fn run(stack: &Stack, action: &str, body: &Value) -> Answer {
    match control(stack, action, body).await {
        Ok(answer) | Err(answer) => answer,
    }
}

async fn control(stack: &Stack, action: &str, body: &Value) -> Result<Answer, Answer> {
    let sim = stack.sim();
    let answer = match action {
        // A user connects to a voice channel (a move if already connected).
        "join" => match sim.join(id(body, "userId")?, id(body, "channelId")?).await {
            Ok(_) => ok(json!({})),
            Err(e) => conflict(e),
        },
        "move" => match sim
            .move_user(id(body, "userId")?, id(body, "channelId")?)
            .await
        {
            Ok(_) => ok(json!({})),
            Err(e) => conflict(e),
        },
        "leave" => match sim.leave(id(body, "userId")?).await {
            Ok(_) => ok(json!({})),
            Err(e) => conflict(e),
        },
        // Mute changes reach the worker as VOICE_STATE_UPDATE and must yield no event.
        "mute" => {
            let flags = discord_sim::VoiceFlags {
                self_mute: Some(flag(body, "mute")?),
                ..discord_sim::VoiceFlags::default()
            };
            match sim.set_voice_flags(id(body, "userId")?, flags).await {
                Ok(_) => ok(json!({})),
                Err(e) => conflict(e),
            }
        }
        // Someone deletes the channel in the Discord client: the hub sees room.deleted.
        "delete-channel" => match sim.delete_channel(id(body, "channelId")?).await {
            Ok(_) => ok(json!({})),
            Err(e) => conflict(e),
        },
        "fault/drop-gateway" => ok(json!({ "connections": sim.drop_all().await })),
        "fault/reconnect" => ok(json!({ "connections": sim.send_reconnect().await })),
        "fault/invalid-session" => {
            let resumable = flag(body, "resumable")?;
            ok(json!({ "connections": sim.send_invalid_session(resumable).await }))
        }
        "fault/heartbeat-ack" => {
            sim.set_heartbeat_ack(flag(body, "enabled")?).await;
            ok(json!({}))
        }
        "fault/hub-restart" => match stack.restart_hub().await {
            Ok(()) => ok(json!({})),
            Err(e) => (503, json!({ "message": e.to_string() })),
        },
        _ => return Err((404, json!({ "message": "no such demo control" }))),
    };
    Ok(answer)
}
