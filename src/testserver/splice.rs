//! Byte splicing between a user connection and a work connection, with the optional per-proxy
//! payload wrapping of frp (`use_encryption`, `use_compression`).
//!
//! Both directions run in one task over one future, with a 64 KiB buffer each, allocated once.
//! When either direction ends (EOF or error) the whole splice ends and both sides are closed:
//! frp does no half-close. Nothing here logs or allocates per chunk (the compressed paths grow a
//! reusable output buffer up to one chunk's size, then reuse it).

use super::BoxIo;
use bytes::{Buf, BytesMut};
use frp_proto::compress::{Compressor, Decompressor};
use frp_proto::crypto::{Decryptor, Encryptor, Key};
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Read buffer per direction.
const BUF_LEN: usize = 64 * 1024;

/// How long a closing side may take to flush and send its FIN before it is simply dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How the work-connection side of a splice is wrapped (from the proxy's NewProxy flags).
#[derive(Debug, Clone, Default)]
pub(crate) struct Wrapping {
    /// AES-128-CFB with the token key, fresh IV per direction.
    pub(crate) encryption: Option<Key>,
    /// snappy framing, inside the encryption.
    pub(crate) compression: bool,
}

impl Wrapping {
    /// The transform for bytes going to the client (user → work).
    fn outbound(&self) -> Transform {
        if self.encryption.is_none() && !self.compression {
            return Transform::None;
        }
        Transform::Wrap {
            enc: self
                .encryption
                .as_ref()
                .map(|k| Box::new(Encryptor::new(k, rand::random()))),
            comp: self.compression.then(|| Box::new(Compressor::new())),
        }
    }

    /// The transform for bytes coming from the client (work → user).
    fn inbound(&self) -> Transform {
        if self.encryption.is_none() && !self.compression {
            return Transform::None;
        }
        Transform::Unwrap {
            dec: self
                .encryption
                .as_ref()
                .map(|k| Box::new(Decryptor::new(k))),
            decomp: self.compression.then(|| Box::new(Decompressor::new())),
        }
    }

    /// Encodes `data` as the first outbound bytes of a splice (the HTTP head that was already
    /// read from the user), returning the transform to continue with and the wire bytes.
    fn preload(&self, data: &[u8]) -> (Transform, BytesMut) {
        let mut t = self.outbound();
        let mut out = BytesMut::new();
        if !data.is_empty() {
            let mut scratch = data.to_vec();
            let (pos, end) = t.wrap(&mut scratch, &mut out);
            out.extend_from_slice(&scratch[pos..end]);
        }
        (t, out)
    }
}

/// The cipher and compressor states are large; boxing keeps a plain splice small.
enum Transform {
    None,
    Wrap {
        enc: Option<Box<Encryptor>>,
        comp: Option<Box<Compressor>>,
    },
    Unwrap {
        dec: Option<Box<Decryptor>>,
        decomp: Option<Box<Decompressor>>,
    },
}

impl Transform {
    /// Applies an outbound transform to `data` (modified in place). Bytes to send are: `out`
    /// first, then `data[pos..end]`, which is returned.
    fn wrap(&mut self, data: &mut [u8], out: &mut BytesMut) -> (usize, usize) {
        let Transform::Wrap { enc, comp } = self else {
            return (0, data.len());
        };
        if let Some(iv) = enc.as_mut().and_then(|e| e.take_iv()) {
            out.extend_from_slice(&iv);
        }
        match comp {
            Some(comp) => {
                let start = out.len();
                comp.compress(data, out);
                if let Some(enc) = enc {
                    enc.encrypt(&mut out[start..]);
                }
                (0, 0)
            }
            None => {
                if let Some(enc) = enc {
                    enc.encrypt(data);
                }
                (0, data.len())
            }
        }
    }

    /// Applies an inbound transform; same contract as [`Transform::wrap`].
    fn unwrap(&mut self, data: &mut [u8], out: &mut BytesMut) -> io::Result<(usize, usize)> {
        let Transform::Unwrap { dec, decomp } = self else {
            return Ok((0, data.len()));
        };
        let start = match dec {
            Some(dec) => data.len() - dec.decrypt(data).len(),
            None => 0,
        };
        match decomp {
            Some(decomp) => {
                decomp
                    .decompress(&data[start..], out)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                Ok((0, 0))
            }
            None => Ok((start, data.len())),
        }
    }
}

/// One direction of a splice.
struct Pipe {
    buf: Box<[u8]>,
    /// Pass-through region of `buf` still to write.
    pos: usize,
    end: usize,
    /// Transformed bytes still to write (written before `buf[pos..end]`).
    out: BytesMut,
    transform: Transform,
    read_done: bool,
    need_flush: bool,
}

impl Pipe {
    fn new(transform: Transform, out: BytesMut) -> Self {
        Pipe {
            buf: vec![0u8; BUF_LEN].into_boxed_slice(),
            pos: 0,
            end: 0,
            out,
            transform,
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
            while !self.out.is_empty() {
                let n = futures::ready!(Pin::new(&mut *w).poll_write(cx, &self.out))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.out.advance(n);
                self.need_flush = true;
            }
            while self.pos < self.end {
                let n = futures::ready!(
                    Pin::new(&mut *w).poll_write(cx, &self.buf[self.pos..self.end])
                )?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.pos += n;
                self.need_flush = true;
            }
            if self.read_done {
                futures::ready!(Pin::new(&mut *w).poll_flush(cx))?;
                return Poll::Ready(Ok(()));
            }
            let n = {
                let mut rb = ReadBuf::new(&mut self.buf);
                match Pin::new(&mut *r).poll_read(cx, &mut rb) {
                    Poll::Ready(Ok(())) => rb.filled().len(),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {
                        if self.need_flush {
                            futures::ready!(Pin::new(&mut *w).poll_flush(cx))?;
                            self.need_flush = false;
                        }
                        return Poll::Pending;
                    }
                }
            };
            if n == 0 {
                self.read_done = true;
                continue;
            }
            let (pos, end) = match self.transform {
                Transform::None => (0, n),
                Transform::Wrap { .. } => self.transform.wrap(&mut self.buf[..n], &mut self.out),
                Transform::Unwrap { .. } => {
                    self.transform.unwrap(&mut self.buf[..n], &mut self.out)?
                }
            };
            self.pos = pos;
            self.end = end;
        }
    }
}

/// Splices `user` and `work` until either direction ends, then closes both.
///
/// `head` is sent to the work side first (through the wrapping): bytes already read from the
/// user, e.g. an HTTP request head.
pub(crate) async fn splice(mut user: BoxIo, mut work: BoxIo, wrapping: &Wrapping, head: &[u8]) {
    let (t, out) = wrapping.preload(head);
    let mut up = Pipe::new(t, out);
    let mut down = Pipe::new(wrapping.inbound(), BytesMut::new());
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

/// Best-effort graceful close (FIN / close_notify) of one side, bounded in time.
pub(crate) async fn close<T: AsyncWrite + Unpin + ?Sized>(io: &mut T) {
    let _ = tokio::time::timeout(CLOSE_GRACE, io.shutdown()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(wrapping: &Wrapping, data: &[u8]) -> Vec<u8> {
        // Outbound through one transform, inbound through the peer's.
        let mut out_t = wrapping.outbound();
        let mut wire = BytesMut::new();
        for chunk in data.chunks(1000) {
            let mut c = chunk.to_vec();
            let (p, e) = out_t.wrap(&mut c, &mut wire);
            wire.extend_from_slice(&c[p..e]);
        }
        let mut in_t = wrapping.inbound();
        let mut plain = BytesMut::new();
        for chunk in wire.to_vec().chunks(777) {
            let mut c = chunk.to_vec();
            let (p, e) = in_t.unwrap(&mut c, &mut plain).unwrap();
            plain.extend_from_slice(&c[p..e]);
        }
        plain.to_vec()
    }

    #[test]
    fn transforms_round_trip() {
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
