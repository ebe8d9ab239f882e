//! A work connection's inbound payload path (`pipeline::Opener`) fed peer bytes, and the
//! outbound path (`pipeline::Sealer`) round-tripping them.
//!
//! The first byte picks the configuration: bit 0 encryption, bit 1 compression, bit 2 "the
//! peer encrypted the rest properly" (so with encryption on, the decompressor sees the input
//! itself rather than decrypted noise), bit 3 feed with `push` instead of `space`/`fill`. Two
//! more bytes pick the read and write sizes.
//!
//! Invariants: no panic; `buffered() <= MAX_BUFFERED` at every step; with compression no more
//! than a window is ready at once; whenever nothing is ready there is space to read into (the
//! driver never stalls); what comes out equals what the layered codecs (`Decryptor` then
//! `Decompressor::decompress`) make of the same bytes, with the same error; a sealed stream
//! opens to the input.

use super::Input;
use bytes::BytesMut;
use frp_proto::compress::{CompressError, Decompressor};
use frp_proto::crypto::{Decryptor, Encryptor, Key, BLOCK_LEN};
use frp_proto::pipeline::{Opener, Pipe, Sealer, MAX_BUFFERED, READ_LEN, WINDOW_LEN};

/// Read sizes: small, medium and whole buffers, as sockets produce them.
fn read_size(sel: u8, i: usize) -> usize {
    match i % 3 {
        0 => 1 + sel as usize,
        1 => 1 + sel as usize * 97,
        _ => READ_LEN,
    }
}

/// Moves `wire` through `pipe`: reads of `read_size(rsel, i)`, writes of at most
/// `1 + wsel * 61` bytes. Returns the output and the error that stopped it, if any.
fn drive(
    pipe: &mut impl Pipe,
    wire: &[u8],
    rsel: u8,
    wsel: u8,
    push: bool,
    compressed: bool,
) -> (Vec<u8>, Option<CompressError>) {
    let write = 1 + wsel as usize * 61;
    let mut out = Vec::new();
    let mut input = wire;
    let mut reads = 0;
    loop {
        assert!(pipe.buffered() <= MAX_BUFFERED, "holds {}", pipe.buffered());
        let ready = pipe.ready();
        if compressed {
            assert!(ready.len() <= WINDOW_LEN, "{} bytes ready", ready.len());
        }
        if !ready.is_empty() {
            let n = ready.len().min(write);
            out.extend_from_slice(&ready[..n]);
            if let Err(e) = pipe.consume(n) {
                return (out, Some(e));
            }
            continue;
        }
        if input.is_empty() {
            return (out, None);
        }
        let n = read_size(rsel, reads).min(input.len());
        reads += 1;
        let result = if push {
            match pipe.push(&input[..n]) {
                Ok(taken) => {
                    assert!(taken > 0, "nothing ready and nothing taken");
                    input = &input[taken..];
                    Ok(())
                }
                Err(e) => Err(e),
            }
        } else {
            let space = pipe.space();
            assert!(!space.is_empty(), "nothing ready and no space");
            let n = n.min(space.len());
            space[..n].copy_from_slice(&input[..n]);
            input = &input[n..];
            pipe.fill(n)
        };
        if let Err(e) = result {
            return (out, Some(e));
        }
    }
}

/// What the layered codecs make of `wire`: decrypt (IV first), then decompress in one go.
fn reference(
    key: Option<&Key>,
    compression: bool,
    wire: &[u8],
) -> (Vec<u8>, Option<CompressError>) {
    let mut plain = wire.to_vec();
    if let Some(key) = key {
        let mut d = Decryptor::new(key);
        plain = d.decrypt(&mut plain).to_vec();
    }
    if !compression {
        return (plain, None);
    }
    let mut d = Decompressor::new();
    let mut out = BytesMut::new();
    let err = d.decompress(&plain, &mut out).err();
    (out.to_vec(), err)
}

/// Runs the checks on one input.
pub fn run(data: &[u8]) {
    let mut input = Input(data);
    let mode = input.byte();
    let (rsel, wsel) = (input.byte(), input.byte());
    let (encryption, compression) = (mode & 1 != 0, mode & 2 != 0);
    let (pre_encrypt, push) = (mode & 4 != 0, mode & 8 != 0);
    let payload = input.rest();
    let key = Key::derive("fuzz-token");
    let key = encryption.then_some(&key);

    let wire = match key {
        Some(k) if pre_encrypt => {
            let mut e = Encryptor::new(k, [0x5a; BLOCK_LEN]);
            let mut wire = e.take_iv().expect("IV").to_vec();
            let start = wire.len();
            wire.extend_from_slice(payload);
            e.encrypt(&mut wire[start..]);
            wire
        }
        _ => payload.to_vec(),
    };
    let mut opener = Opener::new(key, compression);
    let got = drive(&mut opener, &wire, rsel, wsel, push, compression);
    let want = reference(key, compression, &wire);
    assert_eq!(got.1, want.1, "the opener fails as the layered codecs do");
    assert!(
        got.0 == want.0,
        "the opener yields what the layered codecs do"
    );

    // Round trip of the payload through a sealer and an opener of the same configuration.
    let mut sealer = Sealer::new(key.map(|k| (k, [0xa5; BLOCK_LEN])), compression);
    let (sealed, err) = drive(&mut sealer, payload, wsel, rsel, push, false);
    assert_eq!(err, None);
    let mut opener = Opener::new(key, compression);
    let (back, err) = drive(&mut opener, &sealed, rsel, wsel, !push, compression);
    assert_eq!(err, None);
    assert!(back == payload, "sealed payload opens to itself");
}
