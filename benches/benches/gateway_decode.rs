//! Gateway decode throughput (filled by issue 2).
fn main() {}
