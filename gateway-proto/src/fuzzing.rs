//! Drive the machine from arbitrary bytes, for fuzz targets and replays.
//!
//! [`inputs`] turns any byte string into a sequence of inputs (time steps,
//! transport events, Discord frames, application requests); [`run`] feeds
//! them to a [`Gateway`] like a driver would and checks the machine's
//! invariants after every step. A fuzz target is one line:
//!
//! ```
//! # let data: &[u8] = &[3, 40, 1, 5, 0, 255, 255, 11, 15, 160];
//! if let Err(violation) = gateway_proto::fuzzing::run(data) {
//!     panic!("{violation}");
//! }
//! ```

use std::fmt;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::command::Command;
use crate::config::{Compression, Config};
use crate::gateway::Gateway;
use crate::input::Input;
use crate::intents::Intents;
use crate::ratelimit::{SEND_LIMIT, SEND_WINDOW};
use crate::session::{GatewayInfo, SessionStartLimit};
use crate::transmit::Transmit;

const NAMES: [&str; 8] = [
    "GUILD_CREATE",
    "VOICE_STATE_UPDATE",
    "CHANNEL_CREATE",
    "CHANNEL_DELETE",
    "GUILD_DELETE",
    "TYPING_START",
    "MESSAGE_CREATE",
    "READY",
];

/// One step of a decoded sequence: let `advance` pass (firing timers), then
/// feed `input`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Time to let pass first.
    pub advance: Duration,
    /// The input.
    pub input: Input,
}

/// Decode arbitrary bytes into a sequence of steps. Every byte string is
/// valid; the decoding only aims to reach interesting states often.
#[must_use]
pub fn inputs(data: &[u8]) -> Vec<Step> {
    let mut bytes = data.iter().copied();
    let mut next = move || bytes.next();
    let mut steps = Vec::new();
    while let Some(tag) = next() {
        let arg = next().unwrap_or(0);
        let mut advance = Duration::ZERO;
        let input = match tag % 16 {
            0 => {
                let hi = u64::from(arg);
                let lo = u64::from(next().unwrap_or(0));
                advance = Duration::from_millis(((hi << 8) | lo) * 4);
                Input::Timeout
            }
            1 => Input::Connected,
            2 => Input::ConnectFailed,
            3 => text(&json!({"op": 10, "d": {"heartbeat_interval": (u64::from(arg) + 1) * 500}})),
            4 => {
                let name = NAMES[usize::from(next().unwrap_or(0)) % NAMES.len()];
                text(&json!({"op": 0, "s": arg, "t": name,
                    "d": {"id": "1", "channels": [], "voice_states": [], "user_id": "2",
                          "channel_id": null, "type": 2, "session_id": "s",
                          "resume_gateway_url": "wss://resume.example"}}))
            }
            5 => text(&json!({"op": 0, "s": 1, "t": "READY",
                "d": {"user": {"id": "1"}, "session_id": format!("s{arg}"),
                      "resume_gateway_url": "wss://resume.example"}})),
            6 => text(&json!({"op": 0, "s": null, "t": "RESUMED", "d": null})),
            7 => text(&json!({"op": 11})),
            8 => text(&json!({"op": 1, "d": null})),
            9 => text(&json!({"op": 7, "d": null})),
            10 => text(&json!({"op": 9, "d": arg & 1 == 1})),
            11 => {
                let code = (u16::from(arg) << 8) | u16::from(next().unwrap_or(0));
                Input::Closed {
                    code: (code != 0).then_some(code),
                    reason: String::new(),
                }
            }
            12 => {
                let raw: Vec<u8> = (0..arg).map_while(|_| next()).collect();
                Input::Text(String::from_utf8_lossy(&raw).into_owned())
            }
            13 => Input::Binary((0..arg).map_while(|_| next()).collect()),
            14 => match arg % 5 {
                0 => Command::update_voice_state("1", None, false, false)
                    .map_or(Input::Timeout, Input::Send),
                1 => Input::Acknowledge(u64::from(next().unwrap_or(0))),
                2 => Input::Shutdown,
                3 => Input::Start,
                _ => Input::Timeout,
            },
            _ => Input::GatewayInfo(GatewayInfo {
                url: "wss://gateway.example/?v=9&x=1".into(),
                shards: Some(1),
                session_start_limit: Some(SessionStartLimit {
                    total: 10,
                    remaining: u32::from(arg % 3),
                    reset_after: u64::from(arg) * 1000,
                    max_concurrency: 1,
                }),
            }),
        };
        steps.push(Step { advance, input });
    }
    steps
}

fn text(v: &serde_json::Value) -> Input {
    Input::Text(v.to_string())
}

/// An invariant the machine broke.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// More than 120 payloads within 60 s on one connection.
    SendLimit {
        /// Payloads in the window.
        sent: usize,
    },
    /// A payload over 4096 bytes was handed out.
    PayloadTooLarge {
        /// Its size.
        size: usize,
    },
    /// A heartbeat did not carry the latest seq.
    HeartbeatSeq {
        /// What it carried.
        sent: Option<u64>,
        /// The latest seq received.
        latest: Option<u64>,
    },
    /// A close with 1000/1001, which would invalidate the session.
    SessionEndingClose(u16),
    /// A connect URL without the required query parameters.
    BadUrl(String),
    /// `poll_timeout` kept returning an instant that `handle_timeout`
    /// already ran at (a livelock).
    StuckTimer,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SendLimit { sent } => write!(f, "{sent} payloads within 60 s"),
            Self::PayloadTooLarge { size } => write!(f, "payload of {size} bytes handed out"),
            Self::HeartbeatSeq { sent, latest } => {
                write!(f, "heartbeat carried {sent:?}, latest seq is {latest:?}")
            }
            Self::SessionEndingClose(code) => write!(f, "closed with {code}"),
            Self::BadUrl(url) => write!(f, "connect url without v/encoding: {url}"),
            Self::StuckTimer => f.write_str("a timer stays due however often it runs"),
        }
    }
}

impl std::error::Error for Violation {}

/// Feed the sequence decoded from `data` to a fresh machine, starting at
/// `start`, checking invariants after every step.
///
/// # Errors
///
/// The first [`Violation`] found.
pub fn run_at(data: &[u8], start: Instant) -> Result<(), Violation> {
    let config = Config::builder("fuzz-token", Intents::GUILDS | Intents::GUILD_VOICE_STATES)
        .compression(Compression::ZlibStream)
        .manual_acknowledge(data.first().is_some_and(|b| b & 0x80 != 0))
        .seed(data.len() as u64)
        .build();
    let mut gw = Gateway::new(config);
    let mut now = start;
    let mut window: Vec<Instant> = Vec::new();
    let _ = gw.start(now);
    drain(&mut gw, &mut window, now)?;
    for step in inputs(data) {
        let target = now + step.advance;
        let mut same_instant = 0u32;
        while let Some(at) = gw.poll_timeout() {
            if at > target {
                break;
            }
            if at <= now {
                // A timer may be re-armed for the current instant (a zero
                // backoff, the send queue), but never forever.
                same_instant += 1;
                if same_instant > 64 {
                    return Err(Violation::StuckTimer);
                }
            } else {
                same_instant = 0;
            }
            now = now.max(at);
            gw.handle_timeout(now);
            drain(&mut gw, &mut window, now)?;
        }
        now = now.max(target);
        let _ = gw.handle(step.input, now);
        drain(&mut gw, &mut window, now)?;
    }
    Ok(())
}

/// [`run_at`] from an arbitrary origin instant.
///
/// # Errors
///
/// The first [`Violation`] found.
pub fn run(data: &[u8]) -> Result<(), Violation> {
    #[allow(
        clippy::disallowed_methods,
        reason = "only an origin for the virtual clock; the machine never reads it"
    )]
    let start = Instant::now();
    run_at(data, start)
}

fn drain(gw: &mut Gateway, window: &mut Vec<Instant>, now: Instant) -> Result<(), Violation> {
    while let Some(t) = gw.poll_transmit() {
        match t {
            Transmit::Connect { url } => {
                if !url.contains("?v=10&encoding=json") {
                    return Err(Violation::BadUrl(url));
                }
                window.clear();
            }
            Transmit::Send(payload) => {
                if payload.len() > crate::codec::MAX_PAYLOAD_SIZE {
                    return Err(Violation::PayloadTooLarge {
                        size: payload.len(),
                    });
                }
                window.retain(|t| *t + SEND_WINDOW > now);
                window.push(now);
                if window.len() > SEND_LIMIT {
                    return Err(Violation::SendLimit { sent: window.len() });
                }
                if payload.starts_with(r#"{"op":1,"#) {
                    let sent = payload
                        .trim_start_matches(r#"{"op":1,"d":"#)
                        .trim_end_matches('}')
                        .parse::<u64>()
                        .ok();
                    if sent != gw.latest_seq() {
                        return Err(Violation::HeartbeatSeq {
                            sent,
                            latest: gw.latest_seq(),
                        });
                    }
                }
            }
            Transmit::Close { code, .. } if code == 1000 || code == 1001 => {
                return Err(Violation::SessionEndingClose(code));
            }
            _ => {}
        }
    }
    while gw.poll_event().is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{inputs, run_at};

    #[test]
    fn every_byte_string_decodes_and_runs() {
        let mut rng = fastrand::Rng::with_seed(3);
        for len in 0..300 {
            let data: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            let _ = inputs(&data);
            run_at(&data, crate::test_epoch()).unwrap();
        }
    }

    #[test]
    fn a_scripted_session_reaches_ready() {
        // start; connected; hello; ready; time passes; ack.
        let data = [0u8, 1, 0, 3, 80, 5, 1, 0, 40, 0, 7, 0];
        run_at(&data, crate::test_epoch()).unwrap();
        assert!(inputs(&data).len() >= 5);
    }
}
