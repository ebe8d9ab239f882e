//! Write coalescing under the multiplexer: yamux's frame headers go out together with the
//! frame bodies that follow them.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Largest write [`Coalesce`] holds back: a yamux frame header is 12 bytes.
const COALESCE_SMALL_WRITE: usize = 16;

/// Bytes [`Coalesce`] holds back at most (a few headers, e.g. several window updates).
const COALESCE_CAP: usize = 64;

/// Joins yamux's small writes with the write that follows them.
///
/// rust-yamux writes every frame as two writes, the 12-byte header and then the body, and
/// flushes after each frame. Under TLS each write became its own TLS record (a 12-byte record
/// with its own AEAD tag and `writev`); on plain TCP with `TCP_NODELAY`, its own segment. Small
/// writes are held here and go out with the next write as one vectored write (one record, one
/// syscall), or at the next flush, which yamux issues right after every frame, so nothing
/// waits longer than before.
pub(super) struct Coalesce<T> {
    inner: T,
    held: [u8; COALESCE_CAP],
    held_len: usize,
}

impl<T> Coalesce<T> {
    pub(super) fn new(inner: T) -> Self {
        Coalesce {
            inner,
            held: [0; COALESCE_CAP],
            held_len: 0,
        }
    }
}

impl<T: AsyncWrite + Unpin> Coalesce<T> {
    /// Drops the first `n` held bytes (they were written).
    fn consume_held(&mut self, n: usize) {
        self.held.copy_within(n..self.held_len, 0);
        self.held_len -= n;
    }

    /// Writes every held byte.
    fn poll_write_held(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.held_len > 0 {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.held[..self.held_len]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.consume_held(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Coalesce<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Coalesce<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.len() <= COALESCE_SMALL_WRITE && this.held_len + buf.len() <= COALESCE_CAP {
            this.held[this.held_len..this.held_len + buf.len()].copy_from_slice(buf);
            this.held_len += buf.len();
            return Poll::Ready(Ok(buf.len()));
        }
        while this.held_len > 0 {
            let bufs = [
                io::IoSlice::new(&this.held[..this.held_len]),
                io::IoSlice::new(buf),
            ];
            let n = ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, &bufs))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            if n <= this.held_len {
                this.consume_held(n);
                continue;
            }
            let taken = n - this.held_len;
            this.held_len = 0;
            return Poll::Ready(Ok(taken));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_held(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_held(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
