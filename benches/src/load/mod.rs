//! The `fanout` end-to-end load tool (issue 7): many WebSocket clients against a real hub,
//! signed events posted at a chosen rate, delivery latency, fan-out completion, loss, memory
//! and CPU measured from outside the hub.
//!
//! - [`scenario`]: the coordinator (one run against one hub, bounded in time).
//! - [`worker`]: a client process (the tool spreads clients over several, under the
//!   per-process fd limit).
//! - [`poster`]: signed `POST /internal/events` at a rate.
//! - [`launch`]: starting the hub under test and the client processes; loopback-only check.
//! - [`redis`]: the `redis-server` shared by hub replicas in the `--replicas` runs (issue 10).
//! - [`hist`], [`procfs`], [`wire`], [`report`]: histograms, `/proc` readings, the
//!   coordinator <-> process protocol, output.

pub mod hist;
pub mod launch;
pub mod poster;
pub mod procfs;
pub mod redis;
pub mod report;
pub mod scenario;
pub mod wire;
pub mod worker;
