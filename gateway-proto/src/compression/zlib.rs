//! `zlib-stream`: one zlib inflate context per connection.
//!
//! `events/gateway.mdx`, "Zlib-stream": the stream is shared by the whole
//! connection; a message may span several WebSocket frames and is complete
//! when the buffered data ends with the Z_SYNC_FLUSH suffix `00 00 ff ff`.

use flate2::{Decompress, FlushDecompress, Status};

use super::grow;
use crate::error::DecompressError;

/// The Z_SYNC_FLUSH marker ending every complete message.
pub(super) const SYNC_FLUSH_SUFFIX: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

#[derive(Debug)]
pub(super) struct ZlibStream {
    inflate: Decompress,
    /// Compressed bytes of an incomplete message.
    buffer: Vec<u8>,
}

impl ZlibStream {
    pub(super) fn new() -> Self {
        Self {
            inflate: Decompress::new(true),
            buffer: Vec::new(),
        }
    }

    /// Feed one frame; `Ok(true)` when `out` now holds a complete message.
    pub(super) fn push(
        &mut self,
        frame: &[u8],
        out: &mut Vec<u8>,
        max_compressed: usize,
        max_message: usize,
    ) -> Result<bool, DecompressError> {
        // Fast path: a whole message in one frame needs no buffering.
        if self.buffer.is_empty() && frame.ends_with(&SYNC_FLUSH_SUFFIX) {
            if frame.len() > max_compressed {
                return Err(DecompressError::CompressedTooLarge {
                    limit: max_compressed,
                });
            }
            inflate_all(&mut self.inflate, frame, out, max_message)?;
            return Ok(true);
        }
        if self.buffer.len().saturating_add(frame.len()) > max_compressed {
            self.buffer = Vec::new();
            return Err(DecompressError::CompressedTooLarge {
                limit: max_compressed,
            });
        }
        self.buffer.extend_from_slice(frame);
        if !self.buffer.ends_with(&SYNC_FLUSH_SUFFIX) {
            return Ok(false);
        }
        let input = std::mem::take(&mut self.buffer);
        let result = inflate_all(&mut self.inflate, &input, out, max_message);
        self.buffer = input;
        self.buffer.clear();
        if self.buffer.capacity() > super::SHRINK_ABOVE {
            self.buffer = Vec::new();
        }
        result.map(|()| true)
    }
}

/// Inflate all of `input` into `out` (cleared first), collecting every
/// output chunk until the inflater has nothing more to give.
fn inflate_all(
    inflate: &mut Decompress,
    input: &[u8],
    out: &mut Vec<u8>,
    max_message: usize,
) -> Result<(), DecompressError> {
    out.clear();
    let mut consumed = 0usize;
    loop {
        if out.len() == out.capacity() {
            grow(out, max_message)?;
        }
        let in_before = inflate.total_in();
        let out_before = inflate.total_out();
        let status = inflate
            .decompress_vec(&input[consumed..], out, FlushDecompress::Sync)
            .map_err(|e| DecompressError::Corrupt(e.to_string()))?;
        let read = usize::try_from(inflate.total_in() - in_before).unwrap_or(usize::MAX);
        let written = inflate.total_out() - out_before;
        consumed = consumed.saturating_add(read).min(input.len());
        if out.len() > max_message {
            return Err(DecompressError::MessageTooLarge { limit: max_message });
        }
        let output_full = out.len() == out.capacity();
        if consumed >= input.len() && !output_full {
            return Ok(());
        }
        if status == Status::StreamEnd {
            // Discord never ends the stream; anything after it is garbage.
            return Err(DecompressError::Corrupt("zlib stream ended".into()));
        }
        if read == 0 && written == 0 && !output_full {
            return Err(DecompressError::Corrupt(
                "zlib stream made no progress".into(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use flate2::{Compress, Compression, FlushCompress};

    use super::{SYNC_FLUSH_SUFFIX, ZlibStream};
    use crate::error::DecompressError;

    fn compress_messages(messages: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut deflate = Compress::new(Compression::default(), true);
        messages
            .iter()
            .map(|m| {
                let mut out = Vec::with_capacity(m.len() + 1024);
                let start_in = deflate.total_in();
                loop {
                    let consumed = usize::try_from(deflate.total_in() - start_in).unwrap();
                    if out.len() == out.capacity() {
                        out.reserve(64 * 1024);
                    }
                    deflate
                        .compress_vec(&m[consumed..], &mut out, FlushCompress::Sync)
                        .unwrap();
                    let consumed = usize::try_from(deflate.total_in() - start_in).unwrap();
                    if consumed == m.len()
                        && out.len() < out.capacity()
                        && out.ends_with(&SYNC_FLUSH_SUFFIX)
                    {
                        break;
                    }
                }
                out
            })
            .collect()
    }

    #[test]
    fn inflates_consecutive_messages_on_one_context() {
        let frames = compress_messages(&[b"{\"op\":10}", b"{\"op\":11}"]);
        let mut stream = ZlibStream::new();
        let mut out = Vec::new();
        assert!(stream.push(&frames[0], &mut out, 1 << 20, 1 << 20).unwrap());
        assert_eq!(out, b"{\"op\":10}");
        assert!(stream.push(&frames[1], &mut out, 1 << 20, 1 << 20).unwrap());
        assert_eq!(out, b"{\"op\":11}");
    }

    #[test]
    fn split_frames_and_large_messages() {
        let big: Vec<u8> = (0..3 * 1024 * 1024u32)
            .map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789"[(i * 7 % 36) as usize])
            .collect();
        let frames = compress_messages(&[&big]);
        let mut stream = ZlibStream::new();
        let mut out = Vec::new();
        let frame = &frames[0];
        let (a, b) = frame.split_at(frame.len() / 2);
        assert!(!stream.push(a, &mut out, 16 << 20, 16 << 20).unwrap());
        assert!(stream.push(b, &mut out, 16 << 20, 16 << 20).unwrap());
        assert_eq!(out.len(), big.len());
        assert_eq!(out, big);
    }

    #[test]
    fn caps_are_errors() {
        let big = vec![b'x'; 200_000];
        let frames = compress_messages(&[&big]);
        let mut out = Vec::new();
        let err = ZlibStream::new()
            .push(&frames[0], &mut out, 1 << 20, 100_000)
            .unwrap_err();
        assert_eq!(err, DecompressError::MessageTooLarge { limit: 100_000 });
        let err = ZlibStream::new()
            .push(&[1, 2, 3, 4, 5], &mut out, 4, 1 << 20)
            .unwrap_err();
        assert_eq!(err, DecompressError::CompressedTooLarge { limit: 4 });
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut out = Vec::new();
        let garbage = [0xde, 0xad, 0xbe, 0xef, 0x00, 0x00, 0xff, 0xff];
        assert!(
            ZlibStream::new()
                .push(&garbage, &mut out, 1 << 20, 1 << 20)
                .is_err()
        );
    }
}
