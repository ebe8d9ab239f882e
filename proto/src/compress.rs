//! The snappy *framing format* used for `use_compression` on work connections.
//!
//! Go frp wraps the payload in golang/snappy's framed `Writer`/`Reader`. The Go writer is
//! unbuffered: every write becomes its own chunk(s), after a stream identifier sent once per
//! direction. We do the same with [`Compressor::compress`] per write. Format, from the snappy
//! framing spec:
//!
//! - stream identifier: `ff 06 00 00 "sNaPpY"`
//! - chunk: type (1 byte), length (3 bytes little-endian), then for data chunks a masked
//!   CRC-32C (4 bytes LE) of the *uncompressed* data followed by the data, at most 64 KiB of it
//!   uncompressed. Type `00` is snappy-compressed, `01` is stored.
//! - `80..=fe` are skippable; `02..=7f` are reserved and fatal.
//!
//! With encryption too, compression is the inner layer: wire = AES-CFB(snappy(payload)).

use bytes::{BufMut, BytesMut};

/// The stream identifier chunk.
pub const STREAM_IDENTIFIER: &[u8; 10] = b"\xff\x06\x00\x00sNaPpY";

/// Most uncompressed bytes one data chunk may carry (snappy framing spec).
pub const MAX_BLOCK_LEN: usize = 65_536;

/// Most bytes one data chunk may take on the wire, header included: the 4-byte header, the
/// CRC, and the worst-case snappy encoding of a full block (`32 + n + n / 6`).
pub const MAX_CHUNK_LEN: usize = 4 + 4 + 32 + MAX_BLOCK_LEN + MAX_BLOCK_LEN / 6;

const CHUNK_COMPRESSED: u8 = 0x00;
const CHUNK_UNCOMPRESSED: u8 = 0x01;
const CHUNK_STREAM_ID: u8 = 0xff;

/// Largest data-chunk length field we accept: CRC plus the worst-case compressed block.
const MAX_DATA_CHUNK_LEN: usize = MAX_CHUNK_LEN - 4;

/// Why a compressed stream could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompressError {
    /// The first chunk is not the stream identifier.
    #[error("snappy stream does not start with the stream identifier")]
    MissingStreamIdentifier,
    /// A stream identifier chunk with the wrong contents.
    #[error("bad snappy stream identifier")]
    BadStreamIdentifier,
    /// A reserved unskippable chunk type.
    #[error("reserved snappy chunk type 0x{0:02x}")]
    ReservedChunk(u8),
    /// A data chunk larger than the format allows.
    #[error("snappy chunk of {0} bytes is too large")]
    ChunkTooLarge(usize),
    /// A data chunk shorter than its CRC.
    #[error("snappy data chunk too short")]
    ChunkTooShort,
    /// Compressed data that does not decode.
    #[error("corrupt snappy block")]
    Corrupt,
    /// The CRC does not match the data.
    #[error("snappy checksum mismatch")]
    Checksum,
}

/// The masked CRC-32C the framing format stores.
fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Turns writes into snappy frames.
#[derive(Debug, Default)]
pub struct Compressor {
    started: bool,
    encoder: Option<snap::raw::Encoder>,
    /// Reused scratch space so steady-state compression does not allocate.
    scratch: Vec<u8>,
}

impl Compressor {
    /// A new stream: the first call writes the stream identifier.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the frames for one write of `input` to `out`.
    pub fn compress(&mut self, input: &[u8], out: &mut BytesMut) {
        if !self.started {
            out.extend_from_slice(STREAM_IDENTIFIER);
            self.started = true;
        }
        let encoder = self.encoder.get_or_insert_with(snap::raw::Encoder::new);
        for block in input.chunks(MAX_BLOCK_LEN) {
            let need = snap::raw::max_compress_len(block.len());
            if self.scratch.len() < need {
                self.scratch.resize(need, 0);
            }
            let crc = masked_crc(block);
            // Keep compressed data only when it saves at least 1/8, as golang/snappy does.
            let (kind, body): (u8, &[u8]) = match encoder.compress(block, &mut self.scratch) {
                Ok(n) if n < block.len() - block.len() / 8 => {
                    (CHUNK_COMPRESSED, &self.scratch[..n])
                }
                _ => (CHUNK_UNCOMPRESSED, block),
            };
            let len = (body.len() + 4) as u32;
            out.reserve(4 + len as usize);
            out.put_u8(kind);
            out.put_slice(&len.to_le_bytes()[..3]);
            out.put_u32_le(crc);
            out.put_slice(body);
        }
    }
}

/// What one [`Decompressor::decompress_step`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `consumed` bytes at the start of the input were used up (never zero), and `produced`
    /// bytes of data were written to the start of the output (zero for chunks without data).
    Progress {
        /// Input bytes used up.
        consumed: usize,
        /// Data bytes written.
        produced: usize,
    },
    /// The next chunk is not complete in the input; nothing was consumed. Call again with the
    /// same bytes and more after them.
    NeedInput,
    /// The next chunk carries this many data bytes, more than the output has room for;
    /// nothing was consumed. Never more than [`MAX_BLOCK_LEN`].
    NeedOutput(usize),
}

/// A validated chunk header.
#[derive(Clone, Copy)]
enum Chunk {
    /// A data chunk of this kind whose body (CRC included) is `len` bytes.
    Data { kind: u8, len: usize },
    /// The stream identifier.
    StreamId,
    /// A skippable or padding chunk of `len` bytes.
    Skip(usize),
}

impl Chunk {
    /// Body length: bytes after the 4-byte header.
    fn body_len(self) -> usize {
        match self {
            Chunk::Data { len, .. } | Chunk::Skip(len) => len,
            Chunk::StreamId => STREAM_IDENTIFIER.len() - 4,
        }
    }
}

/// Turns snappy frames back into data, on any chunking of the input.
///
/// Two ways to drive it, not to be mixed on one stream: [`Decompressor::decompress`] takes any
/// input and appends everything it completes (the caller's output grows with the compression
/// ratio); [`Decompressor::decompress_step`] decodes one chunk at a time into a fixed output
/// buffer, so a caller can bound what it holds whatever the ratio.
#[derive(Debug, Default)]
pub struct Decompressor {
    /// [`Decompressor::decompress`] only: the chunk being assembled across calls.
    buf: BytesMut,
    seen_identifier: bool,
    /// Bytes of a skippable chunk still to drop; such chunks may be up to 16 MiB, so they are
    /// skipped as they stream by rather than buffered.
    skip: usize,
    decoder: Option<snap::raw::Decoder>,
}

impl Decompressor {
    /// A new stream, which must begin with the stream identifier.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks a chunk header against the format and the stream's state.
    fn header(&self, h: [u8; 4]) -> Result<Chunk, CompressError> {
        let kind = h[0];
        let len = u32::from_le_bytes([h[1], h[2], h[3], 0]) as usize;
        if !self.seen_identifier && kind != CHUNK_STREAM_ID {
            return Err(CompressError::MissingStreamIdentifier);
        }
        match kind {
            CHUNK_COMPRESSED | CHUNK_UNCOMPRESSED => {
                if len > MAX_DATA_CHUNK_LEN {
                    return Err(CompressError::ChunkTooLarge(len));
                }
                if len < 4 {
                    return Err(CompressError::ChunkTooShort);
                }
                Ok(Chunk::Data { kind, len })
            }
            CHUNK_STREAM_ID => {
                if len != STREAM_IDENTIFIER.len() - 4 {
                    return Err(CompressError::BadStreamIdentifier);
                }
                Ok(Chunk::StreamId)
            }
            0x02..=0x7f => Err(CompressError::ReservedChunk(kind)),
            // Skippable (0x80..=0xfd) and padding (0xfe).
            _ => Ok(Chunk::Skip(len)),
        }
    }

    /// Handles a whole non-skippable chunk body. For a data chunk, `out` receives the data:
    /// `out(n)` must return a buffer of exactly `n` bytes, or `None` when there is no room
    /// (then nothing changes and `Ok(None)` is returned). Returns the data length.
    fn body<'o>(
        &mut self,
        chunk: Chunk,
        body: &[u8],
        out: impl FnOnce(usize) -> Option<&'o mut [u8]>,
    ) -> Result<Option<usize>, CompressError> {
        let Chunk::Data { kind, .. } = chunk else {
            if body != &STREAM_IDENTIFIER[4..] {
                return Err(CompressError::BadStreamIdentifier);
            }
            self.seen_identifier = true;
            return Ok(Some(0));
        };
        let crc = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
        let data = &body[4..];
        let n = if kind == CHUNK_COMPRESSED {
            let n = snap::raw::decompress_len(data).map_err(|_| CompressError::Corrupt)?;
            if n > MAX_BLOCK_LEN {
                return Err(CompressError::Corrupt);
            }
            n
        } else {
            if data.len() > MAX_BLOCK_LEN {
                return Err(CompressError::ChunkTooLarge(data.len()));
            }
            data.len()
        };
        let Some(dst) = out(n) else {
            return Ok(None);
        };
        if kind == CHUNK_COMPRESSED {
            let decoder = self.decoder.get_or_insert_with(snap::raw::Decoder::new);
            match decoder.decompress(data, dst) {
                Ok(got) if got == n => {}
                _ => return Err(CompressError::Corrupt),
            }
        } else {
            dst.copy_from_slice(data);
        }
        if masked_crc(dst) != crc {
            return Err(CompressError::Checksum);
        }
        Ok(Some(n))
    }

    /// Decodes at most one chunk from the start of `input`, writing its data to the start of
    /// `out`. Memory stays bounded whatever the compression ratio: nothing is buffered inside,
    /// a data chunk is decoded only when its data fits in `out`, and skippable chunks are
    /// dropped as they stream by. `input` must hold a whole chunk ([`MAX_CHUNK_LEN`] bytes at
    /// most) for it to be decoded.
    ///
    /// On error, whatever was written to `out` is not data and must not be used.
    pub fn decompress_step(&mut self, input: &[u8], out: &mut [u8]) -> Result<Step, CompressError> {
        if self.skip > 0 {
            let n = self.skip.min(input.len());
            self.skip -= n;
            return Ok(if n == 0 {
                Step::NeedInput
            } else {
                Step::Progress {
                    consumed: n,
                    produced: 0,
                }
            });
        }
        let Some(&[a, b, c, d]) = input.get(..4) else {
            return Ok(Step::NeedInput);
        };
        let chunk = self.header([a, b, c, d])?;
        if let Chunk::Skip(len) = chunk {
            self.skip = len;
            return Ok(Step::Progress {
                consumed: 4,
                produced: 0,
            });
        }
        let end = 4 + chunk.body_len();
        let Some(body) = input.get(4..end) else {
            return Ok(Step::NeedInput);
        };
        let mut wanted = 0;
        let w = &mut wanted;
        let produced = self.body(chunk, body, move |n| {
            *w = n;
            out.get_mut(..n)
        })?;
        Ok(match produced {
            Some(produced) => Step::Progress {
                consumed: end,
                produced,
            },
            None => Step::NeedOutput(wanted),
        })
    }

    /// Feeds `input` and appends all data it completes to `out`. Partial chunks are kept for
    /// the next call; memory held is bounded by one maximal chunk, but `out` grows by
    /// everything `input` decompresses to.
    ///
    /// A failing call appends nothing of the chunk that failed.
    pub fn decompress(
        &mut self,
        mut input: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), CompressError> {
        while !input.is_empty() || self.buf.len() >= 4 {
            if self.skip > 0 {
                let n = self.skip.min(input.len());
                self.skip -= n;
                input = &input[n..];
                continue;
            }
            // Top up the buffer only as much as the current chunk needs, so skipped chunks
            // never enter it.
            if self.buf.len() < 4 {
                let n = (4 - self.buf.len()).min(input.len());
                self.buf.extend_from_slice(&input[..n]);
                input = &input[n..];
                if self.buf.len() < 4 {
                    return Ok(());
                }
            }
            let chunk = self.header([self.buf[0], self.buf[1], self.buf[2], self.buf[3]])?;
            if let Chunk::Skip(len) = chunk {
                self.buf.clear();
                self.skip = len;
                continue;
            }
            let need = 4 + chunk.body_len() - self.buf.len();
            let n = need.min(input.len());
            self.buf.extend_from_slice(&input[..n]);
            input = &input[n..];
            if n < need {
                return Ok(());
            }
            let buf = std::mem::take(&mut self.buf);
            let start = out.len();
            let dst = &mut *out;
            let result = self.body(chunk, &buf[4..], move |n| {
                dst.resize(start + n, 0);
                Some(&mut dst[start..])
            });
            self.buf = buf;
            if let Err(e) = result {
                // Drop what the failed chunk left: it never passed the checks.
                out.truncate(start);
                return Err(e);
            }
            // The chunk is done; `clear` keeps the capacity for the next one.
            self.buf.clear();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_on_any_chunking() {
        let mut c = Compressor::new();
        let mut wire = BytesMut::new();
        let text = b"hello hello hello hello hello hello frp snappy ".repeat(3000);
        c.compress(&text, &mut wire);
        c.compress(b"tail", &mut wire);
        assert_eq!(&wire[..10], STREAM_IDENTIFIER);
        for step in [1, 3, 7, 4096, wire.len()] {
            let mut d = Decompressor::new();
            let mut out = BytesMut::new();
            for chunk in wire.chunks(step) {
                d.decompress(chunk, &mut out).unwrap();
            }
            assert_eq!(out.len(), text.len() + 4);
            assert_eq!(&out[..text.len()], &text[..]);
            assert_eq!(&out[text.len()..], b"tail");
        }
    }

    #[test]
    fn random_data_is_stored_uncompressed() {
        let data: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let mut wire = BytesMut::new();
        Compressor::new().compress(&data, &mut wire);
        let mut out = BytesMut::new();
        Decompressor::new().decompress(&wire, &mut out).unwrap();
        assert_eq!(&out[..], &data[..]);
    }

    #[test]
    fn corruption_is_detected() {
        let mut wire = BytesMut::new();
        Compressor::new().compress(b"abcdefgh", &mut wire);
        let last = wire.len() - 1;
        wire[last] ^= 1;
        let mut out = BytesMut::new();
        assert_eq!(
            Decompressor::new().decompress(&wire, &mut out),
            Err(CompressError::Checksum)
        );
        assert_eq!(
            Decompressor::new().decompress(b"\x00\x05\x00\x00abcde", &mut out),
            Err(CompressError::MissingStreamIdentifier)
        );
    }

    #[test]
    fn max_chunk_len_matches_snap() {
        assert_eq!(
            MAX_DATA_CHUNK_LEN,
            4 + snap::raw::max_compress_len(MAX_BLOCK_LEN)
        );
    }

    /// Drives `decompress_step` the way a bounded reader does: an input buffer that is
    /// compacted when a chunk straddles its end, and an output window of `window` bytes.
    fn step_all(wire: &[u8], read: usize, window: usize) -> Result<Vec<u8>, CompressError> {
        let mut d = Decompressor::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut out = vec![0u8; window];
        let mut data = Vec::new();
        let mut reads = wire.chunks(read);
        loop {
            match d.decompress_step(&pending, &mut out)? {
                Step::Progress { consumed, produced } => {
                    assert!(consumed > 0);
                    pending.drain(..consumed);
                    data.extend_from_slice(&out[..produced]);
                }
                Step::NeedInput => match reads.next() {
                    Some(r) => pending.extend_from_slice(r),
                    None => return Ok(data),
                },
                Step::NeedOutput(n) => {
                    assert!(n > window && n <= MAX_BLOCK_LEN);
                    return Ok(data);
                }
            }
            assert!(pending.len() <= MAX_CHUNK_LEN + read);
        }
    }

    #[test]
    fn step_decodes_one_chunk_at_a_time_on_any_chunking() {
        let mut c = Compressor::new();
        let mut wire = BytesMut::new();
        let text = b"zero copy, bounded memory, one chunk at a time ".repeat(4000);
        c.compress(&text, &mut wire);
        c.compress(&[0u8; 70_000], &mut wire);
        c.compress(b"tail", &mut wire);
        let mut skippable = wire.to_vec();
        skippable.extend_from_slice(b"\x80\x03\x00\x00xyz");
        let want = [&text[..], &[0u8; 70_000], b"tail"].concat();
        for read in [1, 5, 4096, 100_000] {
            assert_eq!(step_all(&skippable, read, MAX_BLOCK_LEN).unwrap(), want);
        }
        // A window smaller than the next block stops with NeedOutput, having produced
        // nothing it should not have.
        assert!(step_all(&wire, 4096, 1000).unwrap().is_empty());
    }

    #[test]
    fn step_rejects_what_decompress_rejects() {
        let mut wire = BytesMut::new();
        Compressor::new().compress(b"abcdefgh", &mut wire);
        let last = wire.len() - 1;
        wire[last] ^= 1;
        assert_eq!(
            step_all(&wire, 3, MAX_BLOCK_LEN),
            Err(CompressError::Checksum)
        );
        assert_eq!(
            step_all(b"\x00\x05\x00\x00abcde", 64, MAX_BLOCK_LEN),
            Err(CompressError::MissingStreamIdentifier)
        );
        // An oversize length is refused from the header alone, before its body arrives.
        let mut d = Decompressor::new();
        let mut out = [0u8; 16];
        assert!(d.decompress_step(STREAM_IDENTIFIER, &mut out).is_ok());
        assert_eq!(
            d.decompress_step(b"\x00\xff\xff\xff", &mut out),
            Err(CompressError::ChunkTooLarge(0xff_ffff))
        );
    }

    #[test]
    fn skippable_chunks_are_skipped() {
        let mut wire = BytesMut::from(&STREAM_IDENTIFIER[..]);
        wire.extend_from_slice(b"\x80\x03\x00\x00xyz");
        Compressor {
            started: true,
            ..Default::default()
        }
        .compress(b"data", &mut wire);
        let mut out = BytesMut::new();
        Decompressor::new().decompress(&wire, &mut out).unwrap();
        assert_eq!(&out[..], b"data");
    }
}
