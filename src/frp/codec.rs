//! frp messages over an async byte stream, with the control connection's optional cipher.
//!
//! [`MsgReader`] and [`MsgWriter`] are thin async shells around `frp_proto`'s sans-IO framing
//! and AES-CFB objects. Reading is cancel-safe (bytes are buffered before any await point is
//! left), so a reader can sit in a `select!` next to timers.

use super::codec_v2::{V2Reader, V2Writer};
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
    /// Boxed, as `v2`: every pooled work connection waits in a reader, and these are only
    /// used by the control connection (and v2).
    dec: Option<Box<Decryptor>>,
    /// Wire v2 framing (and cipher) instead of v1's.
    v2: Option<Box<V2Reader>>,
}

impl<R: AsyncRead + Unpin> MsgReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        MsgReader {
            inner,
            buf: BytesMut::with_capacity(READ_CHUNK),
            dec: None,
            v2: None,
        }
    }

    /// A reader of plaintext messages in the connection's wire protocol (v2: no hello).
    pub(crate) fn for_wire(inner: R, v2: bool) -> Self {
        let reader = Self::new(inner);
        if v2 {
            reader.with_v2(V2Reader::plain())
        } else {
            reader
        }
    }

    /// Reads wire v2 frames instead of v1's.
    pub(crate) fn with_v2(mut self, v2: V2Reader) -> Self {
        self.v2 = Some(Box::new(v2));
        self
    }

    /// The wire v2 state, if this reader speaks v2.
    pub(crate) fn v2_mut(&mut self) -> Option<&mut V2Reader> {
        self.v2.as_deref_mut()
    }

    /// The next message; `Ok(None)` on EOF at a frame boundary.
    pub(crate) async fn read(&mut self) -> Result<Option<Message>, Error> {
        loop {
            let msg = match self.v2.as_mut() {
                Some(v2) => v2.decode(&mut self.buf)?,
                None => decode_frame(&mut self.buf)?,
            };
            if let Some(msg) = msg {
                return Ok(Some(msg));
            }
            self.buf.reserve(READ_CHUNK);
            let start = self.buf.len();
            let n = self.inner.read_buf(&mut self.buf).await?;
            if n == 0 {
                let partial = self.v2.as_deref().is_some_and(V2Reader::has_partial);
                return if self.buf.is_empty() && !partial {
                    Ok(None)
                } else {
                    Err(Error::Protocol(
                        "connection closed in the middle of a message".into(),
                    ))
                };
            }
            if let Some(v2) = self.v2.as_mut() {
                v2.absorb(&mut self.buf, start)?;
            } else if let Some(dec) = self.dec.as_mut() {
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
        self.dec = Some(Box::new(dec));
    }

    /// Wire v2: reads until the ServerHello has been read and checked, without taking any
    /// message. `Ok(false)`: the server closed the connection first (a v1-only frps closes at
    /// once on the magic).
    pub(crate) async fn read_server_hello(&mut self) -> Result<bool, Error> {
        loop {
            let Some(v2) = self.v2.as_mut() else {
                return Ok(false);
            };
            if v2.take_hello(&mut self.buf)? {
                return Ok(true);
            }
            self.buf.reserve(READ_CHUNK);
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(false)
                } else {
                    Err(Error::Protocol(
                        "connection closed in the middle of the ServerHello".into(),
                    ))
                };
            }
        }
    }

    /// Wire v2: opens the server's AEAD stream from now on (bytes already read past LoginResp
    /// are its start).
    pub(crate) fn enable_v2_decryption(
        &mut self,
        opener: frp_proto::v2::StreamOpener,
    ) -> Result<(), Error> {
        match self.v2.as_mut() {
            Some(v2) => v2.enable(opener, &mut self.buf),
            None => Ok(()),
        }
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
    /// Boxed, as `v2`: only the control connection (and v2) use them.
    enc: Option<Box<Encryptor>>,
    /// Wire v2 framing (and cipher) instead of v1's.
    v2: Option<Box<V2Writer>>,
}

impl<W: AsyncWrite + Unpin> MsgWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        MsgWriter {
            inner,
            buf: BytesMut::with_capacity(1024),
            enc: None,
            v2: None,
        }
    }

    /// A writer of plaintext messages in the connection's wire protocol; `opens`: this side
    /// opened the connection, so v2 puts the magic before the first message.
    pub(crate) fn for_wire(inner: W, v2: bool, opens: bool) -> Self {
        let writer = Self::new(inner);
        if v2 {
            writer.with_v2(V2Writer::new(opens))
        } else {
            writer
        }
    }

    /// Writes wire v2 frames instead of v1's.
    pub(crate) fn with_v2(mut self, v2: V2Writer) -> Self {
        self.v2 = Some(Box::new(v2));
        self
    }

    /// Wire v2: seals everything sent from now on.
    pub(crate) fn enable_v2_encryption(&mut self, sealer: frp_proto::v2::StreamSealer) {
        if let Some(v2) = self.v2.as_mut() {
            v2.enable(sealer);
        }
    }

    /// Writes bytes as they are (the wire v2 magic and ClientHello).
    pub(crate) async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.inner.write_all(bytes).await?;
        self.inner.flush().await?;
        Ok(())
    }

    /// Encrypts everything sent from now on with a fresh random IV, sent before the first
    /// ciphertext byte. Nobody waits for the peer's IV first: each direction has its own.
    pub(crate) fn enable_encryption(&mut self, key: &Key) {
        self.enc = Some(Box::new(Encryptor::new(key, rand::random())));
    }

    /// Sends one message.
    pub(crate) async fn send(&mut self, msg: &Message) -> Result<(), Error> {
        self.buf.clear();
        if let Some(v2) = self.v2.as_mut() {
            v2.encode(msg, &mut self.buf)?;
            return self.send_buffered().await;
        }
        match self.enc.as_mut() {
            Some(enc) => enc.seal_appended(&mut self.buf, |buf| encode_frame(msg, buf))?,
            None => encode_frame(msg, &mut self.buf)?,
        }
        self.send_buffered().await
    }

    async fn send_buffered(&mut self) -> Result<(), Error> {
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
