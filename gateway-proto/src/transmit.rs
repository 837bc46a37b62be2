//! What the driver must do on the transport.

/// One instruction for the transport, from
/// [`Gateway::poll_transmit`](crate::Gateway::poll_transmit).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transmit {
    /// Open a WebSocket connection to `url` now (the machine has already
    /// waited out any backoff), then report
    /// [`handle_connected`](crate::Gateway::handle_connected) or
    /// [`handle_connect_failed`](crate::Gateway::handle_connect_failed).
    /// The URL already carries `v=10&encoding=json` and the `compress`
    /// parameter when compression is enabled.
    Connect {
        /// The full WebSocket URL.
        url: String,
    },
    /// Send this text frame.
    Send(String),
    /// Send a close frame with this code and reason, keep reading until the
    /// peer's close arrives, then report
    /// [`handle_closed`](crate::Gateway::handle_closed). The machine never
    /// closes with 1000 or 1001, so the session stays resumable
    /// (`events/gateway.mdx`, "Initiating a Disconnect").
    Close {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// Abort the transport (or the connect attempt) at once, without a close
    /// handshake. Do not report anything back for it.
    Drop,
}
