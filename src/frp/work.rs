//! Work connections: the data path.
//!
//! For every `ReqWorkConn` the control session spawns [`serve`]: open a stream (or connection),
//! send `NewWorkConn`, wait — possibly for a long time, the connection sits in frps's pool — for
//! `StartWorkConn`, dial the local service and splice bytes both ways until either side ends.
//!
//! The splice runs both directions in one task with one fixed buffer per direction, allocated
//! once per connection: no per-chunk allocation, no logging per chunk. frp has no half-close:
//! frps closes a visitor's connection as soon as either direction ends (yamux notes, pitfalls
//! 2–3), so when one direction finishes we flush it, send FIN, and drop both sides rather than
//! wait for the other direction as `copy_bidirectional` would.

use super::codec::{MsgReader, MsgWriter};
use super::config::{ClientConfig, ProxyConfig};
use super::error::Error;
use super::events::{Counters, Event, HttpRequest};
use super::transport::{BoxStream, Opener};
use crate::httplog::HttpLog;
use bytes::{BufMut, BytesMut};
use frp_proto::compress::{Compressor, Decompressor};
use frp_proto::crypto::{Decryptor, Encryptor, Key};
use frp_proto::msg::NewWorkConn;
use frp_proto::Message;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Splice buffer per direction. 64 KiB keeps syscalls and yamux frames large (Go uses 16 KiB;
/// larger measured faster on loopback) while an idle pooled connection holds no buffer at all.
const SPLICE_BUF: usize = 64 * 1024;

/// What every work connection of one login needs to know; shared, read-only.
pub(crate) struct WorkContext {
    pub run_id: String,
    pub token: crate::secret::Secret,
    pub key: Key,
    pub auth_new_work_conns: bool,
    /// Proxies by wire name (`user.name`).
    pub proxies: HashMap<String, ProxyConfig>,
    pub local_dial_timeout: Duration,
    pub counters: Arc<Counters>,
    pub events: broadcast::Sender<Event>,
}

impl WorkContext {
    pub(crate) fn new(
        cfg: &ClientConfig,
        run_id: String,
        counters: Arc<Counters>,
        events: broadcast::Sender<Event>,
    ) -> Self {
        WorkContext {
            run_id,
            token: cfg.token.clone(),
            key: Key::derive(cfg.token.expose()),
            auth_new_work_conns: cfg.auth_new_work_conns,
            proxies: cfg
                .proxies
                .iter()
                .map(|p| (cfg.wire_name(&p.name), p.clone()))
                .collect(),
            local_dial_timeout: super::config::DEFAULT_LOCAL_DIAL_TIMEOUT,
            counters,
            events,
        }
    }
}

/// One work connection, from `NewWorkConn` to the end of its splice. Errors end only this
/// connection; they are logged at debug level and never reach the control session.
pub(crate) async fn serve(opener: Opener, ctx: Arc<WorkContext>, session: CancellationToken) {
    if let Err(e) = serve_inner(opener, &ctx, session).await {
        tracing::debug!(error = %e, "work connection ended");
    }
}

async fn serve_inner(
    opener: Opener,
    ctx: &WorkContext,
    session: CancellationToken,
) -> Result<(), Error> {
    let stream = opener.open().await?;
    let mut writer = MsgWriter::new(stream);
    let mut hello = NewWorkConn {
        run_id: ctx.run_id.clone(),
        ..Default::default()
    };
    if ctx.auth_new_work_conns {
        let ts = super::wire::unix_now();
        hello.timestamp = ts;
        hello.privilege_key = frp_proto::auth::privilege_key(ctx.token.expose(), ts);
    }
    writer.send(&hello.into()).await?;
    let stream = writer.into_inner();

    // A pooled connection waits here until frps hands it a visitor; there is no timeout (Go has
    // none), but a session that is replaced or shut down releases it.
    let mut reader = MsgReader::new(stream);
    let start = tokio::select! {
        msg = reader.read() => msg?,
        _ = session.cancelled() => return Ok(()),
    };
    let start = match start {
        Some(Message::StartWorkConn(s)) => s,
        // frps 0.66 closes surplus pooled connections with a bare EOF (yamux notes, pitfall 5).
        None => return Ok(()),
        Some(other) => {
            return Err(Error::Protocol(format!(
                "expected StartWorkConn, got {}",
                other.message_type().name()
            )))
        }
    };
    if !start.error.is_empty() {
        return Err(Error::Protocol(format!(
            "server refused work connection: {}",
            start.error
        )));
    }
    let Some(proxy) = ctx.proxies.get(&start.proxy_name) else {
        return Err(Error::Protocol(format!(
            "StartWorkConn for unknown proxy {:?}",
            start.proxy_name
        )));
    };
    let (stream, early) = reader.into_parts();

    let up = Pump::new(
        Direction::Outbound,
        proxy,
        &ctx.key,
        &ctx.counters.bytes_from_local,
    );
    let mut down = Pump::new(
        Direction::Inbound,
        proxy,
        &ctx.key,
        &ctx.counters.bytes_to_local,
    );
    let local_addr = proxy.local_addr();
    let local = match tokio::time::timeout(
        ctx.local_dial_timeout,
        TcpStream::connect((proxy.local_host.as_str(), proxy.local_port)),
    )
    .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return local_unreachable(ctx, proxy, &local_addr, e.to_string(), stream, up).await
        }
        Err(_) => {
            return local_unreachable(ctx, proxy, &local_addr, "timed out".into(), stream, up).await
        }
    };
    let _ = local.set_nodelay(true);
    down.preload(&early)?;

    ctx.counters
        .total_work_conns
        .fetch_add(1, Ordering::Relaxed);
    ctx.counters
        .active_work_conns
        .fetch_add(1, Ordering::Relaxed);
    let log = proxy.request_log.then(|| RequestLog {
        parser: Box::new(HttpLog::new()),
        proxy: &proxy.name,
        events: &ctx.events,
    });
    let result = Splice {
        remote: stream,
        local,
        up,
        down,
        log,
    }
    .await;
    ctx.counters
        .active_work_conns
        .fetch_sub(1, Ordering::Relaxed);
    result.map_err(Error::from)
}

/// The local service refused or timed out: tell the caller, answer http visitors with a short
/// 502 page naming the local address, and close.
async fn local_unreachable(
    ctx: &WorkContext,
    proxy: &ProxyConfig,
    local_addr: &str,
    error: String,
    mut stream: BoxStream,
    mut up: Pump<'_>,
) -> Result<(), Error> {
    tracing::warn!(proxy = %proxy.name, local = %local_addr, %error, "local service unreachable");
    let _ = ctx.events.send(Event::LocalUnreachable {
        name: proxy.name.clone(),
        local_addr: local_addr.to_owned(),
        error,
    });
    if proxy.is_http() {
        let mut page = bad_gateway_page(local_addr).into_bytes();
        up.transform_out(&mut page);
        stream.write_all(&up.out).await?;
        stream.flush().await?;
    }
    let _ = stream.shutdown().await;
    Ok(())
}

/// The 502 response an http visitor gets when the local service is down: short, and naming the
/// local address so the person running the tunnel knows what to start.
pub fn bad_gateway_page(local_addr: &str) -> String {
    let body = format!(
        "<!doctype html><title>502 Bad Gateway</title><h1>502 Bad Gateway</h1>\
         <p>expose could not reach the local service at {local_addr}. Is it running?</p>\n"
    );
    format!(
        "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Local service → frps: compress, then encrypt.
    Outbound,
    /// frps → local service: decrypt, then decompress.
    Inbound,
}

/// One direction of a splice: reads from one side, optionally transforms, writes to the other.
struct Pump<'a> {
    buf: Box<[u8]>,
    /// Plain mode: bytes `buf[pos..cap]` are read but not yet written.
    pos: usize,
    cap: usize,
    /// Transformed bytes waiting to be written (only used with encryption/compression, and for
    /// bytes that arrived together with StartWorkConn).
    out: BytesMut,
    read_done: bool,
    enc: Option<Encryptor>,
    dec: Option<Decryptor>,
    comp: Option<Compressor>,
    decomp: Option<Decompressor>,
    counter: &'a AtomicU64,
    dir: Direction,
}

impl<'a> Pump<'a> {
    fn new(dir: Direction, proxy: &ProxyConfig, key: &Key, counter: &'a AtomicU64) -> Self {
        let out = dir == Direction::Outbound;
        Pump {
            buf: vec![0u8; SPLICE_BUF].into_boxed_slice(),
            pos: 0,
            cap: 0,
            out: BytesMut::new(),
            read_done: false,
            enc: (out && proxy.use_encryption).then(|| Encryptor::new(key, rand::random())),
            dec: (!out && proxy.use_encryption).then(|| Decryptor::new(key)),
            comp: (out && proxy.use_compression).then(Compressor::new),
            decomp: (!out && proxy.use_compression).then(Decompressor::new),
            counter,
            dir,
        }
    }

    fn transforms(&self) -> bool {
        self.enc.is_some() || self.dec.is_some() || self.comp.is_some() || self.decomp.is_some()
    }

    /// Outbound transform of `data` into `self.out`: snappy frames, then AES-CFB with the IV in
    /// front of the first ciphertext byte.
    fn transform_out(&mut self, data: &mut [u8]) {
        let mut start = self.out.len();
        if let Some(enc) = self.enc.as_mut() {
            if let Some(iv) = enc.take_iv() {
                self.out.put_slice(&iv);
                start = self.out.len();
            }
        }
        match self.comp.as_mut() {
            Some(comp) => comp.compress(data, &mut self.out),
            None => self.out.put_slice(data),
        }
        if let Some(enc) = self.enc.as_mut() {
            enc.encrypt(&mut self.out[start..]);
        }
    }

    /// Inbound transform of `data` into `self.out`.
    fn transform_in(&mut self, data: &mut [u8]) -> io::Result<()> {
        let plain: &mut [u8] = match self.dec.as_mut() {
            Some(dec) => dec.decrypt(data),
            None => data,
        };
        match self.decomp.as_mut() {
            Some(d) => d
                .decompress(plain, &mut self.out)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            None => {
                self.out.put_slice(plain);
                Ok(())
            }
        }
    }

    fn transform(&mut self, n: usize) -> io::Result<()> {
        let mut data = std::mem::take(&mut self.buf);
        let r = if self.enc.is_some() || self.comp.is_some() {
            self.transform_out(&mut data[..n]);
            Ok(())
        } else {
            self.transform_in(&mut data[..n])
        };
        self.buf = data;
        r
    }

    /// Bytes that arrived right behind StartWorkConn belong to the visitor's stream.
    fn preload(&mut self, early: &[u8]) -> io::Result<()> {
        if early.is_empty() {
            return Ok(());
        }
        if self.transforms() {
            let mut copy = early.to_vec();
            self.transform_in(&mut copy)
        } else {
            self.out.put_slice(early);
            Ok(())
        }
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
        let inbound = self.dir == Direction::Inbound;
        loop {
            // Drain transformed or preloaded bytes first.
            while !self.out.is_empty() {
                let n = ready!(writer.as_mut().poll_write(cx, &self.out))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.counter.fetch_add(n as u64, Ordering::Relaxed);
                if let (true, Some(log)) = (inbound, log.as_deref_mut()) {
                    log.on_request_bytes(&self.out[..n], Instant::now());
                }
                let _ = self.out.split_to(n);
            }
            while self.pos < self.cap {
                let n = ready!(writer
                    .as_mut()
                    .poll_write(cx, &self.buf[self.pos..self.cap]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                if let (true, Some(log)) = (inbound, log.as_deref_mut()) {
                    log.on_request_bytes(&self.buf[self.pos..self.pos + n], Instant::now());
                }
                self.pos += n;
                self.counter.fetch_add(n as u64, Ordering::Relaxed);
            }
            if self.read_done {
                ready!(writer.as_mut().poll_flush(cx))?;
                return writer.as_mut().poll_shutdown(cx);
            }
            let mut rb = ReadBuf::new(&mut self.buf);
            match reader.as_mut().poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    // Nothing to read now: push out what we wrote so far before sleeping.
                    ready!(writer.as_mut().poll_flush(cx))?;
                    return Poll::Pending;
                }
            }
            let n = rb.filled().len();
            if n == 0 {
                self.read_done = true;
                continue;
            }
            if let (false, Some(log)) = (inbound, log.as_deref_mut()) {
                log.on_response_bytes(&self.buf[..n], Instant::now());
            }
            if self.transforms() {
                self.transform(n)?;
            } else {
                self.pos = 0;
                self.cap = n;
            }
        }
    }
}

/// Both directions of one visitor connection; completes when either direction is done.
struct Splice<'a> {
    remote: BoxStream,
    local: TcpStream,
    up: Pump<'a>,
    down: Pump<'a>,
    /// Present when the proxy keeps a request log.
    log: Option<RequestLog<'a>>,
}

/// The request log of one connection and where its exchanges go.
struct RequestLog<'a> {
    parser: Box<HttpLog>,
    proxy: &'a str,
    events: &'a broadcast::Sender<Event>,
}

impl RequestLog<'_> {
    /// Publishes the exchanges completed so far. Allocation happens per request, never per
    /// chunk, and only while someone listens.
    fn publish(&mut self) {
        for ex in self.parser.drain() {
            let _ = self.events.send(Event::HttpRequest(HttpRequest {
                proxy: self.proxy.to_owned(),
                method: ex.method,
                path: ex.path,
                status: ex.status,
                duration: ex.duration,
                response_bytes: ex.response_bytes,
            }));
        }
    }
}

impl Future for Splice<'_> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut log = this.log.as_mut();
        let down = this.down.poll_copy(
            cx,
            Pin::new(&mut this.remote),
            Pin::new(&mut this.local),
            log.as_mut().map(|l| &mut *l.parser),
        );
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
            l.publish();
        }
        result
    }
}
