//! The punch datagrams: a `NatHoleSid` frame encrypted as one piece with the proxy's secret
//! key (golib `crypto.Encode`: a random 16-byte IV, then AES-128-CFB of the frame).
//!
//! A datagram that does not decrypt to a `NatHoleSid` frame (wrong key, someone else's
//! traffic) is simply not a punch; the caller goes on waiting.

use crate::crypto::{Decryptor, Encryptor, Key, BLOCK_LEN};
use crate::frame::{decode_frame, encode_frame};
use crate::msg::NatHoleSid;
use crate::Message;
use bytes::BytesMut;

/// Encodes one punch datagram with the IV given (pick it at random).
pub fn encode(sid: &NatHoleSid, key: &Key, iv: [u8; BLOCK_LEN]) -> Vec<u8> {
    let mut frame = BytesMut::new();
    // Only an absurdly long sid could overflow a frame; the datagram then carries no frame
    // and the peer ignores it, as it ignores any datagram that is not a punch.
    let _ = encode_frame(&sid.clone().into(), &mut frame);
    let mut enc = Encryptor::new(key, iv);
    let mut out = Vec::with_capacity(BLOCK_LEN + frame.len());
    out.extend_from_slice(&iv);
    let body = out.len();
    out.extend_from_slice(&frame);
    enc.encrypt(&mut out[body..]);
    out
}

/// The `NatHoleSid` in a punch datagram, or `None` when it is not one for this key.
pub fn decode(datagram: &[u8], key: &Key) -> Option<NatHoleSid> {
    if datagram.len() <= BLOCK_LEN {
        return None;
    }
    let mut buf = BytesMut::from(datagram);
    let mut dec = Decryptor::new(key);
    let n = dec.open(&mut buf);
    buf.truncate(n);
    match decode_frame(&mut buf) {
        Ok(Some(Message::NatHoleSid(m))) => Some(m),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_key() {
        let key = Key::derive("secret");
        let m = NatHoleSid {
            transaction_id: "17000000001234".into(),
            sid: "1700000000abcdef".into(),
            response: false,
            nonce: "0000".into(),
        };
        let d = encode(&m, &key, [7; 16]);
        assert_eq!(&d[..16], &[7; 16]);
        // The frame inside: type '5', then an i64 length.
        assert_eq!(decode(&d, &key), Some(m.clone()));
        assert_eq!(decode(&d, &Key::derive("other")), None);
        assert_eq!(decode(&d[..20], &key), None);
        assert_eq!(decode(&[], &key), None);
        let mut plain = BytesMut::new();
        encode_frame(&m.into(), &mut plain).unwrap();
        let mut dec = Decryptor::new(&key);
        let mut copy = d.clone();
        let n = dec.open(&mut copy);
        assert_eq!(&copy[..n], &plain[..]);
    }

    #[test]
    fn junk_never_panics() {
        let key = Key::derive("k");
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37) as u8).collect();
            assert_eq!(decode(&junk, &key), None);
        }
    }
}
