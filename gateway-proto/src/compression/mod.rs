//! Transport compression: `zlib-stream` and `zstd-stream`
//! (`events/gateway.mdx`, "Transport Compression").
//!
//! One decompression context lives for the whole connection and is reset on
//! every new connection. Output is collected until the decompressor has
//! nothing more to give, so large messages are never truncated (the 64 KiB
//! bug of discord.js #10414 and serenity #3462). Caps on the buffered
//! compressed bytes and on each decompressed message keep memory bounded
//! against a broken or hostile peer; exceeding one is an error, never a
//! panic.

#[cfg(feature = "zlib")]
mod zlib;
#[cfg(feature = "zstd")]
mod zstd;

use crate::config::Compression;
use crate::error::DecompressError;

/// Buffers above this capacity are released after use, so one huge
/// GUILD_CREATE does not pin its memory for the connection's lifetime.
const SHRINK_ABOVE: usize = 1024 * 1024;

/// Initial output buffer capacity.
const INITIAL_CAPACITY: usize = 64 * 1024;

#[derive(Debug)]
enum Inner {
    None,
    #[cfg(feature = "zlib")]
    Zlib(zlib::ZlibStream),
    #[cfg(feature = "zstd")]
    Zstd(zstd::ZstdStream),
}

/// The per-connection transport decompressor. Feed it every binary frame in
/// order with [`Decompressor::push`]; it returns each complete message.
#[derive(Debug)]
pub struct Decompressor {
    compression: Compression,
    inner: Inner,
    out: Vec<u8>,
    max_compressed: usize,
    max_message: usize,
}

impl Decompressor {
    /// A decompressor for `compression`, with caps on the buffered
    /// compressed bytes of one message and on one decompressed message.
    ///
    /// # Errors
    ///
    /// [`DecompressError::Unsupported`] if the compression's cargo feature is
    /// off.
    pub fn new(
        compression: Compression,
        max_compressed: usize,
        max_message: usize,
    ) -> Result<Self, DecompressError> {
        let inner = Self::make_inner(compression)?;
        Ok(Self {
            compression,
            inner,
            out: Vec::new(),
            max_compressed,
            max_message,
        })
    }

    fn make_inner(compression: Compression) -> Result<Inner, DecompressError> {
        match compression {
            Compression::None => Ok(Inner::None),
            #[cfg(feature = "zlib")]
            Compression::ZlibStream => Ok(Inner::Zlib(zlib::ZlibStream::new())),
            #[cfg(not(feature = "zlib"))]
            Compression::ZlibStream => Err(DecompressError::Unsupported("zlib")),
            #[cfg(feature = "zstd")]
            Compression::ZstdStream => Ok(Inner::Zstd(zstd::ZstdStream::new()?)),
            #[cfg(not(feature = "zstd"))]
            Compression::ZstdStream => Err(DecompressError::Unsupported("zstd")),
        }
    }

    /// The compression this decompressor handles.
    #[must_use]
    pub const fn compression(&self) -> Compression {
        self.compression
    }

    /// The cap on buffered compressed bytes of one message.
    #[must_use]
    pub const fn max_compressed_size(&self) -> usize {
        self.max_compressed
    }

    /// The cap on one decompressed message.
    #[must_use]
    pub const fn max_message_size(&self) -> usize {
        self.max_message
    }

    /// Start over for a new connection.
    ///
    /// # Errors
    ///
    /// [`DecompressError::Corrupt`] if a new zstd context cannot be created.
    pub fn reset(&mut self) -> Result<(), DecompressError> {
        self.inner = Self::make_inner(self.compression)?;
        self.out = Vec::new();
        Ok(())
    }

    /// Feed one binary frame. Returns the complete message when this frame
    /// finished one, `None` while a zlib message is still incomplete. With
    /// [`Compression::None`] the frame itself is the message.
    ///
    /// # Errors
    ///
    /// [`DecompressError::CompressedTooLarge`] /
    /// [`DecompressError::MessageTooLarge`] when a cap is exceeded,
    /// [`DecompressError::Corrupt`] for an invalid stream. After an error the
    /// stream is unusable until [`Decompressor::reset`] (a new connection).
    pub fn push<'a>(&'a mut self, frame: &'a [u8]) -> Result<Option<&'a [u8]>, DecompressError> {
        if self.out.capacity() > SHRINK_ABOVE {
            self.out = Vec::new();
        }
        if self.out.capacity() == 0 && !matches!(self.inner, Inner::None) {
            self.out
                .reserve(INITIAL_CAPACITY.min(self.max_message.saturating_add(1)));
        }
        match &mut self.inner {
            Inner::None => {
                if frame.len() > self.max_message {
                    return Err(DecompressError::MessageTooLarge {
                        limit: self.max_message,
                    });
                }
                Ok(Some(frame))
            }
            #[cfg(feature = "zlib")]
            Inner::Zlib(stream) => {
                let complete =
                    stream.push(frame, &mut self.out, self.max_compressed, self.max_message)?;
                Ok(complete.then_some(self.out.as_slice()))
            }
            #[cfg(feature = "zstd")]
            Inner::Zstd(stream) => {
                stream.push(frame, &mut self.out, self.max_message)?;
                Ok(Some(self.out.as_slice()))
            }
        }
    }
}

/// Reserve room for more output without letting the buffer grow past
/// `max_message + 1` bytes (one byte over is how the cap is detected).
#[cfg(any(feature = "zlib", feature = "zstd"))]
fn grow(out: &mut Vec<u8>, max_message: usize) -> Result<(), DecompressError> {
    let hard_cap = max_message.saturating_add(1);
    if out.len() >= hard_cap {
        return Err(DecompressError::MessageTooLarge { limit: max_message });
    }
    let wanted = out.len().max(INITIAL_CAPACITY);
    let room = wanted.min(hard_cap - out.len());
    out.reserve(room);
    Ok(())
}
