//! The yamux client session: one driver task owns the connection (our own yamux client in
//! `super::yamux`), and streams are opened from any task without going through it.

use super::stream::{BoxStream, MuxStream};
use super::yamux::{Client, Config, Driver, OpenError};
use crate::frp::error::Error;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Most yamux streams we keep open at once; beyond it new work connections are refused (the
/// session and its other streams carry on).
///
/// Every open visitor connection is one stream, and frps adds up to `pool_count + 10` pooled
/// ones plus the ReqWorkConns it over-requests during a burst (about two per visitor). Go frpc
/// has no limit; 16384 holds the 10 000 idle connections of the scale goal
/// (`examples/scale.rs`; 8192 stopped them at 8 192) with room for a burst's extra streams.
/// A stream costs nothing while idle (its buffers are pooled and given back when drained); each
/// buffers at most its own receive window: 256 KiB unless it has grown into the shared
/// `MUX_WINDOW_GROWTH` budget.
pub const MAX_MUX_STREAMS: usize = 16384;

/// Headroom in the stream table beyond [`MAX_MUX_STREAMS`], for streams whose handle is gone
/// but whose FIN waits for send window.
const MUX_STREAM_HEADROOM: usize = 512;

/// Receive window that busy streams may grow into beyond their 256 KiB, shared by the whole
/// session. A stream's window doubles (up to 16 MiB) when its reader consumed half of it
/// within two round trips; without growth every stream is held to 256 KiB per round trip.
/// `expose bench --rtt 20` measured one upload stream (visitor → local service, the direction
/// our window governs) at 6 MiB/s without this budget and 207–249 MiB/s with it. Go frpc allows 6 MiB per
/// stream with no session cap; 64 MiB for the whole session bounds what slow local services
/// can make us buffer.
const MUX_WINDOW_GROWTH: usize = 64 * 1024 * 1024;

/// How long a deliberate session close may take to flush queued frames.
const MUX_CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How long a session that failed may take to tell the peer why (a GoAway after a protocol
/// violation).
const MUX_FAIL_GRACE: Duration = Duration::from_millis(500);

/// The yamux side of a session. Dropping it stops the driver and closes the connection, which
/// ends every stream on it, as Go frpc does when it rebuilds a session.
pub(crate) struct MuxSession {
    opener: MuxOpener,
    dead: CancellationToken,
    /// Why the connection ended; written once by the driver just before it cancels `dead`.
    reason: Arc<OnceLock<String>>,
    stop: CancellationToken,
}

/// Opens streams and enforces [`MAX_MUX_STREAMS`].
#[derive(Clone)]
pub(crate) struct MuxOpener {
    client: Client,
    permits: Arc<Semaphore>,
}

impl MuxOpener {
    /// A new stream on the session, or an error if the budget is used up or the session ended.
    pub(super) async fn open(&self) -> Result<MuxStream, Error> {
        let permit = self.permits.clone().try_acquire_owned().map_err(|_| {
            Error::Mux(format!(
                "more than {MAX_MUX_STREAMS} streams open; refusing another"
            ))
        })?;
        let stream = self.client.open().await.map_err(|e| match e {
            OpenError::Closed(_) => Error::Mux("session closed".into()),
            e => Error::Mux(e.to_string()),
        })?;
        Ok(MuxStream::new(stream, permit))
    }
}

impl MuxSession {
    /// Starts a yamux client session on `io` and its driver task.
    pub(super) fn start(io: BoxStream) -> Self {
        let cfg = Config {
            max_streams: MAX_MUX_STREAMS + MUX_STREAM_HEADROOM,
            window_growth: MUX_WINDOW_GROWTH,
        };
        let (client, driver) = Client::new(io, &cfg);
        let dead = CancellationToken::new();
        let stop = CancellationToken::new();
        let reason = Arc::new(OnceLock::new());
        tokio::spawn(drive(
            driver,
            client.clone(),
            dead.clone(),
            stop.clone(),
            reason.clone(),
        ));
        MuxSession {
            opener: MuxOpener {
                client,
                permits: Arc::new(Semaphore::new(MAX_MUX_STREAMS)),
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

/// Runs the driver until the connection ends or the session is closed, then records why and
/// fails every stream.
async fn drive(
    mut driver: Driver<BoxStream>,
    client: Client,
    dead: CancellationToken,
    stop: CancellationToken,
    reason: Arc<OnceLock<String>>,
) {
    let (why, graceful) = tokio::select! {
        why = driver.run() => (why, false),
        _ = stop.cancelled() => ("session closed".to_owned(), true),
    };
    if graceful {
        // Frames that streams queued just before (CloseProxy, FIN) are written out before the
        // socket goes. Bounded, so a dead peer cannot hold us.
        let _ = tokio::time::timeout(MUX_CLOSE_GRACE, driver.drain_and_close()).await;
    }
    client.kill(&why);
    let _ = reason.set(why);
    dead.cancel();
    if !graceful {
        let _ = tokio::time::timeout(MUX_FAIL_GRACE, driver.drain_and_close()).await;
    }
}
