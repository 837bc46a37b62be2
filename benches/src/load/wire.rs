//! What the `fanout` coordinator and its client processes say to each other: one JSON
//! object per line, commands on the child's stdin, replies on its stdout.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::hist::SparseHistogram;

/// First channel id of the load events; phase `p` posts into channel `CHANNEL_BASE + p`.
pub const CHANNEL_BASE: u64 = 1_000;

/// Latency histograms are kept per phase, for this many phases.
pub const MAX_PHASES: usize = 4;

/// How a client process is set up (passed as one JSON argument).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerSpec {
    /// The hub (loopback only).
    pub target: SocketAddr,
    /// Clients this process opens.
    pub clients: usize,
    /// Global index of its first client (source addresses and `sub` derive from it).
    pub first_index: usize,
    /// Label of the [`hub_core::auth::TestIssuer`] key that signs the tokens.
    pub issuer_label: String,
    /// `iss` of the tokens.
    pub iss: String,
    /// `aud` of the tokens.
    pub aud: String,
    /// Percentage of this process's clients that stop reading in the slow phase.
    pub slow_pct: u32,
    /// Handshakes in flight at once.
    pub concurrency: usize,
}

/// Coordinator -> client process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// Reply [`Reply::Reached`] once every reading client has seen `seq` (or after
    /// `timeout_ms`).
    Await {
        /// The seq to reach.
        seq: u64,
        /// Give up after this long.
        timeout_ms: u64,
    },
    /// Every client drops its connection at a random moment within `window_ms` and
    /// reconnects with `since`.
    Storm {
        /// The jitter window.
        window_ms: u64,
    },
    /// The slow share stops (`true`) or resumes (`false`) reading.
    Slow {
        /// Stop reading?
        on: bool,
    },
    /// Reply [`Reply::Report`].
    Report,
    /// Close everything and exit.
    Exit,
}

/// Client process -> coordinator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// The connect phase is over.
    Ready {
        /// Clients authenticated.
        connected: usize,
        /// Clients that failed to connect or authenticate.
        failed: usize,
        /// Wall time of the connect phase, ms.
        connect_ms: u64,
        /// Largest `seq` in the acks.
        head: u64,
        /// First failure, for the operator.
        first_error: Option<String>,
    },
    /// Answer to [`Command::Await`].
    Reached {
        /// Whether every reading client got there.
        ok: bool,
        /// Reading clients still behind.
        behind: usize,
    },
    /// Answer to [`Command::Report`].
    Report(Box<WorkerReport>),
}

/// Everything a client process measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WorkerReport {
    /// Delivery latency (post -> receipt, µs), indexed `[phase][slow client?]`.
    pub latency: Vec<[SparseHistogram; 2]>,
    /// Per event: `(seq, deliveries, latest receipt µs, post time µs)`.
    pub per_seq: Vec<(u64, u64, u64, u64)>,
    /// Per client: the last seq seen (0 if none).
    pub last_seq: Vec<u64>,
    /// Per client: whether it is one of the slow share.
    pub slow: Vec<bool>,
    /// Events received twice (by seq) by one client.
    pub duplicates: u64,
    /// Seqs skipped by one client (a gap in its stream).
    pub gaps: u64,
    /// Reconnects answered `resumed: true`.
    pub resumed: u64,
    /// Reconnects answered `resumed: false` (a snapshot).
    pub snapshots: u64,
    /// Reconnects that failed.
    pub reconnect_failed: u64,
    /// Clients closed with 1013 (evicted as too slow).
    pub evicted: u64,
    /// Clients closed any other way.
    pub other_closes: u64,
    /// Wall time of the storm, from the command to the last client back, ms.
    pub storm_ms: u64,
}
