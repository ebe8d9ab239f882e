//! frp's websocket transport: an HTTP/1.1 upgrade on the path `/~!frp`, then frp's byte stream
//! carried in websocket frames (RFC 6455), as Go's `golang.org/x/net/websocket` does it on both
//! ends of frp:
//! - every write is one unfragmented frame; Go sends opcode 1 ("text") with arbitrary bytes in
//!   it and never checks UTF-8, so neither do we, and we send the same opcode;
//! - a reader takes text, binary and continuation frames alike as stream bytes, answers a
//!   ping with a pong, and ends the stream at a close frame;
//! - client frames are masked, server frames are not (each side rejects the other case).
//!
//! Our own codec rather than a websocket crate: the ones available validate text frames as
//! UTF-8 (which would fail on the first frame from frps) and buffer whole messages; this one
//! streams frame payloads straight into the caller's buffer, so memory per connection is one
//! write buffer of at most [`MAX_FRAME`] plus 14 header bytes whatever the peer sends, and it
//! allocates nothing per chunk.

use sha1::{Digest, Sha1};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// frp's websocket path on frps's bind port.
#[cfg_attr(not(feature = "testserver"), allow(dead_code))]
pub(crate) const WS_PATH: &str = "/~!frp";
/// The GUID every websocket server appends to the key before hashing it (RFC 6455).
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Cap on an HTTP head read during a handshake (request or response).
pub(crate) const MAX_HEAD: usize = 8 * 1024;
/// Largest payload written as one frame; a larger write is cut (the caller sees a short
/// write). Bounds the write buffer.
pub(crate) const MAX_FRAME: usize = 64 * 1024;
/// Opcodes.
const OP_CONTINUATION: u8 = 0;
const OP_TEXT: u8 = 1;
const OP_BINARY: u8 = 2;
const OP_CLOSE: u8 = 8;
const OP_PING: u8 = 9;
const OP_PONG: u8 = 10;
/// The close status Go sends when a websocket connection is closed normally.
const CLOSE_NORMAL: [u8; 2] = 1000u16.to_be_bytes();

fn bad(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`.
#[cfg_attr(not(feature = "testserver"), allow(dead_code))]
pub(crate) fn accept_key(key: &str) -> String {
    use base64::Engine;
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(WS_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// Reads an HTTP head (through the blank line) one byte at a time, so nothing after it is
/// consumed from `io`; at most [`MAX_HEAD`] bytes.
pub(crate) async fn read_head<S: AsyncRead + Unpin + ?Sized>(io: &mut S) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return Err(bad("HTTP head too long"));
        }
        head.push(io.read_u8().await?);
    }
    Ok(head)
}

/// Client side of the upgrade, byte for byte as Go's websocket client writes it. `host` is the
/// `Host` header (frpc: `server:port` for websocket, the TLS server name for wss).
pub(crate) async fn client_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    host: &str,
) -> io::Result<()> {
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>());
    let origin = format!("http://{host}").to_ascii_lowercase();
    let req = format!(
        "GET {WS_PATH} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nOrigin: {origin}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    io.write_all(req.as_bytes()).await?;
    io.flush().await?;
    let head = read_head(io).await?;
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(bad("websocket upgrade: malformed HTTP response")),
    }
    if resp.code != Some(101) {
        return Err(io::Error::other(format!(
            "websocket upgrade refused: HTTP {} {}",
            resp.code.unwrap_or(0),
            resp.reason.unwrap_or("")
        )));
    }
    let header = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    };
    let is = |name: &str, want: &str| header(name).is_some_and(|v| v.eq_ignore_ascii_case(want));
    if !is("Upgrade", "websocket") || !is("Connection", "upgrade") {
        return Err(bad("websocket upgrade: bad Upgrade/Connection headers"));
    }
    if header("Sec-WebSocket-Accept") != Some(accept_key(&key).as_str()) {
        return Err(bad("websocket upgrade: wrong Sec-WebSocket-Accept"));
    }
    if header("Sec-WebSocket-Extensions").is_some_and(|v| !v.is_empty()) {
        return Err(bad("websocket upgrade: unsupported extensions"));
    }
    Ok(())
}

/// Which end of the websocket we are: a client masks what it sends and expects unmasked
/// frames, a server the reverse.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(not(feature = "testserver"), allow(dead_code))]
pub(crate) enum Role {
    /// frpc's side.
    Client,
    /// frps's side (the test server).
    Server,
}

/// Where the reader is in the frame sequence.
enum ReadState {
    /// Collecting a frame header (2 to 14 bytes).
    Header { buf: [u8; 14], have: usize },
    /// Inside a data frame's payload.
    Payload {
        left: u64,
        mask: Option<[u8; 4]>,
        pos: usize,
    },
    /// Collecting a control frame's payload (at most 125 bytes).
    Control {
        op: u8,
        mask: Option<[u8; 4]>,
        buf: [u8; 125],
        len: usize,
        have: usize,
    },
    /// A close frame arrived: end of stream.
    Closed,
}

/// A byte stream over a websocket connection whose handshake is done.
pub(crate) struct WsStream<S> {
    inner: S,
    role: Role,
    rd: ReadState,
    /// Encoded frames not yet written to `inner` (`wpos` bytes of it already are).
    wbuf: Vec<u8>,
    wpos: usize,
    close_queued: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsStream<S> {
    /// Wraps `inner`, positioned just after the handshake.
    pub(crate) fn new(inner: S, role: Role) -> Self {
        WsStream {
            inner,
            role,
            rd: ReadState::Header {
                buf: [0; 14],
                have: 0,
            },
            wbuf: Vec::new(),
            wpos: 0,
            close_queued: false,
        }
    }

    /// Appends one frame to the write buffer (masked when we are the client).
    fn encode(&mut self, op: u8, payload: &[u8]) {
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
        }
        let len = payload.len();
        let mask_bit = if self.role == Role::Client { 0x80 } else { 0 };
        self.wbuf.push(0x80 | op);
        if len <= 125 {
            self.wbuf.push(mask_bit | len as u8);
        } else if len <= usize::from(u16::MAX) {
            self.wbuf.push(mask_bit | 126);
            self.wbuf.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            self.wbuf.push(mask_bit | 127);
            self.wbuf.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let start = self.wbuf.len();
        if self.role == Role::Client {
            let key: [u8; 4] = rand::random();
            self.wbuf.extend_from_slice(&key);
            self.wbuf.extend_from_slice(payload);
            apply_mask(&mut self.wbuf[start + 4..], key, 0);
        } else {
            self.wbuf.extend_from_slice(payload);
        }
    }

    /// Writes out the buffered frames.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.wpos < self.wbuf.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.wbuf[self.wpos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.wpos += n;
        }
        Poll::Ready(Ok(()))
    }

    /// Reads into `dst` from the inner stream; end of stream is an error here (mid-frame).
    fn poll_fill(&mut self, cx: &mut Context<'_>, dst: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut rb = ReadBuf::new(dst);
        ready!(Pin::new(&mut self.inner).poll_read(cx, &mut rb))?;
        Poll::Ready(Ok(rb.filled().len()))
    }

    /// Parses a complete header in `buf[..have]`, or says how many bytes it needs in total.
    fn parse_header(&self, buf: &[u8; 14], have: usize) -> io::Result<Result<ReadState, usize>> {
        if have < 2 {
            return Ok(Err(2));
        }
        let (b0, b1) = (buf[0], buf[1]);
        if b0 & 0x70 != 0 {
            return Err(bad(
                "websocket: reserved bits set (no extension was negotiated)",
            ));
        }
        let masked = b1 & 0x80 != 0;
        if masked != (self.role == Role::Server) {
            return Err(bad("websocket: frame masking is wrong for this direction"));
        }
        let ext = match b1 & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let need = 2 + ext + if masked { 4 } else { 0 };
        if have < need {
            return Ok(Err(need));
        }
        let len = match ext {
            2 => u64::from(u16::from_be_bytes([buf[2], buf[3]])),
            8 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&buf[2..10]);
                u64::from_be_bytes(b)
            }
            _ => u64::from(b1 & 0x7f),
        };
        let mask = masked.then(|| {
            let m = &buf[2 + ext..2 + ext + 4];
            [m[0], m[1], m[2], m[3]]
        });
        let op = b0 & 0x0f;
        Ok(Ok(match op {
            OP_CONTINUATION | OP_TEXT | OP_BINARY => ReadState::Payload {
                left: len,
                mask,
                pos: 0,
            },
            OP_CLOSE | OP_PING | OP_PONG => {
                if len > 125 || b0 & 0x80 == 0 {
                    return Err(bad("websocket: bad control frame"));
                }
                ReadState::Control {
                    op,
                    mask,
                    buf: [0; 125],
                    len: len as usize,
                    have: 0,
                }
            }
            _ => return Err(bad("websocket: unknown opcode")),
        }))
    }
}

/// XORs `data` with the masking key, starting `pos` bytes into the frame's payload.
fn apply_mask(data: &mut [u8], key: [u8; 4], pos: usize) {
    let mut k = key;
    k.rotate_left(pos % 4);
    let wide = u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]]);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        c.copy_from_slice(&(u64::from_ne_bytes(w) ^ wide).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= k[i % 4];
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            match &mut this.rd {
                ReadState::Closed => return Poll::Ready(Ok(())),
                ReadState::Header { buf, have } => {
                    let (mut b, mut h) = (*buf, *have);
                    match this.parse_header(&b, h)? {
                        Ok(next) => this.rd = next,
                        Err(need) => {
                            let n = ready!(this.poll_fill(cx, &mut b[h..need]))?;
                            if n == 0 {
                                if h == 0 {
                                    // Between frames: a clean end of stream.
                                    this.rd = ReadState::Closed;
                                    return Poll::Ready(Ok(()));
                                }
                                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
                            }
                            h += n;
                            this.rd = ReadState::Header { buf: b, have: h };
                        }
                    }
                }
                ReadState::Payload { left, mask, pos } => {
                    if *left == 0 {
                        this.rd = ReadState::Header {
                            buf: [0; 14],
                            have: 0,
                        };
                        continue;
                    }
                    let (l, m, p) = (*left, *mask, *pos);
                    let want = usize::try_from(l)
                        .unwrap_or(usize::MAX)
                        .min(out.remaining());
                    let dst = out.initialize_unfilled_to(want);
                    let n = ready!(this.poll_fill(cx, dst))?;
                    if n == 0 {
                        return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
                    }
                    if let Some(key) = m {
                        apply_mask(&mut dst[..n], key, p);
                    }
                    out.advance(n);
                    this.rd = ReadState::Payload {
                        left: l - n as u64,
                        mask: m,
                        pos: (p + n) % 4,
                    };
                    return Poll::Ready(Ok(()));
                }
                ReadState::Control {
                    op,
                    mask,
                    buf,
                    len,
                    have,
                } => {
                    let (op, mask, mut b, len, mut h) = (*op, *mask, *buf, *len, *have);
                    while h < len {
                        let n = ready!(this.poll_fill(cx, &mut b[h..len]))?;
                        if n == 0 {
                            return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
                        }
                        h += n;
                        this.rd = ReadState::Control {
                            op,
                            mask,
                            buf: b,
                            len,
                            have: h,
                        };
                    }
                    if let Some(key) = mask {
                        apply_mask(&mut b[..len], key, 0);
                    }
                    match op {
                        OP_CLOSE => {
                            this.rd = ReadState::Closed;
                            return Poll::Ready(Ok(()));
                        }
                        OP_PING => {
                            this.encode(OP_PONG, &b[..len]);
                            // Sent now if the socket takes it; otherwise with the next write
                            // or flush. The reader does not wait for it.
                            if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
                                return Poll::Ready(Err(e));
                            }
                        }
                        _ => {}
                    }
                    this.rd = ReadState::Header {
                        buf: [0; 14],
                        have: 0,
                    };
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_drain(cx))?;
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = data.len().min(MAX_FRAME);
        this.encode(OP_TEXT, &data[..n]);
        // Start sending at once; what the socket does not take goes with the next call.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.close_queued {
            ready!(this.poll_drain(cx))?;
            // Go's websocket Close sends a close frame with status 1000 before closing the
            // socket; the peer's reader sees a clean end of stream.
            this.encode(OP_CLOSE, &CLOSE_NORMAL);
            this.close_queued = true;
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    #[test]
    fn accept_key_matches_rfc_6455_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn mask_is_its_own_inverse_at_any_offset() {
        let key = [1, 2, 3, 4];
        let data: Vec<u8> = (0..37u8).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        // Masking in two pieces, the second starting mid-key, equals masking at once.
        let mut split = data.clone();
        let (a, b) = split.split_at_mut(11);
        apply_mask(a, key, 0);
        apply_mask(b, key, 11);
        assert_eq!(split, whole);
        for (i, (m, d)) in whole.iter().zip(&data).enumerate() {
            assert_eq!(*m, d ^ key[i % 4]);
        }
    }

    /// A client and a server stream carry bytes both ways, large writes are cut into frames,
    /// and shutdown ends the peer's stream cleanly.
    #[tokio::test]
    async fn streams_bytes_both_ways_and_closes_cleanly() {
        let (a, b) = duplex(1 << 16);
        let mut c = WsStream::new(a, Role::Client);
        let mut s = WsStream::new(b, Role::Server);
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            c.write_all(&sent).await.unwrap();
            c.shutdown().await.unwrap();
            c
        });
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, data);
        let mut c = writer.await.unwrap();
        s.write_all(b"pong back").await.unwrap();
        s.flush().await.unwrap();
        let mut buf = [0u8; 9];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong back");
    }

    /// A ping is answered with a pong carrying its payload, and does not disturb the data.
    #[tokio::test]
    async fn answers_ping_with_pong() {
        let (a, mut raw) = duplex(1024);
        let mut c = WsStream::new(a, Role::Client);
        // Unmasked server frames: ping "hi", then text "data".
        raw.write_all(&[0x89, 2, b'h', b'i', 0x81, 4, b'd', b'a', b't', b'a'])
            .await
            .unwrap();
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"data");
        let mut pong = [0u8; 8];
        raw.read_exact(&mut pong).await.unwrap();
        assert_eq!(pong[0], 0x8a);
        assert_eq!(pong[1], 0x80 | 2);
        let key = [pong[2], pong[3], pong[4], pong[5]];
        let mut payload = [pong[6], pong[7]];
        apply_mask(&mut payload, key, 0);
        assert_eq!(&payload, b"hi");
    }

    #[tokio::test]
    async fn rejects_masked_frames_from_a_server_and_bad_opcodes() {
        let (a, mut raw) = duplex(1024);
        let mut c = WsStream::new(a, Role::Client);
        raw.write_all(&[0x82, 0x81, 0, 0, 0, 0, 1]).await.unwrap();
        let mut buf = [0u8; 1];
        assert!(c.read(&mut buf).await.is_err());

        let (a, mut raw) = duplex(1024);
        let mut c = WsStream::new(a, Role::Client);
        raw.write_all(&[0x83, 0]).await.unwrap();
        assert!(c.read(&mut buf).await.is_err());
    }

    #[tokio::test]
    async fn handshake_checks_the_accept_key() {
        let (mut a, mut b) = duplex(4096);
        let server = tokio::spawn(async move {
            let head = read_head(&mut b).await.unwrap();
            let text = String::from_utf8(head).unwrap();
            assert!(text.starts_with("GET /~!frp HTTP/1.1\r\nHost: example.com:7000\r\n"));
            assert!(text.contains("Origin: http://example.com:7000\r\n"));
            b.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: wrong\r\n\r\n").await.unwrap();
        });
        let err = client_handshake(&mut a, "example.com:7000")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("Sec-WebSocket-Accept"), "{err}");
        server.await.unwrap();
    }
}
