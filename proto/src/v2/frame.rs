//! v2 framing: `type u16 | flags u16 | payload length u32 | payload`, big-endian.
//!
//! frp's reader refuses non-zero flags and a payload over 64 KiB; both, an unknown message id
//! and a frame of the wrong type where a message is due are [`FrameError`]s here, and the
//! caller drops the connection as Go does. Nothing here panics on peer bytes.
//!
//! A message frame's payload is the message id (`u16`, the v1 table order from 1) followed by
//! exactly the JSON body v1 would send.

use crate::msg::{Message, MessageType};
use bytes::{Buf, BufMut, BytesMut};

/// The 7 bytes a client writes first on every v2 connection: `"FRP\0\x02\r\n"`.
///
/// A v1 frame never starts with `F` (no message type uses that byte), which is how frps tells
/// the two apart, and how a pre-0.69 frps refuses v2 at once: it closes the connection after
/// reading the first byte.
pub const MAGIC: [u8; 7] = *b"FRP\x00\x02\r\n";

/// Bytes before the payload: type, flags and length.
pub const FRAME_HEADER_LEN: usize = 8;

/// Largest payload frp reads or writes (its `DefaultMaxFramePayloadSize`).
pub const MAX_FRAME_PAYLOAD: usize = 64 * 1024;

/// Bytes of a message payload before its JSON body: the message id.
pub const MESSAGE_ID_LEN: usize = 2;

/// The frame types frp defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameType {
    /// The client's capabilities (JSON), first on a control connection.
    ClientHello,
    /// The server's selection (JSON), its answer to ClientHello.
    ServerHello,
    /// One frp message: id and JSON body.
    Message,
}

impl FrameType {
    /// The type's number on the wire.
    pub fn code(self) -> u16 {
        match self {
            FrameType::ClientHello => 1,
            FrameType::ServerHello => 2,
            FrameType::Message => 16,
        }
    }

    /// The type for a number, or `None` for one frp does not define.
    pub fn from_code(code: u16) -> Option<Self> {
        match code {
            1 => Some(FrameType::ClientHello),
            2 => Some(FrameType::ServerHello),
            16 => Some(FrameType::Message),
            _ => None,
        }
    }
}

/// The v2 message id of a message type (frp's `V2Type*` constants).
pub fn message_id(ty: MessageType) -> u16 {
    match ty {
        MessageType::Login => 1,
        MessageType::LoginResp => 2,
        MessageType::NewProxy => 3,
        MessageType::NewProxyResp => 4,
        MessageType::CloseProxy => 5,
        MessageType::NewWorkConn => 6,
        MessageType::ReqWorkConn => 7,
        MessageType::StartWorkConn => 8,
        MessageType::NewVisitorConn => 9,
        MessageType::NewVisitorConnResp => 10,
        MessageType::Ping => 11,
        MessageType::Pong => 12,
        MessageType::UdpPacket => 13,
        MessageType::NatHoleVisitor => 14,
        MessageType::NatHoleClient => 15,
        MessageType::NatHoleResp => 16,
        MessageType::NatHoleSid => 17,
        MessageType::NatHoleReport => 18,
    }
}

/// The message type of a v2 message id, or `None` for an id frp does not define.
pub fn message_type(id: u16) -> Option<MessageType> {
    MessageType::ALL
        .iter()
        .copied()
        .find(|&ty| message_id(ty) == id)
}

/// Why a v2 frame could not be decoded or encoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The flags field is not zero (frp defines no flags).
    #[error("unsupported frame flags: {0}")]
    Flags(u16),
    /// The payload is longer than frp allows.
    #[error("frame payload length {0} exceeds limit {MAX_FRAME_PAYLOAD}")]
    TooLong(u64),
    /// A frame of another type came where a message frame was due.
    #[error("unexpected frame type {found}, want {want}")]
    UnexpectedType {
        /// The type on the wire.
        found: u16,
        /// The type expected here.
        want: u16,
    },
    /// A message frame too short to hold a message id.
    #[error("message frame payload too short")]
    ShortMessage,
    /// The message id is not one of the 18 frp knows.
    #[error("unknown v2 message type {0}")]
    UnknownMessage(u16),
    /// The body is not JSON of the shape its type requires.
    #[error("invalid {ty} body: {source}")]
    InvalidBody {
        /// The message's type.
        ty: &'static str,
        /// What serde_json found wrong.
        source: serde_json::Error,
    },
}

/// A checked frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The frame type as sent (unknown types are kept, as Go's reader keeps them).
    pub code: u16,
    /// Payload length, at most [`MAX_FRAME_PAYLOAD`].
    pub len: usize,
}

impl FrameHeader {
    /// The header for `len` bytes of payload, refused over [`MAX_FRAME_PAYLOAD`].
    pub fn new(ty: FrameType, len: usize) -> Result<Self, FrameError> {
        if len > MAX_FRAME_PAYLOAD {
            return Err(FrameError::TooLong(len as u64));
        }
        Ok(FrameHeader {
            code: ty.code(),
            len,
        })
    }

    /// The 8 header bytes.
    pub fn to_bytes(self) -> [u8; FRAME_HEADER_LEN] {
        let mut out = [0u8; FRAME_HEADER_LEN];
        out[..2].copy_from_slice(&self.code.to_be_bytes());
        // Bytes 2..4 are the flags: always zero.
        out[4..].copy_from_slice(&(self.len as u32).to_be_bytes());
        out
    }

    /// Reads and checks the header at the start of `src`; `Ok(None)` while it is incomplete.
    pub fn parse(src: &[u8]) -> Result<Option<Self>, FrameError> {
        let Some(h) = src.get(..FRAME_HEADER_LEN) else {
            return Ok(None);
        };
        let code = u16::from_be_bytes([h[0], h[1]]);
        let flags = u16::from_be_bytes([h[2], h[3]]);
        let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        if flags != 0 {
            return Err(FrameError::Flags(flags));
        }
        if len as usize > MAX_FRAME_PAYLOAD {
            return Err(FrameError::TooLong(u64::from(len)));
        }
        Ok(Some(FrameHeader {
            code,
            len: len as usize,
        }))
    }
}

/// Appends a frame of type `ty` with `payload` to `dst`.
pub fn encode_frame(ty: FrameType, payload: &[u8], dst: &mut BytesMut) -> Result<(), FrameError> {
    let header = FrameHeader::new(ty, payload.len())?;
    dst.extend_from_slice(&header.to_bytes());
    dst.extend_from_slice(payload);
    Ok(())
}

/// Appends one message frame for `msg` to `dst`: header, message id, JSON body.
///
/// Errors only when the payload would exceed [`MAX_FRAME_PAYLOAD`]; `dst` is then left as it
/// was.
pub fn encode_message(msg: &Message, dst: &mut BytesMut) -> Result<(), FrameError> {
    let start = dst.len();
    dst.put_bytes(0, FRAME_HEADER_LEN);
    dst.put_u16(message_id(msg.message_type()));
    if let Err(source) = msg.write_body((&mut *dst).writer()) {
        dst.truncate(start);
        return Err(FrameError::InvalidBody {
            ty: msg.message_type().name(),
            source,
        });
    }
    let header = match FrameHeader::new(FrameType::Message, dst.len() - start - FRAME_HEADER_LEN) {
        Ok(header) => header,
        Err(e) => {
            dst.truncate(start);
            return Err(e);
        }
    };
    dst[start..start + FRAME_HEADER_LEN].copy_from_slice(&header.to_bytes());
    Ok(())
}

/// Encodes one message frame into a fresh buffer; convenient outside hot paths.
pub fn encode_message_to_vec(msg: &Message) -> Result<Vec<u8>, FrameError> {
    let mut buf = BytesMut::with_capacity(256);
    encode_message(msg, &mut buf)?;
    Ok(buf.to_vec())
}

/// Length of the first frame in `src` (header and payload) once it is complete; `Ok(None)`
/// while it is not. The header is checked as soon as it is there.
pub fn complete_frame_len(src: &[u8]) -> Result<Option<usize>, FrameError> {
    Ok(match FrameHeader::parse(src)? {
        Some(h) if src.len() >= FRAME_HEADER_LEN + h.len => Some(FRAME_HEADER_LEN + h.len),
        _ => None,
    })
}

/// Parses a message frame's payload (id and JSON body).
pub fn parse_message(payload: &[u8]) -> Result<Message, FrameError> {
    let (Some(id), Some(body)) = (payload.get(..MESSAGE_ID_LEN), payload.get(MESSAGE_ID_LEN..))
    else {
        return Err(FrameError::ShortMessage);
    };
    let id = u16::from_be_bytes([id[0], id[1]]);
    let ty = message_type(id).ok_or(FrameError::UnknownMessage(id))?;
    Message::from_body(ty, body).map_err(|source| FrameError::InvalidBody {
        ty: ty.name(),
        source,
    })
}

/// Takes one complete frame of any type off the front of `src`: its header and payload.
///
/// Returns `Ok(None)` when `src` does not yet hold a whole frame (nothing is consumed).
pub fn decode_frame(src: &mut BytesMut) -> Result<Option<(FrameHeader, BytesMut)>, FrameError> {
    let Some(header) = FrameHeader::parse(src)? else {
        return Ok(None);
    };
    if src.len() < FRAME_HEADER_LEN + header.len {
        return Ok(None);
    }
    src.advance(FRAME_HEADER_LEN);
    Ok(Some((header, src.split_to(header.len))))
}

/// Takes one complete message frame off the front of `src`.
///
/// Returns `Ok(None)` when `src` does not yet hold a whole frame (nothing is consumed); a frame
/// of another type is an error, as for frp's message reader. Bytes after the frame stay in
/// `src`: after LoginResp they are the start of the server's AEAD stream, after StartWorkConn
/// the first payload bytes.
pub fn decode_message(src: &mut BytesMut) -> Result<Option<Message>, FrameError> {
    let Some(header) = FrameHeader::parse(src)? else {
        return Ok(None);
    };
    if header.code != FrameType::Message.code() {
        return Err(FrameError::UnexpectedType {
            found: header.code,
            want: FrameType::Message.code(),
        });
    }
    let end = FRAME_HEADER_LEN + header.len;
    if src.len() < end {
        return Ok(None);
    }
    let msg = parse_message(&src[FRAME_HEADER_LEN..end])?;
    src.advance(end);
    Ok(Some(msg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::*;

    #[test]
    fn ping_is_the_documented_twelve_bytes() {
        let bytes = encode_message_to_vec(&Ping::default().into()).unwrap();
        assert_eq!(bytes, b"\x00\x10\x00\x00\x00\x00\x00\x04\x00\x0b{}");
    }

    #[test]
    fn ids_follow_the_v1_table_order_and_round_trip() {
        for (n, ty) in MessageType::ALL.iter().enumerate() {
            assert_eq!(usize::from(message_id(*ty)), n + 1, "{ty:?}");
            assert_eq!(message_type(message_id(*ty)), Some(*ty));
        }
        assert_eq!(message_type(0), None);
        assert_eq!(message_type(19), None);
    }

    #[test]
    fn partial_input_asks_for_more_and_consumes_nothing() {
        let full = encode_message_to_vec(&Pong::default().into()).unwrap();
        for cut in 0..full.len() {
            let mut buf = BytesMut::from(&full[..cut]);
            assert!(decode_message(&mut buf).unwrap().is_none());
            assert_eq!(buf.len(), cut);
        }
        let mut buf = BytesMut::from(&full[..]);
        buf.extend_from_slice(b"rest");
        assert_eq!(
            decode_message(&mut buf).unwrap(),
            Some(Pong::default().into())
        );
        assert_eq!(&buf[..], b"rest");
    }

    /// A wire input and the check its error must pass.
    type Case = (&'static [u8], fn(&FrameError) -> bool);

    #[test]
    fn limits_and_garbage_are_typed_errors() {
        let cases: [Case; 6] = [
            (b"\x00\x10\x00\x01\x00\x00\x00\x00", |e| {
                matches!(e, FrameError::Flags(1))
            }),
            (b"\x00\x10\x00\x00\x00\x01\x00\x01", |e| {
                matches!(e, FrameError::TooLong(65537))
            }),
            (b"\x00\x02\x00\x00\x00\x00\x00\x02{}", |e| {
                matches!(e, FrameError::UnexpectedType { found: 2, want: 16 })
            }),
            (b"\x00\x10\x00\x00\x00\x00\x00\x01\x00", |e| {
                matches!(e, FrameError::ShortMessage)
            }),
            (b"\x00\x10\x00\x00\x00\x00\x00\x04\x00\x13{}", |e| {
                matches!(e, FrameError::UnknownMessage(19))
            }),
            (b"\x00\x10\x00\x00\x00\x00\x00\x04\x00\x01\"\"", |e| {
                matches!(e, FrameError::InvalidBody { ty: "Login", .. })
            }),
        ];
        for (bytes, check) in cases {
            let mut buf = BytesMut::from(bytes);
            let err = decode_message(&mut buf).unwrap_err();
            assert!(check(&err), "{bytes:?}: {err:?}");
        }
        // A full-size payload is fine.
        let mut max = BytesMut::new();
        encode_frame(FrameType::ClientHello, &[b' '; MAX_FRAME_PAYLOAD], &mut max).unwrap();
        let (header, payload) = decode_frame(&mut max).unwrap().unwrap();
        assert_eq!((header.code, payload.len()), (1, MAX_FRAME_PAYLOAD));
    }

    #[test]
    fn oversize_encode_is_refused_and_leaves_the_buffer_alone() {
        let np = NewProxy {
            custom_domains: vec!["x".repeat(MAX_FRAME_PAYLOAD)],
            ..Default::default()
        };
        let mut buf = BytesMut::from(&b"keep"[..]);
        assert!(matches!(
            encode_message(&np.into(), &mut buf),
            Err(FrameError::TooLong(_))
        ));
        assert_eq!(&buf[..], b"keep");
        // Larger than v1's 10 KiB limit is fine in v2.
        let np = NewProxy {
            custom_domains: vec!["x".repeat(20_000)],
            ..Default::default()
        };
        let bytes = encode_message_to_vec(&np.clone().into()).unwrap();
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(decode_message(&mut buf).unwrap(), Some(np.into()));
    }
}
