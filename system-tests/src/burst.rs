//! The voice-event burst the SIGKILL tests share: users spread over the guild's two voice
//! channels, and a fault that strikes in the middle of the burst.

use discord_sim::{DEFAULT_VOICE_1_ID, DEFAULT_VOICE_2_ID, Sim};

/// The voice channel user `user` joins: even users the first, odd users the second.
pub fn channel(user: u64) -> u64 {
    if user % 2 == 0 {
        DEFAULT_VOICE_1_ID
    } else {
        DEFAULT_VOICE_2_ID
    }
}

/// Users `users` join their [`channel`].
///
/// # Panics
/// When the sim refuses a join.
pub async fn join(sim: &Sim, users: std::ops::RangeInclusive<u64>) {
    for user in users {
        sim.join(user, channel(user)).await.expect("join");
    }
}

/// The burst around a fault: users 11..=20 join, `fault` strikes, then users 21..=30 join,
/// 1..=5 leave and 6..=8 move to the other channel (events that reach the worker while
/// the fault lasts). Expects users 1..=10 to have joined before.
///
/// # Panics
/// When the sim refuses a change.
pub async fn around(sim: &Sim, fault: impl FnOnce()) {
    join(sim, 11..=20).await;
    fault();
    join(sim, 21..=30).await;
    for user in 1..=5 {
        sim.leave(user).await.expect("leave");
    }
    for user in 6..=8 {
        sim.join(user, channel(user + 1)).await.expect("move");
    }
}
