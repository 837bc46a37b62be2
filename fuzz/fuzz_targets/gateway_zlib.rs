//! The transport decompressor (`zlib-stream`, and `zstd-stream`) with small caps.
//!
//! Two modes. Raw: arbitrary frames pushed in order. Structured: real messages compressed on
//! one zlib stream with a sync flush each (as Discord sends them), cut into frames at
//! arbitrary points. Invariants: an output is never larger than the message cap; in the
//! structured mode every message that fits the caps comes out byte for byte, in order.
#![no_main]

use arbitrary::Arbitrary;
use flate2::{Compress, Compression as Level, FlushCompress};
use gateway_proto::{Compression, Decompressor};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Case {
    Raw {
        zstd: bool,
        max_compressed: u16,
        max_message: u16,
        frames: Vec<Vec<u8>>,
    },
    Messages {
        max_compressed: u16,
        max_message: u16,
        messages: Vec<Vec<u8>>,
        /// Cut points: each is a chunk length (0 = the rest of the message).
        cuts: Vec<u8>,
    },
}

const SUFFIX: [u8; 4] = [0, 0, 0xff, 0xff];

fuzz_target!(|case: Case| match case {
    Case::Raw {
        zstd,
        max_compressed,
        max_message,
        frames,
    } => {
        let kind = if zstd {
            Compression::ZstdStream
        } else {
            Compression::ZlibStream
        };
        let max_message = usize::from(max_message);
        let Ok(mut d) = Decompressor::new(kind, usize::from(max_compressed), max_message) else {
            return;
        };
        for frame in &frames {
            match d.push(frame) {
                Ok(Some(out)) => assert!(out.len() <= max_message, "output over the cap"),
                Ok(None) => {}
                Err(_) => return,
            }
        }
    }
    Case::Messages {
        max_compressed,
        max_message,
        messages,
        cuts,
    } => structured(
        usize::from(max_compressed),
        usize::from(max_message),
        &messages,
        &cuts,
    ),
});

fn structured(max_compressed: usize, max_message: usize, messages: &[Vec<u8>], cuts: &[u8]) {
    let Ok(mut d) = Decompressor::new(Compression::ZlibStream, max_compressed, max_message) else {
        return;
    };
    let mut z = Compress::new(Level::fast(), true);
    let mut cuts = cuts.iter().copied().cycle();
    // Discord never sends an empty message (and a sync flush of nothing emits nothing).
    for message in messages.iter().filter(|m| !m.is_empty()).take(16) {
        let compressed = compress(&mut z, message);
        assert!(compressed.ends_with(&SUFFIX));
        // Frames of arbitrary length; the last one carries the suffix.
        let mut frames = Vec::new();
        let mut rest = compressed.as_slice();
        while !rest.is_empty() {
            let n = match cuts.next() {
                Some(0) | None => rest.len(),
                Some(n) => usize::from(n).min(rest.len()),
            };
            let (head, tail) = rest.split_at(n);
            frames.push(head);
            rest = tail;
        }
        // A chunk that happens to end with the suffix before the real end makes the
        // decompressor finish early by design (that is the framing rule); skip exactness then.
        let early = frames[..frames.len() - 1]
            .iter()
            .any(|f| f.ends_with(&SUFFIX));
        let total = compressed.len();
        let mut got = None;
        for frame in &frames {
            match d.push(frame) {
                Ok(Some(out)) => {
                    assert!(out.len() <= max_message, "output over the cap");
                    got = Some(out.to_vec());
                }
                Ok(None) => {}
                Err(_) => return, // a cap was hit or the stream broke: it is unusable now
            }
        }
        if !early && total <= max_compressed && message.len() <= max_message {
            assert_eq!(got.as_deref(), Some(message.as_slice()), "message altered");
        }
        if early {
            return; // the stream is out of step with the messages from here on
        }
    }
}

fn compress(z: &mut Compress, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 64);
    let mut input = message;
    loop {
        out.reserve(256);
        let before_in = z.total_in();
        z.compress_vec(input, &mut out, FlushCompress::Sync)
            .expect("compress");
        let used = usize::try_from(z.total_in() - before_in).expect("fits");
        input = &input[used..];
        if input.is_empty() && out.ends_with(&SUFFIX) && out.len() < out.capacity() {
            break;
        }
    }
    out
}
