//! The observer's bounds: how much it buffers, queues and reports before it gives up on a
//! connection or cuts a value.

/// Largest message head (start line, header fields, blank line) the observer will accumulate,
/// and the limit for one chunk-size line and for a chunked body's trailer section. Heads larger
/// than this are legal but rare; following them would mean unbounded buffering, so the
/// connection goes passthrough instead.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Most requests that may wait for their responses at once (pipelining). A client that pipelines
/// deeper than this is unusual enough that the connection goes passthrough rather than queueing
/// without bound.
pub const MAX_PENDING: usize = 64;

/// Most completed exchanges kept between two [`HttpLog::drain`](super::HttpLog::drain) calls. If the caller falls
/// behind, newer exchanges are counted in [`HttpLog::dropped_exchanges`](super::HttpLog::dropped_exchanges) instead of growing
/// memory without bound.
pub const MAX_COMPLETED: usize = 256;

/// Longest reported path, in characters, before it is cut and [`ELLIPSIS`] appended: a request
/// log line should fit a terminal.
pub const MAX_PATH_CHARS: usize = 200;

/// Longest accepted method, in bytes. Real methods are short tokens; a longer "method" is taken
/// as evidence the stream is not HTTP.
pub const MAX_METHOD_BYTES: usize = 32;

/// Appended to a path that was cut at [`MAX_PATH_CHARS`], so a reader knows it was cut.
pub const ELLIPSIS: char = '\u{2026}';

/// How many leading bytes of an incomplete start line are checked for plausibility, so that a
/// non-HTTP stream (TLS, HTTP/2, random bytes) goes passthrough at its first bytes instead of
/// after [`MAX_HEAD_BYTES`] of buffering. Bounded so the check costs O(1) per chunk.
pub(super) const PREFIX_CHECK_BYTES: usize = MAX_METHOD_BYTES + 8;
