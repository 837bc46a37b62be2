//! Every input as a value, so fuzzers and property tests can feed arbitrary
//! sequences to the machine through [`Gateway::handle`](crate::Gateway::handle).

use crate::command::Command;
use crate::session::{GatewayInfo, Session};

/// One input to the session machine.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input {
    /// [`Gateway::start`](crate::Gateway::start).
    Start,
    /// [`Gateway::set_gateway_info`](crate::Gateway::set_gateway_info).
    GatewayInfo(GatewayInfo),
    /// [`Gateway::set_session`](crate::Gateway::set_session).
    SetSession(Session),
    /// [`Gateway::handle_connected`](crate::Gateway::handle_connected).
    Connected,
    /// [`Gateway::handle_connect_failed`](crate::Gateway::handle_connect_failed).
    ConnectFailed,
    /// [`Gateway::handle_text`](crate::Gateway::handle_text).
    Text(String),
    /// [`Gateway::handle_binary`](crate::Gateway::handle_binary).
    Binary(Vec<u8>),
    /// [`Gateway::handle_closed`](crate::Gateway::handle_closed).
    Closed {
        /// The close code, `None` when the transport dropped.
        code: Option<u16>,
        /// The close reason.
        reason: String,
    },
    /// [`Gateway::handle_timeout`](crate::Gateway::handle_timeout).
    Timeout,
    /// [`Gateway::send`](crate::Gateway::send).
    Send(Command),
    /// [`Gateway::acknowledge`](crate::Gateway::acknowledge).
    Acknowledge(u64),
    /// [`Gateway::shutdown`](crate::Gateway::shutdown).
    Shutdown,
}
