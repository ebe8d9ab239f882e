//! AES-128-CFB, the control stream's cipher and `use_encryption`'s.
//!
//! Invariants: no panic; decryption of arbitrary ciphertext is the same whatever the chunking
//! and whichever call (`decrypt`, `open`) is used, minus the 16-byte IV; encrypt then decrypt
//! (with `encrypt` or `seal_appended`, in other chunkings) is the identity.

use super::{pieces, Input};
use bytes::BytesMut;
use frp_proto::crypto::{Decryptor, Encryptor, Key, BLOCK_LEN};

fn sizes(sel: u8) -> [usize; 3] {
    [1 + sel as usize, 1 + sel as usize / 7, 1 + sel as usize * 3]
}

fn decrypt_chunked(key: &Key, wire: &[u8], sel: u8) -> Vec<u8> {
    let mut d = Decryptor::new(key);
    let mut plain = Vec::new();
    for piece in pieces(wire, &sizes(sel)) {
        let mut buf = piece.to_vec();
        plain.extend_from_slice(d.decrypt(&mut buf));
    }
    assert_eq!(d.has_iv(), wire.len() >= BLOCK_LEN);
    plain
}

fn open_chunked(key: &Key, wire: &[u8], sel: u8) -> Vec<u8> {
    let mut d = Decryptor::new(key);
    let mut plain = Vec::new();
    for piece in pieces(wire, &sizes(sel)) {
        let mut buf = piece.to_vec();
        let n = d.open(&mut buf);
        plain.extend_from_slice(&buf[..n]);
    }
    plain
}

/// Runs the checks on one input.
pub fn run(data: &[u8]) {
    let mut input = Input(data);
    let (s1, s2, s3) = (input.byte(), input.byte(), input.byte());
    let rest = input.rest();
    let key = Key::derive("fuzz-token");

    // Arbitrary ciphertext.
    let one_shot = decrypt_chunked(&key, rest, 255);
    assert_eq!(one_shot.len(), rest.len().saturating_sub(BLOCK_LEN));
    assert_eq!(decrypt_chunked(&key, rest, s1), one_shot);
    assert_eq!(open_chunked(&key, rest, s2), one_shot);

    // Round trips with an input-chosen IV and independent chunkings on both sides.
    let mut iv = [0u8; BLOCK_LEN];
    for (i, b) in rest.iter().take(BLOCK_LEN).enumerate() {
        iv[i] = *b;
    }
    let mut e = Encryptor::new(&key, iv);
    assert!(e.iv_pending());
    let mut wire = e.take_iv().expect("IV first").to_vec();
    assert!(e.take_iv().is_none() && !e.iv_pending());
    for piece in pieces(rest, &sizes(s2)) {
        let mut buf = piece.to_vec();
        e.encrypt(&mut buf);
        wire.extend_from_slice(&buf);
    }
    assert_eq!(decrypt_chunked(&key, &wire, s3), rest);

    let mut e = Encryptor::new(&key, iv);
    let mut sealed = BytesMut::new();
    // An empty write leaves the IV pending and the output as it was.
    e.seal_appended(&mut sealed, |_| ());
    assert!(sealed.is_empty() && e.iv_pending());
    for piece in pieces(rest, &sizes(s3)) {
        e.seal_appended(&mut sealed, |out| out.extend_from_slice(piece));
    }
    if !rest.is_empty() {
        assert_eq!(&sealed[..], &wire[..], "seal_appended and encrypt agree");
    }
}
