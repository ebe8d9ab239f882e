//! A work or visitor connection seen through its payload wrapping (`use_encryption`,
//! `use_compression`) as a plain byte stream, for payloads that are frp messages themselves
//! (udp/sudp carry UDPPacket and Ping frames) rather than bytes to splice.
//!
//! Datagrams are small and rare next to a TCP splice, so this favours simplicity: one
//! [`Sealer`] and one [`Opener`] (each a buffer allocated once) around the stream.

use super::transport::BoxStream;
use bytes::{Buf, BytesMut};
use frp_proto::crypto::Key;
use frp_proto::pipeline::{Opener, Pipe, Sealer};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

fn invalid(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// A stream whose reads are opened (decrypted, decompressed) and whose writes are sealed.
/// The test server uses it too, around its own stream type.
pub(crate) struct Wrapped<S = BoxStream> {
    inner: S,
    sealer: Sealer,
    opener: Opener,
    /// Payload bytes read together with the last plaintext message, fed to the opener first.
    early: BytesMut,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wrapped<S> {
    /// Wraps `inner` in the payload wrapping of a proxy or visitor: AES-128-CFB with `key` (a
    /// fresh IV for our direction) when given, snappy when `compression`; `early` is payload
    /// that arrived with the message before it.
    pub(crate) fn new(inner: S, key: Option<&Key>, compression: bool, early: BytesMut) -> Self {
        Wrapped {
            inner,
            sealer: Sealer::new(key.map(|k| (k, rand::random())), compression),
            opener: Opener::new(key, compression),
            early,
        }
    }

    /// Writes what the sealer holds.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let out = self.sealer.ready();
            if out.is_empty() {
                return Poll::Ready(Ok(()));
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, out))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sealer.consume(n).map_err(invalid)?;
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Wrapped<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let out = this.opener.ready();
            if !out.is_empty() {
                let n = out.len().min(buf.remaining());
                buf.put_slice(&out[..n]);
                this.opener.consume(n).map_err(invalid)?;
                return Poll::Ready(Ok(()));
            }
            if !this.early.is_empty() {
                let n = this.opener.push(&this.early).map_err(invalid)?;
                if n == 0 {
                    return Poll::Ready(Err(io::Error::other("payload pipeline stalled")));
                }
                this.early.advance(n);
                continue;
            }
            let space = this.opener.space();
            if space.is_empty() {
                return Poll::Ready(Err(io::Error::other("payload pipeline stalled")));
            }
            let mut rb = ReadBuf::new(space);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            if n == 0 {
                // EOF: whatever the opener still holds is an incomplete chunk.
                return Poll::Ready(Ok(()));
            }
            this.opener.fill(n).map_err(invalid)?;
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Wrapped<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        let n = this.sealer.push(data).map_err(invalid)?;
        // Start sending at once; what does not go now goes with the next write or flush.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn both_ends_round_trip_in_every_configuration() {
        let key = Key::derive("sk");
        for (enc, comp) in [(false, false), (true, false), (false, true), (true, true)] {
            let (a, b) = tokio::io::duplex(1024);
            let k = enc.then_some(&key);
            let mut left = Wrapped::new(a, k, comp, BytesMut::new());
            let mut right = Wrapped::new(b, k, comp, BytesMut::new());
            let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
            let sent = data.clone();
            let writer = tokio::spawn(async move {
                left.write_all(&sent).await.unwrap();
                left.shutdown().await.unwrap();
                left
            });
            let mut got = Vec::new();
            right.read_to_end(&mut got).await.unwrap();
            writer.await.unwrap();
            assert_eq!(got, data, "enc={enc} comp={comp}");
        }
    }
}
