//! The byte streams frp connections ride on: the boxed stream every other module sees, and the
//! yamux stream wrapper that fails once its session is gone.

use super::yamux::{SessionIo, Stream};
use std::any::Any;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite, BufReader, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

/// Any byte stream an frp connection can ride on.
pub trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send {
    /// The concrete stream, so that the yamux driver and the splice can take faster paths for
    /// the types they know (a TLS stream's decrypted bytes, a yamux stream's blocks).
    fn as_any_mut(&mut self) -> &mut dyn Any;
}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncStream for T {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// A boxed frp connection (a yamux stream or a TCP/TLS connection).
pub type BoxStream = Box<dyn AsyncStream>;

/// The usual session connection: TLS over a buffered TCP socket.
type TlsOverTcp = tokio_rustls::client::TlsStream<BufReader<TcpStream>>;

impl SessionIo for BoxStream {
    /// TLS lends its decrypted records: frame bodies are copied from there into the streams'
    /// blocks once, instead of through the driver's read buffer. (A plain socket reads into
    /// that buffer directly, so lending would save no copy.)
    fn lend(&mut self) -> Option<Pin<&mut (dyn AsyncBufRead + '_)>> {
        (**self)
            .as_any_mut()
            .downcast_mut::<TlsOverTcp>()
            .map(|s| Pin::new(s) as Pin<&mut dyn AsyncBufRead>)
    }
}

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

    /// Writes received bytes straight from the stream's buffer to `sink` (see
    /// [`Stream::poll_send_to`]): the splice's path without a copy into its own buffer.
    pub(crate) fn poll_send_to<W: AsyncWrite + ?Sized>(
        &mut self,
        cx: &mut Context<'_>,
        sink: Pin<&mut W>,
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_send_to(cx, sink)
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
