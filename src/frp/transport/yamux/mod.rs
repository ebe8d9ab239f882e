//! Our yamux client, written for frps (whose server side is hashicorp's yamux).
//!
//! - `config`: window and buffer sizes, and the session's [`Config`];
//! - `frame`: the 12-byte header codec;
//! - `error`: protocol violations by the peer;
//! - `buffer`: byte queues of pooled 16 KiB blocks (a drained stream holds none);
//! - `tuning`: the round trip measured with pings, and when a stream's window grows;
//! - `state`: the stream table, windows and buffers, shared by the driver and the handles;
//! - `stream`: [`Stream`], the handle of one stream;
//! - `driver`: [`Driver`], the task that owns the socket;
//! - this module: [`Client`] and the session constants.
//!
//! What it does: odd stream ids opened with a WindowUpdate carrying SYN (as Go frpc does), a
//! 256 KiB receive window per stream topped up once half of it was read and doubled (out of a
//! session budget) when the reader consumed half a window within two round trips, a send window that follows the peer's updates, Ping
//! answers (frps drops a session whose pings go unanswered for 10 s), refusal (RST) of streams
//! the peer opens, GoAway ending the session, FIN when a stream is shut down or dropped.
//! Opening a stream costs O(1): nothing on that path walks the stream table.

mod buffer;
mod config;
mod driver;
mod error;
mod frame;
mod state;
mod stream;
mod tuning;

pub(crate) use config::Config;
pub(crate) use driver::{Driver, SessionIo};
pub(crate) use state::OpenError;
pub(crate) use stream::Stream;

use state::Session;
use std::sync::Arc;

/// A yamux client session: opens streams. Its [`Driver`] must run for anything to move.
#[derive(Clone)]
pub(crate) struct Client {
    session: Arc<Session>,
}

impl Client {
    /// A session on `io`, and the driver that must be run (in its own task) to carry it.
    pub(crate) fn new<T: SessionIo>(io: T, cfg: &Config) -> (Self, Driver<T>) {
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
