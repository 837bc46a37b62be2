//! What tests can read back from a running sim: the guild's truth, the gateway
//! connections and sessions, and every request the clients made.

use std::fmt;

use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

/// Snowflakes serialise as strings, as Discord sends them (JSON numbers lose precision
/// past 2^53 in JavaScript).
mod id_string {
    pub(super) fn serialize<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }
}

mod opt_id_string {
    pub(super) fn serialize<S: serde::Serializer>(
        v: &Option<u64>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(v),
            None => s.serialize_none(),
        }
    }
}

/// A guild channel as the sim currently holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Channel {
    /// Snowflake id.
    #[serde(with = "id_string")]
    pub id: u64,
    /// Channel type (see [`crate::channel_type`]).
    pub kind: u8,
    /// Name.
    pub name: String,
    /// Parent category.
    #[serde(with = "opt_id_string")]
    pub parent_id: Option<u64>,
    /// Sorting position.
    pub position: u32,
    /// Voice user limit (0 = none).
    pub user_limit: u32,
    /// Voice bitrate.
    pub bitrate: u32,
}

/// A user's voice connection as the sim currently holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VoiceState {
    /// The user.
    #[serde(with = "id_string")]
    pub user_id: u64,
    /// The voice channel they are in.
    #[serde(with = "id_string")]
    pub channel_id: u64,
    /// Voice session id (stays the same across moves).
    pub session_id: String,
    /// Server mute.
    pub mute: bool,
    /// Server deafen.
    pub deaf: bool,
    /// Self mute.
    pub self_mute: bool,
    /// Self deafen.
    pub self_deaf: bool,
    /// Go Live.
    pub self_stream: bool,
    /// Camera on.
    pub self_video: bool,
}

/// Flag changes for [`crate::Sim::set_voice_flags`]; `None` leaves a flag as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceFlags {
    /// Server mute.
    pub mute: Option<bool>,
    /// Server deafen.
    pub deaf: Option<bool>,
    /// Self mute.
    pub self_mute: Option<bool>,
    /// Self deafen.
    pub self_deaf: Option<bool>,
    /// Go Live.
    pub self_stream: Option<bool>,
    /// Camera.
    pub self_video: Option<bool>,
}

/// Identifies one gateway WebSocket connection, numbered from 1 in accept order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn-{}", self.0)
    }
}

/// Which listener accepted a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Listener {
    /// The main gateway URL (`GET /gateway/bot`).
    Gateway,
    /// The `resume_gateway_url` from READY.
    Resume,
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    /// HELLO sent, no IDENTIFY/RESUME accepted yet.
    Connected,
    /// IDENTIFY accepted, READY sent.
    Identified,
    /// RESUME accepted, replay and RESUMED sent.
    Resumed,
    /// Gone.
    Closed,
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "by")]
pub enum CloseInfo {
    /// The client sent a close frame with this code (None: a frame without code).
    Client {
        /// The code.
        code: Option<u16>,
    },
    /// The sim closed with this code and reason.
    Server {
        /// The code.
        code: u16,
        /// The reason text.
        reason: String,
    },
    /// TCP went away without a close frame (client drop, or the drop fault).
    Dropped,
}

/// A gateway connection, open or closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionInfo {
    /// Its id.
    pub id: ConnId,
    /// The listener that accepted it.
    pub listener: Listener,
    /// Where it is now.
    pub state: ConnectionState,
    /// The session it carries, once identified or resumed.
    pub session_id: Option<String>,
    /// Whether `compress=zlib-stream` was asked for.
    pub zlib_stream: bool,
    /// The raw query string of the upgrade request.
    pub query: String,
    /// How it ended, once closed.
    pub close: Option<CloseInfo>,
}

/// Whether a session can still be resumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum SessionStatus {
    /// A connection carries it.
    Connected {
        /// That connection.
        conn: ConnId,
    },
    /// No connection; resumable until the resume timeout.
    Disconnected,
    /// Invalid: RESUME gets op 9 `d: false`.
    Invalid {
        /// Why, in plain words.
        reason: String,
    },
}

/// A gateway session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    /// `session_id` as sent in READY.
    pub session_id: String,
    /// Last sequence number dispatched to it.
    pub seq: u64,
    /// Intents it identified with.
    pub intents: u64,
    /// Its state.
    pub status: SessionStatus,
}

/// One payload a client sent on the gateway. Tokens inside IDENTIFY/RESUME are replaced by
/// `"[redacted]"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReceivedPayload {
    /// The connection it came on.
    pub conn: ConnId,
    /// Its `op`, or `None` if it did not decode.
    pub op: Option<u64>,
    /// Its `d` (for an undecodable payload: the raw text as a string, cut to 256 chars).
    pub d: Value,
    /// When it arrived (tokio clock).
    #[serde(skip)]
    pub at: Instant,
}

/// One REST request the sim answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestCall {
    /// HTTP method.
    pub method: String,
    /// Path (without the query).
    pub path: String,
    /// Status the sim answered with.
    pub status: u16,
    /// `X-Audit-Log-Reason`, percent-decoded as Discord does.
    pub audit_log_reason: Option<String>,
    /// JSON body, if the request had one that parsed.
    pub body: Option<Value>,
    /// When it arrived (tokio clock).
    #[serde(skip)]
    pub at: Instant,
}
