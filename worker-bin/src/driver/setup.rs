//! Start-up: the state file, the gateway-proto configuration and the first
//! `GET /gateway/bot`.

use std::time::Duration;

use gateway_proto::{
    Compression, ConnectionProperties, EventFilter, EventKind, EventKinds, Intents, Session,
    Unwanted,
};
use tracing::{info, warn};

use super::Tuning;
use crate::config::Config;
use crate::gateway_bot::{self, GatewayBotError};
use crate::secret::Secret;
use crate::state_file::{self, SavedState};

/// The saved state, or `None` (with a warning) when there is none or it is
/// unusable: never crash-loop on a bad file, start a new session instead.
/// Scratch files an earlier crash left beside it are removed first.
pub(super) fn load_state(config: &Config) -> Option<SavedState> {
    let path = config.state_file.as_ref()?;
    state_file::remove_stale_scratch(path);
    match state_file::load(path, &config.guild_id) {
        Ok(state) => state,
        Err(e) => {
            warn!(error = %e, "ignoring the state file; starting a new session");
            None
        }
    }
}

/// The session machine's configuration: intents 129, `zlib-stream`, manual
/// acknowledgements, only the dispatches the voice cache needs, and the
/// saved session to RESUME.
pub(super) fn gateway_config(
    config: &Config,
    tuning: &Tuning,
    session: Option<Session>,
) -> gateway_proto::Config {
    let mut builder = gateway_proto::Config::builder(
        config.token.expose(),
        // Contract §5: intents GUILDS | GUILD_VOICE_STATES (129).
        Intents::GUILDS | Intents::GUILD_VOICE_STATES,
    )
    .compression(Compression::ZlibStream)
    .manual_acknowledge(true)
    .properties(ConnectionProperties {
        os: std::env::consts::OS.to_owned(),
        browser: "spell-coven-worker".to_owned(),
        device: "spell-coven-worker".to_owned(),
    })
    .events(EventFilter::new(
        [
            EventKind::Ready,
            EventKind::Resumed,
            EventKind::GuildCreate,
            EventKind::VoiceStateUpdate,
            EventKind::ChannelCreate,
            EventKind::ChannelUpdate,
            EventKind::ChannelDelete,
        ]
        .into_iter()
        .collect::<EventKinds>(),
        Unwanted::Drop,
    ))
    .backoff(tuning.gateway_backoff.0, tuning.gateway_backoff.1)
    .seed(fastrand::u64(..));
    if let Some(url) = &config.gateway_url {
        builder = builder.gateway_url(url.clone());
    }
    if let Some(session) = session {
        info!(session = %session.id, seq = session.seq, "resuming the saved session");
        builder = builder.session(session);
    }
    builder.build()
}

/// `GET /gateway/bot`, retried a few times; `Ok(None)` falls back to
/// gateway-proto's default URL; `Err` is fatal (refused token).
pub(super) async fn fetch_gateway_info(
    api_base: &str,
    token: &Secret,
) -> Result<Option<gateway_proto::GatewayInfo>, String> {
    let mut delay = Duration::from_millis(500);
    for attempt in 1..=4 {
        match gateway_bot::fetch(api_base, token).await {
            Ok(info) => {
                if let Some(limit) = &info.session_start_limit {
                    info!(
                        url = %info.url,
                        remaining = limit.remaining,
                        total = limit.total,
                        "GET /gateway/bot"
                    );
                }
                return Ok(Some(info));
            }
            Err(GatewayBotError::Unauthorized) => {
                return Err(GatewayBotError::Unauthorized.to_string());
            }
            Err(e) => {
                warn!(attempt, error = %e, "GET /gateway/bot failed");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    warn!(
        "GET /gateway/bot kept failing; connecting to {}",
        gateway_proto::DEFAULT_GATEWAY_URL
    );
    Ok(None)
}
