//! The input as the JSON body of each of the 18 message types.
//!
//! Invariants: no panic; whatever decodes re-encodes (Go-style escaping may push a body over
//! the limit, which must then be refused cleanly) and decodes again to an equal message.

use bytes::{BufMut, BytesMut};
use frp_proto::frame::complete_frame_len;
use frp_proto::{decode_frame, encode_frame, FrameError, MessageType, MAX_BODY_LEN};

/// Decodes `body` as every message type; returns how many types accepted it.
pub fn run(body: &[u8]) -> usize {
    if body.len() > MAX_BODY_LEN {
        return 0;
    }
    let mut accepted = 0;
    for ty in MessageType::ALL {
        let mut frame = BytesMut::new();
        frame.put_u8(ty.byte());
        frame.put_i64(body.len() as i64);
        frame.extend_from_slice(body);
        let Ok(Some(msg)) = decode_frame(&mut frame) else {
            continue;
        };
        accepted += 1;
        assert!(frame.is_empty());
        assert_eq!(msg.message_type(), ty);
        let mut wire = BytesMut::new();
        match encode_frame(&msg, &mut wire) {
            Ok(()) => {}
            Err(FrameError::TooLong(_)) => {
                assert!(wire.is_empty(), "a refused frame leaves nothing behind");
                continue;
            }
            Err(e) => panic!("re-encoding {ty:?} failed: {e}"),
        }
        assert_eq!(complete_frame_len(&wire).ok(), Some(Some(wire.len())));
        let again = decode_frame(&mut wire)
            .unwrap_or_else(|e| panic!("re-decoding {ty:?} failed: {e}"))
            .expect("a whole frame");
        assert!(wire.is_empty());
        assert_eq!(again, msg);
    }
    accepted
}
