//! Clients of the hub: one-shot HTTP requests and a WebSocket client that keeps the guild's
//! view (snapshot plus events) and checks the stream's seq rule as it reads.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::Occupancy;

/// One HTTP response.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Sends one request on a fresh connection; `None` when the connection fails or no response
/// arrives within 20 s.
pub async fn http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Option<Reply> {
    let uri: http::Uri = url.parse().ok()?;
    let authority = uri.authority()?.to_string();
    let mut builder = http::Request::builder()
        .method(method)
        .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header("host", &authority);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let req = builder.body(Full::new(Bytes::from(body))).ok()?;
    let exchange = async {
        let stream = TcpStream::connect(&authority).await.ok()?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .ok()?;
        let driver = tokio::spawn(conn);
        let res = sender.send_request(req).await.ok()?;
        let (parts, body) = res.into_parts();
        let body = body.collect().await.ok()?.to_bytes();
        driver.abort();
        Some(Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    };
    tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .ok()
        .flatten()
}

/// `GET url` and return only the status.
pub async fn http_get_status(url: &str) -> Option<u16> {
    http_request("GET", url, &[], Vec::new())
        .await
        .map(|r| r.status)
}

/// What a WebSocket client has learned about the guild.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Seq of the latest event applied (or of the snapshot/ack).
    pub seq: u64,
    /// Occupancy built from the snapshot and the events since.
    pub rooms: Occupancy,
    /// Whether the ack said `resumed`.
    pub resumed: bool,
    /// Events applied, as `(seq, event, payload)`.
    pub events: Vec<(u64, String, Value)>,
    /// Snapshots received.
    pub snapshots: u32,
    /// Events that contradict the view: a join of a user already in that channel, or a
    /// leave of a user not in it (a duplicate or out-of-order delivery).
    pub anomalies: Vec<Value>,
}

impl View {
    /// Panics, listing them, if any event contradicted the view (see [`View::anomalies`]).
    #[track_caller]
    pub fn assert_no_anomalies(&self) {
        assert!(
            self.anomalies.is_empty(),
            "double or out-of-order deliveries: {:?}",
            self.anomalies
        );
    }

    fn apply(&mut self, msg: &Value) {
        match msg["type"].as_str() {
            Some("snapshot") => {
                self.snapshots += 1;
                self.seq = msg["seq"].as_u64().unwrap_or(0);
                self.rooms.clear();
                for room in msg["payload"]["rooms"].as_array().into_iter().flatten() {
                    let Some(channel) = id(&room["channelId"]) else {
                        continue;
                    };
                    let members: std::collections::BTreeSet<u64> = room["members"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(id)
                        .collect();
                    if !members.is_empty() {
                        self.rooms.insert(channel, members);
                    }
                }
            }
            Some("event") => {
                let seq = msg["seq"].as_u64().expect("event seq");
                assert_eq!(
                    seq,
                    self.seq + 1,
                    "seq must increase by exactly 1 per event (after {}, got {msg})",
                    self.seq
                );
                self.seq = seq;
                let name = msg["event"].as_str().unwrap_or_default().to_owned();
                let p = &msg["payload"];
                match (name.as_str(), id(&p["channelId"]), id(&p["userId"])) {
                    ("voice.joined", Some(c), Some(u)) => {
                        let elsewhere = self.rooms.values().any(|set| set.contains(&u));
                        if elsewhere {
                            self.anomalies.push(msg.clone());
                        }
                        self.rooms.entry(c).or_default().insert(u);
                    }
                    ("voice.left", Some(c), Some(u)) => {
                        let present = self.rooms.get_mut(&c).is_some_and(|set| set.remove(&u));
                        if !present {
                            self.anomalies.push(msg.clone());
                        }
                        if self
                            .rooms
                            .get(&c)
                            .is_some_and(std::collections::BTreeSet::is_empty)
                        {
                            self.rooms.remove(&c);
                        }
                    }
                    ("room.deleted", Some(c), _) => {
                        self.rooms.remove(&c);
                    }
                    _ => {}
                }
                self.events.push((seq, name, p.clone()));
            }
            _ => {}
        }
    }
}

fn id(v: &Value) -> Option<u64> {
    v.as_str().and_then(|s| s.parse().ok())
}

/// A client of `GET /ws`.
#[derive(Debug)]
pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The view so far.
    pub view: View,
}

impl WsClient {
    /// Connects, authenticates (optionally resuming after `since`) and reads the ack.
    ///
    /// # Panics
    /// When the connection or the auth fails.
    pub async fn connect(url: &str, token: &str, since: Option<u64>) -> Self {
        let (mut stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket connect");
        let mut auth = json!({"type": "auth", "token": token});
        if let Some(since) = since {
            auth["since"] = json!(since);
            // A resumed client's view starts from what it already had.
        }
        stream
            .send(Message::text(auth.to_string()))
            .await
            .expect("send auth");
        let mut client = Self {
            stream,
            view: View::default(),
        };
        let ack = client.next_json().await.expect("auth ack");
        assert_eq!(ack["event"], "auth.ok", "auth refused: {ack}");
        client.view.resumed = ack["resumed"].as_bool().unwrap_or(false);
        client.view.seq = since.unwrap_or(0);
        client
    }

    /// Connects again after a lost connection, resuming after the `view`'s seq and keeping
    /// the view (a snapshot, if the hub cannot resume, replaces it as usual).
    ///
    /// # Panics
    /// When the connection or the auth fails.
    pub async fn reconnect(url: &str, token: &str, view: View) -> Self {
        let mut client = Self::connect(url, token, Some(view.seq)).await;
        client.view = View {
            resumed: client.view.resumed,
            ..view
        };
        client
    }

    /// Applies everything still readable until the socket ends, or panics after `timeout`.
    ///
    /// # Panics
    /// When the socket is still open after `timeout`.
    pub async fn read_to_end(&mut self, timeout: Duration) {
        let reading = async {
            while let Some(msg) = self.next_json().await {
                self.view.apply(&msg);
            }
        };
        assert!(
            tokio::time::timeout(timeout, reading).await.is_ok(),
            "the socket was still open after {timeout:?}"
        );
    }

    /// The next JSON text message (pings answered by tungstenite); `None` when the socket
    /// ends.
    pub async fn next_json(&mut self) -> Option<Value> {
        loop {
            match self.stream.next().await? {
                Ok(Message::Text(text)) => return serde_json::from_str(&text).ok(),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Reads and applies messages until `done(view)` holds.
    ///
    /// # Panics
    /// When the socket ends first or `timeout` passes.
    pub async fn read_until(
        &mut self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&View) -> bool,
    ) {
        let reading = async {
            while !done(&self.view) {
                let msg = self.next_json().await.unwrap_or_else(|| {
                    panic!(
                        "socket ended while waiting for {what}; view {:?}",
                        self.view.rooms
                    )
                });
                self.view.apply(&msg);
            }
        };
        if tokio::time::timeout(timeout, reading).await.is_err() {
            panic!("timed out waiting for {what}; view {:?}", self.view.rooms);
        }
    }

    /// Sends `msg` and returns the close code the hub then sends (`None` if the socket ends
    /// without a close frame or nothing arrives within 20 s).
    pub async fn send_and_wait_close(
        &mut self,
        msg: Message,
    ) -> Option<tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode> {
        self.stream.send(msg).await.ok()?;
        let wait = async {
            loop {
                match self.stream.next().await {
                    Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
                    Some(Ok(_)) => {}
                    _ => return None,
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), wait)
            .await
            .ok()
            .flatten()
    }

    /// Reads whatever arrives within `quiet` of silence and applies it.
    pub async fn drain(&mut self, quiet: Duration) {
        while let Ok(Some(msg)) = tokio::time::timeout(quiet, self.next_json()).await {
            self.view.apply(&msg);
        }
    }
}
