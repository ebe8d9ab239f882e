//! v1 framing: `type (1 byte) | length (i64, big-endian) | JSON body`.
//!
//! Go's reader (golib `msg/json`) refuses a negative length, a length over 10 240 bytes and an
//! unknown type byte, and the connection dies; we report each as a [`FrameError`] so the caller
//! drops the connection the same way. Nothing here panics on peer bytes.

use crate::msg::{Message, MessageType};
use bytes::{Buf, BufMut, BytesMut};

/// Largest JSON body frp accepts (golib's default `maxMsgLength`; frp never changes it).
pub const MAX_BODY_LEN: usize = 10_240;

/// Bytes before the body: the type byte and the 8-byte length.
pub const HEADER_LEN: usize = 9;

/// Why a frame could not be decoded or encoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The type byte is not one of the 18 frp knows.
    #[error("unknown message type byte 0x{0:02x}")]
    UnknownType(u8),
    /// The length field is negative.
    #[error("negative message length {0}")]
    NegativeLength(i64),
    /// The body is longer than frp allows.
    #[error("message length {0} exceeds the {MAX_BODY_LEN}-byte limit")]
    TooLong(u64),
    /// The body is not JSON of the shape its type requires.
    #[error("invalid {ty} body: {source}")]
    InvalidBody {
        /// The frame's type.
        ty: &'static str,
        /// What serde_json found wrong.
        source: serde_json::Error,
    },
}

/// Appends one encoded frame for `msg` to `dst`.
///
/// Errors only when the body would exceed [`MAX_BODY_LEN`]: frps would drop the connection, so
/// the caller gets to refuse instead (say, a NewProxy with too many domains).
pub fn encode_frame(msg: &Message, dst: &mut BytesMut) -> Result<(), FrameError> {
    let start = dst.len();
    dst.put_u8(msg.message_type().byte());
    dst.put_i64(0);
    msg.write_body((&mut *dst).writer())
        .map_err(|source| FrameError::InvalidBody {
            ty: msg.message_type().name(),
            source,
        })?;
    let body_len = dst.len() - start - HEADER_LEN;
    if body_len > MAX_BODY_LEN {
        dst.truncate(start);
        return Err(FrameError::TooLong(body_len as u64));
    }
    dst[start + 1..start + HEADER_LEN].copy_from_slice(&(body_len as i64).to_be_bytes());
    Ok(())
}

/// Encodes one frame into a fresh buffer; convenient outside hot paths.
pub fn encode_to_vec(msg: &Message) -> Result<Vec<u8>, FrameError> {
    let mut buf = BytesMut::with_capacity(256);
    encode_frame(msg, &mut buf)?;
    Ok(buf.to_vec())
}

/// What the header of a buffered frame says, checked against frp's limits.
fn check_header(src: &[u8]) -> Result<Option<(MessageType, usize)>, FrameError> {
    let Some(&tag) = src.first() else {
        return Ok(None);
    };
    // The type byte is checked first, as Go does, so garbage fails fast even on short input.
    let ty = MessageType::from_byte(tag).ok_or(FrameError::UnknownType(tag))?;
    if src.len() < HEADER_LEN {
        return Ok(None);
    }
    let mut len_bytes = [0u8; 8];
    len_bytes.copy_from_slice(&src[1..HEADER_LEN]);
    let len = i64::from_be_bytes(len_bytes);
    if len < 0 {
        return Err(FrameError::NegativeLength(len));
    }
    if len as u64 > MAX_BODY_LEN as u64 {
        return Err(FrameError::TooLong(len as u64));
    }
    Ok(Some((ty, len as usize)))
}

/// Takes one complete frame off the front of `src`.
///
/// Returns `Ok(None)` when `src` does not yet hold a whole frame (nothing is consumed), so a
/// caller can append more bytes and call again. On success the frame's bytes are consumed and
/// any following bytes stay in `src`: after LoginResp they are the start of the server's IV.
pub fn decode_frame(src: &mut BytesMut) -> Result<Option<Message>, FrameError> {
    let Some((ty, len)) = check_header(src)? else {
        return Ok(None);
    };
    if src.len() < HEADER_LEN + len {
        return Ok(None);
    }
    let msg = Message::from_body(ty, &src[HEADER_LEN..HEADER_LEN + len]).map_err(|source| {
        FrameError::InvalidBody {
            ty: ty.name(),
            source,
        }
    })?;
    src.advance(HEADER_LEN + len);
    Ok(Some(msg))
}

/// Whole length (header and body) of the frame whose header starts `src`, checked against
/// frp's limits; `Ok(None)` while fewer than [`HEADER_LEN`] bytes are there.
///
/// Lets a reader that must not read past a frame (the opening frame of a connection, followed
/// by ciphertext) read exactly the header, then exactly the body.
pub fn frame_len(src: &[u8]) -> Result<Option<usize>, FrameError> {
    Ok(check_header(src)?.map(|(_, len)| HEADER_LEN + len))
}

/// Length of the first frame in `src` if it is complete, without parsing its body.
///
/// Useful when a frame must be passed on verbatim.
pub fn complete_frame_len(src: &[u8]) -> Result<Option<usize>, FrameError> {
    Ok(match check_header(src)? {
        Some((_, len)) if src.len() >= HEADER_LEN + len => Some(HEADER_LEN + len),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::*;

    #[test]
    fn req_work_conn_is_the_documented_eleven_bytes() {
        let bytes = encode_to_vec(&ReqWorkConn {}.into()).unwrap();
        assert_eq!(bytes, b"r\0\0\0\0\0\0\0\x02{}");
    }

    #[test]
    fn frame_len_reads_the_header_only() {
        let full = encode_to_vec(&Pong::default().into()).unwrap();
        assert_eq!(frame_len(&full[..HEADER_LEN - 1]).unwrap(), None);
        assert_eq!(frame_len(&full[..HEADER_LEN]).unwrap(), Some(full.len()));
        assert!(frame_len(b"4\xff\xff\xff\xff\xff\xff\xff\xff").is_err());
        assert!(frame_len(b"Z").is_err());
    }

    #[test]
    fn partial_input_asks_for_more_and_consumes_nothing() {
        let full = encode_to_vec(&Pong::default().into()).unwrap();
        for cut in 0..full.len() {
            let mut buf = BytesMut::from(&full[..cut]);
            assert!(decode_frame(&mut buf).unwrap().is_none());
            assert_eq!(buf.len(), cut);
        }
    }

    #[test]
    fn limits_are_typed_errors() {
        let mut neg = BytesMut::from(&b"h\xff\xff\xff\xff\xff\xff\xff\xff"[..]);
        assert!(matches!(
            decode_frame(&mut neg),
            Err(FrameError::NegativeLength(-1))
        ));
        let mut long = BytesMut::from(&b"h\0\0\0\0\0\0\x28\x01"[..]);
        assert!(matches!(
            decode_frame(&mut long),
            Err(FrameError::TooLong(10241))
        ));
        let mut unknown = BytesMut::from(&b"Z"[..]);
        assert!(matches!(
            decode_frame(&mut unknown),
            Err(FrameError::UnknownType(b'Z'))
        ));
        let mut bad = BytesMut::from(&b"h\0\0\0\0\0\0\0\x0f{\"timestamp\":1"[..]);
        bad.extend_from_slice(b"x");
        assert!(matches!(
            decode_frame(&mut bad),
            Err(FrameError::InvalidBody { .. })
        ));
    }

    #[test]
    fn go_html_escapes_are_reproduced() {
        let mut headers = StringMap::new();
        headers.insert("X-A".into(), "<a&b>".into());
        let np = NewProxy {
            headers,
            ..Default::default()
        };
        let bytes = encode_to_vec(&np.into()).unwrap();
        let body = std::str::from_utf8(&bytes[HEADER_LEN..]).unwrap();
        assert_eq!(body, r#"{"headers":{"X-A":"\u003ca\u0026b\u003e"}}"#);
    }

    #[test]
    fn nulls_and_unknown_keys_are_tolerated() {
        let body = br#"{"run_id":null,"version":"0.66.0","extra":[1,2]}"#;
        let mut buf = BytesMut::new();
        buf.put_u8(b'1');
        buf.put_i64(body.len() as i64);
        buf.extend_from_slice(body);
        let msg = decode_frame(&mut buf).unwrap().unwrap();
        assert_eq!(
            msg,
            Message::LoginResp(LoginResp {
                version: "0.66.0".into(),
                ..Default::default()
            })
        );
    }

    #[test]
    fn oversize_encode_is_refused_and_leaves_the_buffer_alone() {
        let np = NewProxy {
            custom_domains: vec!["x".repeat(11_000)],
            ..Default::default()
        };
        let mut buf = BytesMut::from(&b"keep"[..]);
        assert!(matches!(
            encode_frame(&np.into(), &mut buf),
            Err(FrameError::TooLong(_))
        ));
        assert_eq!(&buf[..], b"keep");
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let mut metas = StringMap::new();
        metas.insert("binding_secret".into(), "s3cr3t".into());
        let login = Login {
            privilege_key: "abcdef".into(),
            metas,
            user: "u".into(),
            ..Default::default()
        };
        let text = format!("{:?}", Message::from(login));
        assert!(
            !text.contains("s3cr3t") && !text.contains("abcdef"),
            "{text}"
        );
        assert!(text.contains("\"u\""));
    }
}
