//! Why a yamux session ends because of what the peer sent.

/// A violation of the yamux protocol by the peer; it ends the session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ProtocolError {
    /// The header's version byte is not 0.
    #[error("unknown version: {0}")]
    UnknownVersion(u8),
    /// The header's type byte is not one of the four frame types.
    #[error("unknown frame type: {0}")]
    UnknownType(u8),
    /// A Data frame announces more body than any window we ever grant.
    #[error("frame body is too large: {len} bytes on stream {stream}")]
    BodyTooLarge {
        /// The announced body size.
        len: u32,
        /// The stream it was for.
        stream: u32,
    },
    /// A Data frame goes beyond what the stream's receive window allows.
    #[error("frame of {len} bytes exceeds stream {stream}'s receive window of {window} bytes")]
    WindowExceeded {
        /// The body size.
        len: u32,
        /// The stream it was for.
        stream: u32,
        /// Credit the peer had left.
        window: u32,
    },
    /// A WindowUpdate pushed the send window past 4 GiB.
    #[error("window update overflows stream {0}'s send window")]
    WindowOverflow(u32),
    /// A stream frame on stream 0, or a SYN for a stream that is already open.
    #[error("invalid {what} for stream {stream}")]
    InvalidStreamFrame {
        /// What was wrong.
        what: &'static str,
        /// The stream id in the header.
        stream: u32,
    },
    /// The peer opens streams faster than the refusals can be written.
    #[error("too many refused streams queued")]
    RefusalFlood,
}
