//! The WebSocket side: opening connections, executing the machine's
//! transmits and reporting frames and closes back to it.

use std::future::pending;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use gateway_proto::{Gateway, Transmit};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use tracing::{debug, info};

use super::{Driver, now};

/// One Gateway connection.
pub(super) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub(super) async fn next_message(socket: &mut Option<Ws>) -> Option<Result<Message, String>> {
    match socket {
        Some(ws) => ws.next().await.map(|r| r.map_err(|e| e.to_string())),
        None => pending().await,
    }
}

async fn open(url: String, tls: Arc<rustls::ClientConfig>) -> Result<Ws, String> {
    let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        url,
        None,
        true,
        Some(Connector::Rustls(tls)),
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(ws)
}

impl Driver {
    /// Feed one transport input; log (and otherwise ignore) inputs the
    /// machine found out of place: it stays consistent.
    pub(super) fn report(
        &mut self,
        input: impl FnOnce(&mut Gateway, std::time::Instant) -> Result<(), gateway_proto::InputError>,
    ) {
        if let Err(e) = input(&mut self.gateway, now()) {
            debug!(error = %e, "gateway input");
        }
    }

    pub(super) fn on_message(&mut self, message: Option<Result<Message, String>>) {
        match message {
            Some(Ok(Message::Text(text))) => {
                self.report(|g, now| g.handle_text(text.as_str(), now));
            }
            Some(Ok(Message::Binary(bytes))) => self.report(|g, now| g.handle_binary(&bytes, now)),
            Some(Ok(Message::Close(frame))) => {
                let (code, reason) = frame.map_or((None, String::new()), |f| {
                    (Some(u16::from(f.code)), f.reason.to_string())
                });
                info!(code, %reason, "gateway closed");
                // Let tungstenite finish the close handshake in the background.
                if let Some(mut ws) = self.socket.take() {
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                    });
                }
                self.report(|g, now| g.handle_closed(code, &reason, now));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                info!(error = %e, "gateway connection lost");
                self.socket = None;
                self.report(|g, now| g.handle_closed(None, "", now));
            }
            None => {
                info!("gateway connection ended");
                self.socket = None;
                self.report(|g, now| g.handle_closed(None, "", now));
            }
        }
    }

    pub(super) async fn transmit(&mut self, transmit: Transmit) {
        match transmit {
            Transmit::Connect { url } => {
                self.socket = None;
                debug!(%url, "gateway connecting");
                self.connecting = Some(Box::pin(open(url, Arc::clone(&self.tls))));
            }
            Transmit::Send(text) => {
                let Some(ws) = &mut self.socket else {
                    return;
                };
                if let Err(e) = ws.send(Message::text(text)).await {
                    info!(error = %e, "gateway send failed");
                    self.socket = None;
                    self.report(|g, now| g.handle_closed(None, "", now));
                }
            }
            Transmit::Close { code, reason } => {
                let Some(ws) = &mut self.socket else {
                    return;
                };
                let frame = CloseFrame {
                    code: code.into(),
                    reason: reason.into(),
                };
                // Keep reading afterwards: the peer's close ends the handshake.
                if let Err(e) = ws.send(Message::Close(Some(frame))).await {
                    debug!(error = %e, "gateway close failed");
                    self.socket = None;
                    self.report(|g, now| g.handle_closed(None, "", now));
                }
            }
            Transmit::Drop => {
                self.socket = None;
                self.connecting = None;
            }
            other => debug!(?other, "unknown transmit"),
        }
    }
}
