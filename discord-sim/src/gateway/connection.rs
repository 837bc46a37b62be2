//! One gateway WebSocket connection: HELLO, heartbeats, IDENTIFY/RESUME, dispatch
//! delivery, limits and faults.

use std::collections::VecDeque;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};
use tokio::time::{Duration, Instant, sleep, sleep_until, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::codes;
use super::compress::ZlibStream;
use super::handshake::{IdentifyOutcome, ResumeOutcome, resume_session, start_session};
use super::query::parse_query;
use super::validate;
use crate::introspect::{
    CloseInfo, ConnId, ConnectionInfo, ConnectionState, Listener, ReceivedPayload,
};
use crate::session::Status;
use crate::shared::Shared;
use crate::world::ConnCommand;

/// Commands queued for one connection; when full, a new command is dropped (and the
/// control call reports fewer connections reached).
pub(crate) const COMMAND_QUEUE: usize = 64;

/// gateway.mdx "Rate Limiting": "Apps can send 120 gateway events per connection every
/// 60 seconds"; over that the connection is closed with 4008.
const RATE_LIMIT_COUNT: usize = 120;
const RATE_LIMIT_WINDOW: Duration = Duration::from_secs(60);

/// How long after the last heartbeat (or HELLO) the sim waits for a heartbeat before closing with
/// 4009. gateway.mdx "Heartbeat Interval" only says "there is already tolerance in the
/// heartbeat_interval"; we choose half an interval of grace (interval * 1.5 in total).
pub fn heartbeat_timeout(interval: Duration) -> Duration {
    interval + interval / 2
}

/// Frames larger than this are refused by the WebSocket layer itself (and answered with
/// 4002, as any payload over 4096 bytes).
const MAX_WS_MESSAGE: usize = 64 * 1024;

/// Why a connection ended.
#[derive(Debug)]
enum End {
    ClientClosed(Option<u16>),
    Dropped,
    ServerClosed { code: u16, reason: String },
    Shutdown,
    Superseded,
}

enum Auth {
    None,
    Session { id: String, sent_upto: u64 },
}

struct Conn {
    shared: Arc<Shared>,
    id: ConnId,
    ws: WebSocketStream<TcpStream>,
    zlib: Option<ZlibStream>,
    wake: Arc<Notify>,
    auth: Auth,
    last_beat: Instant,
    recent: VecDeque<Instant>,
}

/// Runs one connection from the upgrade to the end.
pub(crate) async fn serve(shared: Arc<Shared>, tcp: TcpStream, listener: Listener) {
    let mut query = String::new();
    #[allow(
        clippy::result_large_err,
        reason = "the callback signature is tungstenite's"
    )]
    let callback = |req: &Request, resp: Response| {
        query = req.uri().query().unwrap_or_default().to_owned();
        Ok(resp)
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_WS_MESSAGE))
        .max_frame_size(Some(MAX_WS_MESSAGE));
    let ws =
        match tokio_tungstenite::accept_hdr_async_with_config(tcp, callback, Some(config)).await {
            Ok(ws) => ws,
            Err(e) => {
                tracing::debug!(error = %e, "gateway upgrade failed");
                return;
            }
        };
    let parsed = parse_query(&query);
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let info = ConnectionInfo {
        id: ConnId(0),
        listener,
        state: ConnectionState::Connected,
        session_id: None,
        zlib_stream: parsed.as_ref().is_ok_and(|q| q.zlib_stream),
        query,
        close: None,
    };
    let id = shared.update(|w| w.register_conn(info, tx));
    let mut conn = Conn {
        zlib: parsed
            .as_ref()
            .ok()
            .filter(|q| q.zlib_stream)
            .map(|_| ZlibStream::new()),
        shared,
        id,
        ws,
        wake: Arc::new(Notify::new()),
        auth: Auth::None,
        last_beat: Instant::now(),
        recent: VecDeque::new(),
    };
    let end = match parsed {
        Err(r) => conn.close(r.code, r.reason).await,
        Ok(_) => {
            let early = conn.shared.update(|w| {
                let left = &mut w.faults.reconnect_before_hello;
                let hit = *left > 0;
                *left = left.saturating_sub(1);
                hit
            });
            if early {
                conn.reconnect_before_hello().await
            } else {
                conn.run(rx).await
            }
        }
    };
    conn.finish(end);
}

impl Conn {
    async fn run(&mut self, mut commands: mpsc::Receiver<ConnCommand>) -> End {
        let mut shutdown = self.shared.shutdown_signal();
        if *shutdown.borrow() {
            return End::Shutdown;
        }
        // gateway.mdx "Hello Event": sent on connect, with `heartbeat_interval` in ms.
        let interval = self.shared.cfg.heartbeat_interval;
        let hello = envelope(
            codes::OP_HELLO,
            json!({"heartbeat_interval": interval.as_millis(), "_trace": ["discord-sim"]}),
        );
        if self.send_text(&hello).await.is_err() {
            return End::Dropped;
        }
        self.last_beat = Instant::now();
        let hb_timeout = heartbeat_timeout(interval);
        loop {
            let deadline = self.last_beat + hb_timeout;
            let step = tokio::select! {
                biased;
                () = crate::shared::stopped(&mut shutdown) => Err(End::Shutdown),
                cmd = commands.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd).await,
                    None => Err(End::Shutdown),
                },
                msg = self.ws.next() => self.on_message(msg).await,
                () = self.wake.notified() => self.flush().await,
                () = sleep_until(deadline) => {
                    // opcodes-and-status-codes.mdx 4009 "Session timed out": the session
                    // is gone ("Reconnect and start a new one").
                    Err(self.close(codes::SESSION_TIMED_OUT, "Session timed out.").await)
                }
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// gateway-events.mdx "Reconnect": op 7 "can occur at any point in the gateway
    /// connection lifecycle, even before/in place of receiving a Hello"; Discord may close
    /// the socket a few seconds later. We wait up to 5 s for the client to leave, then
    /// drop the connection.
    async fn reconnect_before_hello(&mut self) -> End {
        let op7 = envelope(codes::OP_RECONNECT, Value::Null);
        if let Err(end) = self.send_text(&op7).await {
            return end;
        }
        let left = timeout(Duration::from_secs(5), async {
            loop {
                match self.ws.next().await {
                    None | Some(Err(_)) => return End::Dropped,
                    Some(Ok(Message::Close(frame))) => {
                        let _ = self.ws.flush().await;
                        return End::ClientClosed(frame.map(|f| u16::from(f.code)));
                    }
                    Some(Ok(_)) => {}
                }
            }
        })
        .await;
        left.unwrap_or(End::Dropped)
    }

    async fn on_command(&mut self, cmd: ConnCommand) -> Result<(), End> {
        match cmd {
            ConnCommand::Send(text) => self.send_text(&text).await,
            ConnCommand::Close { code, reason } => Err(self.close(code, &reason).await),
            ConnCommand::InvalidSession { resumable } => self.invalid_session(resumable).await,
            ConnCommand::Drop => Err(End::Dropped),
            ConnCommand::Superseded => Err(End::Superseded),
        }
    }

    async fn on_message(&mut self, msg: Option<Result<Message, WsError>>) -> Result<(), End> {
        match msg {
            None => Err(End::Dropped),
            Some(Err(WsError::Capacity(_))) => {
                Err(self.close(codes::DECODE_ERROR, "Payload too large.").await)
            }
            Some(Err(_)) => Err(End::Dropped),
            Some(Ok(Message::Close(frame))) => {
                let code = frame.map(|f| u16::from(f.code));
                // Complete the closing handshake (the reply is queued by tungstenite).
                let _ = self.ws.flush().await;
                Err(End::ClientClosed(code))
            }
            Some(Ok(Message::Text(t))) => self.on_payload(t.as_bytes()).await,
            Some(Ok(Message::Binary(b))) => self.on_payload(&b).await,
            Some(Ok(_)) => Ok(()),
        }
    }

    async fn on_payload(&mut self, raw: &[u8]) -> Result<(), End> {
        let now = Instant::now();
        while self
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= RATE_LIMIT_WINDOW)
        {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        let payload = match validate::decode(raw) {
            Ok(p) => p,
            Err(r) => {
                // A malformed IDENTIFY may still carry the token: redact before logging.
                let token = self.shared.cfg.token.as_str();
                let text: String = String::from_utf8_lossy(raw)
                    .replace(token, "[redacted]")
                    .chars()
                    .take(256)
                    .collect();
                self.record(None, Value::String(text), now);
                return Err(self.close(r.code, r.reason).await);
            }
        };
        let mut logged = payload.d.clone();
        if matches!(payload.op, codes::OP_IDENTIFY | codes::OP_RESUME) {
            validate::redact_token(&mut logged);
        }
        self.record(Some(payload.op), logged, now);
        if self.recent.len() > RATE_LIMIT_COUNT {
            return Err(self
                .close(codes::RATE_LIMITED, "You are being rate limited.")
                .await);
        }
        if !codes::client_may_send(payload.op) {
            return Err(self.close(codes::UNKNOWN_OPCODE, "Unknown opcode.").await);
        }
        let authed = matches!(self.auth, Auth::Session { .. });
        match payload.op {
            codes::OP_HEARTBEAT => {
                if let Err(r) = validate::heartbeat(&payload.d) {
                    return Err(self.close(r.code, r.reason).await);
                }
                self.last_beat = now;
                if self.shared.read(|w| w.faults.ack_heartbeats) {
                    // gateway.mdx "Sending Heartbeats": each heartbeat is answered by op 11.
                    self.send_text(&envelope(codes::OP_HEARTBEAT_ACK, Value::Null))
                        .await?;
                }
                Ok(())
            }
            // 4005 "You sent more than one identify payload."
            codes::OP_IDENTIFY | codes::OP_RESUME if authed => Err(self
                .close(codes::ALREADY_AUTHENTICATED, "Already authenticated.")
                .await),
            codes::OP_IDENTIFY => self.on_identify(&payload.d).await,
            codes::OP_RESUME => self.on_resume(&payload.d).await,
            // 4003 "You sent us a payload prior to identifying".
            _ if !authed => Err(self
                .close(codes::NOT_AUTHENTICATED, "Not authenticated.")
                .await),
            // Presence, voice state, member and channel-info requests carry an object `d`
            // (gateway-events.mdx "Send Events"); accepted and otherwise ignored.
            _ if !payload.d.is_object() => Err(self
                .close(codes::DECODE_ERROR, "Error while decoding payload.")
                .await),
            _ => Ok(()),
        }
    }

    async fn on_identify(&mut self, d: &Value) -> Result<(), End> {
        let cfg = Arc::clone(&self.shared.cfg);
        let ident = match validate::identify(d, &cfg.token, cfg.enabled_privileged_intents) {
            Ok(i) => i,
            Err(r) => return Err(self.close(r.code, r.reason).await),
        };
        let (id, wake) = (self.id, Arc::clone(&self.wake));
        let outcome = self.shared.update(|w| start_session(w, id, wake, &ident));
        match outcome {
            IdentifyOutcome::Ready(session_id) => {
                self.auth = Auth::Session {
                    id: session_id,
                    sent_upto: 0,
                };
                self.flush().await
            }
            // gateway.mdx "Identifying": over `max_concurrency`, Discord answers op 9.
            IdentifyOutcome::Throttled => {
                self.send_text(&envelope(codes::OP_INVALID_SESSION, json!(false)))
                    .await
            }
            // gateway.mdx: hitting the daily limit terminates sessions and resets the
            // token, so the next IDENTIFY fails authentication.
            IdentifyOutcome::Exhausted => Err(self
                .close(codes::AUTHENTICATION_FAILED, "Authentication failed.")
                .await),
        }
    }

    async fn on_resume(&mut self, d: &Value) -> Result<(), End> {
        let resume = match validate::resume(d, &self.shared.cfg.token) {
            Ok(r) => r,
            Err(r) => return Err(self.close(r.code, r.reason).await),
        };
        let (id, wake) = (self.id, Arc::clone(&self.wake));
        let outcome = self.shared.update(|w| resume_session(w, id, wake, &resume));
        match outcome {
            ResumeOutcome::Resumed => {
                self.auth = Auth::Session {
                    id: resume.session_id,
                    sent_upto: resume.seq,
                };
                self.flush().await
            }
            // gateway.mdx "Resuming": "It's possible your app won't reconnect in time to
            // Resume, in which case it will receive an Invalid Session (opcode 9)".
            ResumeOutcome::Invalid => {
                self.send_text(&envelope(codes::OP_INVALID_SESSION, json!(false)))
                    .await
            }
            // 4007 "The sequence sent when resuming the session was invalid."
            ResumeOutcome::BadSeq => Err(self.close(codes::INVALID_SEQ, "Invalid seq.").await),
        }
    }

    /// gateway-events.mdx "Invalid Session": `d` says whether the session may be resumed.
    /// The session is detached first (so a RESUME racing the op 9 sees the new state);
    /// the connection is then unauthenticated, so the client may IDENTIFY or RESUME on a
    /// new socket as the docs say, or on this one as some libraries do.
    async fn invalid_session(&mut self, resumable: bool) -> Result<(), End> {
        if let Auth::Session { id, .. } = std::mem::replace(&mut self.auth, Auth::None) {
            let me = self.id;
            self.shared.update(|w| {
                if let Some(s) = w.sessions.get_mut(&id).filter(|s| s.conn() == Some(me)) {
                    s.status = if resumable {
                        Status::Disconnected {
                            since: Instant::now(),
                        }
                    } else {
                        Status::Invalid {
                            reason: "invalidated by op 9".to_owned(),
                        }
                    };
                }
                if let Some(entry) = w.conns.get_mut(&me) {
                    entry.info.state = ConnectionState::Connected;
                }
            });
        }
        let op9 = envelope(codes::OP_INVALID_SESSION, Value::Bool(resumable));
        self.send_text(&op9).await
    }

    /// Sends the session's buffered dispatches this connection has not sent yet.
    async fn flush(&mut self) -> Result<(), End> {
        let Auth::Session { id, sent_upto } = &self.auth else {
            return Ok(());
        };
        let me = self.id;
        let pending = self.shared.read(|w| {
            let s = w.sessions.get(id)?;
            (s.conn() == Some(me)).then(|| s.since(*sent_upto))
        });
        let frames = match pending {
            None => return Ok(()),
            Some(None) => {
                return Err(self.close(codes::UNKNOWN_ERROR, "Unknown error.").await);
            }
            Some(Some(frames)) => frames,
        };
        for d in frames {
            self.send_text(&d.frame).await?;
            if let Auth::Session { sent_upto, .. } = &mut self.auth {
                *sent_upto = d.seq;
            }
        }
        Ok(())
    }

    async fn send_text(&mut self, text: &str) -> Result<(), End> {
        let latency = self.shared.read(|w| w.faults.gateway_latency);
        if !latency.is_zero() {
            sleep(latency).await;
        }
        let msg = match &mut self.zlib {
            Some(z) => match z.compress(text.as_bytes()) {
                Ok(bytes) => Message::Binary(bytes.into()),
                Err(_) => return Err(End::Dropped),
            },
            None => Message::Text(text.into()),
        };
        self.ws.send(msg).await.map_err(|_| End::Dropped)
    }

    /// Sends a close frame, waits briefly for the client's reply, and reports the end.
    async fn close(&mut self, code: u16, reason: &str) -> End {
        let frame = CloseFrame {
            code: code.into(),
            reason: reason.into(),
        };
        if self.ws.close(Some(frame)).await.is_ok() {
            let _ = timeout(Duration::from_secs(2), async {
                while let Some(Ok(_)) = self.ws.next().await {}
            })
            .await;
        }
        End::ServerClosed {
            code,
            reason: reason.to_owned(),
        }
    }

    fn record(&self, op: Option<u64>, d: Value, at: Instant) {
        let conn = self.id;
        self.shared
            .update(|w| w.record_received(ReceivedPayload { conn, op, d, at }));
    }

    /// Updates the world once the connection is gone: the session becomes resumable or
    /// invalid depending on how it ended.
    fn finish(self, end: End) {
        let me = self.id;
        let session_id = match &self.auth {
            Auth::Session { id, .. } => Some(id.clone()),
            Auth::None => None,
        };
        tracing::debug!(conn = %me, ?end, "gateway connection ended");
        self.shared.update(|w| {
            let now = Instant::now();
            if let Some(entry) = w.conns.get_mut(&me) {
                entry.commands = None;
                entry.info.state = ConnectionState::Closed;
                entry.info.close = Some(match &end {
                    End::ClientClosed(code) => CloseInfo::Client { code: *code },
                    End::ServerClosed { code, reason } => CloseInfo::Server {
                        code: *code,
                        reason: reason.clone(),
                    },
                    End::Dropped | End::Shutdown | End::Superseded => CloseInfo::Dropped,
                });
            }
            let Some(s) = session_id.and_then(|id| w.sessions.get_mut(&id)) else {
                return;
            };
            if s.conn() != Some(me) {
                return;
            }
            s.status = match end {
                // gateway.mdx "Initiating a Disconnect": closing with 1000 or 1001
                // invalidates the session; another code or a TCP drop keeps it.
                End::ClientClosed(Some(code @ (1000 | 1001))) => Status::Invalid {
                    reason: format!("client closed with {code}"),
                },
                End::ServerClosed { code, .. } if !codes::keeps_session(code) => Status::Invalid {
                    reason: format!("closed with {code}"),
                },
                _ => Status::Disconnected { since: now },
            };
        });
    }
}

/// A non-dispatch payload in Discord's envelope (`s` and `t` null unless op 0).
pub(crate) fn envelope(op: u64, d: Value) -> String {
    json!({"op": op, "d": d, "s": Value::Null, "t": Value::Null}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_timeout_is_one_and_a_half_intervals() {
        assert_eq!(
            heartbeat_timeout(Duration::from_millis(1000)),
            Duration::from_millis(1500)
        );
    }
}
