//! One keep-alive HTTP/1.1 connection posting HMAC-signed events to a hub's
//! `/internal/events` (contract §4), shared by the load tools' posters.

use std::net::SocketAddr;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt as _, Full};
use hub_core::auth::sign_webhook;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A signed-webhook connection (redacting `Debug`: the secret never shows).
pub struct WebhookConn {
    target: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
    secret: Vec<u8>,
}

impl std::fmt::Debug for WebhookConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConn")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// What the hub answered to one post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// Whether the body says `duplicate` (an id the hub had already applied).
    pub duplicate: bool,
}

impl Answer {
    /// `200` and new: the hub applied the event.
    pub fn applied(self) -> bool {
        self.status == StatusCode::OK && !self.duplicate
    }
}

impl WebhookConn {
    /// Connects to the hub at `target`, signing with `secret`.
    ///
    /// # Errors
    /// When the connection or the HTTP handshake fails.
    pub async fn connect(target: SocketAddr, secret: &[u8]) -> Result<Self, String> {
        Ok(Self {
            target,
            sender: open(target).await?,
            secret: secret.to_vec(),
        })
    }

    /// Reconnects if the hub closed the connection (it closes idle keep-alive connections
    /// after its header-read timeout), so the next post does not pay for a handshake.
    ///
    /// # Errors
    /// When reconnecting fails.
    pub async fn ensure_open(&mut self) -> Result<(), String> {
        if self.sender.is_closed() {
            self.reconnect().await?;
        }
        Ok(())
    }

    /// Replaces the connection with a new one.
    ///
    /// # Errors
    /// When the connection or the HTTP handshake fails.
    pub async fn reconnect(&mut self) -> Result<(), String> {
        self.sender = open(self.target).await?;
        Ok(())
    }

    /// Posts `body` signed for the Unix time `ts` (seconds).
    ///
    /// # Errors
    /// When the request cannot be sent or answered.
    pub async fn post(&mut self, body: Bytes, ts: i64) -> Result<Answer, String> {
        let sig = sign_webhook(&self.secret, ts, &body);
        let req = http::Request::post("/internal/events")
            .header(http::header::HOST, self.target.to_string())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("x-hub-timestamp", ts.to_string())
            .header("x-hub-signature", sig)
            .body(Full::new(body))
            .map_err(|e| format!("request: {e}"))?;
        self.sender
            .ready()
            .await
            .map_err(|e| format!("poster: {e}"))?;
        let resp = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| format!("post: {e}"))?;
        let status = resp.status();
        let answer = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("post body: {e}"))?
            .to_bytes();
        Ok(Answer {
            status,
            duplicate: answer.windows(9).any(|w| w == b"duplicate"),
        })
    }
}

async fn open(target: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(target)
        .await
        .map_err(|e| format!("poster connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("poster handshake: {e}"))?;
    tokio::spawn(conn);
    Ok(sender)
}
