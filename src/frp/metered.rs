//! A byte stream under a proxy's client-side bandwidth limit and/or counted in the engine's
//! byte counters: what a plugin's work connection goes through, so a plugin is limited and
//! counted as the splice is.
//!
//! The limit wraps the work connection below the payload wrapping (encryption, compression),
//! as frpc wraps its work connection in the rate limiter before encrypting, so it applies to
//! the bytes on the wire; the counters wrap the plain stream the plugin sees, as the splice
//! counts what it writes to and reads from the local service. Reads wait out the previous
//! read's payment and move at most one burst; writes pay before they move. One timer per
//! direction, made once per connection; nothing allocated per read or write.

use super::events::Counters;
use super::limit::{Limiter, Throttle};
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// `inner` seen through a bandwidth limit and/or the byte counters.
pub(crate) struct Metered<S> {
    inner: S,
    /// Reads count as bytes to the local side, writes as bytes from it.
    counters: Option<Arc<Counters>>,
    read_limit: Option<Throttle>,
    write_limit: Option<Throttle>,
}

impl<S> Metered<S> {
    /// Both directions of `inner` share `limiter` (the proxy's bucket).
    pub(crate) fn limited(inner: S, limiter: Arc<Limiter>) -> Self {
        Metered {
            inner,
            counters: None,
            read_limit: Some(Throttle::new(limiter.clone())),
            write_limit: Some(Throttle::new(limiter)),
        }
    }

    /// Bytes read from `inner` are added to `bytes_to_local`, bytes written to
    /// `bytes_from_local`.
    pub(crate) fn counted(inner: S, counters: Arc<Counters>) -> Self {
        Metered {
            inner,
            counters: Some(counters),
            read_limit: None,
            write_limit: None,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = match this.read_limit.as_mut() {
            None => {
                let before = buf.filled().len();
                ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
                buf.filled().len() - before
            }
            Some(t) => {
                // The last read's bytes are paid for now; then at most one burst more.
                ready!(t.poll_wait(cx));
                let cap = buf.remaining().min(t.burst());
                let mut part = ReadBuf::new(buf.initialize_unfilled_to(cap));
                ready!(Pin::new(&mut this.inner).poll_read(cx, &mut part))?;
                let n = part.filled().len();
                buf.advance(n);
                t.charge(n);
                n
            }
        };
        if let Some(c) = &this.counters {
            c.bytes_to_local.fetch_add(n as u64, Ordering::Relaxed);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = match this.write_limit.as_mut() {
            None => ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?,
            Some(t) => {
                if buf.is_empty() {
                    return Pin::new(&mut this.inner).poll_write(cx, buf);
                }
                let allowed = ready!(t.poll_allowance(cx, buf.len()));
                let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &buf[..allowed]))?;
                t.spent(n);
                n
            }
        };
        if let Some(c) = &this.counters {
            c.bytes_from_local.fetch_add(n as u64, Ordering::Relaxed);
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::Instant;

    /// 100 000 bytes/s, a full bucket of 100 000 at the start: 80 000 bytes, written through
    /// the limit and read back through it on the other end of the same bucket, take at least
    /// (160 000 - 100 000) / 100 000 = 0.6 s.
    #[tokio::test]
    async fn both_directions_pay_into_one_bucket() {
        let limiter = Arc::new(Limiter::new(100_000));
        let (a, b) = tokio::io::duplex(1 << 20);
        let mut a = Metered::limited(a, limiter.clone());
        let mut b = Metered::limited(b, limiter);
        let data: Vec<u8> = (0..80_000u32).map(|i| i as u8).collect();
        let start = Instant::now();
        let writer = async {
            a.write_all(&data).await.unwrap();
            a.shutdown().await.unwrap();
        };
        let reader = async {
            let mut got = Vec::new();
            b.read_to_end(&mut got).await.unwrap();
            got
        };
        let ((), got) = tokio::join!(writer, reader);
        assert_eq!(got, data);
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(550), "{took:?}");
        assert!(took <= Duration::from_secs(10), "{took:?}");
    }

    #[tokio::test]
    async fn counts_what_is_read_and_written() {
        let counters = Arc::new(Counters::default());
        let (a, mut b) = tokio::io::duplex(1 << 16);
        let mut a = Metered::counted(a, counters.clone());
        a.write_all(b"twelve bytes").await.unwrap();
        b.write_all(b"seven b").await.unwrap();
        let mut buf = [0u8; 7];
        a.read_exact(&mut buf).await.unwrap();
        assert_eq!(counters.bytes_from_local.load(Ordering::Relaxed), 12);
        assert_eq!(counters.bytes_to_local.load(Ordering::Relaxed), 7);
    }
}
