//! Wire v2 on the server side, as frps 0.69+ does it: the magic sniffed on every frp
//! connection, the hello answered before the Login is read, v2 frames, the AEAD control
//! streams, and work/visitor connections whose first frame each way is a v2 frame.

use super::wire::{BoxIo, CONN_READ_TIMEOUT};
use bytes::BytesMut;
use frp_proto::crypto::{Decryptor, Encryptor, Key};
use frp_proto::frame::complete_frame_len as complete_frame_len_v1;
use frp_proto::v2::frame::{
    decode_message, encode_frame, encode_message, parse_message, FrameHeader,
};
use frp_proto::v2::hello::answer_client_hello;
use frp_proto::v2::{
    CryptoContext, FrameType, StreamOpener, StreamSealer, FRAME_HEADER_LEN, MAGIC,
};
use frp_proto::{decode_frame, encode_frame as encode_v1, Message};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Whether the connection starts with the v2 magic. Consumes the magic if so; otherwise the
/// bytes read are returned, to be read again as the start of a v1 frame.
pub(crate) async fn sniff(io: &mut BoxIo) -> io::Result<Result<(), Vec<u8>>> {
    let mut first = vec![0u8; 1];
    io.read_exact(&mut first).await?;
    // A v1 frame never starts with `F`; read the rest of the magic only then.
    if first[0] != MAGIC[0] {
        return Ok(Err(first));
    }
    let mut rest = [0u8; MAGIC.len() - 1];
    io.read_exact(&mut rest).await?;
    if rest != MAGIC[1..] {
        return Err(invalid("not the wire v2 magic"));
    }
    Ok(Ok(()))
}

async fn read_frame_v2(io: &mut BoxIo) -> io::Result<(FrameHeader, Vec<u8>)> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    io.read_exact(&mut header).await?;
    let header = FrameHeader::parse(&header)
        .map_err(invalid)?
        .ok_or_else(|| invalid("short frame header"))?;
    let mut payload = vec![0u8; header.len];
    io.read_exact(&mut payload).await?;
    Ok((header, payload))
}

/// After the magic: the first message, and the negotiated crypto if a ClientHello came first
/// (answered at once with a ServerHello, as frps does, before the Login is even read).
pub(crate) async fn first_message(io: &mut BoxIo) -> io::Result<(Message, Option<CryptoContext>)> {
    let (mut header, mut payload) = read_frame_v2(io).await?;
    let mut crypto = None;
    if header.code == FrameType::ClientHello.code() {
        let answer = answer_client_hello(&payload, rand::random()).map_err(invalid)?;
        let mut out = BytesMut::new();
        encode_frame(FrameType::ServerHello, &answer.payload, &mut out).map_err(invalid)?;
        io.write_all(&out).await?;
        io.flush().await?;
        crypto = Some(answer.outcome.map_err(invalid)?);
        (header, payload) = tokio::time::timeout(CONN_READ_TIMEOUT, read_frame_v2(io))
            .await
            .map_err(|_| invalid("no message after the ClientHello"))??;
    }
    if header.code != FrameType::Message.code() {
        return Err(invalid("expected a message frame"));
    }
    Ok((parse_message(&payload).map_err(invalid)?, crypto))
}

/// How a control connection's messages are framed and encrypted after LoginResp.
pub(crate) enum ControlWire {
    /// v1: AES-128-CFB over v1 frames.
    V1,
    /// v2: the negotiated AEAD streams over v2 frames.
    V2(CryptoContext),
}

impl ControlWire {
    /// The plaintext LoginResp (or any first answer) in this wire.
    pub(crate) fn encode_plain(&self, msg: &Message, out: &mut BytesMut) -> io::Result<()> {
        match self {
            ControlWire::V1 => encode_v1(msg, out).map_err(invalid),
            ControlWire::V2(_) => encode_message(msg, out).map_err(invalid),
        }
    }

    /// The inbound and outbound ciphers of the control connection.
    pub(crate) fn ciphers(&self, token: &str, key: &Key) -> io::Result<(Inbound, Outbound)> {
        Ok(match self {
            ControlWire::V1 => (
                Inbound::V1(Box::new(Decryptor::new(key))),
                Outbound::V1(Box::new(Encryptor::new(key, rand::random()))),
            ),
            ControlWire::V2(ctx) => {
                let nonce: [u8; 24] = rand::random();
                let (sealer, opener) = ctx
                    .server_streams(token.as_bytes(), &nonce[..ctx.algorithm.nonce_len()])
                    .map_err(invalid)?;
                (
                    Inbound::V2(opener, BytesMut::new()),
                    Outbound::V2(sealer, BytesMut::new()),
                )
            }
        })
    }
}

/// The reading side of a control connection after LoginResp.
pub(crate) enum Inbound {
    /// AES-128-CFB, v1 frames.
    V1(Box<Decryptor>),
    /// AEAD records not yet opened, v2 frames.
    V2(StreamOpener, BytesMut),
}

impl Inbound {
    /// Bytes just read into `buf[start..]` become plaintext.
    pub(crate) fn absorb(&mut self, buf: &mut BytesMut, start: usize) -> io::Result<()> {
        match self {
            Inbound::V1(dec) => {
                let plain = dec.open(&mut buf[start..]);
                buf.truncate(start + plain);
            }
            Inbound::V2(opener, sealed) => {
                sealed.extend_from_slice(&buf[start..]);
                buf.truncate(start);
                opener.open(sealed, buf).map_err(invalid)?;
            }
        }
        Ok(())
    }

    /// The next complete message in the plaintext.
    pub(crate) fn next(&self, buf: &mut BytesMut) -> io::Result<Option<Message>> {
        match self {
            Inbound::V1(_) => decode_frame(buf).map_err(invalid),
            Inbound::V2(..) => decode_message(buf).map_err(invalid),
        }
    }
}

/// The writing side of a control connection after LoginResp.
pub(crate) enum Outbound {
    /// AES-128-CFB, v1 frames.
    V1(Box<Encryptor>),
    /// AEAD records of v2 frames, one frame buffer reused.
    V2(StreamSealer, BytesMut),
}

impl Outbound {
    /// Appends `msg` as it goes on the wire. A message too large to encode is dropped, as
    /// frps's writer would fail it.
    pub(crate) fn push(&mut self, msg: &Message, out: &mut BytesMut) {
        match self {
            Outbound::V1(enc) => {
                let _ = enc.seal_appended(out, |buf| encode_v1(msg, buf));
            }
            Outbound::V2(sealer, frame) => {
                frame.clear();
                if encode_message(msg, frame).is_ok() {
                    let _ = sealer.seal_frame(frame, out);
                }
            }
        }
    }
}

/// A v2 work or visitor connection seen as a v1 one by the rest of the server: the first v1
/// frame written to it (StartWorkConn, NewVisitorConnResp) goes out as a v2 frame, everything
/// after it unchanged; reads pass through (the client's first frame was already taken).
pub(crate) struct FirstFrameV2 {
    inner: BoxIo,
    /// v1 bytes collected until the first frame is whole; `None` once it was translated.
    collect: Option<BytesMut>,
    /// Translated bytes not yet written.
    out: BytesMut,
}

impl FirstFrameV2 {
    pub(crate) fn new(inner: BoxIo) -> Self {
        FirstFrameV2 {
            inner,
            collect: Some(BytesMut::new()),
            out: BytesMut::new(),
        }
    }

    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.out.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            let _ = self.out.split_to(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for FirstFrameV2 {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for FirstFrameV2 {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if let Some(acc) = this.collect.as_mut() {
            acc.extend_from_slice(buf);
            if let Some(len) = complete_frame_len_v1(acc).map_err(invalid)? {
                let mut frame = acc.split_to(len);
                let rest = acc.split();
                let msg = decode_frame(&mut frame)
                    .map_err(invalid)?
                    .ok_or_else(|| invalid("incomplete frame"))?;
                encode_message(&msg, &mut this.out).map_err(invalid)?;
                this.out.extend_from_slice(&rest);
                this.collect = None;
            }
            return Poll::Ready(Ok(buf.len()));
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
