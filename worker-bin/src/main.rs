//! `spell-coven-worker`: configuration and wiring only; the logic lives in the `worker` library.
fn main() {}
