//! Byte splicing between a user connection and a work connection, with the optional per-proxy
//! payload wrapping of frp (`use_encryption`, `use_compression`) done by
//! [`frp_proto::pipeline`], as in the client.
//!
//! Both directions run in one task over one future, with one pipeline buffer each, allocated
//! once. When either direction ends (EOF or error) the whole splice ends and both sides are
//! closed: frp does no half-close. Nothing here logs or allocates per chunk.

use super::wire::{close, BoxIo};
use frp_proto::crypto::Key;
use frp_proto::msg::NewProxy;
use frp_proto::pipeline::{Opener, Pipe, Sealer};
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How the work-connection side of a splice is wrapped (from the proxy's NewProxy flags).
#[derive(Debug, Clone, Default)]
pub(crate) struct Wrapping {
    /// AES-128-CFB with the token key, fresh IV per direction.
    pub(crate) encryption: Option<Key>,
    /// snappy framing, inside the encryption.
    pub(crate) compression: bool,
}

impl Wrapping {
    /// What a proxy registered as `np` asked for, with the server's token `key`.
    pub(crate) fn for_proxy(np: &NewProxy, key: &Key) -> Self {
        Wrapping {
            encryption: np.use_encryption.then(|| key.clone()),
            compression: np.use_compression,
        }
    }

    /// The pipe for bytes going to the client (user → work).
    fn outbound(&self) -> Sealer {
        let enc = self.encryption.as_ref().map(|k| (k, rand::random()));
        Sealer::new(enc, self.compression)
    }

    /// The pipe for bytes coming from the client (work → user).
    fn inbound(&self) -> Opener {
        Opener::new(self.encryption.as_ref(), self.compression)
    }
}

fn invalid_data(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// One direction of a splice.
struct Pump<'h, P> {
    pipe: P,
    /// Bytes to send before reading (the HTTP head already read from the user).
    head: &'h [u8],
    read_done: bool,
    need_flush: bool,
}

impl<'h, P: Pipe> Pump<'h, P> {
    fn new(pipe: P, head: &'h [u8]) -> Self {
        Pump {
            pipe,
            head,
            read_done: false,
            need_flush: false,
        }
    }

    /// Copies from `r` to `w` until `r` ends (Ready(Ok)) or fails.
    fn poll_copy<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        r: &mut R,
        w: &mut W,
    ) -> Poll<io::Result<()>>
    where
        R: AsyncRead + Unpin + ?Sized,
        W: AsyncWrite + Unpin + ?Sized,
    {
        loop {
            loop {
                let out = self.pipe.ready();
                if out.is_empty() {
                    break;
                }
                let n = ready!(Pin::new(&mut *w).poll_write(cx, out))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.pipe.consume(n).map_err(invalid_data)?;
                self.need_flush = true;
            }
            if self.read_done {
                ready!(Pin::new(&mut *w).poll_flush(cx))?;
                return Poll::Ready(Ok(()));
            }
            if !self.head.is_empty() {
                let n = self.pipe.push(self.head).map_err(invalid_data)?;
                self.head = &self.head[n..];
                continue;
            }
            let space = self.pipe.space();
            if space.is_empty() {
                return Poll::Ready(Err(io::Error::other("payload pipeline stalled")));
            }
            let mut rb = ReadBuf::new(space);
            match Pin::new(&mut *r).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    if self.need_flush {
                        ready!(Pin::new(&mut *w).poll_flush(cx))?;
                        self.need_flush = false;
                    }
                    return Poll::Pending;
                }
            }
            let n = rb.filled().len();
            if n == 0 {
                self.read_done = true;
                continue;
            }
            self.pipe.fill(n).map_err(invalid_data)?;
        }
    }
}

/// Splices `user` and `work` until either direction ends, then closes both.
///
/// `head` is sent to the work side first (through the wrapping): bytes already read from the
/// user, e.g. an HTTP request head.
pub(crate) async fn splice(mut user: BoxIo, mut work: BoxIo, wrapping: &Wrapping, head: &[u8]) {
    let mut up = Pump::new(wrapping.outbound(), head);
    let mut down = Pump::new(wrapping.inbound(), &[]);
    let _ = poll_fn(|cx| {
        if let Poll::Ready(r) = up.poll_copy(cx, &mut user, &mut work) {
            return Poll::Ready(r);
        }
        down.poll_copy(cx, &mut work, &mut user)
    })
    .await;
    close(&mut user).await;
    close(&mut work).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `data` through a wrapping's outbound pipe, and the result through its inbound one.
    fn run(wrapping: &Wrapping, data: &[u8]) -> Vec<u8> {
        let mut wire = Vec::new();
        let mut out = wrapping.outbound();
        for chunk in data.chunks(1000) {
            assert_eq!(out.push(chunk).unwrap(), chunk.len());
            wire.extend_from_slice(out.ready());
            out.consume(out.ready().len()).unwrap();
        }
        let mut plain = Vec::new();
        let mut inp = wrapping.inbound();
        for mut chunk in wire.chunks(777) {
            while !chunk.is_empty() {
                let n = inp.push(chunk).unwrap();
                chunk = &chunk[n..];
                plain.extend_from_slice(inp.ready());
                inp.consume(inp.ready().len()).unwrap();
            }
        }
        plain
    }

    #[test]
    fn wrappings_round_trip() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        let key = Key::derive("t");
        for (enc, comp) in [(false, false), (true, false), (false, true), (true, true)] {
            let w = Wrapping {
                encryption: enc.then(|| key.clone()),
                compression: comp,
            };
            assert_eq!(run(&w, &data), data, "enc={enc} comp={comp}");
        }
    }
}
