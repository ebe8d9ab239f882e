//! The byte streams frp connections ride on: the boxed stream every other module sees, and the
//! yamux stream wrapper that fails once its session is gone.

use super::yamux::Stream;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;

/// Any byte stream an frp connection can ride on.
pub trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncStream for T {}

/// A boxed frp connection (a yamux stream or a TCP/TLS connection).
pub type BoxStream = Box<dyn AsyncStream>;

/// A yamux stream that holds one slot of the stream budget until dropped. It fails by itself
/// once its session has ended.
pub(crate) struct MuxStream {
    inner: Stream,
    _permit: OwnedSemaphorePermit,
}

impl MuxStream {
    /// Wraps `inner`; `permit` is the stream's slot in the session's budget, released on drop.
    pub(super) fn new(inner: Stream, permit: OwnedSemaphorePermit) -> Self {
        MuxStream {
            inner,
            _permit: permit,
        }
    }
}

impl AsyncRead for MuxStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for MuxStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
