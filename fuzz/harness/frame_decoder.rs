//! `decode_frame` over a buffer fed in input-chosen chunks, as a connection reader drives it.
//!
//! Invariants: no panic; `Ok(None)` consumes nothing; `Ok(Some)` consumes exactly the length
//! `frame_len` and `complete_frame_len` announce; the buffer never holds more than one maximal
//! frame plus the chunk just appended (oversized lengths fail at the header).

use super::Input;
use bytes::BytesMut;
use frp_proto::frame::{complete_frame_len, frame_len, HEADER_LEN};
use frp_proto::{decode_frame, MAX_BODY_LEN};

/// Feeds the input (after two chunk-size bytes) to a decoder; returns the messages decoded.
pub fn run(data: &[u8]) -> usize {
    let mut input = Input(data);
    // Two chunk sizes, used alternately: one small (1..=256), one up to ~16 KiB.
    let sizes = [1 + input.byte() as usize, 1 + input.byte() as usize * 64];
    let mut buf = BytesMut::new();
    let mut decoded = 0;
    for chunk in super::pieces(input.rest(), &sizes) {
        buf.extend_from_slice(chunk);
        assert!(buf.len() <= HEADER_LEN + MAX_BODY_LEN + chunk.len());
        loop {
            let before = buf.len();
            let announced = frame_len(&buf);
            let complete = complete_frame_len(&buf);
            match decode_frame(&mut buf) {
                Ok(Some(_)) => {
                    let len = before - buf.len();
                    assert_eq!(announced.ok(), Some(Some(len)));
                    assert_eq!(complete.ok(), Some(Some(len)));
                    decoded += 1;
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before);
                    assert!(matches!(complete, Ok(None)));
                    // What is left is less than one complete frame.
                    assert!(buf.len() < HEADER_LEN + MAX_BODY_LEN);
                    break;
                }
                Err(_) => return decoded,
            }
        }
    }
    decoded
}
