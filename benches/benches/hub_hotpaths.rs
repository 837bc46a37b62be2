//! Hub hot paths (issue 7): encode-once broadcast to N queues, JWT verification cold and
//! cached, webhook HMAC verification, JSON envelope building.
//!
//! The broadcast group puts the hub's real pieces ([`Fanout`] + [`ClientQueue`] +
//! [`encode_event`]) beside the naive way (one `serde_json` encode per client, as the
//! `naive-hub` baseline does), so the ratio comes from one run. Each iteration also pops the
//! frame from every queue (what the per-client writers do), so queues never fill.
//!
//! Run: `cargo bench -p benches --bench hub_hotpaths`.

#![allow(
    missing_docs,
    reason = "criterion_group! generates undocumented functions"
)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hub_core::Secret;
use hub_core::auth::{
    JwtConfig, JwtOptions, JwtVerifier, KeySource, TestIssuer, WebhookVerifier, sign_webhook,
};
use hub_core::hub::fanout::Fanout;
use hub_core::hub::stream::encode_event;
use hub_core::hub::{ClientQueue, Emitted};

const GUILD: u64 = 1_100_000_000_000_000_001;
const MAX_QUEUE: usize = 1 << 20;

fn event() -> Emitted {
    Emitted::VoiceJoined {
        channel_id: 1_200_000_000_000_000_042,
        user_id: 1_300_000_000_000_000_007,
    }
}

fn naive_encode(seq: u64) -> String {
    serde_json::json!({
        "v": 1, "type": "event", "event": "voice.joined",
        "payload": {"guildId": GUILD.to_string(), "channelId": "1200000000000000042",
                    "userId": "1300000000000000007"},
        "ts": 1_764_000_000_000_i64, "seq": seq,
    })
    .to_string()
}

fn broadcast(c: &mut Criterion) {
    let mut g = c.benchmark_group("broadcast");
    for n in [100usize, 1_000, 10_000] {
        g.throughput(Throughput::Elements(n as u64));
        let queues: Vec<Arc<ClientQueue>> = (0..n).map(|_| Arc::new(ClientQueue::new())).collect();
        let mut fanout = Fanout::new();
        for q in &queues {
            fanout.subscribe(q.clone());
        }
        let mut seq = 0;
        g.bench_with_input(BenchmarkId::new("encode_once_fanout", n), &n, |b, _| {
            b.iter(|| {
                seq += 1;
                let frame = encode_event(GUILD, &event(), 1_764_000_000_000, seq);
                let d = fanout.publish(&frame, MAX_QUEUE);
                for q in &queues {
                    black_box(q.pop());
                }
                d
            });
        });
        let mut seq = 0;
        g.bench_with_input(
            BenchmarkId::new("naive_encode_per_client", n),
            &n,
            |b, &n| {
                b.iter(|| {
                    seq += 1;
                    let mut bytes = 0;
                    for _ in 0..n {
                        bytes += black_box(naive_encode(seq)).len();
                    }
                    bytes
                });
            },
        );
    }
    g.finish();
}

fn jwt(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer = TestIssuer::new("bench-key");
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, TestIssuer::jwks(&[&issuer])).expect("write jwks");
    let cfg = JwtConfig {
        issuer: "https://app.example".into(),
        audience: "spell-coven".into(),
        keys: KeySource::File(path),
    };
    let now = 1_764_000_000;
    let token = issuer.token_for("https://app.example", "spell-coven", "user-1", now + 3600);
    let cold = JwtVerifier::with_options(
        cfg.clone(),
        JwtOptions {
            token_cache_entries: 0,
            ..JwtOptions::default()
        },
    )
    .expect("verifier");
    let cached = JwtVerifier::new(cfg).expect("verifier");
    rt.block_on(async {
        cold.load_at(now).await.expect("load");
        cached.load_at(now).await.expect("load");
        cached.verify(&token, now).await.expect("valid token");
    });
    let mut g = c.benchmark_group("jwt_verify");
    g.bench_function("cold_es256", |b| {
        b.iter(|| rt.block_on(cold.verify(black_box(&token), now)).is_ok());
    });
    g.bench_function("cached_same_token", |b| {
        b.iter(|| rt.block_on(cached.verify(black_box(&token), now)).is_ok());
    });
    g.finish();
}

fn hmac(c: &mut Criterion) {
    let secret = "bench-hub-secret-0123456789abcdef-0123456789";
    let verifier = WebhookVerifier::new(Secret::new(secret), None);
    let body = br#"{"id":"evt-123456","event":"voice.joined","payload":{"guildId":"1100000000000000001","channelId":"1200000000000000042","userId":"1300000000000000007"}}"#;
    let ts = 1_764_000_000_i64;
    let sig = sign_webhook(secret.as_bytes(), ts, body);
    let ts_header = ts.to_string();
    let mut g = c.benchmark_group("webhook_hmac");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("verify", |b| {
        b.iter(|| {
            verifier
                .verify(
                    Some(ts_header.as_bytes()),
                    Some(sig.as_bytes()),
                    black_box(body),
                    ts,
                )
                .is_ok()
        });
    });
    g.finish();
}

fn envelope(c: &mut Criterion) {
    let mut g = c.benchmark_group("envelope");
    let ev = event();
    g.bench_function("encode_event", |b| {
        b.iter(|| encode_event(GUILD, black_box(&ev), 1_764_000_000_000, 42).len());
    });
    g.bench_function("serde_json_value", |b| {
        b.iter(|| naive_encode(black_box(42)).len());
    });
    g.finish();
}

criterion_group!(benches, broadcast, jwt, hmac, envelope);
criterion_main!(benches);
