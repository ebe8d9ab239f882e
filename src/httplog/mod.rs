//! A request log for HTTP tunnels, read off the bytes the splice forwards anyway.
//!
//! [`HttpLog`] is a sans-IO observer of one forwarded connection. The splice shows it every chunk
//! in both directions, in whatever sizes the sockets produced, and it reports one [`Exchange`]
//! (method, path, status, duration, response size) per completed request/response pair. It never
//! changes or delays the stream it watches: it only looks.
//!
//! # Why it is built this way
//! The splice is the hot path, so the observer:
//!
//! - buffers only message heads (at most [`MAX_HEAD_BYTES`] per head, and only the part of a
//!   head line split across chunks); bodies are skipped by counting, chunked bodies by reading
//!   just their chunk-size lines;
//! - allocates nothing per chunk once warmed up (its buffers keep their capacity); the only
//!   allocations per request are the method and path strings it reports;
//! - costs O(bytes) with small constants: one `memchr`-like scan per head line, one comparison
//!   per body chunk;
//! - never panics, on any input, and never guesses: anything it cannot follow with certainty —
//!   malformed syntax, an oversized head, more than [`MAX_PENDING`] pipelined requests, a response
//!   nobody asked for, a protocol switch — turns the connection into *passthrough*, a permanent
//!   state that reports nothing more and frees its buffers. A log line missing is acceptable; a
//!   wrong one is not.
//!
//! Message framing follows RFC 9112 (HTTP/1.1 message syntax) §6, with the usual tolerance for
//! bare LF line endings and blank lines before a request line.
//!
//! # Protocol switches
//! After a CONNECT request, or one asking for an Upgrade, the request bytes that follow may be
//! HTTP (the server refuses) or tunneled data (it accepts with 101, or 2xx to CONNECT). Until the
//! response decides, up to [`MAX_HEAD_BYTES`] of them are held; they are parsed if the protocol
//! did not switch and dropped with everything else if it did. Requests parsed from held bytes
//! are timed from the moment the first held byte arrived.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod body;
mod capture;
mod limits;
mod observer;
mod syntax;
#[cfg(test)]
mod tests;

pub use capture::{
    BodyCapture, CaptureBudget, CaptureOptions, Captured, MessageCapture, Passthrough,
};
pub use limits::{
    ELLIPSIS, MAX_COMPLETED, MAX_HEAD_BYTES, MAX_METHOD_BYTES, MAX_PATH_CHARS, MAX_PENDING,
};
pub use observer::{Exchange, HttpLog};
