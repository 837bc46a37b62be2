//! Transport compression through the machine: zlib-stream (split frames,
//! messages over 64 KiB and over 1 MiB, caps, a fresh context per
//! connection) and zstd-stream.

#![cfg(feature = "zlib")]

use std::time::{Duration, Instant};

use flate2::{Compress, FlushCompress};
use gateway_proto::{
    Compression, Config, DispatchEvent, Event, Gateway, InputError, Intents, ReconnectReason,
    StateKind, Transmit,
};
use serde_json::{Value, json};

/// Discord's side of one zlib-stream connection.
struct ZlibPeer {
    deflate: Compress,
}

impl ZlibPeer {
    fn new() -> Self {
        Self {
            deflate: Compress::new(flate2::Compression::default(), true),
        }
    }

    /// One message, compressed and sync-flushed (ends with 00 00 ff ff).
    fn message(&mut self, v: &Value) -> Vec<u8> {
        let input = v.to_string().into_bytes();
        let mut out = Vec::with_capacity(input.len() / 2 + 1024);
        let start = self.deflate.total_in();
        loop {
            let consumed = usize::try_from(self.deflate.total_in() - start).unwrap();
            if out.len() == out.capacity() {
                out.reserve(64 * 1024);
            }
            self.deflate
                .compress_vec(&input[consumed..], &mut out, FlushCompress::Sync)
                .unwrap();
            let consumed = usize::try_from(self.deflate.total_in() - start).unwrap();
            if consumed == input.len() && out.len() < out.capacity() {
                break;
            }
        }
        assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
        out
    }
}

#[allow(clippy::disallowed_methods, reason = "virtual clock origin")]
fn epoch() -> Instant {
    Instant::now()
}

fn config(compression: Compression) -> Config {
    Config::builder("tok", Intents::GUILDS | Intents::GUILD_VOICE_STATES)
        .compression(compression)
        .seed(5)
        .build()
}

fn drain(gw: &mut Gateway) -> (Vec<Transmit>, Vec<Event>) {
    let mut t = Vec::new();
    let mut e = Vec::new();
    while let Some(x) = gw.poll_transmit() {
        t.push(x);
    }
    while let Some(x) = gw.poll_event() {
        e.push(x);
    }
    (t, e)
}

fn big_guild(channels: usize) -> Value {
    let channels: Vec<Value> = (0..channels)
        .map(|i| {
            json!({"id": format!("{}", 1_000_000 + i), "type": 2, "name": format!("voice channel number {i}"),
                   "parent_id": "42", "position": i, "user_limit": 0,
                   "topic": "some padding text that makes the message larger than it needs to be"})
        })
        .collect();
    json!({"op": 0, "s": 2, "t": "GUILD_CREATE",
           "d": {"id": "100", "name": "g", "channels": channels,
                 "voice_states": [{"user_id": "7", "channel_id": "1000000", "session_id": "x", "self_mute": true}]}})
}

/// Run a zlib session to READY; returns the gateway, the peer and the time.
fn ready_session(config: Config) -> (Gateway, ZlibPeer, Instant) {
    let now = epoch();
    let mut gw = Gateway::new(config);
    gw.start(now).unwrap();
    let (t, _) = drain(&mut gw);
    let Transmit::Connect { url } = &t[0] else {
        panic!("{t:?}")
    };
    assert!(
        url.ends_with("?v=10&encoding=json&compress=zlib-stream"),
        "{url}"
    );
    gw.handle_connected(now).unwrap();
    let mut peer = ZlibPeer::new();
    let hello = peer.message(&json!({"op": 10, "d": {"heartbeat_interval": 41250}}));
    gw.handle_binary(&hello, now).unwrap();
    let (t, _) = drain(&mut gw);
    assert!(matches!(&t[0], Transmit::Send(s) if s.contains("\"op\":2")));
    let ready = peer.message(&json!({"op": 0, "s": 1, "t": "READY",
        "d": {"v": 10, "user": {"id": "1"}, "guilds": [], "session_id": "s1", "resume_gateway_url": "wss://r.example"}}));
    gw.handle_binary(&ready, now).unwrap();
    drain(&mut gw);
    assert_eq!(gw.state(), StateKind::Connected);
    (gw, peer, now)
}

#[test]
fn zlib_stream_split_frames_and_large_messages() {
    let (mut gw, mut peer, now) = ready_session(config(Compression::ZlibStream));
    for channels in [400, 6_000] {
        let message = big_guild(channels);
        let size = message.to_string().len();
        assert!(size > 64 * 1024, "{size}");
        if channels == 6_000 {
            assert!(size > 1024 * 1024, "{size}");
        }
        let compressed = peer.message(&message);
        // Split into uneven frames: every part but the last is incomplete.
        let cuts = [
            compressed.len() / 7,
            compressed.len() / 2,
            compressed.len() - 3,
        ];
        let mut last = 0;
        for cut in cuts {
            gw.handle_binary(&compressed[last..cut], now).unwrap();
            assert!(
                drain(&mut gw).1.is_empty(),
                "no event before the message is complete"
            );
            last = cut;
        }
        gw.handle_binary(&compressed[last..], now).unwrap();
        let (_, events) = drain(&mut gw);
        let guild = events
            .iter()
            .find_map(|e| match e {
                Event::Dispatch(d) => match &d.event {
                    DispatchEvent::GuildCreate(g) => Some(g.clone()),
                    _ => None,
                },
                _ => None,
            })
            .expect("GUILD_CREATE");
        assert_eq!(guild.channels.len(), channels, "nothing truncated");
        assert_eq!(guild.voice_states.len(), 1);
    }
    // Small messages keep flowing on the same context afterwards.
    let small = peer.message(&json!({"op": 11}));
    gw.handle_binary(&small, now).unwrap();
    assert_eq!(gw.state(), StateKind::Connected);
}

#[test]
fn zlib_caps_drop_the_connection_and_resume() {
    let config = Config::builder("tok", Intents::GUILDS)
        .compression(Compression::ZlibStream)
        .max_message_size(100_000)
        .max_compressed_size(50_000)
        .seed(5)
        .build();
    let (mut gw, mut peer, now) = ready_session(config);
    let compressed = peer.message(&big_guild(2_000));
    let err = gw.handle_binary(&compressed, now).unwrap_err();
    assert!(matches!(err, InputError::Decompress(_)), "{err:?}");
    let (t, e) = drain(&mut gw);
    assert!(t.contains(&Transmit::Drop));
    assert!(e.iter().any(|e| matches!(
        e,
        Event::Reconnecting {
            reason: ReconnectReason::BadFrame,
            resume: true,
            ..
        }
    )));
    // The compressed-size cap holds for a message that never completes.
    let (mut gw, _, now) = ready_session(
        Config::builder("tok", Intents::GUILDS)
            .compression(Compression::ZlibStream)
            .max_compressed_size(50_000)
            .build(),
    );
    let chunk = vec![0x55u8; 20_000];
    gw.handle_binary(&chunk, now).unwrap();
    gw.handle_binary(&chunk, now).unwrap();
    assert!(matches!(
        gw.handle_binary(&chunk, now),
        Err(InputError::Decompress(_))
    ));
}

#[test]
fn each_connection_gets_a_fresh_zlib_context() {
    let (mut gw, _old_peer, mut now) = ready_session(config(Compression::ZlibStream));
    gw.handle_closed(None, "", now).unwrap();
    drain(&mut gw);
    now += Duration::from_secs(2);
    gw.handle_timeout(now);
    let (t, _) = drain(&mut gw);
    let Some(Transmit::Connect { url }) = t.first() else {
        panic!("{t:?}")
    };
    assert_eq!(
        url,
        "wss://r.example/?v=10&encoding=json&compress=zlib-stream"
    );
    gw.handle_connected(now).unwrap();
    let mut peer = ZlibPeer::new();
    let hello = peer.message(&json!({"op": 10, "d": {"heartbeat_interval": 41250}}));
    gw.handle_binary(&hello, now).unwrap();
    let (t, _) = drain(&mut gw);
    assert!(
        matches!(&t[0], Transmit::Send(s) if s.contains("\"op\":6")),
        "{t:?}"
    );
}

#[cfg(feature = "zstd")]
mod zstd_stream {
    use zstd::stream::raw::{Encoder, InBuffer, Operation, OutBuffer};

    use super::*;

    struct ZstdPeer {
        encoder: Encoder<'static>,
    }

    impl ZstdPeer {
        fn message(&mut self, v: &Value) -> Vec<u8> {
            let input = v.to_string().into_bytes();
            let mut out = vec![0u8; input.len() + 4096];
            let mut inb = InBuffer::around(&input);
            let mut outb = OutBuffer::around(out.as_mut_slice());
            while inb.pos() < input.len() {
                self.encoder.run(&mut inb, &mut outb).unwrap();
            }
            while self.encoder.flush(&mut outb).unwrap() > 0 {}
            let n = outb.pos();
            out.truncate(n);
            out
        }
    }

    #[test]
    fn zstd_stream_session_with_a_large_message() {
        let now = epoch();
        let mut gw = Gateway::new(config(Compression::ZstdStream));
        gw.start(now).unwrap();
        let (t, _) = drain(&mut gw);
        assert!(
            matches!(&t[0], Transmit::Connect { url } if url.ends_with("&compress=zstd-stream"))
        );
        gw.handle_connected(now).unwrap();
        let mut peer = ZstdPeer {
            encoder: Encoder::new(3).unwrap(),
        };
        gw.handle_binary(
            &peer.message(&json!({"op": 10, "d": {"heartbeat_interval": 41250}})),
            now,
        )
        .unwrap();
        drain(&mut gw);
        gw.handle_binary(
            &peer.message(&json!({"op": 0, "s": 1, "t": "READY",
            "d": {"user": {"id": "1"}, "session_id": "s", "resume_gateway_url": "wss://r"}})),
            now,
        )
        .unwrap();
        gw.handle_binary(&peer.message(&big_guild(6_000)), now)
            .unwrap();
        let (_, events) = drain(&mut gw);
        assert!(events.iter().any(|e| matches!(e, Event::Dispatch(d)
            if matches!(&d.event, DispatchEvent::GuildCreate(g) if g.channels.len() == 6_000))));
        assert!(gw.handle_binary(b"definitely not zstd", now).is_err());
        assert_eq!(gw.state(), StateKind::WaitingToReconnect);
    }
}
