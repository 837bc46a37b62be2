//! `zstd-stream`: one zstd decompression context per connection.
//!
//! `events/gateway.mdx`, "Zstd-stream": every WebSocket message is one
//! gateway message, but the zstd frame never ends; decompress until the
//! input is consumed and the context has no more output to give.

use zstd::stream::raw::{Decoder, Operation};

use super::grow;
use crate::error::DecompressError;

/// Scratch buffer size for one decompression step.
const SCRATCH: usize = 32 * 1024;

pub(super) struct ZstdStream {
    decoder: Decoder<'static>,
    scratch: Box<[u8]>,
}

impl std::fmt::Debug for ZstdStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ZstdStream")
    }
}

impl ZstdStream {
    pub(super) fn new() -> Result<Self, DecompressError> {
        let decoder = Decoder::new().map_err(|e| DecompressError::Corrupt(e.to_string()))?;
        Ok(Self {
            decoder,
            scratch: vec![0; SCRATCH].into_boxed_slice(),
        })
    }

    /// Decompress one message into `out` (cleared first).
    pub(super) fn push(
        &mut self,
        frame: &[u8],
        out: &mut Vec<u8>,
        max_message: usize,
    ) -> Result<(), DecompressError> {
        out.clear();
        let mut consumed = 0usize;
        loop {
            let status = self
                .decoder
                .run_on_buffers(&frame[consumed..], &mut self.scratch)
                .map_err(|e| DecompressError::Corrupt(e.to_string()))?;
            consumed = consumed.saturating_add(status.bytes_read).min(frame.len());
            let written = status.bytes_written.min(self.scratch.len());
            if written > 0 {
                if out.len().saturating_add(written) > max_message {
                    return Err(DecompressError::MessageTooLarge { limit: max_message });
                }
                if out.capacity() - out.len() < written {
                    grow(out, max_message)?;
                }
                out.extend_from_slice(&self.scratch[..written]);
            }
            if consumed >= frame.len() && written < self.scratch.len() {
                return Ok(());
            }
            if status.bytes_read == 0 && written == 0 {
                return Err(DecompressError::Corrupt(
                    "zstd stream made no progress".into(),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use zstd::stream::raw::{Encoder, InBuffer, Operation, OutBuffer};

    use super::ZstdStream;

    fn compress_messages(messages: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut encoder = Encoder::new(3).unwrap();
        messages
            .iter()
            .map(|m| {
                let mut out = vec![0u8; m.len() + 1024];
                let mut input = InBuffer::around(m);
                let mut output = OutBuffer::around(out.as_mut_slice());
                while input.pos() < m.len() {
                    encoder.run(&mut input, &mut output).unwrap();
                }
                while encoder.flush(&mut output).unwrap() > 0 {}
                let n = output.pos();
                out.truncate(n);
                out
            })
            .collect()
    }

    #[test]
    fn inflates_messages_on_one_context() {
        let big = vec![b'y'; 2 * 1024 * 1024];
        let frames = compress_messages(&[b"{\"op\":10}", &big, b"{\"op\":11}"]);
        let mut stream = ZstdStream::new().unwrap();
        let mut out = Vec::new();
        stream.push(&frames[0], &mut out, 16 << 20).unwrap();
        assert_eq!(out, b"{\"op\":10}");
        stream.push(&frames[1], &mut out, 16 << 20).unwrap();
        assert_eq!(out.len(), big.len());
        stream.push(&frames[2], &mut out, 16 << 20).unwrap();
        assert_eq!(out, b"{\"op\":11}");
    }

    #[test]
    fn cap_and_garbage_are_errors() {
        let big = vec![b'y'; 100_000];
        let frames = compress_messages(&[&big]);
        let mut out = Vec::new();
        assert!(
            ZstdStream::new()
                .unwrap()
                .push(&frames[0], &mut out, 50_000)
                .is_err()
        );
        assert!(
            ZstdStream::new()
                .unwrap()
                .push(b"garbage!", &mut out, 50_000)
                .is_err()
        );
    }
}
