//! The idle-room sweeper: a room whose voice channel has been empty (or unknown to the
//! presence state) for `ROOM_IDLE_TIMEOUT_SECS` is deleted via Discord and `room.deleted`
//! published. This file holds the pure decision; the loop lives in `crate::server`.

use super::store::Room;

/// How often the sweeper looks, given the idle timeout: a tenth of it, between 1 s and 60 s.
pub fn sweep_interval(idle_timeout_secs: u64) -> std::time::Duration {
    std::time::Duration::from_secs((idle_timeout_secs / 10).clamp(1, 60))
}

/// Splits `rooms` at `now_ms`: returns (rooms with members now — their `last_nonempty` is
/// refreshed by the caller, rooms idle for at least `timeout_ms` — to delete).
/// `members(id)` is the presence count (`None` = the hub never saw the channel).
pub fn idle_rooms(
    rooms: &[(u64, Room)],
    members: impl Fn(u64) -> Option<usize>,
    now_ms: i64,
    timeout_ms: i64,
) -> (Vec<u64>, Vec<u64>) {
    let mut occupied = Vec::new();
    let mut idle = Vec::new();
    for (id, room) in rooms {
        if members(*id).unwrap_or(0) > 0 {
            occupied.push(*id);
        } else if now_ms.saturating_sub(room.last_nonempty.max(room.created_at)) >= timeout_ms {
            idle.push(*id);
        }
    }
    (occupied, idle)
}

/// The sweeper loop: every [`sweep_interval`], refresh `last_nonempty` of occupied rooms and
/// delete rooms idle for `timeout` (Discord, registry, `room.deleted`). Ends when `stop`
/// turns true.
pub async fn run(
    app: std::sync::Arc<crate::routes::App>,
    timeout: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(sweep_interval(timeout.as_secs()));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = crate::server::stopped(&mut stop) => return,
        }
        let now = crate::routes::now_ms();
        let rooms = match app.rooms.rooms(app.guild_id).await {
            Ok(rooms) => rooms,
            Err(e) => {
                tracing::warn!(error = %e, "idle sweep skipped");
                continue;
            }
        };
        let timeout_ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
        let ids: Vec<u64> = rooms.iter().map(|(id, _)| *id).collect();
        let counts: std::collections::HashMap<u64, Option<usize>> = ids
            .iter()
            .copied()
            .zip(app.hub.members_of(&ids).await)
            .collect();
        let members = |id| counts.get(&id).copied().flatten();
        let (occupied, idle) = idle_rooms(&rooms, members, now, timeout_ms);
        for id in occupied {
            app.rooms.mark_nonempty(app.guild_id, id, now).await;
        }
        for id in idle {
            let reason =
                crate::discord::audit_reason("room deleted after the idle timeout", "the hub");
            match crate::routes::end_room(&app, id, reason).await {
                Ok(()) => tracing::info!(channel_id = id, "idle room deleted"),
                Err(e) => {
                    tracing::warn!(channel_id = id, error = %e, "could not delete an idle room")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_rooms_empty_for_the_timeout() {
        let r = |created_at, last_nonempty| Room {
            owner: "u".into(),
            name: "n".into(),
            created_at,
            last_nonempty,
        };
        let rooms = vec![(1, r(0, 0)), (2, r(0, 500)), (3, r(0, 0)), (4, r(900, 0))];
        let members = |id| match id {
            3 => Some(2),
            4 => None,
            _ => Some(0),
        };
        let (occupied, idle) = idle_rooms(&rooms, members, 1000, 1000);
        assert_eq!(occupied, [3]);
        assert_eq!(idle, [1]);
        assert_eq!(sweep_interval(900), std::time::Duration::from_secs(60));
        assert_eq!(sweep_interval(5), std::time::Duration::from_secs(1));
    }
}
