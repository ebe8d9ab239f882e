//! frp messages over an async byte stream, with the control connection's optional cipher.
//!
//! [`MsgReader`] and [`MsgWriter`] are thin async shells around `frp_proto`'s sans-IO framing
//! and AES-CFB objects. Reading is cancel-safe (bytes are buffered before any await point is
//! left), so a reader can sit in a `select!` next to timers.

use super::error::Error;
use bytes::BytesMut;
use frp_proto::crypto::{Decryptor, Encryptor, Key};
use frp_proto::{decode_frame, encode_frame, Message};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Read granularity; control messages are small (≤ 10 KiB), and a work connection's first
/// payload bytes that arrive with StartWorkConn are handed on, not parsed.
const READ_CHUNK: usize = 8 * 1024;

/// Reads frp frames, decrypting once [`MsgReader::enable_decryption`] was called.
pub(crate) struct MsgReader<R> {
    inner: R,
    /// Plaintext not yet parsed.
    buf: BytesMut,
    dec: Option<Decryptor>,
}

impl<R: AsyncRead + Unpin> MsgReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        MsgReader {
            inner,
            buf: BytesMut::with_capacity(READ_CHUNK),
            dec: None,
        }
    }

    /// The next message; `Ok(None)` on EOF at a frame boundary.
    pub(crate) async fn read(&mut self) -> Result<Option<Message>, Error> {
        loop {
            if let Some(msg) = decode_frame(&mut self.buf)? {
                return Ok(Some(msg));
            }
            self.buf.reserve(READ_CHUNK);
            let start = self.buf.len();
            let n = self.inner.read_buf(&mut self.buf).await?;
            if n == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(Error::Protocol(
                        "connection closed in the middle of a message".into(),
                    ))
                };
            }
            if let Some(dec) = self.dec.as_mut() {
                let plain = dec.open(&mut self.buf[start..]);
                self.buf.truncate(start + plain);
            }
        }
    }

    /// Everything after the plaintext LoginResp is ciphertext. Bytes already buffered past it
    /// (read together with LoginResp) are the start of the server's IV and are decrypted now.
    pub(crate) fn enable_decryption(&mut self, key: &Key) {
        let mut dec = Decryptor::new(key);
        let plain = dec.open(&mut self.buf);
        self.buf.truncate(plain);
        self.dec = Some(dec);
    }

    /// The stream and any bytes read past the last message (a work connection's first payload).
    pub(crate) fn into_parts(self) -> (R, BytesMut) {
        (self.inner, self.buf)
    }
}

/// Writes frp frames, encrypting once [`MsgWriter::enable_encryption`] was called. Each message
/// goes out in one write, as Go's writer does.
pub(crate) struct MsgWriter<W> {
    inner: W,
    buf: BytesMut,
    enc: Option<Encryptor>,
}

impl<W: AsyncWrite + Unpin> MsgWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        MsgWriter {
            inner,
            buf: BytesMut::with_capacity(1024),
            enc: None,
        }
    }

    /// Encrypts everything sent from now on with a fresh random IV, sent before the first
    /// ciphertext byte. Nobody waits for the peer's IV first: each direction has its own.
    pub(crate) fn enable_encryption(&mut self, key: &Key) {
        self.enc = Some(Encryptor::new(key, rand::random()));
    }

    /// Sends one message.
    pub(crate) async fn send(&mut self, msg: &Message) -> Result<(), Error> {
        self.buf.clear();
        match self.enc.as_mut() {
            Some(enc) => enc.seal_appended(&mut self.buf, |buf| encode_frame(msg, buf))?,
            None => encode_frame(msg, &mut self.buf)?,
        }
        self.inner.write_all(&self.buf).await?;
        self.inner.flush().await?;
        Ok(())
    }

    /// The stream, for a work connection that switches to raw bytes.
    pub(crate) fn into_inner(self) -> W {
        self.inner
    }

    /// Closes the write side (a FIN on yamux or TCP).
    pub(crate) async fn shutdown(&mut self) -> Result<(), Error> {
        self.inner.shutdown().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use frp_proto::msg::{LoginResp, Pong, ReqWorkConn};

    #[tokio::test]
    async fn plaintext_then_encrypted_on_one_stream() {
        let key = Key::derive("k");
        let (a, b) = tokio::io::duplex(64);
        let mut w = MsgWriter::new(a);
        let mut r = MsgReader::new(b);
        let writer = async move {
            w.send(&LoginResp::default().into()).await.unwrap();
            w.enable_encryption(&key);
            w.send(&ReqWorkConn {}.into()).await.unwrap();
            w.send(&Pong::default().into()).await.unwrap();
        };
        let reader = async move {
            let first = r.read().await.unwrap().unwrap();
            assert!(matches!(first, Message::LoginResp(_)));
            r.enable_decryption(&Key::derive("k"));
            let second = r.read().await.unwrap().unwrap();
            assert!(matches!(second, Message::ReqWorkConn(_)));
            let third = r.read().await.unwrap().unwrap();
            assert!(matches!(third, Message::Pong(_)));
            assert!(r.read().await.unwrap().is_none());
        };
        tokio::join!(writer, reader);
    }
}
