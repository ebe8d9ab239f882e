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

const CHUNK_COMPRESSED: u8 = 0x00;
const CHUNK_UNCOMPRESSED: u8 = 0x01;
const CHUNK_STREAM_ID: u8 = 0xff;

/// Largest data-chunk length we accept: CRC plus the worst-case compressed size of a full block.
fn max_data_chunk_len() -> usize {
    4 + snap::raw::max_compress_len(MAX_BLOCK_LEN)
}

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

/// Turns snappy frames back into data, on any chunking of the input.
#[derive(Debug, Default)]
pub struct Decompressor {
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

    /// Feeds `input` and appends all data it completes to `out`. Partial chunks are kept for
    /// the next call; memory held is bounded by one maximal chunk.
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
            let kind = self.buf[0];
            let len = u32::from_le_bytes([self.buf[1], self.buf[2], self.buf[3], 0]) as usize;
            if !self.seen_identifier && kind != CHUNK_STREAM_ID {
                return Err(CompressError::MissingStreamIdentifier);
            }
            match kind {
                CHUNK_COMPRESSED | CHUNK_UNCOMPRESSED => {
                    if len > max_data_chunk_len() {
                        return Err(CompressError::ChunkTooLarge(len));
                    }
                    if len < 4 {
                        return Err(CompressError::ChunkTooShort);
                    }
                }
                CHUNK_STREAM_ID => {
                    if len != STREAM_IDENTIFIER.len() - 4 {
                        return Err(CompressError::BadStreamIdentifier);
                    }
                }
                0x02..=0x7f => return Err(CompressError::ReservedChunk(kind)),
                _ => {
                    // Skippable (0x80..=0xfd) and padding (CHUNK_PADDING, 0xfe).
                    self.buf.clear();
                    self.skip = len;
                    continue;
                }
            }
            let need = 4 + len - self.buf.len();
            let n = need.min(input.len());
            self.buf.extend_from_slice(&input[..n]);
            input = &input[n..];
            if n < need {
                return Ok(());
            }
            let body = &self.buf[4..];
            match kind {
                CHUNK_STREAM_ID => {
                    if body != &STREAM_IDENTIFIER[4..] {
                        return Err(CompressError::BadStreamIdentifier);
                    }
                    self.seen_identifier = true;
                }
                _ => {
                    let crc = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
                    let data = &body[4..];
                    let start = out.len();
                    if kind == CHUNK_COMPRESSED {
                        let n =
                            snap::raw::decompress_len(data).map_err(|_| CompressError::Corrupt)?;
                        if n > MAX_BLOCK_LEN {
                            return Err(CompressError::Corrupt);
                        }
                        out.resize(start + n, 0);
                        let decoder = self.decoder.get_or_insert_with(snap::raw::Decoder::new);
                        let Ok(got) = decoder.decompress(data, &mut out[start..]) else {
                            // Drop the space reserved above: it never held data.
                            out.truncate(start);
                            return Err(CompressError::Corrupt);
                        };
                        out.truncate(start + got);
                    } else {
                        if data.len() > MAX_BLOCK_LEN {
                            return Err(CompressError::ChunkTooLarge(data.len()));
                        }
                        out.extend_from_slice(data);
                    }
                    if masked_crc(&out[start..]) != crc {
                        out.truncate(start);
                        return Err(CompressError::Checksum);
                    }
                }
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
