//! The driver: the one task that owns the socket. It reads frames and hands their bodies to
//! the streams, answers pings, refuses streams the peer opens, and writes what the streams
//! queued — each frame's header and body in the same write.

use super::config::{READ_BUFFER, WRITE_BATCH};
use super::error::ProtocolError;
use super::frame::{go_away_name, Header, Kind, GO_AWAY_PROTOCOL_ERROR, HEADER_LEN};
use super::state::{PeerEvent, Session};
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite, ReadBuf};

/// Reads in one turn of the driver before it lets other tasks run.
const READS_PER_TURN: usize = 16;

/// Where the parser is within the inbound byte stream.
enum Position {
    /// Waiting for a 12-byte header.
    Header,
    /// Inside a Data frame's body.
    Body {
        /// The frame's header.
        header: Header,
        /// Stream that takes the bytes; `None` discards them.
        sink: Option<u32>,
        /// Body bytes still to come.
        left: u32,
    },
}

/// The inbound parser: takes whatever bytes a read produced, however frames are split across
/// reads, and keeps only a partial header between reads (bodies go to their streams at once).
struct Inbound {
    at: Position,
    /// The first bytes of a header split across reads.
    partial: [u8; HEADER_LEN],
    partial_len: usize,
}

impl Inbound {
    fn new() -> Self {
        Inbound {
            at: Position::Header,
            partial: [0; HEADER_LEN],
            partial_len: 0,
        }
    }

    /// Handles every header and body byte of `data`, all of it (a trailing partial header is
    /// kept for the next call).
    fn process(&mut self, mut data: &[u8], session: &Arc<Session>) -> Result<(), PeerEvent> {
        let mut sh = session.lock();
        while !data.is_empty() {
            match &mut self.at {
                Position::Header => {
                    let raw: [u8; HEADER_LEN] = if self.partial_len == 0 && data.len() >= HEADER_LEN
                    {
                        let (head, rest) = data.split_at(HEADER_LEN);
                        data = rest;
                        head.try_into().unwrap_or([0; HEADER_LEN])
                    } else {
                        let k = (HEADER_LEN - self.partial_len).min(data.len());
                        self.partial[self.partial_len..self.partial_len + k]
                            .copy_from_slice(&data[..k]);
                        self.partial_len += k;
                        data = &data[k..];
                        if self.partial_len < HEADER_LEN {
                            return Ok(());
                        }
                        self.partial_len = 0;
                        self.partial
                    };
                    let header = Header::decode(&raw).map_err(PeerEvent::Violation)?;
                    let sink = sh.on_header(&header, &session.unacked)?;
                    if header.kind == Kind::Data {
                        if header.length == 0 {
                            sh.on_flags(header.stream, header.flags, &session.unacked);
                        } else {
                            self.at = Position::Body {
                                header,
                                sink,
                                left: header.length,
                            };
                        }
                    }
                }
                Position::Body { header, sink, left } => {
                    let n = data.len().min(*left as usize);
                    if let Some(id) = *sink {
                        sh.on_body(id, &data[..n]);
                    }
                    data = &data[n..];
                    *left -= n as u32;
                    if *left == 0 {
                        let (id, flags) = (header.stream, header.flags);
                        self.at = Position::Header;
                        sh.on_flags(id, flags, &session.unacked);
                    }
                }
            }
        }
        Ok(())
    }
}

/// What the driver reads and writes: any byte stream, some of which can lend the bytes they
/// already hold (a TLS stream's decrypted record), so frame bodies go from there straight into
/// the streams' buffers instead of through the driver's own read buffer first.
pub(crate) trait SessionIo: AsyncRead + AsyncWrite + Unpin {
    /// The buffered reader behind this stream, when it has one; `None` reads with
    /// `poll_read` into the driver's buffer.
    fn lend(&mut self) -> Option<Pin<&mut (dyn AsyncBufRead + '_)>> {
        None
    }
}

/// The tests' in-memory connection: reads into the driver's buffer.
#[cfg(test)]
impl SessionIo for tokio::io::DuplexStream {}

/// The tests' lending connection (a buffered reader with a tiny buffer splits frames anywhere).
#[cfg(test)]
impl<T: AsyncRead + AsyncWrite + Unpin> SessionIo for tokio::io::BufReader<T> {
    fn lend(&mut self) -> Option<Pin<&mut (dyn AsyncBufRead + '_)>> {
        let this: Pin<&mut Self> = Pin::new(self);
        Some(this)
    }
}

/// Socket, buffers and position: everything the driver owns.
pub(crate) struct Driver<T> {
    io: T,
    session: Arc<Session>,
    /// Inbound bytes when `io` lends none; allocated on the first such read.
    inbuf: Box<[u8]>,
    /// Where the parser is in the inbound byte stream.
    inbound: Inbound,
    /// Outbound frames; `[out_pos, out.len())` is not yet written.
    out: Vec<u8>,
    out_pos: usize,
    /// A write since the last flush.
    need_flush: bool,
}

impl<T: SessionIo> Driver<T> {
    pub(super) fn new(io: T, session: Arc<Session>) -> Self {
        Driver {
            io,
            session,
            inbuf: Box::default(),
            inbound: Inbound::new(),
            out: Vec::with_capacity(WRITE_BATCH + 64 * 1024),
            out_pos: 0,
            need_flush: false,
        }
    }

    /// Runs until the connection ends; returns why (the socket closed or failed, the peer
    /// broke the protocol or sent GoAway).
    pub(crate) async fn run(&mut self) -> String {
        poll_fn(|cx| self.poll_run(cx)).await
    }

    /// Writes out everything queued (frames of closed streams, a CloseProxy just sent), then
    /// closes the socket. For a deliberate close; the caller bounds the time it may take.
    pub(crate) async fn drain_and_close(&mut self) {
        let _ = poll_fn(|cx| loop {
            match self.poll_outbound(cx) {
                Poll::Ready(Ok(true)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(false)) => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        })
        .await;
        let _ = poll_fn(|cx| Pin::new(&mut self.io).poll_shutdown(cx)).await;
    }

    fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<String> {
        for _ in 0..READS_PER_TURN {
            let read = match self.poll_inbound(cx) {
                Poll::Ready(Err(end)) => return Poll::Ready(end),
                Poll::Ready(Ok(())) => true,
                Poll::Pending => false,
            };
            let idle = match self.poll_outbound(cx) {
                Poll::Ready(Err(why)) => return Poll::Ready(why),
                Poll::Ready(Ok(idle)) => idle,
                Poll::Pending => true,
            };
            if !read && idle {
                return Poll::Pending;
            }
        }
        // Busy: let other tasks (the streams' readers and writers) run, then continue.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// One read from the socket, processed. `Pending` when the socket has nothing.
    fn poll_inbound(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), String>> {
        let failed = |e: std::io::Error| format!("connection failed: {e}");
        let closed = || "server closed the connection".to_string();
        if let Some(mut src) = self.io.lend() {
            // TLS lends one record (at most 16 KiB) at a time: take up to a read buffer's
            // worth per call, as one read into the buffer would, so that a turn of the driver
            // moves as much as before.
            let mut taken = 0;
            while taken < READ_BUFFER {
                let data = match src.as_mut().poll_fill_buf(cx) {
                    Poll::Ready(r) => r.map_err(failed)?,
                    Poll::Pending if taken > 0 => break,
                    Poll::Pending => return Poll::Pending,
                };
                if data.is_empty() {
                    return Poll::Ready(Err(closed()));
                }
                let n = data.len();
                let done = self.inbound.process(data, &self.session);
                src.as_mut().consume(n);
                if let Err(ev) = done {
                    return Poll::Ready(Err(self.peer_ended(ev)));
                }
                taken += n;
            }
            return Poll::Ready(Ok(()));
        }
        if self.inbuf.is_empty() {
            self.inbuf = vec![0u8; READ_BUFFER].into_boxed_slice();
        }
        let mut rb = ReadBuf::new(&mut self.inbuf);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut rb)).map_err(failed)?;
        let n = rb.filled().len();
        if n == 0 {
            return Poll::Ready(Err(closed()));
        }
        let done = self.inbound.process(&self.inbuf[..n], &self.session);
        Poll::Ready(done.map_err(|ev| self.peer_ended(ev)))
    }

    /// Ends the session for what the peer did, queueing a GoAway for a violation.
    fn peer_ended(&mut self, ev: PeerEvent) -> String {
        match ev {
            PeerEvent::Violation(e) => {
                self.session.lock().push_go_away(GO_AWAY_PROTOCOL_ERROR);
                format!("yamux: {e}")
            }
            PeerEvent::GoAway(code) => {
                self.session.lock().set_going_away();
                format!("server sent GoAway ({}, code {code})", go_away_name(code))
            }
        }
    }

    /// Writes queued frames. `Ready(Ok(true))` once everything is written and flushed and the
    /// driver is registered for new work; `Ready(Ok(false))` after a batch went out and more
    /// may be queued; `Pending` when the socket is full.
    fn poll_outbound(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, String>> {
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
            let mut sh = self.session.lock();
            sh.fill(&mut self.out, WRITE_BATCH, &self.session.unacked);
            if self.out.is_empty() {
                drop(sh);
                if self.need_flush {
                    ready!(Pin::new(&mut self.io).poll_flush(cx))
                        .map_err(|e| format!("connection failed: {e}"))?;
                    self.need_flush = false;
                }
                // Checked again under the lock so that a stream queueing work now wakes us.
                let mut sh = self.session.lock();
                sh.fill(&mut self.out, WRITE_BATCH, &self.session.unacked);
                if self.out.is_empty() && sh.idle_or_register(cx.waker()) {
                    return Poll::Ready(Ok(true));
                }
            }
        }
        while self.out_pos < self.out.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.out[self.out_pos..]))
                .map_err(|e| format!("connection failed: {e}"))?;
            if n == 0 {
                return Poll::Ready(Err("connection failed: write returned 0".into()));
            }
            self.out_pos += n;
            self.need_flush = true;
        }
        Poll::Ready(Ok(false))
    }
}

impl From<ProtocolError> for PeerEvent {
    fn from(e: ProtocolError) -> Self {
        PeerEvent::Violation(e)
    }
}
