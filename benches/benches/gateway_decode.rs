//! Gateway decode throughput: gateway-proto against twilight-gateway on the same bytes.
//!
//! Both sides get the message text exactly as it arrives and the same interest: the events
//! a voice bridge parses (READY, RESUMED, GUILD_CREATE/DELETE, VOICE_STATE_UPDATE,
//! CHANNEL_CREATE/UPDATE/DELETE). Unwanted events are dropped by both. twilight's `parse`
//! takes an owned `String`, so its side pays one copy of the message, as its shard does when
//! it turns a WebSocket payload into a `String`.
//!
//! Run: `cargo bench -p benches --bench gateway_decode`, then
//! `cargo run -p benches --bin bench-report` prints the ratios.

#![allow(
    missing_docs,
    reason = "criterion_group! generates undocumented functions"
)]

use std::hint::black_box;

use benches::{gateway_corpus, zlib_stream};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gateway_proto::{Compression, Decompressor, EventFilter, EventKinds, Unwanted, codec};
use twilight_gateway::EventTypeFlags;

fn ours(filter: &EventFilter, bytes: &[u8]) -> bool {
    let frame = codec::decode_frame(bytes).expect("corpus frames decode");
    let name = frame.name.as_deref().unwrap_or_default();
    let decision = filter.decide(name);
    codec::decode_dispatch(name, frame.data, decision)
        .expect("corpus dispatches decode")
        .is_some()
}

fn twilight(flags: EventTypeFlags, text: &str) -> bool {
    twilight_gateway::parse(text.to_owned(), flags)
        .expect("corpus frames parse")
        .is_some()
}

fn decode(c: &mut Criterion) {
    let filter = EventFilter::new(EventKinds::all(), Unwanted::Drop);
    let flags = EventTypeFlags::READY
        | EventTypeFlags::RESUMED
        | EventTypeFlags::GUILD_CREATE
        | EventTypeFlags::GUILD_DELETE
        | EventTypeFlags::VOICE_STATE_UPDATE
        | EventTypeFlags::CHANNEL_CREATE
        | EventTypeFlags::CHANNEL_UPDATE
        | EventTypeFlags::CHANNEL_DELETE;

    let mut group = c.benchmark_group("decode");
    for sample in gateway_corpus() {
        // Both sides must agree on what is wanted, or the comparison means nothing.
        assert_eq!(
            ours(&filter, sample.json.as_bytes()),
            sample.wanted,
            "{}",
            sample.name
        );
        assert_eq!(
            twilight(flags, &sample.json),
            sample.wanted,
            "{}",
            sample.name
        );

        group.throughput(Throughput::Bytes(sample.json.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("gateway-proto", sample.name),
            &sample.json,
            |b, json| {
                b.iter(|| ours(&filter, black_box(json.as_bytes())));
            },
        );
        group.bench_with_input(
            BenchmarkId::new("twilight", sample.name),
            &sample.json,
            |b, json| {
                b.iter(|| twilight(flags, black_box(json)));
            },
        );
    }
    group.finish();
}

fn inflate(c: &mut Criterion) {
    let corpus = gateway_corpus();
    // A realistic connection: one big GUILD_CREATE, then a stream of small events.
    let mut messages: Vec<&str> = vec![&corpus[0].json];
    for _ in 0..200 {
        messages.extend(corpus[1..].iter().map(|s| s.json.as_str()));
    }
    let frames = zlib_stream(&messages);
    let inflated: usize = messages.iter().map(|m| m.len()).sum();

    let mut group = c.benchmark_group("inflate");
    group.throughput(Throughput::Bytes(inflated as u64));
    group.bench_function("zlib-stream", |b| {
        b.iter(|| {
            let mut d = Decompressor::new(Compression::ZlibStream, 8 << 20, 32 << 20)
                .expect("zlib feature on");
            let mut total = 0;
            for frame in &frames {
                total += d
                    .push(black_box(frame))
                    .expect("valid stream")
                    .map_or(0, <[u8]>::len);
            }
            assert_eq!(total, inflated);
        });
    });
    group.finish();
}

criterion_group!(benches, decode, inflate);
criterion_main!(benches);
