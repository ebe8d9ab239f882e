//! The payload pipeline of a work connection: what `use_compression` and `use_encryption` do
//! to the bytes between the visitor and the local service.
//!
//! Outbound (towards the peer) a [`Sealer`] compresses, then encrypts, and puts the 16-byte IV
//! in front of the first ciphertext byte. Inbound an [`Opener`] strips the peer's IV, decrypts,
//! then decompresses. Each is one direction of one connection and owns its buffers, allocated
//! once; nothing is allocated per chunk.
//!
//! Both are driven through [`Pipe`]: the driver reads from the source into
//! [`Pipe::space`], reports it with [`Pipe::fill`], writes [`Pipe::ready`] to the sink and
//! reports that with [`Pipe::consume`]. Whatever the compression ratio, a pipe never holds more
//! than [`MAX_BUFFERED`] bytes: an opener decompresses one snappy block at a time into a window
//! of [`WINDOW_LEN`] bytes and leaves the rest of the compressed input pending until the sink
//! has taken the window. Without transforms the bytes are read and written in place; with
//! encryption only they are decrypted or encrypted in place.
//!
//! Buffers are leased from process-wide pools when a pipe is about to read and go back with
//! [`Pipe::release`] once it holds nothing: an idle connection holds no payload buffer.

use crate::buf_pool::BufPool;
use crate::compress::{
    CompressError, Compressor, Decompressor, Step, MAX_BLOCK_LEN, MAX_CHUNK_LEN,
};
use crate::crypto::{Decryptor, Encryptor, Key, BLOCK_LEN};
use bytes::BytesMut;

/// Bytes read from the source at once. Large reads keep syscalls and mux frames few.
pub const READ_LEN: usize = 64 * 1024;

/// Most decompressed bytes an [`Opener`] holds for its sink: one snappy block, the unit the
/// format decodes at once.
pub const WINDOW_LEN: usize = MAX_BLOCK_LEN;

/// Input buffer of a decompressing [`Opener`]: a read of [`READ_LEN`], with room to spare for
/// the partial chunk left from the previous read, and never less than a whole chunk.
const OPEN_INPUT_LEN: usize = READ_LEN + 16 * 1024;
const _: () = assert!(OPEN_INPUT_LEN >= MAX_CHUNK_LEN);

/// Upper bound of [`Pipe::buffered`] for every pipe and configuration: what one direction of
/// one connection can hold, whatever the data and its compression ratio.
pub const MAX_BUFFERED: usize = OPEN_INPUT_LEN + WINDOW_LEN;

/// Read buffers of sealers and plain openers, and the windows of decompressing openers. 32
/// free ones (2 MiB) cover the busy directions of a client forwarding many streams at once.
static READ_POOL: BufPool = BufPool::new(READ_LEN, 32);
const _: () = assert!(WINDOW_LEN == READ_LEN);

/// Input buffers of decompressing openers (compression is the rarer case: fewer kept).
static INPUT_POOL: BufPool = BufPool::new(OPEN_INPUT_LEN, 8);

/// Makes sure `buf` is a buffer of `pool` (an empty box stands for "none held").
fn hold(buf: &mut Box<[u8]>, pool: &BufPool) {
    if buf.is_empty() {
        *buf = pool.lease();
    }
}

/// Gives `buf` back to `pool`, leaving the empty box that stands for "none held".
fn give_back(buf: &mut Box<[u8]>, pool: &BufPool) {
    if !buf.is_empty() {
        pool.give_back(std::mem::take(buf));
    }
}

/// One direction of a connection's payload between a source and a sink, sans I/O.
///
/// Contract: whenever [`Pipe::ready`] is empty, [`Pipe::space`] is not, so a driver that
/// writes everything ready before it reads never stalls.
pub trait Pipe {
    /// Where to read the next source bytes into; empty while the pipe holds enough for its
    /// sink (write [`Pipe::ready`] first).
    fn space(&mut self) -> &mut [u8];

    /// `n` bytes were read into the start of [`Pipe::space`]; transforms them.
    fn fill(&mut self, n: usize) -> Result<(), CompressError>;

    /// Bytes ready for the sink.
    fn ready(&self) -> &[u8];

    /// The first `n` bytes of [`Pipe::ready`] were written; may decode more of what is
    /// pending.
    fn consume(&mut self, n: usize) -> Result<(), CompressError>;

    /// Bytes held: taken from the source, not yet given to the sink (compressed input still
    /// to decode counts as it is). At most [`MAX_BUFFERED`].
    fn buffered(&self) -> usize;

    /// Gives the pipe's buffers back to their pool if it holds nothing; the next
    /// [`Pipe::space`] leases them again. A driver calls it when its source has nothing to
    /// read, so that an idle connection holds no buffer.
    fn release(&mut self) {}

    /// Feeds bytes from memory (say, bytes that arrived with the last message before the
    /// payload) as if read from the source. Returns how many were taken; 0 means: write
    /// [`Pipe::ready`] first.
    fn push(&mut self, data: &[u8]) -> Result<usize, CompressError> {
        let space = self.space();
        let n = space.len().min(data.len());
        if n == 0 {
            return Ok(0);
        }
        space[..n].copy_from_slice(&data[..n]);
        self.fill(n)?;
        Ok(n)
    }
}

/// The outbound direction: compress, then encrypt, IV first.
pub struct Sealer {
    /// What the source reads into; without compression also what the sink is given. Empty
    /// while released.
    buf: Box<[u8]>,
    /// Without compression: `buf[pos..end]` is ready.
    pos: usize,
    end: usize,
    /// With compression: `out[out_pos..]` is ready. Cleared, never shrunk, between reads.
    out: BytesMut,
    out_pos: usize,
    /// Boxed, as the opener's: a connection's task holds both pipes inline, and the cipher and
    /// compressor states (3 KiB together) are only there for proxies that ask for them.
    enc: Option<Box<Encryptor>>,
    comp: Option<Box<Compressor>>,
}

impl Sealer {
    /// A sealer encrypting with `key` and a fresh random `iv` when `encryption` is given, and
    /// compressing when `compression` is set.
    pub fn new(encryption: Option<(&Key, [u8; BLOCK_LEN])>, compression: bool) -> Self {
        Sealer {
            buf: Box::default(),
            pos: 0,
            end: 0,
            out: BytesMut::new(),
            out_pos: 0,
            enc: encryption.map(|(key, iv)| Box::new(Encryptor::new(key, iv))),
            comp: compression.then(|| Box::new(Compressor::new())),
        }
    }

    /// Where the first read goes without compression: behind room for the IV, so IV and
    /// ciphertext leave in one write.
    fn head(&self) -> usize {
        match (&self.comp, &self.enc) {
            (None, Some(enc)) if enc.iv_pending() => BLOCK_LEN,
            _ => 0,
        }
    }
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("encryption", &self.enc.is_some())
            .field("compression", &self.comp.is_some())
            .field("buffered", &self.buffered())
            .finish()
    }
}

impl Pipe for Sealer {
    fn space(&mut self) -> &mut [u8] {
        if !self.ready().is_empty() {
            return &mut [];
        }
        let head = self.head();
        hold(&mut self.buf, &READ_POOL);
        &mut self.buf[head..]
    }

    fn fill(&mut self, n: usize) -> Result<(), CompressError> {
        let head = self.head();
        hold(&mut self.buf, &READ_POOL);
        let n = n.min(self.buf.len() - head);
        let Some(comp) = self.comp.as_mut() else {
            if let Some(enc) = self.enc.as_mut() {
                if let Some(iv) = enc.take_iv() {
                    self.buf[..BLOCK_LEN].copy_from_slice(&iv);
                }
                enc.encrypt(&mut self.buf[head..head + n]);
            }
            self.pos = 0;
            self.end = head + n;
            return Ok(());
        };
        self.out.clear();
        self.out_pos = 0;
        let data = &self.buf[..n];
        match self.enc.as_mut() {
            Some(enc) => enc.seal_appended(&mut self.out, |out| comp.compress(data, out)),
            None => comp.compress(data, &mut self.out),
        }
        Ok(())
    }

    fn ready(&self) -> &[u8] {
        if self.comp.is_some() {
            &self.out[self.out_pos..]
        } else {
            &self.buf[self.pos..self.end]
        }
    }

    fn consume(&mut self, n: usize) -> Result<(), CompressError> {
        if self.comp.is_some() {
            self.out_pos = (self.out_pos + n).min(self.out.len());
        } else {
            self.pos = (self.pos + n).min(self.end);
        }
        Ok(())
    }

    fn buffered(&self) -> usize {
        self.ready().len()
    }

    fn release(&mut self) {
        if self.buffered() == 0 {
            self.pos = 0;
            self.end = 0;
            give_back(&mut self.buf, &READ_POOL);
        }
    }
}

impl Drop for Sealer {
    fn drop(&mut self) {
        give_back(&mut self.buf, &READ_POOL);
    }
}

/// The inbound direction: strip the IV, decrypt, decompress.
///
/// Corrupt input is an error from [`Pipe::fill`] or [`Pipe::consume`]; data from the chunks
/// before it, which passed their checksums, is handed out first, and nothing of the bad chunk
/// ever is. Encryption alone has no integrity check: a wrong IV or flipped ciphertext without
/// compression decrypts to wrong bytes, as in frp.
pub struct Opener {
    /// What the source reads into, decrypted in place as it arrives. Without compression
    /// `buf[pos..end]` is ready; with it, `buf[pos..end]` is compressed input not decoded yet.
    /// Empty while released, as is `window`.
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    /// With compression: decoded data, `window[win_pos..win_end]` ready.
    window: Box<[u8]>,
    win_pos: usize,
    win_end: usize,
    /// With compression: the pending input holds no whole chunk, so more must be read.
    starved: bool,
    /// With compression: an error found behind data still in the window. The data passed its
    /// checks and is handed out first; the error comes when it has been taken.
    failed: Option<CompressError>,
    dec: Option<Box<Decryptor>>,
    decomp: Option<Decompressor>,
}

impl Opener {
    /// An opener decrypting with `key` (the peer's IV comes first on the wire) when given,
    /// and decompressing when `compression` is set.
    pub fn new(key: Option<&Key>, compression: bool) -> Self {
        Opener {
            buf: Box::default(),
            pos: 0,
            end: 0,
            window: Box::default(),
            win_pos: 0,
            win_end: 0,
            starved: true,
            failed: None,
            dec: key.map(|k| Box::new(Decryptor::new(k))),
            decomp: compression.then(Decompressor::new),
        }
    }

    /// Whether the opener passes bytes through unchanged (no decryption, no decompression), so
    /// a driver may move them from source to sink without the opener's buffer.
    pub fn is_plain(&self) -> bool {
        self.dec.is_none() && self.decomp.is_none()
    }

    /// The pool of the input buffer.
    fn input_pool(&self) -> &'static BufPool {
        if self.decomp.is_some() {
            &INPUT_POOL
        } else {
            &READ_POOL
        }
    }

    /// Decodes pending input into the window until the input runs short or the next block
    /// does not fit.
    fn decode(&mut self) -> Result<(), CompressError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let Some(decomp) = self.decomp.as_mut() else {
            return Ok(());
        };
        if self.pos < self.end {
            hold(&mut self.window, &READ_POOL);
        }
        loop {
            if self.pos == self.end {
                self.pos = 0;
                self.end = 0;
                self.starved = true;
                return Ok(());
            }
            let step = decomp.decompress_step(
                &self.buf[self.pos..self.end],
                &mut self.window[self.win_end..],
            );
            let step = match step {
                Ok(step) => step,
                // Verified data is still waiting: hand it out, fail afterwards.
                Err(e) if self.win_end > self.win_pos => {
                    self.failed = Some(e);
                    self.starved = false;
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            match step {
                Step::Progress { consumed, produced } => {
                    self.pos += consumed;
                    self.win_end += produced;
                }
                Step::NeedInput => {
                    self.starved = true;
                    return Ok(());
                }
                Step::NeedOutput(_) => {
                    self.starved = false;
                    return Ok(());
                }
            }
        }
    }
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener")
            .field("encryption", &self.dec.is_some())
            .field("compression", &self.decomp.is_some())
            .field("buffered", &self.buffered())
            .finish()
    }
}

impl Pipe for Opener {
    fn space(&mut self) -> &mut [u8] {
        if self.decomp.is_none() {
            if self.pos < self.end {
                return &mut [];
            }
            self.pos = 0;
            self.end = 0;
            hold(&mut self.buf, &READ_POOL);
            return &mut self.buf[..];
        }
        if !self.starved {
            return &mut [];
        }
        // Keep the partial chunk, move it to the front so a whole one fits behind it.
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        hold(&mut self.buf, &INPUT_POOL);
        &mut self.buf[self.end..]
    }

    fn fill(&mut self, n: usize) -> Result<(), CompressError> {
        let pool = self.input_pool();
        hold(&mut self.buf, pool);
        let start = self.end;
        let n = n.min(self.buf.len() - start);
        let plain = match self.dec.as_mut() {
            Some(dec) => dec.open(&mut self.buf[start..start + n]),
            None => n,
        };
        self.end = start + plain;
        self.decode()
    }

    fn ready(&self) -> &[u8] {
        if self.decomp.is_some() {
            &self.window[self.win_pos..self.win_end]
        } else {
            &self.buf[self.pos..self.end]
        }
    }

    fn consume(&mut self, n: usize) -> Result<(), CompressError> {
        if self.decomp.is_none() {
            self.pos = (self.pos + n).min(self.end);
            return Ok(());
        }
        self.win_pos = (self.win_pos + n).min(self.win_end);
        if self.win_pos == self.win_end {
            self.win_pos = 0;
            self.win_end = 0;
            self.decode()?;
        }
        Ok(())
    }

    fn buffered(&self) -> usize {
        if self.decomp.is_some() {
            (self.end - self.pos) + (self.win_end - self.win_pos)
        } else {
            self.end - self.pos
        }
    }

    fn release(&mut self) {
        // An error waiting behind handed-out data must still be reported: keep the state.
        if self.buffered() == 0 && self.failed.is_none() {
            (self.pos, self.end, self.win_pos, self.win_end) = (0, 0, 0, 0);
            let pool = self.input_pool();
            give_back(&mut self.buf, pool);
            give_back(&mut self.window, &READ_POOL);
        }
    }
}

impl Drop for Opener {
    fn drop(&mut self) {
        let pool = self.input_pool();
        give_back(&mut self.buf, pool);
        give_back(&mut self.window, &READ_POOL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIGS: [(bool, bool); 4] = [(false, false), (true, false), (false, true), (true, true)];

    fn sealer(key: &Key, (enc, comp): (bool, bool)) -> Sealer {
        Sealer::new(enc.then_some((key, [0x5a; BLOCK_LEN])), comp)
    }

    fn opener(key: &Key, (enc, comp): (bool, bool)) -> Opener {
        Opener::new(enc.then_some(key), comp)
    }

    /// Moves `data` through `pipe` with reads of at most `read` bytes and writes of at most
    /// `write` bytes, checking the bound and the contract at every step.
    fn run(pipe: &mut impl Pipe, data: &[u8], read: usize, write: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut input = data;
        loop {
            assert!(pipe.buffered() <= MAX_BUFFERED, "{}", pipe.buffered());
            let ready = pipe.ready();
            if !ready.is_empty() {
                let n = ready.len().min(write);
                out.extend_from_slice(&ready[..n]);
                pipe.consume(n).unwrap();
                continue;
            }
            if input.is_empty() {
                return out;
            }
            // Drivers release whenever their source has nothing: pending input must survive.
            pipe.release();
            let space = pipe.space();
            assert!(!space.is_empty(), "nothing ready and no space");
            let n = space.len().min(read).min(input.len());
            space[..n].copy_from_slice(&input[..n]);
            input = &input[n..];
            pipe.fill(n).unwrap();
        }
    }

    fn sample() -> Vec<u8> {
        let mut data = b"GET / HTTP/1.1\r\nHost: example\r\n\r\n".repeat(3000);
        data.extend((0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        data.extend(std::iter::repeat_n(0u8, 300_000));
        data
    }

    #[test]
    fn sealer_then_opener_round_trips_in_every_configuration() {
        let key = Key::derive("pipeline");
        let data = sample();
        for cfg in CONFIGS {
            for (read, write) in [(1000, 777), (READ_LEN, usize::MAX), (7, 3)] {
                let wire = run(&mut sealer(&key, cfg), &data, read, write);
                if cfg == (false, false) {
                    assert_eq!(wire, data);
                }
                if cfg.0 {
                    assert_eq!(&wire[..BLOCK_LEN], &[0x5a; BLOCK_LEN], "IV first");
                }
                let back = run(&mut opener(&key, cfg), &wire, write.min(READ_LEN), read);
                assert_eq!(back, data, "{cfg:?} read {read} write {write}");
            }
        }
    }

    #[test]
    fn sealer_matches_the_layered_codecs() {
        // Compression inside, encryption outside, one continuous stream of each.
        let key = Key::derive("pipeline");
        let data = sample();
        let mut comp = Compressor::new();
        let mut plain = BytesMut::new();
        for block in data.chunks(READ_LEN) {
            comp.compress(block, &mut plain);
        }
        let mut enc = Encryptor::new(&key, [0x5a; BLOCK_LEN]);
        let mut expected = enc.take_iv().unwrap().to_vec();
        enc.encrypt(&mut plain);
        expected.extend_from_slice(&plain);
        let wire = run(&mut sealer(&key, (true, true)), &data, READ_LEN, usize::MAX);
        assert_eq!(wire, expected);
    }

    /// The memory amplification regression: 64 KiB of compressed zeros is about 1.3 MiB of
    /// data. Whatever the sink takes per write, the opener never holds more than its bound,
    /// and never hands out more than one window at once.
    #[test]
    fn opener_holds_a_bounded_amount_whatever_the_ratio() {
        let key = Key::derive("pipeline");
        let zeros = vec![0u8; 8 << 20];
        for cfg in [(false, true), (true, true)] {
            let wire = run(&mut sealer(&key, cfg), &zeros, READ_LEN, usize::MAX);
            assert!(wire.len() < zeros.len() / 15, "zeros compress well");
            let mut o = opener(&key, cfg);
            let mut input = &wire[..];
            let mut delivered = 0usize;
            let mut peak = 0usize;
            // A sink that takes 1 KiB per write: the slowest reasonable reader.
            loop {
                peak = peak.max(o.buffered());
                assert!(o.ready().len() <= WINDOW_LEN);
                if !o.ready().is_empty() {
                    let n = o.ready().len().min(1024);
                    delivered += n;
                    o.consume(n).unwrap();
                    continue;
                }
                if input.is_empty() {
                    break;
                }
                let space = o.space();
                let n = space.len().min(input.len());
                space[..n].copy_from_slice(&input[..n]);
                input = &input[n..];
                o.fill(n).unwrap();
            }
            assert_eq!(delivered, zeros.len());
            assert!(peak <= MAX_BUFFERED, "{cfg:?}: held {peak} bytes");
        }
    }

    #[test]
    fn a_drained_pipe_gives_its_buffers_back() {
        let key = Key::derive("pipeline");
        let data = sample();
        for cfg in CONFIGS {
            let mut s = sealer(&key, cfg);
            let wire = run(&mut s, &data, READ_LEN, usize::MAX);
            s.release();
            assert!(s.buf.is_empty(), "{cfg:?}");
            let mut o = opener(&key, cfg);
            // Cut inside a chunk: a compressed opener keeps the partial chunk when released.
            let half = wire.len() / 2 + 3;
            let mut back = run(&mut o, &wire[..half], 5000, usize::MAX);
            o.release();
            back.extend(run(&mut o, &wire[half..], 5000, usize::MAX));
            assert_eq!(back, data, "{cfg:?}");
            o.release();
            assert!(o.buf.is_empty() && o.window.is_empty(), "{cfg:?}");
        }
    }

    /// A connection's task holds both pipes inline for as long as it lives, idle or not; the
    /// cipher and compressor states (3 KiB) are boxed, only for proxies that use them.
    #[test]
    fn pipes_are_small_inline() {
        let both = std::mem::size_of::<Sealer>() + std::mem::size_of::<Opener>();
        assert!(both <= 512, "{both} bytes");
    }

    #[test]
    fn plain_mode_reads_and_writes_in_place() {
        let mut s = Sealer::new(None, false);
        let space = s.space();
        assert_eq!(space.len(), READ_LEN);
        space[..3].copy_from_slice(b"abc");
        let at = space.as_ptr();
        s.fill(3).unwrap();
        assert_eq!(s.ready(), b"abc");
        assert_eq!(s.ready().as_ptr(), at, "no copy");
        assert!(s.space().is_empty(), "no read before the write");
        s.consume(3).unwrap();
        assert_eq!(s.buffered(), 0);
        let mut o = Opener::new(None, false);
        o.push(b"xyz").unwrap();
        assert_eq!(o.ready(), b"xyz");
    }

    #[test]
    fn corrupt_or_wrongly_keyed_input_is_an_error_not_a_panic() {
        let key = Key::derive("pipeline");
        let data = sample();
        let wire = run(&mut sealer(&key, (true, true)), &data, READ_LEN, usize::MAX);
        // A wrong IV garbles the snappy stream behind it.
        let mut bad_iv = wire.clone();
        bad_iv[0] ^= 1;
        // A flipped byte inside a chunk fails its checksum.
        let mut flipped = wire.clone();
        flipped[BLOCK_LEN + 40] ^= 0x80;
        for bad in [bad_iv, flipped] {
            let mut o = opener(&key, (true, true));
            let mut failed = false;
            for piece in bad.chunks(5000) {
                while !o.ready().is_empty() {
                    let n = o.ready().len();
                    if o.consume(n).is_err() {
                        failed = true;
                        break;
                    }
                }
                if failed || o.push(piece).is_err() {
                    failed = true;
                    break;
                }
            }
            assert!(failed);
        }
    }
}
