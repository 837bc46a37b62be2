//! `spell-coven-demo`: the whole bridge on loopback with a live dashboard (being written).
fn main() {}
