//! The limits of a session: window sizes, buffer sizes and the caller's [`Config`].

/// Receive and send window of a new stream, fixed by the yamux specification.
pub(crate) const INITIAL_WINDOW: u32 = 256 * 1024;

/// Largest receive window one stream grows to. A window-limited stream moves about the
/// window minus its unrefilled part per round trip: with 8 MiB (refilled at half) one stream
/// measured 150 MiB/s at 20 ms, with 16 MiB refilled at a quarter 207–249. Only a stream whose reader keeps up grows
/// (see `tuning`), and all streams together stay within the session's growth budget. It is
/// also the largest Data frame we accept, since a larger one can never fit in a window we
/// granted.
pub(crate) const MAX_STREAM_WINDOW: u32 = 16 * 1024 * 1024;

/// Largest Data frame we send. Frames are cheap to parse but each costs a header and a
/// wake-up on the other side, and hashicorp accepts any size within the window.
pub(super) const SPLIT_SEND_SIZE: usize = 64 * 1024;

/// Bytes a stream's writer may queue ahead of the driver; beyond it the writer waits.
pub(super) const SEND_BUFFER: usize = 128 * 1024;

/// Size of the driver's read buffer.
pub(super) const READ_BUFFER: usize = 256 * 1024;

/// Frames the driver gathers before one write to the socket.
pub(super) const WRITE_BATCH: usize = 256 * 1024;

/// Session frames (ping answers, refusals) queued at most; a peer that makes us queue more
/// while not reading is ending the session.
pub(super) const MAX_CONTROL_QUEUE: usize = 64 * 1024;

/// Limits of a session.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Most streams in the table at once (including closed ones whose FIN is not out yet).
    pub(crate) max_streams: usize,
    /// Receive window, beyond `INITIAL_WINDOW` per stream, that busy streams may grow into
    /// together.
    pub(crate) window_growth: usize,
}
