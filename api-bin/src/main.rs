//! `spell-coven-api`: configuration and wiring only; the logic lives in `hub-core`.
fn main() {}
