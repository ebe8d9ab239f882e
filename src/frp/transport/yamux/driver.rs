//! The driver: the one task that owns the socket. It reads frames and hands their bodies to
//! the streams, answers pings, refuses streams the peer opens, and writes what the streams
//! queued — each frame's header and body in the same write.

use super::config::{READ_BUFFER, WRITE_BATCH};
use super::error::ProtocolError;
use super::frame::{go_away_name, Header, Kind, GO_AWAY_PROTOCOL_ERROR, HEADER_LEN};
use super::state::{PeerEvent, Session};
use std::future::poll_fn;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Reads in one turn of the driver before it lets other tasks run.
const READS_PER_TURN: usize = 16;

/// Where the reader is within the inbound byte stream.
enum Inbound {
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

/// Socket, buffers and position: everything the driver owns.
pub(crate) struct Driver<T> {
    io: T,
    session: Arc<Session>,
    /// Inbound bytes; `[start, end)` is not yet processed.
    inbuf: Box<[u8]>,
    start: usize,
    end: usize,
    inbound: Inbound,
    /// Outbound frames; `[out_pos, out.len())` is not yet written.
    out: Vec<u8>,
    out_pos: usize,
    /// A write since the last flush.
    need_flush: bool,
}

impl<T: AsyncRead + AsyncWrite + Unpin> Driver<T> {
    pub(super) fn new(io: T, session: Arc<Session>) -> Self {
        Driver {
            io,
            session,
            inbuf: vec![0u8; READ_BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
            inbound: Inbound::Header,
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
        let _ = poll_fn(|cx| std::pin::Pin::new(&mut self.io).poll_shutdown(cx)).await;
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
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.inbuf.len() {
            // Only a partial header can be left over: bodies are consumed as they arrive.
            self.inbuf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let mut rb = ReadBuf::new(&mut self.inbuf[self.end..]);
        match std::pin::Pin::new(&mut self.io).poll_read(cx, &mut rb) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(format!("connection failed: {e}"))),
            Poll::Ready(Ok(())) => {}
        }
        let n = rb.filled().len();
        if n == 0 {
            return Poll::Ready(Err("server closed the connection".into()));
        }
        self.end += n;
        self.process().map_err(|ev| self.peer_ended(ev))?;
        Poll::Ready(Ok(()))
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

    /// Handles every whole header and every body byte in the buffer.
    fn process(&mut self) -> Result<(), PeerEvent> {
        let session = self.session.clone();
        let mut sh = session.lock();
        loop {
            match &mut self.inbound {
                Inbound::Header => {
                    if self.end - self.start < HEADER_LEN {
                        return Ok(());
                    }
                    let mut raw = [0u8; HEADER_LEN];
                    raw.copy_from_slice(&self.inbuf[self.start..self.start + HEADER_LEN]);
                    self.start += HEADER_LEN;
                    let header = Header::decode(&raw).map_err(PeerEvent::Violation)?;
                    let sink = sh.on_header(&header, &session.unacked)?;
                    if header.kind == Kind::Data {
                        if header.length == 0 {
                            sh.on_flags(header.stream, header.flags, &session.unacked);
                        } else {
                            self.inbound = Inbound::Body {
                                header,
                                sink,
                                left: header.length,
                            };
                        }
                    }
                }
                Inbound::Body { header, sink, left } => {
                    let avail = self.end - self.start;
                    if avail == 0 {
                        return Ok(());
                    }
                    let n = avail.min(*left as usize);
                    if let Some(id) = *sink {
                        sh.on_body(id, &self.inbuf[self.start..self.start + n]);
                    }
                    self.start += n;
                    *left -= n as u32;
                    if *left == 0 {
                        let (id, flags) = (header.stream, header.flags);
                        self.inbound = Inbound::Header;
                        sh.on_flags(id, flags, &session.unacked);
                    }
                }
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
                    ready!(std::pin::Pin::new(&mut self.io).poll_flush(cx))
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
            let n =
                ready!(std::pin::Pin::new(&mut self.io).poll_write(cx, &self.out[self.out_pos..]))
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
