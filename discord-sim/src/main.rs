//! `discord-sim`: run the fake Discord on loopback.
fn main() {}
