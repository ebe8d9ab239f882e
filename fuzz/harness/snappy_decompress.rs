//! The snappy framing decoder (`use_compression`), both ways of driving it.
//!
//! Invariants: no panic; `decompress` in input-chosen chunks grows its output by at most one
//! block per 8 input bytes (plus one for a buffered chunk); `decompress_step` into a fixed
//! block-sized buffer yields exactly the same data and the same error as `decompress`, never
//! asks for more than a block of room, and always makes progress with a whole chunk at hand;
//! a `Compressor` stream of the input decodes back to it in any chunking.

use super::{pieces, Input};
use bytes::BytesMut;
use frp_proto::compress::{
    CompressError, Compressor, Decompressor, Step, MAX_BLOCK_LEN, MAX_CHUNK_LEN,
};

fn sizes(sel: u8) -> [usize; 2] {
    [1 + sel as usize, 1 + (sel as usize) * 257]
}

/// `decompress` over `pieces`: the data and the error it ended with, if any.
fn appending(data: &[u8], sel: u8) -> (Vec<u8>, Option<CompressError>) {
    let mut d = Decompressor::new();
    let mut out = BytesMut::new();
    for piece in pieces(data, &sizes(sel)) {
        let before = out.len();
        let r = d.decompress(piece, &mut out);
        let growth = out.len() - before;
        let bound = MAX_BLOCK_LEN * (piece.len() / 8 + 1);
        assert!(growth <= bound, "{growth} bytes out of {} in", piece.len());
        if let Err(e) = r {
            return (out.to_vec(), Some(e));
        }
    }
    (out.to_vec(), None)
}

/// `decompress_step` as a bounded reader drives it: input arrives in `pieces`, pending input
/// is kept until a whole chunk is there, each step gets a block-sized output buffer.
fn stepping(data: &[u8], sel: u8) -> (Vec<u8>, Option<CompressError>) {
    let mut d = Decompressor::new();
    let mut window = vec![0u8; MAX_BLOCK_LEN];
    // `pending[pos..]` is input not consumed yet.
    let mut pending: Vec<u8> = Vec::new();
    let mut pos = 0;
    let mut out = Vec::new();
    for piece in pieces(data, &sizes(sel)) {
        pending.drain(..pos);
        pos = 0;
        pending.extend_from_slice(piece);
        loop {
            let input = &pending[pos..];
            match d.decompress_step(input, &mut window) {
                Ok(Step::Progress { consumed, produced }) => {
                    assert!(consumed > 0 && consumed <= input.len());
                    assert!(produced <= MAX_BLOCK_LEN);
                    out.extend_from_slice(&window[..produced]);
                    pos += consumed;
                }
                Ok(Step::NeedInput) => {
                    // Only a partial chunk is pending.
                    assert!(input.len() < MAX_CHUNK_LEN);
                    break;
                }
                Ok(Step::NeedOutput(n)) => panic!("asked for {n} bytes of room, had a block"),
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

/// Runs the checks on one input.
pub fn run(data: &[u8]) {
    let mut input = Input(data);
    let (s1, s2, s3) = (input.byte(), input.byte(), input.byte());
    let rest = input.rest();

    let appended = appending(rest, s1);
    let stepped = stepping(rest, s2);
    assert_eq!(appended.1, stepped.1, "both ways fail alike");
    assert!(appended.0 == stepped.0, "both ways yield the same data");

    // A small output buffer: NeedOutput names the room the next block needs, at most a block.
    let mut d = Decompressor::new();
    let mut small = vec![0u8; 1 + s3 as usize * 16];
    let mut at = rest;
    while let Ok(step) = d.decompress_step(at, &mut small) {
        match step {
            Step::Progress { consumed, .. } => at = &at[consumed..],
            Step::NeedInput => break,
            Step::NeedOutput(n) => {
                assert!(n > small.len() && n <= MAX_BLOCK_LEN);
                small.resize(n, 0);
            }
        }
    }

    // Round trip: the input as a series of writes, decoded in another chunking.
    let mut c = Compressor::new();
    let mut wire = BytesMut::new();
    for piece in pieces(rest, &sizes(s2)) {
        c.compress(piece, &mut wire);
    }
    let (back, err) = appending(&wire, s3);
    assert_eq!(err, None, "our own stream decodes");
    assert!(back == rest, "round trip");
    let (back, err) = stepping(&wire, s1);
    assert_eq!(err, None, "our own stream decodes stepwise");
    assert!(back == rest, "stepwise round trip");
}
