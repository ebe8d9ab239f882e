//! The yamux client session: one driver task owns the `yamux::Connection`, serves requests for
//! new streams and keeps the connection polled.

use super::coalesce::Coalesce;
use super::stream::{BoxStream, MuxStream};
use crate::frp::error::Error;
use futures::future::poll_fn;
use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};
use tokio_util::sync::CancellationToken;

/// Most yamux streams we keep open at once. rust-yamux ends the *whole* session (error
/// `TooManyStreams`) when asked to open more than its `max_num_streams`, so we count streams
/// ourselves and refuse extra work connections before yamux sees them.
///
/// Every open visitor connection is one stream, and frps adds up to `pool_count + 10` pooled
/// ones plus the ReqWorkConns it over-requests during a burst (about two per visitor). 8192
/// leaves room for the 5 000 concurrent visitors `tests/load.rs` drives through one tunnel.
/// yamux requires `max_connection_receive_window >= max_num_streams * 256 KiB`; that product
/// (about 2.1 GiB here) is a cap on what the session may buffer, not an allocation: each
/// stream buffers at most its own window, 256 KiB unless it has grown into the shared
/// `MUX_WINDOW_GROWTH` budget.
pub const MAX_MUX_STREAMS: usize = 8192;

/// Headroom between our own limit and yamux's, for streams that are closing but not yet gone
/// (a dropped stream leaves yamux's table only when the driver next runs).
const MUX_STREAM_HEADROOM: usize = 512;

/// Receive window that busy streams may grow into beyond their 256 KiB, shared by the whole
/// session. yamux auto-tunes a stream's window (doubling it while the sender uses it up within
/// two round trips) only out of budget beyond `streams × 256 KiB`; with none, every stream is
/// held to 256 KiB per round trip. `expose bench --rtt 20` measured one upload stream (visitor
/// → local service, the direction our window governs) at 6 MiB/s without this budget and
/// 154 MiB/s with it. Go frpc allows 6 MiB per stream with no session cap; 64 MiB for the whole
/// session bounds what slow local services can make us buffer.
const MUX_WINDOW_GROWTH: usize = 64 * 1024 * 1024;

/// Largest yamux data frame we send. rust-yamux defaults to 16 KiB; frames are cheap to parse but
/// each costs a header and a wake-up, and hashicorp accepts any size within the window.
const MUX_SPLIT_SEND_SIZE: usize = 64 * 1024;

/// How long a deliberate session close may take to flush queued frames.
const MUX_CLOSE_GRACE: Duration = Duration::from_secs(2);

type OpenReply = oneshot::Sender<Result<yamux::Stream, Error>>;

/// The yamux side of a session. Dropping it stops the driver and closes the connection, which
/// ends every stream on it, as Go frpc does when it rebuilds a session.
pub(crate) struct MuxSession {
    opener: MuxOpener,
    dead: CancellationToken,
    /// Why the connection ended; written once by the driver just before it cancels `dead`.
    reason: Arc<OnceLock<String>>,
    stop: CancellationToken,
}

/// Requests streams from the driver task and enforces [`MAX_MUX_STREAMS`].
#[derive(Clone)]
pub(crate) struct MuxOpener {
    requests: mpsc::Sender<OpenReply>,
    permits: Arc<Semaphore>,
    /// The session's `dead` token, handed to every stream (see [`MuxStream`]).
    dead: CancellationToken,
}

impl MuxOpener {
    /// A new stream on the session, or an error if the budget is used up or the session ended.
    pub(super) async fn open(&self) -> Result<MuxStream, Error> {
        let permit = self.permits.clone().try_acquire_owned().map_err(|_| {
            Error::Mux(format!(
                "more than {MAX_MUX_STREAMS} streams open; refusing another"
            ))
        })?;
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(tx)
            .await
            .map_err(|_| Error::Mux("session closed".into()))?;
        let stream = rx
            .await
            .map_err(|_| Error::Mux("session closed".into()))??;
        Ok(MuxStream::new(
            stream.compat(),
            self.dead.clone().cancelled_owned(),
            permit,
        ))
    }
}

impl MuxSession {
    /// Starts a yamux client session on `io` and its driver task.
    pub(super) fn start(io: BoxStream) -> Self {
        let mut cfg = yamux::Config::default();
        // The receive budget must cover 256 KiB for every stream or yamux's setter panics.
        // Auto-tuning only hands out budget beyond `streams * 256 KiB`: that is
        // `MUX_WINDOW_GROWTH`, shared by the busy streams of the session.
        cfg.set_max_connection_receive_window(Some(
            (MAX_MUX_STREAMS + MUX_STREAM_HEADROOM) * yamux::DEFAULT_CREDIT as usize
                + MUX_WINDOW_GROWTH,
        ));
        cfg.set_max_num_streams(MAX_MUX_STREAMS + MUX_STREAM_HEADROOM);
        cfg.set_split_send_size(MUX_SPLIT_SEND_SIZE);
        let conn = yamux::Connection::new(Coalesce::new(io).compat(), cfg, yamux::Mode::Client);
        let (requests, rx) = mpsc::channel(64);
        let dead = CancellationToken::new();
        let stop = CancellationToken::new();
        let reason = Arc::new(OnceLock::new());
        tokio::spawn(drive(conn, rx, dead.clone(), stop.clone(), reason.clone()));
        MuxSession {
            opener: MuxOpener {
                requests,
                permits: Arc::new(Semaphore::new(MAX_MUX_STREAMS)),
                dead: dead.clone(),
            },
            dead,
            reason,
            stop,
        }
    }

    /// A handle for opening streams from other tasks.
    pub(super) fn opener(&self) -> MuxOpener {
        self.opener.clone()
    }

    /// Resolves when the session can no longer carry streams, with the reason.
    pub(super) async fn dead(&self) -> String {
        self.dead.cancelled().await;
        self.dead_reason()
    }

    fn dead_reason(&self) -> String {
        self.reason
            .get()
            .cloned()
            .unwrap_or_else(|| "multiplexer stopped".into())
    }

    /// Closes the connection gracefully — frames already queued by streams (a CloseProxy, a
    /// FIN) are written out first — and waits until the driver has finished.
    pub(super) async fn close(self) {
        self.stop.cancel();
        self.dead.cancelled().await;
    }
}

impl Drop for MuxSession {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Owns the yamux connection: serves open requests, drains inbound frames (answering pings and
/// window updates), and records why the connection ended.
async fn drive(
    mut conn: yamux::Connection<Compat<Coalesce<BoxStream>>>,
    mut requests: mpsc::Receiver<OpenReply>,
    dead: CancellationToken,
    stop: CancellationToken,
    reason: Arc<OnceLock<String>>,
) {
    let mut pending: VecDeque<OpenReply> = VecDeque::new();
    let mut requests_open = true;
    let run = poll_fn(|cx| {
        while requests_open {
            match requests.poll_recv(cx) {
                Poll::Ready(Some(reply)) => pending.push_back(reply),
                Poll::Ready(None) => requests_open = false,
                Poll::Pending => break,
            }
        }
        while !pending.is_empty() {
            match conn.poll_new_outbound(cx) {
                Poll::Ready(Ok(stream)) => {
                    if let Some(reply) = pending.pop_front() {
                        // The requester may have given up; the stream then just closes.
                        let _ = reply.send(Ok(stream));
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(format!("yamux: {e}")),
                Poll::Pending => break,
            }
        }
        loop {
            match conn.poll_next_inbound(cx) {
                // frps never opens streams; one that does is not ours to serve.
                Poll::Ready(Some(Ok(stream))) => drop(stream),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(format!("yamux: {e}")),
                Poll::Ready(None) => return Poll::Ready("server closed the connection".into()),
                Poll::Pending => return Poll::Pending,
            }
        }
    });
    let (why, graceful) = tokio::select! {
        why = run => (why, false),
        _ = stop.cancelled() => ("session closed".to_owned(), true),
    };
    if graceful {
        // Frames that streams queued just before (CloseProxy, FIN) are still inside yamux; a
        // graceful close writes them out before the socket goes. Bounded, so a dead peer
        // cannot hold us.
        let close = poll_fn(|cx| conn.poll_close(cx));
        let _ = tokio::time::timeout(MUX_CLOSE_GRACE, close).await;
    }
    let _ = reason.set(why);
    for reply in pending.drain(..) {
        let _ = reply.send(Err(Error::Mux("session closed".into())));
    }
    dead.cancel();
}
