//! Our yamux client, written for frps (whose server side is hashicorp's yamux).
//!
//! - `frame`: the 12-byte header codec;
//! - `error`: protocol violations by the peer;
//! - `state`: the stream table, windows and buffers, shared by the driver and the handles;
//! - `stream`: [`Stream`], the handle of one stream;
//! - `driver`: [`Driver`], the task that owns the socket;
//! - this module: [`Client`] and the session constants.
//!
//! What it does: odd stream ids opened with a WindowUpdate carrying SYN (as Go frpc does), a
//! 256 KiB receive window per stream topped up once half of it was read and grown for busy
//! streams out of a session budget, a send window that follows the peer's updates, Ping
//! answers (frps drops a session whose pings go unanswered for 10 s), refusal (RST) of streams
//! the peer opens, GoAway ending the session, FIN when a stream is shut down or dropped.
//! Opening a stream costs O(1): nothing on that path walks the stream table.

mod driver;
mod error;
mod frame;
mod state;
mod stream;

pub(crate) use driver::Driver;
pub(crate) use state::OpenError;
pub(crate) use stream::Stream;

use state::Session;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

/// Receive and send window of a new stream, fixed by the yamux specification.
pub(crate) const INITIAL_WINDOW: u32 = 256 * 1024;

/// Largest receive window one stream grows to. At 20 ms of round trip 8 MiB still carries
/// about 200 MiB/s on one stream; it is also the largest Data frame we accept, since a larger
/// one can never fit in a window we granted.
pub(crate) const MAX_STREAM_WINDOW: u32 = 8 * 1024 * 1024;

/// Largest Data frame we send. Frames are cheap to parse but each costs a header and a
/// wake-up on the other side, and hashicorp accepts any size within the window.
const SPLIT_SEND_SIZE: usize = 64 * 1024;

/// Bytes a stream's writer may queue ahead of the driver; beyond it the writer waits.
const SEND_BUFFER: usize = 128 * 1024;

/// Size of the driver's read buffer.
const READ_BUFFER: usize = 256 * 1024;

/// Frames the driver gathers before one write to the socket.
const WRITE_BATCH: usize = 256 * 1024;

/// Session frames (ping answers, refusals) queued at most; a peer that makes us queue more
/// while not reading is ending the session.
const MAX_CONTROL_QUEUE: usize = 64 * 1024;

/// Limits of a session.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Most streams in the table at once (including closed ones whose FIN is not out yet).
    pub(crate) max_streams: usize,
    /// Receive window, beyond [`INITIAL_WINDOW`] per stream, that busy streams may grow into
    /// together.
    pub(crate) window_growth: usize,
}

/// A yamux client session: opens streams. Its [`Driver`] must run for anything to move.
#[derive(Clone)]
pub(crate) struct Client {
    session: Arc<Session>,
}

impl Client {
    /// A session on `io`, and the driver that must be run (in its own task) to carry it.
    pub(crate) fn new<T: AsyncRead + AsyncWrite + Unpin>(io: T, cfg: &Config) -> (Self, Driver<T>) {
        let session = Arc::new(Session::new(cfg));
        let driver = Driver::new(io, session.clone());
        (Client { session }, driver)
    }

    /// Opens a stream. Waits only while 256 streams still wait for the peer's ACK.
    pub(crate) async fn open(&self) -> Result<Stream, OpenError> {
        Stream::open(self.session.clone()).await
    }

    /// Ends the session for everyone: streams fail, waiting and later opens fail with `why`.
    pub(crate) fn kill(&self, why: &str) {
        let mut sh = self.session.lock();
        sh.kill(why.to_owned(), &self.session.unacked);
    }

    /// Stream entries visited so far by the driver and the open path (tests measure the
    /// work per open with it).
    #[cfg(test)]
    pub(crate) fn visits(&self) -> u64 {
        self.session.lock().visits
    }
}

#[cfg(test)]
mod tests;
