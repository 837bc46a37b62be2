//! One WebSocket connection: auth, then ack + replay/snapshot + live events.
//!
//! One task per connection running one `select!` loop (no second task, no channel): it
//! reads client frames, drains the client's queue (`feed` every queued frame, then one
//! `flush`), and pings on a timer. Writes are never cancelled by a read; a write stuck on a
//! client that stopped reading is abandoned only when the queue is closed (eviction with
//! 1013, shutdown with 1001).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::{Instant, MissedTickBehavior, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, Utf8Bytes};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};

use super::close::{AUTH_TIMEOUT, GOING_AWAY, INTERNAL_ERROR, UNAUTHORIZED, close_for_error};
use super::message::parse_auth;
use super::{WsContext, websocket_config};
use crate::auth::JwtError;
use crate::hub::now_unix_ms;
use crate::hub::{ClientQueue, CloseOrder, SessionGuard, SubscribeError, Subscription};
use crate::metrics::inc;

type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// Most frames fed before one flush (Centrifuge caps a batch at 16; small frames are cheap).
const BATCH_MAX: usize = 64;
/// Time spent reading (and discarding) what the client still sends after our close frame,
/// so the kernel closes with FIN rather than RST and the client reads the close frame.
const LINGER: Duration = Duration::from_secs(2);

/// How a session ends.
enum End {
    /// The connection is gone: nothing can be sent.
    Gone,
    /// The client sent a close frame: tungstenite queued the reply; flush it.
    PeerClosed,
    /// Send this close frame.
    Close(CloseOrder),
}

/// Removes a subscriber from the fan-out when dropped.
struct Unsubscribe<'a> {
    hub: &'a crate::hub::Hub,
    id: u64,
}

impl Drop for Unsubscribe<'_> {
    fn drop(&mut self) {
        self.hub.unsubscribe(self.id);
    }
}

const fn order(code: u16, reason: &'static str) -> CloseOrder {
    CloseOrder { code, reason }
}

/// Runs one connection to its end. `_guard` keeps it counted until then.
pub(super) async fn run(on_upgrade: OnUpgrade, ctx: Arc<WsContext>, _guard: SessionGuard) {
    let upgraded = match on_upgrade.await {
        Ok(upgraded) => upgraded,
        Err(e) => {
            tracing::debug!(error = %e, "websocket upgrade failed");
            return;
        }
    };
    let mut ws = WebSocketStream::from_raw_socket(
        TokioIo::new(upgraded),
        Role::Server,
        Some(websocket_config()),
    )
    .await;
    let end = match authenticate(&mut ws, &ctx).await {
        Ok(since) => match ctx.hub.subscribe(since, now_unix_ms()).await {
            Ok(sub) => {
                let Subscription {
                    id,
                    queue,
                    preamble,
                } = sub;
                // Leaves the fan-out however the session ends (also on a panic).
                let _unsubscribe = Unsubscribe { hub: &ctx.hub, id };
                serve(&mut ws, &ctx, preamble, &queue).await
            }
            Err(SubscribeError::ShuttingDown) => {
                End::Close(order(GOING_AWAY, "server shutting down"))
            }
            Err(SubscribeError::Unavailable) => {
                End::Close(order(INTERNAL_ERROR, "event stream unavailable"))
            }
        },
        Err(end) => end,
    };
    finish(&mut ws, end, &ctx).await;
}

/// Waits for the auth message and verifies its token. Returns the client's `since`.
async fn authenticate(ws: &mut Socket, ctx: &WsContext) -> Result<Option<u64>, End> {
    let metrics = &ctx.metrics;
    let mut shutdown = ctx.hub.shutdown_signal();
    // Contract §3.1: no valid auth within 10 s -> 4408.
    let deadline = tokio::time::sleep(ctx.settings.auth_timeout);
    tokio::pin!(deadline);
    let timed_out = || {
        inc(&metrics.auth_failed_timeout);
        End::Close(order(AUTH_TIMEOUT, "auth timeout"))
    };
    let text = loop {
        let msg = tokio::select! {
            () = &mut deadline => return Err(timed_out()),
            _ = shutdown.wait_for(|down| *down) => {
                return Err(End::Close(order(GOING_AWAY, "server shutting down")));
            }
            msg = ws.next() => msg,
        };
        match msg {
            None => return Err(End::Gone),
            Some(Err(e)) => return Err(close_for_error(&e).map_or(End::Gone, End::Close)),
            Some(Ok(Message::Text(text))) => break text,
            // Pings are answered by tungstenite on the next read, before auth too (§3.6).
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            Some(Ok(Message::Close(_))) => return Err(End::PeerClosed),
            Some(Ok(Message::Binary(_))) => {
                inc(&metrics.auth_failed_malformed);
                return Err(End::Close(order(
                    UNAUTHORIZED,
                    "first message must be an auth message",
                )));
            }
        }
    };
    let Some(auth) = parse_auth(&text) else {
        inc(&metrics.auth_failed_malformed);
        return Err(End::Close(order(
            UNAUTHORIZED,
            "first message must be an auth message",
        )));
    };
    drop(text);
    let now_secs = now_unix_ms() / 1000;
    let verified = tokio::select! {
        () = &mut deadline => return Err(timed_out()),
        result = ctx.jwt.verify(&auth.token, now_secs) => result,
    };
    match verified {
        Ok(_claims) => {
            inc(&metrics.auth_ok);
            Ok(auth.since)
        }
        // The keys cannot be loaded: not the client's fault, it should retry (1011).
        Err(JwtError::KeysUnavailable) => {
            inc(&metrics.auth_failed_invalid);
            Err(End::Close(order(INTERNAL_ERROR, "auth keys unavailable")))
        }
        Err(e) => {
            inc(&metrics.auth_failed_invalid);
            tracing::debug!(reason = e.reason(), "websocket auth refused");
            Err(End::Close(order(UNAUTHORIZED, "invalid token")))
        }
    }
}

/// Sends the preamble, then live events until the session ends.
async fn serve(ws: &mut Socket, ctx: &WsContext, preamble: Vec<Bytes>, queue: &ClientQueue) -> End {
    // The preamble (ack, then up to REPLAY_MAX_EVENTS events or a snapshot) goes straight
    // to the socket: through tungstenite it would leave its output buffer, which never
    // shrinks, as large as the preamble for the connection's whole life. A pong tungstenite
    // queued during auth is flushed first so bytes stay in order. Interrupted mid-frame
    // (eviction, shutdown) the stream cannot carry a close frame any more: drop it.
    if ws.flush().await.is_err() {
        return End::Gone;
    }
    let stall = ctx.settings.write_timeout;
    let written = tokio::select! {
        biased;
        result = write_preamble(ws.get_mut(), preamble) => result,
        _ = until_closed(queue) => return End::Gone,
        () = tokio::time::sleep(stall) => return End::Gone,
    };
    if written.is_err() {
        return End::Gone;
    }
    let period = ctx.settings.ping_interval;
    let mut ping = tokio::time::interval_at(Instant::now() + period, period);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // Liveness: anything received since the last ping counts as an answer.
    let mut heard = true;
    loop {
        if let Some(closed) = queue.close_order() {
            return End::Close(closed);
        }
        let has_frames = queue.has_frames();
        tokio::select! {
            () = queue.changed(), if !has_frames => {}
            () = std::future::ready(()), if has_frames => {
                let batch = std::iter::from_fn(|| queue.pop()).take(BATCH_MAX);
                if let Err(end) = guarded(write_frames(ws, batch), queue, stall).await {
                    return end;
                }
            }
            msg = ws.next() => match msg {
                None => return End::Gone,
                Some(Err(e)) => return close_for_error(&e).map_or(End::Gone, End::Close),
                Some(Ok(Message::Close(_))) => return End::PeerClosed,
                // After auth every client message is ignored (unknown types, a second auth);
                // each one still proves the client alive.
                Some(Ok(_)) => heard = true,
            },
            _ = ping.tick() => {
                if !heard {
                    return End::Close(order(GOING_AWAY, "ping timeout"));
                }
                heard = false;
                let ping = send_flushed(ws, Message::Ping(Bytes::new()));
                if let Err(end) = guarded(ping, queue, stall).await {
                    return end;
                }
            }
        }
    }
}

/// Feeds every frame (shared bytes, no re-encoding, no UTF-8 re-check: the hub encoded
/// them from `serde_json`), then flushes once.
async fn write_frames(
    ws: &mut Socket,
    frames: impl Iterator<Item = Bytes>,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    for frame in frames {
        ws.feed(Message::Frame(Frame::message(
            frame,
            OpCode::Data(Data::Text),
            true,
        )))
        .await?;
    }
    ws.flush().await
}

/// Preamble frames are gathered into writes of about this many bytes.
const COALESCE: usize = 16 * 1024;

/// Writes whole text frames to the raw socket, coalesced into few writes. The scratch buffer
/// is freed on return.
async fn write_preamble(io: &mut TokioIo<Upgraded>, frames: Vec<Bytes>) -> std::io::Result<()> {
    let mut chunk = Vec::new();
    for frame in frames {
        push_text_header(&mut chunk, frame.len());
        if frame.len() > COALESCE {
            io.write_all(&chunk).await?;
            chunk.clear();
            io.write_all(&frame).await?;
        } else {
            chunk.extend_from_slice(&frame);
            if chunk.len() >= COALESCE {
                io.write_all(&chunk).await?;
                chunk.clear();
            }
        }
    }
    if !chunk.is_empty() {
        io.write_all(&chunk).await?;
    }
    io.flush().await
}

/// The header of a final, unmasked text frame (RFC 6455 §5.2; a server never masks, §5.1).
fn push_text_header(out: &mut Vec<u8>, len: usize) {
    out.push(0x81);
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

async fn send_flushed(
    ws: &mut Socket,
    msg: Message,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    ws.feed(msg).await?;
    ws.flush().await
}

/// Runs a write unless the queue is closed first (-> that close frame) or the write does
/// not finish within `stall` ([`super::WsSettings::write_timeout`]): a client that reads
/// nothing and gets no new events to be evicted by is dropped.
async fn guarded(
    write: impl Future<Output = Result<(), tokio_tungstenite::tungstenite::Error>>,
    queue: &ClientQueue,
    stall: Duration,
) -> Result<(), End> {
    tokio::select! {
        biased;
        result = write => result.map_err(|_| End::Gone),
        closed = until_closed(queue) => Err(End::Close(closed)),
        () = tokio::time::sleep(stall) => Err(End::Gone),
    }
}

/// Resolves once the queue is closed (eviction, shutdown).
async fn until_closed(queue: &ClientQueue) -> CloseOrder {
    loop {
        if let Some(closed) = queue.close_order() {
            return closed;
        }
        queue.changed().await;
    }
}

/// Ends the connection: sends the close frame (bounded in time), half-closes, and reads
/// until the client closes too (bounded), so the close frame is not lost to a TCP reset.
async fn finish(ws: &mut Socket, end: End, ctx: &WsContext) {
    let close_timeout = ctx.settings.close_timeout;
    match end {
        End::Gone => return,
        End::PeerClosed => {
            let _ = timeout(close_timeout, ws.flush()).await;
        }
        End::Close(closed) => {
            tracing::debug!(
                code = closed.code,
                reason = closed.reason,
                "closing websocket"
            );
            let frame = CloseFrame {
                code: CloseCode::from(closed.code),
                reason: Utf8Bytes::from_static(closed.reason),
            };
            if !matches!(
                timeout(close_timeout, ws.send(Message::Close(Some(frame)))).await,
                Ok(Ok(()))
            ) {
                return;
            }
        }
    }
    let io = ws.get_mut();
    let _ = timeout(LINGER, async {
        let _ = io.shutdown().await;
        let mut sink = vec![0u8; 512];
        while matches!(io.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_headers_match_tungstenite_framing() {
        for len in [0usize, 1, 125, 126, 127, 65_535, 65_536, 100_000] {
            let payload = vec![b'a'; len];
            let mut ours = Vec::new();
            push_text_header(&mut ours, len);
            ours.extend_from_slice(&payload);
            let mut theirs = Vec::new();
            let frame = Frame::message(payload, OpCode::Data(Data::Text), true);
            assert!(frame.format(&mut theirs).is_ok());
            assert_eq!(ours, theirs, "length {len}");
        }
    }
}
