//! The `gateway-latency` tool (issue 7, "gateway dispatch to browser client p99 under 5 ms at
//! 500 events/s"): discord-sim dispatches VOICE_STATE_UPDATE, the real `spell-coven-worker`
//! forwards it to the real `spell-coven-api`, which fans it out to WebSocket clients; the same
//! run then posts the same number of signed events straight to the hub, so the difference
//! of the two p99s is the worker's share.
//!
//! - [`args`] parses the flags.
//! - [`stack`] runs the sim in-process, and the hub and worker as child processes, on
//!   loopback.
//! - [`clients`] holds authenticated WebSocket clients recording receipt instants.
//! - [`post`] is the signed-webhook poster of the direct path.
//! - [`ledger`] holds the event plan and the FIFO matching of receipts to dispatches.
//! - [`report`] prints the table and the JSON line.
//! - [`run`] runs the phases.

pub mod args;
pub mod clients;
pub mod ledger;
pub mod post;
pub mod report;
pub mod run;
pub mod stack;
