//! The handle of one yamux stream: reads from its receive buffer, writes into its send buffer,
//! and leaves the framing to the driver.

use super::buffer::{Chain, Pool};
use super::config::SEND_BUFFER;
use super::state::{OpenError, Session};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// One stream of a client session. Dropping it closes the stream (a FIN after the
/// bytes already written).
pub(crate) struct Stream {
    session: Arc<Session>,
    id: u32,
}

impl Stream {
    /// Opens a stream: waits while 256 streams still wait for the
    /// peer's ACK, then adds it to the table, O(1).
    pub(super) async fn open(session: Arc<Session>) -> Result<Self, OpenError> {
        match session.unacked.acquire().await {
            Ok(p) => p.forget(),
            Err(_) => {
                let why = session.lock().dead.clone().unwrap_or_default();
                return Err(OpenError::Closed(why));
            }
        }
        let opened = session.lock().open();
        match opened {
            Ok(id) => Ok(Stream { session, id }),
            Err(e) => {
                session.unacked.add_permits(1);
                Err(e)
            }
        }
    }

    /// The stream id (odd: opened by us).
    #[cfg(test)]
    pub(crate) fn id(&self) -> u32 {
        self.id
    }
}

fn session_closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "multiplexed session closed",
    )
}

fn stream_reset() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "stream reset by the server")
}

/// Slices gathered for one vectored write to the local side: up to 256 KiB of 16 KiB blocks.
const SEND_TO_SLICES: usize = 16;

impl Stream {
    /// The receive side's steps, shared by reads and `poll_send_to`: queued bytes go to `take`
    /// (a window update is queued for what it took); with none queued, an error after a RST,
    /// `at_end` after a FIN or once the session ended, else `Pending` with the read waker set.
    fn poll_recv<R>(
        &self,
        cx: &mut Context<'_>,
        at_end: R,
        take: impl FnOnce(&mut Context<'_>, &mut Chain, &mut Pool) -> Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        let id = self.id;
        let mut guard = self.session.lock();
        let sh = &mut *guard;
        let dead = sh.dead.is_some();
        let Some(st) = sh.streams.get_mut(&id) else {
            return Poll::Ready(Ok(at_end));
        };
        if !st.recv.is_empty() {
            let taken = ready!(take(cx, &mut st.recv, &mut sh.pool))?;
            sh.enqueue(id);
            return Poll::Ready(Ok(taken));
        }
        if st.reset {
            return Poll::Ready(Err(stream_reset()));
        }
        if st.remote_fin || dead {
            // The end of the session ends what the peer sends: EOF, and the session's own
            // reason (a protocol violation, GoAway) is for the owner of the session to report.
            return Poll::Ready(Ok(at_end));
        }
        match &st.read_waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => st.read_waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Writes received bytes straight from the stream's blocks to `sink` in one vectored
    /// write, instead of copying them into a buffer of the caller first. `Ready(Ok(0))` at the
    /// end of the stream (as a read returning nothing), `Pending` when nothing was received or
    /// `sink` is full (each registers its waker).
    pub(crate) fn poll_send_to<W: AsyncWrite + ?Sized>(
        &mut self,
        cx: &mut Context<'_>,
        mut sink: Pin<&mut W>,
    ) -> Poll<io::Result<usize>> {
        self.poll_recv(cx, 0, |cx, recv, pool| {
            let mut slices = [io::IoSlice::new(&[]); SEND_TO_SLICES];
            let k = recv.slices(&mut slices);
            let n = ready!(sink.as_mut().poll_write_vectored(cx, &slices[..k]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            recv.advance(n, pool);
            Poll::Ready(Ok(n))
        })
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.poll_recv(cx, (), |_, recv, pool| {
            recv.read_to(buf, pool);
            Poll::Ready(Ok(()))
        })
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let id = self.id;
        let mut guard = self.session.lock();
        let sh = &mut *guard;
        if sh.dead.is_some() {
            return Poll::Ready(Err(session_closed()));
        }
        let Some(st) = sh.streams.get_mut(&id) else {
            return Poll::Ready(Err(session_closed()));
        };
        if st.reset {
            return Poll::Ready(Err(stream_reset()));
        }
        if st.fin_queued {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        // Never more than the send window: what is queued can always go out at once, so a
        // FIN after it (the stream dropped) never waits for window the peer may not give.
        let room = SEND_BUFFER
            .min(st.send_credit() as usize)
            .saturating_sub(st.send.len());
        if room == 0 {
            match &st.write_waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => st.write_waker = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        let n = room.min(buf.len());
        st.send.push(&buf[..n], &mut sh.pool);
        sh.enqueue(id);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The driver frames queued bytes as soon as the send window allows; there is no
        // buffer here that a flush would push.
        let sh = self.session.lock();
        if sh.dead.is_some() {
            return Poll::Ready(Err(session_closed()));
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let id = self.id;
        let mut sh = self.session.lock();
        if let Some(st) = sh.streams.get_mut(&id) {
            st.fin_queued = true;
            sh.enqueue(id);
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let mut sh = self.session.lock();
        sh.drop_stream(self.id, &self.session.unacked);
    }
}
