//! `zlib-stream` transport compression (gateway.mdx "Transport Compression"): one zlib
//! context for the whole connection; every message is compressed and flushed with
//! `Z_SYNC_FLUSH`, so each WebSocket message ends with `00 00 FF FF`.

use flate2::{Compress, Compression, FlushCompress, Status};

/// The sending side of one connection's zlib stream.
pub(crate) struct ZlibStream {
    inner: Compress,
}

impl std::fmt::Debug for ZlibStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ZlibStream")
    }
}

/// zlib could not compress (should not happen with an in-memory buffer).
#[derive(Debug)]
pub(crate) struct CompressError;

impl ZlibStream {
    pub(crate) fn new() -> Self {
        Self {
            // `true`: with the zlib header, as Discord's stream starts with one (78 9C).
            inner: Compress::new(Compression::default(), true),
        }
    }

    /// Compresses one message and sync-flushes it.
    pub(crate) fn compress(&mut self, input: &[u8]) -> Result<Vec<u8>, CompressError> {
        let mut out = Vec::with_capacity(input.len() / 2 + 64);
        let start_in = self.inner.total_in();
        loop {
            let consumed =
                usize::try_from(self.inner.total_in() - start_in).map_err(|_| CompressError)?;
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            let status = self
                .inner
                .compress_vec(&input[consumed..], &mut out, FlushCompress::Sync)
                .map_err(|_| CompressError)?;
            let consumed =
                usize::try_from(self.inner.total_in() - start_in).map_err(|_| CompressError)?;
            let done = consumed == input.len() && out.ends_with(&[0, 0, 0xff, 0xff]);
            if done || matches!(status, Status::StreamEnd) {
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Decompress, FlushDecompress};

    #[test]
    fn messages_end_with_sync_marker_and_inflate_in_one_context() {
        let mut z = ZlibStream::new();
        let mut d = Decompress::new(true);
        for msg in [&b"{\"op\":10}"[..], &[b'x'; 100_000][..], b"{\"op\":11}"] {
            let packed = z.compress(msg).expect("compress");
            assert!(packed.ends_with(&[0, 0, 0xff, 0xff]));
            let mut out = Vec::with_capacity(msg.len() + 64);
            d.decompress_vec(&packed, &mut out, FlushDecompress::Sync)
                .expect("inflate");
            assert_eq!(out, msg);
        }
    }
}
