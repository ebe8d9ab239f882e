//! Wire v2 inside [`super::codec`]'s `MsgReader`/`MsgWriter`: the 8-byte frames, the magic
//! before a connection's first frame, and the control connection's hello and AEAD streams.
//!
//! The async shells stay as they are; with v2 on, they hand their buffers to these two sans-IO
//! states instead of the v1 frame functions and the AES-CFB objects.

use super::error::Error;
use bytes::BytesMut;
use frp_proto::v2::frame::{decode_frame, decode_message, encode_message};
use frp_proto::v2::{ClientHandshake, CryptoContext, FrameType, StreamOpener, StreamSealer, MAGIC};
use frp_proto::Message;

fn v2_error(e: impl std::fmt::Display) -> Error {
    Error::Protocol(format!("wire v2: {e}"))
}

/// The writing side: magic first if this side opened the connection, then message frames, in
/// clear or sealed once the control cipher is on.
pub(crate) struct V2Writer {
    magic_pending: bool,
    sealer: Option<StreamSealer>,
    /// A frame before sealing; reused, so sealing allocates nothing per message.
    frame: BytesMut,
}

impl V2Writer {
    /// `magic`: write the magic before the first frame (work and visitor connections; the
    /// control connection writes it with its ClientHello).
    pub(crate) fn new(magic: bool) -> Self {
        V2Writer {
            magic_pending: magic,
            sealer: None,
            frame: BytesMut::new(),
        }
    }

    /// Appends `msg` to `out` as this connection must send it now.
    pub(crate) fn encode(&mut self, msg: &Message, out: &mut BytesMut) -> Result<(), Error> {
        if std::mem::take(&mut self.magic_pending) {
            out.extend_from_slice(&MAGIC);
        }
        match self.sealer.as_mut() {
            None => encode_message(msg, out).map_err(v2_error)?,
            Some(sealer) => {
                self.frame.clear();
                encode_message(msg, &mut self.frame).map_err(v2_error)?;
                // Header and payload as two records, as frp's writer makes them.
                sealer.seal_frame(&self.frame, out).map_err(v2_error)?;
            }
        }
        Ok(())
    }

    /// Seals everything from now on.
    pub(crate) fn enable(&mut self, sealer: StreamSealer) {
        self.sealer = Some(sealer);
    }
}

/// The reading side: for the control connection first the ServerHello, then message frames,
/// in clear or opened from the AEAD stream once the cipher is on.
pub(crate) struct V2Reader {
    /// The ClientHello we sent, until the ServerHello answers it.
    handshake: Option<ClientHandshake>,
    context: Option<CryptoContext>,
    opener: Option<StreamOpener>,
    /// AEAD bytes not yet opened (an incomplete nonce or record).
    sealed: BytesMut,
}

impl V2Reader {
    /// A connection whose first frame is a message (work and visitor connections).
    pub(crate) fn plain() -> Self {
        V2Reader {
            handshake: None,
            context: None,
            opener: None,
            sealed: BytesMut::new(),
        }
    }

    /// The control connection, whose first frame must be the ServerHello to `handshake`.
    pub(crate) fn control(handshake: ClientHandshake) -> Self {
        V2Reader {
            handshake: Some(handshake),
            ..V2Reader::plain()
        }
    }

    /// Bytes just read into `buf[start..]`: opened into plaintext when the cipher is on.
    pub(crate) fn absorb(&mut self, buf: &mut BytesMut, start: usize) -> Result<(), Error> {
        if let Some(opener) = self.opener.as_mut() {
            self.sealed.extend_from_slice(&buf[start..]);
            buf.truncate(start);
            opener.open(&mut self.sealed, buf).map_err(v2_error)?;
        }
        Ok(())
    }

    /// The next message in `buf`, once it is complete. A ServerHello is checked against our
    /// ClientHello and kept; anything but a ServerHello first is an error, as in frpc.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, Error> {
        if !self.take_hello(buf)? {
            return Ok(None);
        }
        decode_message(buf).map_err(v2_error)
    }

    /// Takes the ServerHello off `buf` if it is due and complete; true once none is due.
    pub(crate) fn take_hello(&mut self, buf: &mut BytesMut) -> Result<bool, Error> {
        let Some(handshake) = &self.handshake else {
            return Ok(true);
        };
        let Some((header, payload)) = decode_frame(buf).map_err(v2_error)? else {
            return Ok(false);
        };
        let want = FrameType::ServerHello.code();
        if header.code != want {
            return Err(v2_error(format!(
                "unexpected frame type {}, want {want}",
                header.code
            )));
        }
        self.context = Some(handshake.finish(&payload).map_err(v2_error)?);
        self.handshake = None;
        Ok(true)
    }

    /// Whether bytes of an incomplete record are waiting (EOF now would cut a record).
    pub(crate) fn has_partial(&self) -> bool {
        !self.sealed.is_empty()
    }

    /// What the ServerHello settled, once it arrived.
    pub(crate) fn context(&self) -> Option<&CryptoContext> {
        self.context.as_ref()
    }

    /// Opens everything from now on; bytes in `buf` already read past the last plaintext
    /// frame are the start of the server's stream.
    pub(crate) fn enable(&mut self, opener: StreamOpener, buf: &mut BytesMut) -> Result<(), Error> {
        self.opener = Some(opener);
        self.absorb(buf, 0)
    }
}
