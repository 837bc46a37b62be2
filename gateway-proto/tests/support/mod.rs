//! A scripted fake Discord peer on a virtual clock (quinn `Pair` / str0m
//! `progress` style). The harness executes every `Transmit`, lets the peer
//! answer, and moves simulated time from timer to timer, so tests run
//! instantly and deterministically.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses part of the harness"
)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use gateway_proto::{
    Compression, Config, ConfigBuilder, Event, Gateway, InputError, Intents, Transmit,
};
use serde_json::{Value, json};

pub const INTERVAL_MS: u64 = 41_250;
pub const INTERVAL: Duration = Duration::from_millis(INTERVAL_MS);
pub const RESUME_URL: &str = "wss://resume.example.gg";

/// How the fake Discord behaves.
#[derive(Debug, Clone)]
pub struct Script {
    /// Accept connections (else report connect failed).
    pub accept: bool,
    /// Accept connections to URLs starting with this (others fail), if set.
    pub accept_only_prefix: Option<String>,
    /// Never answer a connect at all (neither opened nor failed).
    pub hang_connect: bool,
    /// Send HELLO when a connection opens.
    pub hello: bool,
    /// Answer heartbeats with ACKs.
    pub ack: bool,
    /// Answer IDENTIFY with READY.
    pub ready: bool,
    /// Answer RESUME with RESUMED (after replaying nothing).
    pub resumed: bool,
    /// Echo our close frames.
    pub echo_close: bool,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            accept: true,
            accept_only_prefix: None,
            hang_connect: false,
            hello: true,
            ack: true,
            ready: true,
            resumed: true,
            echo_close: true,
        }
    }
}

/// The transport as the driver sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wire {
    None,
    Connecting(String),
    Open(String),
    Closing,
}

/// Something the client did, with the time it did it.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Connect(String),
    Send(Value),
    Close(u16),
    Drop,
}

pub struct Harness {
    pub gw: Gateway,
    pub start: Instant,
    pub now: Instant,
    pub script: Script,
    pub wire: Wire,
    /// Everything the client did, in order.
    pub log: Vec<(Instant, Out)>,
    pub events: Vec<(Instant, Event)>,
    pub errors: Vec<InputError>,
    /// Frames queued from the peer to the client.
    pub inbox: VecDeque<String>,
    /// Next seq the peer assigns.
    pub next_seq: u64,
    pub sessions_started: u32,
}

pub fn base_config() -> ConfigBuilder {
    Config::builder("test-token", Intents::GUILDS | Intents::GUILD_VOICE_STATES)
        .compression(Compression::None)
        .seed(1234)
}

impl Harness {
    pub fn new(config: Config) -> Self {
        Self::with_script(config, Script::default())
    }

    pub fn with_script(config: Config, script: Script) -> Self {
        #[allow(
            clippy::disallowed_methods,
            reason = "one arbitrary origin for the virtual clock; time then moves only by `advance`"
        )]
        let start = Instant::now();
        Self {
            gw: Gateway::new(config),
            start,
            now: start,
            script,
            wire: Wire::None,
            log: Vec::new(),
            events: Vec::new(),
            errors: Vec::new(),
            inbox: VecDeque::new(),
            next_seq: 1,
            sessions_started: 0,
        }
    }

    /// Start the machine and run until the session is connected.
    pub fn connected(config: Config) -> Self {
        let mut h = Self::new(config);
        h.start();
        assert_eq!(h.gw.state(), gateway_proto::StateKind::Connected);
        h
    }

    pub fn start(&mut self) {
        self.gw.start(self.now).unwrap();
        self.settle();
    }

    fn record(&mut self, result: Result<(), InputError>) {
        if let Err(e) = result {
            self.errors.push(e);
        }
    }

    /// Execute transmits and deliver peer frames until nothing moves.
    pub fn settle(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(t) = self.gw.poll_transmit() {
                progressed = true;
                self.on_transmit(t);
            }
            while let Some(e) = self.gw.poll_event() {
                progressed = true;
                self.events.push((self.now, e));
            }
            if let Some(frame) = self.inbox.pop_front() {
                progressed = true;
                if matches!(self.wire, Wire::Open(_)) {
                    let r = self.gw.handle_text(&frame, self.now);
                    self.record(r);
                }
            }
            if !progressed {
                break;
            }
        }
    }

    fn on_transmit(&mut self, t: Transmit) {
        match t {
            Transmit::Connect { url } => {
                self.log.push((self.now, Out::Connect(url.clone())));
                self.wire = Wire::Connecting(url.clone());
                if self.script.hang_connect {
                    return;
                }
                let ok = self.script.accept
                    && self
                        .script
                        .accept_only_prefix
                        .as_ref()
                        .is_none_or(|p| url.starts_with(p.as_str()));
                if ok {
                    self.wire = Wire::Open(url);
                    let r = self.gw.handle_connected(self.now);
                    self.record(r);
                    if self.script.hello {
                        self.inbox.clear();
                        self.push(json!({"op": 10, "d": {"heartbeat_interval": INTERVAL_MS}}));
                    }
                } else {
                    self.wire = Wire::None;
                    let r = self.gw.handle_connect_failed(self.now);
                    self.record(r);
                }
            }
            Transmit::Send(text) => {
                assert!(text.len() <= 4096, "payload over 4096 bytes was sent");
                assert!(
                    matches!(self.wire, Wire::Open(_)),
                    "send without a transport"
                );
                let v: Value = serde_json::from_str(&text).unwrap();
                self.log.push((self.now, Out::Send(v.clone())));
                match v["op"].as_u64() {
                    Some(1) if self.script.ack => self.push(json!({"op": 11})),
                    Some(2) if self.script.ready => {
                        self.sessions_started += 1;
                        self.next_seq = 1;
                        let id = format!("session-{}", self.sessions_started);
                        self.dispatch_later(
                            "READY",
                            json!({"v": 10, "user": {"id": "1", "username": "bot", "bot": true},
                                   "guilds": [{"id": "100", "unavailable": true}],
                                   "session_id": id, "resume_gateway_url": RESUME_URL}),
                        );
                    }
                    Some(6) if self.script.resumed => {
                        self.dispatch_later("RESUMED", json!(null));
                    }
                    _ => {}
                }
            }
            Transmit::Close { code, .. } => {
                self.log.push((self.now, Out::Close(code)));
                self.inbox.clear();
                if self.script.echo_close {
                    self.wire = Wire::None;
                    let r = self.gw.handle_closed(Some(code), "", self.now);
                    self.record(r);
                } else {
                    self.wire = Wire::Closing;
                }
            }
            Transmit::Drop => {
                self.log.push((self.now, Out::Drop));
                self.inbox.clear();
                self.wire = Wire::None;
            }
            _ => {}
        }
    }

    pub fn push(&mut self, v: Value) {
        self.inbox.push_back(v.to_string());
    }

    /// Queue a dispatch from the peer, returns its seq.
    pub fn dispatch_later(&mut self, name: &str, d: Value) -> u64 {
        let s = self.next_seq;
        self.next_seq += 1;
        self.push(json!({"op": 0, "s": s, "t": name, "d": d}));
        s
    }

    /// Deliver a dispatch now.
    pub fn dispatch(&mut self, name: &str, d: Value) -> u64 {
        let s = self.dispatch_later(name, d);
        self.settle();
        s
    }

    /// Deliver a raw text frame now.
    pub fn server(&mut self, v: Value) {
        self.push(v);
        self.settle();
    }

    /// Discord closes the connection with `code` (`None`: TCP dropped).
    pub fn server_close(&mut self, code: Option<u16>) {
        self.inbox.clear();
        self.wire = Wire::None;
        let r = self.gw.handle_closed(code, "", self.now);
        self.record(r);
        self.settle();
    }

    /// Move virtual time forward by `d`, firing every timer on the way.
    pub fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        self.advance_to(target);
    }

    pub fn advance_to(&mut self, target: Instant) {
        let mut guard = 0;
        while let Some(at) = self.gw.poll_timeout() {
            if at > target {
                break;
            }
            guard += 1;
            assert!(guard < 100_000, "timer loop does not make progress");
            self.now = self.now.max(at);
            self.gw.handle_timeout(self.now);
            self.settle();
        }
        self.now = self.now.max(target);
    }

    /// Run until `pred` holds on the harness (bounded).
    pub fn run_until(&mut self, limit: Duration, pred: impl Fn(&Self) -> bool) {
        let end = self.now + limit;
        while !pred(self) {
            let Some(at) = self.gw.poll_timeout() else {
                panic!("machine idle before condition held");
            };
            assert!(at <= end, "condition not reached within {limit:?}");
            self.now = self.now.max(at);
            self.gw.handle_timeout(self.now);
            self.settle();
        }
    }

    // ----- queries -----

    pub fn sent(&self) -> Vec<(Instant, Value)> {
        self.log
            .iter()
            .filter_map(|(t, o)| match o {
                Out::Send(v) => Some((*t, v.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn sent_op(&self, op: u64) -> Vec<(Instant, Value)> {
        self.sent()
            .into_iter()
            .filter(|(_, v)| v["op"] == op)
            .collect()
    }

    pub fn connects(&self) -> Vec<(Instant, String)> {
        self.log
            .iter()
            .filter_map(|(t, o)| match o {
                Out::Connect(u) => Some((*t, u.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn count(&self, pred: impl Fn(&Out) -> bool) -> usize {
        self.log.iter().filter(|(_, o)| pred(o)).count()
    }

    pub fn reconnect_events(
        &self,
    ) -> Vec<(Instant, gateway_proto::ReconnectReason, bool, Duration)> {
        self.events
            .iter()
            .filter_map(|(t, e)| match e {
                Event::Reconnecting {
                    reason,
                    resume,
                    delay,
                } => Some((*t, *reason, *resume, *delay)),
                _ => None,
            })
            .collect()
    }

    pub fn clear_log(&mut self) {
        self.log.clear();
        self.events.clear();
    }
}
