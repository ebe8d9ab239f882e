//! The byte streams frp connections ride on: the boxed stream every other module sees, and the
//! yamux stream wrapper that fails once its session is gone.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::compat::Compat;
use tokio_util::sync::WaitForCancellationFutureOwned;

/// Any byte stream an frp connection can ride on.
pub trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncStream for T {}

/// A boxed frp connection (a yamux stream or a TCP/TLS connection).
pub type BoxStream = Box<dyn AsyncStream>;

/// A yamux stream that holds one slot of the stream budget until dropped, and that fails once
/// its session's driver has stopped.
///
/// rust-yamux 0.14 wakes a stream's blocked reader when the connection dies of an error, but
/// not when it is closed with `poll_close` or dropped half-way through closing (what the driver
/// does when a session is given up while its peer is alive or frozen): such a reader would
/// wait forever, and with it the splice and the local connection. `ended` turns that into an
/// error as soon as the driver is gone.
pub(crate) struct MuxStream {
    inner: Compat<yamux::Stream>,
    ended: Pin<Box<WaitForCancellationFutureOwned>>,
    _permit: OwnedSemaphorePermit,
}

impl MuxStream {
    /// Wraps `inner`; `ended` resolves when the session's driver has stopped, and `permit` is the
    /// stream's slot in the session's budget, released on drop.
    pub(super) fn new(
        inner: Compat<yamux::Stream>,
        ended: WaitForCancellationFutureOwned,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        MuxStream {
            inner,
            ended: Box::pin(ended),
            _permit: permit,
        }
    }

    /// `Pending` from the stream becomes an error once the session has ended.
    fn or_ended<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match r {
            Poll::Pending if self.ended.as_mut().poll(cx).is_ready() => {
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "multiplexed session closed",
                )))
            }
            r => r,
        }
    }
}

impl AsyncRead for MuxStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.or_ended(cx, r)
    }
}

impl AsyncWrite for MuxStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.or_ended(cx, r)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.or_ended(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.or_ended(cx, r)
    }
}
