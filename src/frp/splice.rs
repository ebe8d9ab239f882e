//! The splice of one visitor connection: bytes both ways between a work connection and the
//! local service, through the proxy's payload pipeline.
//!
//! Both directions run in one task with one [`frp_proto::pipeline`] buffer each, allocated once
//! per connection: no per-chunk allocation, no logging per chunk. What one direction holds is
//! bounded by [`frp_proto::pipeline::MAX_BUFFERED`] whatever the compression ratio, because a
//! direction reads again only once its sink has taken what it holds.
//!
//! frp has no half-close: frps closes a visitor's connection as soon as either direction ends,
//! so when one direction finishes we flush it, send FIN, and drop both sides rather than wait
//! for the other direction as `copy_bidirectional` would.

use super::events::{Event, HttpRequest};
use super::limit::Throttle;
use super::transport::{BoxStream, MuxStream};
use crate::httplog::HttpLog;
use bytes::{Buf, BytesMut};
use frp_proto::compress::CompressError;
use frp_proto::pipeline::{Opener, Pipe, Sealer};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{ready, Context, Poll};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::broadcast;

fn invalid_data(e: CompressError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Keeps the engine-wide gauge of buffered payload bytes in step with one pipe, and takes the
/// pipe's share back out when dropped, however the splice ends.
pub(crate) struct Held<'a> {
    total: &'a AtomicU64,
    peak: &'a AtomicU64,
    held: u64,
}

impl<'a> Held<'a> {
    pub(crate) fn new(total: &'a AtomicU64, peak: &'a AtomicU64) -> Self {
        Held {
            total,
            peak,
            held: 0,
        }
    }

    fn set(&mut self, now: usize) {
        let now = now as u64;
        if now > self.held {
            self.total.fetch_add(now - self.held, Ordering::Relaxed);
            self.peak.fetch_max(now, Ordering::Relaxed);
        } else if now < self.held {
            self.total.fetch_sub(self.held - now, Ordering::Relaxed);
        }
        self.held = now;
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.total.fetch_sub(self.held, Ordering::Relaxed);
    }
}

/// One direction of a splice: reads from one side into its pipe, writes the pipe's output to
/// the other.
pub(crate) struct Pump<'a, P> {
    pipe: P,
    /// Bytes to feed before reading: payload that arrived together with StartWorkConn.
    early: BytesMut,
    read_done: bool,
    /// Bytes written to the sink, for [`super::Stats`].
    counter: &'a AtomicU64,
    /// Bytes written to the sink by this pump, for the per-proxy counters at the end.
    moved: u64,
    held: Held<'a>,
    /// frps → local service; the request log sees these bytes as requests.
    inbound: bool,
    /// The proxy's bandwidth limit on the work-connection side: reads when inbound, writes
    /// when outbound.
    throttle: Option<Throttle>,
}

impl<'a> Pump<'a, Sealer> {
    /// Local service → frps.
    pub(crate) fn outbound(pipe: Sealer, counter: &'a AtomicU64, held: Held<'a>) -> Self {
        Pump {
            pipe,
            early: BytesMut::new(),
            read_done: false,
            counter,
            moved: 0,
            held,
            inbound: false,
            throttle: None,
        }
    }

    /// Sends `data` through the pipe to `stream` and flushes (the 502 page).
    pub(crate) async fn send(&mut self, mut data: &[u8], stream: &mut BoxStream) -> io::Result<()> {
        while !data.is_empty() {
            let n = self.pipe.push(data).map_err(invalid_data)?;
            data = &data[n..];
            stream.write_all(self.pipe.ready()).await?;
            let written = self.pipe.ready().len();
            self.pipe.consume(written).map_err(invalid_data)?;
        }
        stream.flush().await
    }
}

impl<'a> Pump<'a, Opener> {
    /// frps → local service; `early` is payload already read with StartWorkConn.
    pub(crate) fn inbound(
        pipe: Opener,
        early: BytesMut,
        counter: &'a AtomicU64,
        held: Held<'a>,
    ) -> Self {
        // An empty `early` is the message reader's buffer with nothing in it: not kept.
        let early = if early.is_empty() {
            BytesMut::new()
        } else {
            early
        };
        Pump {
            pipe,
            early,
            read_done: false,
            counter,
            moved: 0,
            held,
            inbound: true,
            throttle: None,
        }
    }

    /// frps → local service without the pipe's buffer: bytes go from the yamux stream's blocks
    /// to the local socket in vectored writes, one copy fewer than reading them into the pipe.
    /// `None` where this path does not apply (the pipe decrypts or decompresses or holds bytes,
    /// a bandwidth limit, bytes that came with StartWorkConn, a remote that is not a yamux
    /// stream, or the end of the stream reached), and the general path runs.
    fn poll_direct(
        &mut self,
        cx: &mut Context<'_>,
        remote: &mut BoxStream,
        local: &mut TcpStream,
    ) -> Option<Poll<io::Result<()>>> {
        if self.read_done
            || self.throttle.is_some()
            || !self.early.is_empty()
            || !self.pipe.is_plain()
            || self.pipe.buffered() != 0
        {
            return None;
        }
        let mux = (**remote).as_any_mut().downcast_mut::<MuxStream>()?;
        loop {
            match mux.poll_send_to(cx, Pin::new(&mut *local)) {
                Poll::Ready(Ok(0)) => {
                    self.read_done = true;
                    return None;
                }
                Poll::Ready(Ok(n)) => {
                    self.counter.fetch_add(n as u64, Ordering::Relaxed);
                    self.moved = self.moved.wrapping_add(n as u64);
                }
                Poll::Ready(Err(e)) => return Some(Poll::Ready(Err(e))),
                Poll::Pending => {
                    // As on the general path: an idle direction holds no pipe buffer.
                    self.pipe.release();
                    return Some(Poll::Pending);
                }
            }
        }
    }
}

impl<P: Pipe> Pump<'_, P> {
    /// Bytes this direction has written to its sink.
    pub(crate) fn moved(&self) -> u64 {
        self.moved
    }

    /// Puts this direction under the proxy's bandwidth limit.
    pub(crate) fn throttled(mut self, throttle: Option<Throttle>) -> Self {
        self.throttle = throttle;
        self
    }

    /// Moves bytes until the reader hits EOF and everything is written and the writer shut down.
    ///
    /// `log`, when the proxy keeps a request log, sees the plaintext HTTP bytes: inbound at the
    /// moment they are written to the local service (after decryption/decompression), outbound
    /// as they are read from it (before compression/encryption).
    fn poll_copy<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        mut reader: Pin<&mut R>,
        mut writer: Pin<&mut W>,
        mut log: Option<&mut HttpLog>,
    ) -> Poll<io::Result<()>>
    where
        R: AsyncRead + ?Sized,
        W: AsyncWrite + ?Sized,
    {
        loop {
            // Drain what the pipe holds first; a direction reads again only when it is empty.
            loop {
                let mut out = self.pipe.ready();
                if out.is_empty() {
                    break;
                }
                if let Some(t) = self.throttle.as_mut() {
                    // Inbound bytes were paid for when read: wait out the payment. Outbound
                    // bytes are paid for here, before they are written.
                    let allowed = if self.inbound {
                        t.poll_wait(cx).map(|()| out.len())
                    } else {
                        t.poll_allowance(cx, out.len())
                    };
                    let Poll::Ready(allowed) = allowed else {
                        ready!(writer.as_mut().poll_flush(cx))?;
                        return Poll::Pending;
                    };
                    out = &out[..allowed];
                }
                let n = ready!(writer.as_mut().poll_write(cx, out))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                if let (true, Some(log)) = (self.inbound, log.as_deref_mut()) {
                    log.on_request_bytes(&out[..n], Instant::now());
                }
                self.counter.fetch_add(n as u64, Ordering::Relaxed);
                self.moved = self.moved.wrapping_add(n as u64);
                if let (false, Some(t)) = (self.inbound, self.throttle.as_mut()) {
                    t.spent(n);
                }
                self.pipe.consume(n).map_err(invalid_data)?;
                self.held.set(self.pipe.buffered());
            }
            if self.read_done {
                ready!(writer.as_mut().poll_flush(cx))?;
                return writer.as_mut().poll_shutdown(cx);
            }
            if !self.early.is_empty() {
                let n = self.pipe.push(&self.early).map_err(invalid_data)?;
                self.early.advance(n);
                if self.early.is_empty() {
                    // The message reader's buffer: not needed again for this connection.
                    self.early = BytesMut::new();
                }
                if let (true, Some(t)) = (self.inbound, self.throttle.as_mut()) {
                    t.charge(n);
                }
                self.held.set(self.pipe.buffered());
                continue;
            }
            let mut space = self.pipe.space();
            if let (true, Some(t)) = (self.inbound, self.throttle.as_ref()) {
                // One payment covers at most one burst.
                let cap = space.len().min(t.burst());
                space = &mut space[..cap];
            }
            if space.is_empty() {
                // The pipe promises room whenever it has nothing ready.
                return Poll::Ready(Err(io::Error::other("payload pipeline stalled")));
            }
            let mut rb = ReadBuf::new(space);
            match reader.as_mut().poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    // Nothing to read now: the pipe holds nothing, so its buffer goes back to
                    // the pool until bytes arrive (an idle connection holds none).
                    self.pipe.release();
                    // Push out what we wrote so far before sleeping.
                    ready!(writer.as_mut().poll_flush(cx))?;
                    return Poll::Pending;
                }
            }
            let n = rb.filled().len();
            if n == 0 {
                self.read_done = true;
                continue;
            }
            if let (false, Some(log)) = (self.inbound, log.as_deref_mut()) {
                log.on_response_bytes(rb.filled(), Instant::now());
            }
            self.pipe.fill(n).map_err(invalid_data)?;
            if let (true, Some(t)) = (self.inbound, self.throttle.as_mut()) {
                t.charge(n);
            }
            self.held.set(self.pipe.buffered());
        }
    }
}

/// Both directions of one visitor connection; completes when either direction is done.
pub(crate) struct Splice<'a> {
    pub(crate) remote: BoxStream,
    pub(crate) local: TcpStream,
    pub(crate) up: Pump<'a, Sealer>,
    pub(crate) down: Pump<'a, Opener>,
    /// Present when the proxy keeps a request log.
    pub(crate) log: Option<RequestLog<'a>>,
}

/// The request log of one connection and where its exchanges go.
pub(crate) struct RequestLog<'a> {
    pub(crate) parser: Box<HttpLog>,
    pub(crate) proxy: &'a str,
    pub(crate) events: &'a broadcast::Sender<Event>,
    /// The inspector's store, when the parser records.
    pub(crate) capture: Option<&'a crate::capture::CaptureStore>,
    /// The local service, recorded with each exchange for replays.
    pub(crate) local_addr: &'a str,
    /// The proxy's counters: one HTTP request each.
    pub(crate) counters: &'a super::proxy_stats::ProxyCounters,
}

impl RequestLog<'_> {
    /// Publishes the exchanges completed so far (and, once `closed`, what was passed through
    /// unfollowed). Allocation happens per request, never per chunk.
    fn publish(&mut self, closed: bool) {
        for mut ex in self.parser.drain() {
            self.counters.observe_http(ex.duration);
            let (method, path) = if self.capture.is_some() {
                (ex.method.clone(), ex.path.clone())
            } else {
                (std::mem::take(&mut ex.method), std::mem::take(&mut ex.path))
            };
            let request = HttpRequest {
                proxy: self.proxy.to_owned(),
                method,
                path,
                status: ex.status,
                duration: ex.duration,
                response_bytes: ex.response_bytes,
            };
            if let Some(store) = self.capture {
                store.push_exchange(self.proxy, self.local_addr, ex);
            }
            let _ = self.events.send(Event::HttpRequest(request));
        }
        // Reported once the connection ends, with all the bytes it passed through.
        if let (Some(store), true) = (self.capture, closed) {
            if let Some(p) = self.parser.take_passthrough() {
                store.push_passthrough(self.proxy, self.local_addr, p);
            }
        }
    }
}

impl Future for Splice<'_> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut log = this.log.as_mut();
        // The request log reads the bytes it sees from the pipe: only without it may they skip
        // the pipe.
        let direct = match log {
            None => this.down.poll_direct(cx, &mut this.remote, &mut this.local),
            Some(_) => None,
        };
        let down = match direct {
            Some(p) => p,
            None => this.down.poll_copy(
                cx,
                Pin::new(&mut this.remote),
                Pin::new(&mut this.local),
                log.as_mut().map(|l| &mut *l.parser),
            ),
        };
        let result = match down {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => this.up.poll_copy(
                cx,
                Pin::new(&mut this.local),
                Pin::new(&mut this.remote),
                log.as_mut().map(|l| &mut *l.parser),
            ),
        };
        if let Some(l) = log {
            if result.is_ready() {
                l.parser.on_close(Instant::now());
            }
            l.publish(result.is_ready());
        }
        result
    }
}
