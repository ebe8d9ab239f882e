//! The yamux frame header: 12 bytes, big-endian, in front of every frame.
//!
//! | bytes | field |
//! | --- | --- |
//! | 0 | version (always 0) |
//! | 1 | type: Data, WindowUpdate, Ping, GoAway |
//! | 2–3 | flags: SYN, ACK, FIN, RST |
//! | 4–7 | stream id (0 for Ping and GoAway) |
//! | 8–11 | length: body size for Data, window delta for WindowUpdate, opaque value for Ping, error code for GoAway |
//!
//! Only Data frames carry a body.

use super::error::ProtocolError;

/// Size of a frame header on the wire.
pub(crate) const HEADER_LEN: usize = 12;

/// The only protocol version there is.
pub(crate) const VERSION: u8 = 0;

/// Flag: opens a stream.
pub(crate) const SYN: u16 = 0x1;
/// Flag: accepts a stream the other side opened.
pub(crate) const ACK: u16 = 0x2;
/// Flag: the sender will write no more on the stream.
pub(crate) const FIN: u16 = 0x4;
/// Flag: the stream is aborted in both directions.
pub(crate) const RST: u16 = 0x8;

/// GoAway code: a normal end of the session.
pub(crate) const GO_AWAY_NORMAL: u32 = 0;
/// GoAway code: the peer broke the protocol.
pub(crate) const GO_AWAY_PROTOCOL_ERROR: u32 = 1;
/// GoAway code: the sender failed internally.
pub(crate) const GO_AWAY_INTERNAL_ERROR: u32 = 2;

/// What a frame is; the meaning of the header's length field depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Stream bytes; the length is the body size.
    Data,
    /// More receive window for a stream (the length is the increment); also carries SYN,
    /// ACK, FIN and RST without data.
    WindowUpdate,
    /// Keepalive on stream 0; the length is an opaque value echoed in the answer.
    Ping,
    /// The sender ends the session; the length is a code.
    GoAway,
}

impl Kind {
    fn to_byte(self) -> u8 {
        match self {
            Kind::Data => 0,
            Kind::WindowUpdate => 1,
            Kind::Ping => 2,
            Kind::GoAway => 3,
        }
    }

    fn from_byte(b: u8) -> Result<Self, ProtocolError> {
        Ok(match b {
            0 => Kind::Data,
            1 => Kind::WindowUpdate,
            2 => Kind::Ping,
            3 => Kind::GoAway,
            other => return Err(ProtocolError::UnknownType(other)),
        })
    }
}

/// One decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// Frame type.
    pub(crate) kind: Kind,
    /// Bitwise OR of [`SYN`], [`ACK`], [`FIN`], [`RST`] (other bits are kept as received).
    pub(crate) flags: u16,
    /// Stream the frame belongs to; 0 for session frames.
    pub(crate) stream: u32,
    /// Body size, window delta, ping value or GoAway code, by `kind`.
    pub(crate) length: u32,
}

impl Header {
    /// A Data header for `len` bytes of body.
    pub(crate) fn data(stream: u32, flags: u16, len: u32) -> Self {
        Header {
            kind: Kind::Data,
            flags,
            stream,
            length: len,
        }
    }

    /// A WindowUpdate header granting `delta` more bytes (0 to carry only flags).
    pub(crate) fn window_update(stream: u32, flags: u16, delta: u32) -> Self {
        Header {
            kind: Kind::WindowUpdate,
            flags,
            stream,
            length: delta,
        }
    }

    /// A Ping header: `flags` is [`SYN`] for a request, [`ACK`] for the answer.
    pub(crate) fn ping(flags: u16, opaque: u32) -> Self {
        Header {
            kind: Kind::Ping,
            flags,
            stream: 0,
            length: opaque,
        }
    }

    /// A GoAway header with `code`.
    pub(crate) fn go_away(code: u32) -> Self {
        Header {
            kind: Kind::GoAway,
            flags: 0,
            stream: 0,
            length: code,
        }
    }

    /// Whether `flag` is set.
    pub(crate) fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }

    /// The 12 wire bytes.
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0] = VERSION;
        b[1] = self.kind.to_byte();
        b[2..4].copy_from_slice(&self.flags.to_be_bytes());
        b[4..8].copy_from_slice(&self.stream.to_be_bytes());
        b[8..12].copy_from_slice(&self.length.to_be_bytes());
        b
    }

    /// Parses 12 wire bytes; a wrong version or an unknown type is a protocol error.
    pub(crate) fn decode(b: &[u8; HEADER_LEN]) -> Result<Self, ProtocolError> {
        if b[0] != VERSION {
            return Err(ProtocolError::UnknownVersion(b[0]));
        }
        Ok(Header {
            kind: Kind::from_byte(b[1])?,
            flags: u16::from_be_bytes([b[2], b[3]]),
            stream: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            length: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        })
    }

    /// Body bytes that follow this header on the wire.
    pub(crate) fn body_len(&self) -> u32 {
        if self.kind == Kind::Data {
            self.length
        } else {
            0
        }
    }
}

/// A readable name for a GoAway code.
pub(crate) fn go_away_name(code: u32) -> &'static str {
    match code {
        GO_AWAY_NORMAL => "normal termination",
        GO_AWAY_PROTOCOL_ERROR => "protocol error",
        GO_AWAY_INTERNAL_ERROR => "internal error",
        _ => "unknown code",
    }
}
