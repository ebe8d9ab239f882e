//! Reaching frps: TCP, optional TLS, optional yamux.
//!
//! A [`Session`] is one logical connection to frps from which frp connections (the control
//! connection, work connections) are opened:
//! - with tcpMux (frp's default) it is one TCP(+TLS) connection carrying a yamux client session;
//!   each frp connection is a yamux stream. One driver task owns the `yamux::Connection` and polls
//!   it continuously, so frps's keepalive pings are answered within its 10 s deadline even when
//!   no stream is busy (rust-yamux answers pings only while polled);
//! - without tcpMux every frp connection is its own TCP(+TLS) connection.
//!
//! TLS follows Go frpc (§1.1): no ALPN, SNI from the configured name or the host (none for an IP
//! literal), optional `0x17` first byte, and by default a verifier that accepts any certificate,
//! because frps's default certificate is self-signed and nameless. Handshake signatures are still
//! checked, and a CA file or a pinned fingerprint turns real verification on.

use super::config::{ClientConfig, TlsConfig};
use super::error::Error;
use futures::future::poll_fn;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsConnector;
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// frp's custom TLS marker byte (§1.1).
const CUSTOM_TLS_FIRST_BYTE: u8 = 0x17;

/// Most yamux streams we keep open at once. rust-yamux kills the *whole* session when asked for
/// more than its `max_num_streams` (yamux notes, pitfall 4), so we count streams ourselves and
/// refuse extra work connections before yamux sees them.
///
/// Every open visitor connection is one stream, and frps adds up to `pool_count + 10` pooled
/// ones plus the ReqWorkConns it over-requests during a burst (about two per visitor, pitfall
/// 5). 8192 leaves room for the 5 000 concurrent visitors `tests/load.rs` drives through one
/// tunnel. yamux requires `max_connection_receive_window >= max_num_streams * 256 KiB`; that
/// product (about 2.1 GiB here) is a cap on what the session may buffer, not an allocation:
/// each stream buffers at most its own window, 256 KiB unless it has grown into the shared
/// `MUX_WINDOW_GROWTH` budget.
pub const MAX_MUX_STREAMS: usize = 8192;

/// Headroom between our own limit and yamux's, for streams that are closing but not yet gone
/// (a dropped stream leaves yamux's table only when the driver next runs).
const MUX_STREAM_HEADROOM: usize = 512;

/// Receive window that busy streams may grow into beyond their 256 KiB, shared by the whole
/// session. yamux auto-tunes a stream's window (doubling it while the sender uses it up within
/// two round trips) only out of budget beyond `streams × 256 KiB`; with none, every stream is
/// held to 256 KiB per round trip. `expose bench --rtt 20` measured one upload stream (visitor
/// → local service, the direction our window governs) at 6 MiB/s without this budget and
/// 154 MiB/s with it. Go frpc allows 6 MiB per stream with no session cap; 64 MiB for the whole
/// session bounds what slow local services can make us buffer.
const MUX_WINDOW_GROWTH: usize = 64 * 1024 * 1024;

/// Largest yamux data frame we send. rust-yamux defaults to 16 KiB; frames are cheap to parse but
/// each costs a header and a wake-up, and hashicorp accepts any size within the window.
const MUX_SPLIT_SEND_SIZE: usize = 64 * 1024;

/// Read buffer under the multiplexed connection (below TLS when TLS is on). Profiling showed
/// about a fifth of the client's CPU in `recvfrom` before it: rustls asks for 4 KiB per read
/// and yamux for 12 bytes per frame header.
const MUX_READ_BUF: usize = 64 * 1024;

/// Read buffer under TLS on a direct (non-mux) work connection: one full TLS record (16 KiB of
/// payload plus header and tag), so an idle pooled connection stays small.
const DIRECT_TLS_READ_BUF: usize = 17 * 1024;

/// How long a deliberate session close may take to flush queued frames.
const MUX_CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Size of the one-off allocation in [`raise_allocator_trim_threshold`]. glibc adjusts its
/// thresholds only for blocks up to 32 MiB *including* its chunk header, so a round 32 MiB is
/// just too big; 16 MiB makes the trim threshold 32 MiB.
const ALLOCATOR_PRIMER: usize = 16 * 1024 * 1024;

/// Stops glibc from handing freed heap memory back to the kernel after every yamux frame.
///
/// rust-yamux allocates a fresh `Vec` for every frame it reads or writes, and rustls one per
/// record. With glibc's default 128 KiB trim threshold, freeing a 64 KiB frame shrinks the
/// thread arena's heap (`madvise`) and the next frame faults the same pages in again: the
/// profile showed 36 000 (plain) to 129 000 (TLS) minor faults per GiB forwarded and a quarter
/// to a third of the client's CPU in page faults. glibc raises its mmap threshold to the size
/// of any mmapped block that is freed, and the trim threshold to twice that (mallopt(3),
/// "dynamic mmap threshold"); allocating and freeing one 16 MiB block once does that without
/// any unsafe code. The cost: up to 32 MiB of freed heap may stay mapped instead of going back
/// to the kernel. Other allocators ignore this (it is one short-lived allocation).
fn raise_allocator_trim_threshold() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            let block: Vec<u8> = Vec::with_capacity(ALLOCATOR_PRIMER);
            std::hint::black_box(&block);
        }
    });
}

/// Any byte stream an frp connection can ride on.
pub trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncStream for T {}

/// A boxed frp connection (a yamux stream or a TCP/TLS connection).
pub type BoxStream = Box<dyn AsyncStream>;

/// Dials frps as configured. Cheap to clone; the TLS configuration is built once.
#[derive(Clone)]
pub(crate) struct Connector {
    host: String,
    port: u16,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    custom_first_byte: bool,
    dial_timeout: Duration,
    handshake_timeout: Duration,
    keepalive: Option<Duration>,
    tcp_mux: bool,
}

impl Connector {
    /// Validates the transport settings and builds the TLS client configuration.
    pub(crate) fn new(cfg: &ClientConfig) -> Result<Self, Error> {
        raise_allocator_trim_threshold();
        let tls = if cfg.tls.enable {
            let name = cfg
                .tls
                .server_name
                .clone()
                .unwrap_or_else(|| cfg.server_host.clone());
            let server_name = ServerName::try_from(name.clone())
                .map_err(|_| Error::Config(format!("invalid TLS server name {name:?}")))?;
            Some((
                TlsConnector::from(Arc::new(tls_config(&cfg.tls)?)),
                server_name,
            ))
        } else {
            None
        };
        Ok(Connector {
            host: cfg.server_host.clone(),
            port: cfg.server_port,
            tls,
            custom_first_byte: cfg.tls.custom_first_byte,
            dial_timeout: cfg.dial_timeout,
            handshake_timeout: cfg.login_timeout,
            keepalive: cfg.tcp_keepalive,
            tcp_mux: cfg.tcp_mux,
        })
    }

    fn addr_text(&self) -> String {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("[{ip}]:{}", self.port),
            _ => format!("{}:{}", self.host, self.port),
        }
    }

    /// One TCP connection, with TLS when configured.
    async fn dial(&self) -> Result<BoxStream, Error> {
        let addr = self.addr_text();
        let connect = TcpStream::connect((self.host.as_str(), self.port));
        let tcp = match tokio::time::timeout(self.dial_timeout, connect).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(source)) => {
                return Err(Error::Connect {
                    addr,
                    source: source.into(),
                })
            }
            Err(_) => {
                return Err(Error::Connect {
                    addr,
                    source: Arc::new(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
                })
            }
        };
        // Go sets TCP_NODELAY on every connection; frp messages are small and latency-bound.
        let _ = tcp.set_nodelay(true);
        if let Some(idle) = self.keepalive {
            let ka = socket2::TcpKeepalive::new().with_time(idle);
            let _ = socket2::SockRef::from(&tcp).set_tcp_keepalive(&ka);
        }
        let Some((connector, server_name)) = &self.tls else {
            if self.tcp_mux {
                // yamux reads every frame as a 12-byte header and then its body: without a
                // buffer that is two syscalls per frame.
                return Ok(Box::new(BufReader::with_capacity(MUX_READ_BUF, tcp)));
            }
            // A direct work connection is read by the splice in 64 KiB chunks already.
            return Ok(Box::new(tcp));
        };
        // rustls reads the socket 4 KiB at a time (its deframer's fixed read size), several
        // syscalls per 16 KiB record; one large buffered read serves many of them from memory.
        let read_buf = if self.tcp_mux {
            MUX_READ_BUF
        } else {
            DIRECT_TLS_READ_BUF
        };
        let handshake = async {
            let mut tcp = BufReader::with_capacity(read_buf, tcp);
            if self.custom_first_byte {
                tcp.write_all(&[CUSTOM_TLS_FIRST_BYTE]).await?;
            }
            connector.connect(server_name.clone(), tcp).await
        };
        match tokio::time::timeout(self.handshake_timeout, handshake).await {
            Ok(Ok(tls)) => Ok(Box::new(tls)),
            Ok(Err(source)) => Err(Error::Tls {
                addr,
                source: source.into(),
            }),
            Err(_) => Err(Error::Timeout("waiting for the TLS handshake")),
        }
    }

    /// Opens a session: the yamux connection (tcpMux) or nothing yet (each stream dials).
    pub(crate) async fn connect(&self) -> Result<Session, Error> {
        if self.tcp_mux {
            let io = self.dial().await?;
            Ok(Session::Mux(MuxSession::start(io)))
        } else {
            Ok(Session::Direct(self.clone()))
        }
    }
}

/// A logical connection to frps, from which frp connections are opened.
pub(crate) enum Session {
    /// yamux over one connection.
    Mux(MuxSession),
    /// One TCP(+TLS) connection per frp connection.
    Direct(Connector),
}

impl Session {
    /// A handle for opening streams from other tasks.
    pub(crate) fn opener(&self) -> Opener {
        match self {
            Session::Mux(m) => Opener::Mux(m.opener.clone()),
            Session::Direct(c) => Opener::Direct(c.clone()),
        }
    }

    /// Resolves when the session can no longer carry streams (mux only; a direct session has no
    /// shared state, its control connection's EOF is the signal).
    pub(crate) async fn dead(&self) -> String {
        match self {
            Session::Mux(m) => {
                m.dead.cancelled().await;
                m.dead_reason()
            }
            Session::Direct(_) => std::future::pending().await,
        }
    }
}

/// Opens frp connections on a session; cloned into every work-connection task.
#[derive(Clone)]
pub(crate) enum Opener {
    /// Ask the yamux driver for a stream.
    Mux(MuxOpener),
    /// Dial a new connection.
    Direct(Connector),
}

impl Opener {
    /// A new frp connection to the server.
    pub(crate) async fn open(&self) -> Result<BoxStream, Error> {
        match self {
            Opener::Mux(m) => m.open().await.map(|s| Box::new(s) as BoxStream),
            Opener::Direct(c) => c.dial().await,
        }
    }
}

type OpenReply = oneshot::Sender<Result<yamux::Stream, Error>>;

/// The yamux side of a [`Session`]. Dropping it stops the driver and closes the connection, which
/// ends every stream on it, as Go frpc does when it rebuilds a session.
pub(crate) struct MuxSession {
    opener: MuxOpener,
    dead: CancellationToken,
    reason: Arc<std::sync::Mutex<String>>,
    stop: CancellationToken,
}

/// Requests streams from the driver task and enforces [`MAX_MUX_STREAMS`].
#[derive(Clone)]
pub(crate) struct MuxOpener {
    requests: mpsc::Sender<OpenReply>,
    permits: Arc<Semaphore>,
    /// The session's `dead` token, handed to every stream (see [`MuxStream`]).
    dead: CancellationToken,
}

impl MuxOpener {
    async fn open(&self) -> Result<MuxStream, Error> {
        let permit = self.permits.clone().try_acquire_owned().map_err(|_| {
            Error::Mux(format!(
                "more than {MAX_MUX_STREAMS} streams open; refusing another"
            ))
        })?;
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(tx)
            .await
            .map_err(|_| Error::Mux("session closed".into()))?;
        let stream = rx
            .await
            .map_err(|_| Error::Mux("session closed".into()))??;
        Ok(MuxStream {
            inner: stream.compat(),
            ended: Box::pin(self.dead.clone().cancelled_owned()),
            _permit: permit,
        })
    }
}

impl MuxSession {
    fn start(io: BoxStream) -> Self {
        let mut cfg = yamux::Config::default();
        // The receive budget must cover 256 KiB for every stream or yamux's setter panics.
        // Auto-tuning only hands out budget beyond `streams * 256 KiB`: that is
        // `MUX_WINDOW_GROWTH`, shared by the busy streams of the session.
        cfg.set_max_connection_receive_window(Some(
            (MAX_MUX_STREAMS + MUX_STREAM_HEADROOM) * yamux::DEFAULT_CREDIT as usize
                + MUX_WINDOW_GROWTH,
        ));
        cfg.set_max_num_streams(MAX_MUX_STREAMS + MUX_STREAM_HEADROOM);
        cfg.set_split_send_size(MUX_SPLIT_SEND_SIZE);
        let conn = yamux::Connection::new(Coalesce::new(io).compat(), cfg, yamux::Mode::Client);
        let (requests, rx) = mpsc::channel(64);
        let dead = CancellationToken::new();
        let stop = CancellationToken::new();
        let reason = Arc::new(std::sync::Mutex::new(String::new()));
        tokio::spawn(drive(conn, rx, dead.clone(), stop.clone(), reason.clone()));
        MuxSession {
            opener: MuxOpener {
                requests,
                permits: Arc::new(Semaphore::new(MAX_MUX_STREAMS)),
                dead: dead.clone(),
            },
            dead,
            reason,
            stop,
        }
    }

    fn dead_reason(&self) -> String {
        self.reason
            .lock()
            .map(|r| r.clone())
            .unwrap_or_else(|_| "multiplexer stopped".into())
    }
}

impl Drop for MuxSession {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Owns the yamux connection: serves open requests, drains inbound frames (answering pings and
/// window updates), and records why the connection ended.
async fn drive(
    mut conn: yamux::Connection<Compat<Coalesce<BoxStream>>>,
    mut requests: mpsc::Receiver<OpenReply>,
    dead: CancellationToken,
    stop: CancellationToken,
    reason: Arc<std::sync::Mutex<String>>,
) {
    let mut pending: VecDeque<OpenReply> = VecDeque::new();
    let mut requests_open = true;
    let run = poll_fn(|cx| {
        while requests_open {
            match requests.poll_recv(cx) {
                Poll::Ready(Some(reply)) => pending.push_back(reply),
                Poll::Ready(None) => requests_open = false,
                Poll::Pending => break,
            }
        }
        while !pending.is_empty() {
            match conn.poll_new_outbound(cx) {
                Poll::Ready(Ok(stream)) => {
                    if let Some(reply) = pending.pop_front() {
                        // The requester may have given up; the stream then just closes.
                        let _ = reply.send(Ok(stream));
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(format!("yamux: {e}")),
                Poll::Pending => break,
            }
        }
        loop {
            match conn.poll_next_inbound(cx) {
                // frps never opens streams; one that does is not ours to serve.
                Poll::Ready(Some(Ok(stream))) => drop(stream),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(format!("yamux: {e}")),
                Poll::Ready(None) => return Poll::Ready("server closed the connection".into()),
                Poll::Pending => return Poll::Pending,
            }
        }
    });
    let (why, graceful) = tokio::select! {
        why = run => (why, false),
        _ = stop.cancelled() => ("session closed".to_owned(), true),
    };
    if graceful {
        // Frames that streams queued just before (CloseProxy, FIN) are still inside yamux; a
        // graceful close writes them out before the socket goes. Bounded, so a dead peer
        // cannot hold us.
        let close = poll_fn(|cx| conn.poll_close(cx));
        let _ = tokio::time::timeout(MUX_CLOSE_GRACE, close).await;
    }
    if let Ok(mut r) = reason.lock() {
        *r = why;
    }
    for reply in pending.drain(..) {
        let _ = reply.send(Err(Error::Mux("session closed".into())));
    }
    dead.cancel();
}

/// A yamux stream that holds one slot of the stream budget until dropped, and that fails once
/// its session's driver has stopped.
///
/// rust-yamux 0.14 wakes a stream's blocked reader when the connection dies of an error, but
/// not when it is closed with `poll_close` or dropped half-way through closing (what the driver
/// does when a session is given up while its peer is alive or frozen): such a reader would
/// wait forever, and with it the splice and the local connection. `ended` turns that into an
/// error as soon as the driver is gone.
pub(crate) struct MuxStream {
    inner: Compat<yamux::Stream>,
    ended: Pin<Box<WaitForCancellationFutureOwned>>,
    _permit: OwnedSemaphorePermit,
}

impl MuxStream {
    /// `Pending` from the stream becomes an error once the session has ended.
    fn or_ended<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match r {
            Poll::Pending if self.ended.as_mut().poll(cx).is_ready() => {
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "multiplexed session closed",
                )))
            }
            r => r,
        }
    }
}

impl AsyncRead for MuxStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.or_ended(cx, r)
    }
}

impl AsyncWrite for MuxStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.or_ended(cx, r)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.or_ended(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.or_ended(cx, r)
    }
}

/// Largest write [`Coalesce`] holds back: a yamux frame header is 12 bytes.
const COALESCE_SMALL_WRITE: usize = 16;

/// Bytes [`Coalesce`] holds back at most (a few headers, e.g. several window updates).
const COALESCE_CAP: usize = 64;

/// Joins yamux's small writes with the write that follows them.
///
/// rust-yamux writes every frame as two writes, the 12-byte header and then the body, and
/// flushes after each frame. Under TLS each write became its own TLS record (a 12-byte record
/// with its own AEAD tag and `writev`); on plain TCP with `TCP_NODELAY`, its own segment. Small
/// writes are held here and go out with the next write as one vectored write (one record, one
/// syscall), or at the next flush, which yamux issues right after every frame, so nothing
/// waits longer than before.
struct Coalesce<T> {
    inner: T,
    held: [u8; COALESCE_CAP],
    held_len: usize,
}

impl<T> Coalesce<T> {
    fn new(inner: T) -> Self {
        Coalesce {
            inner,
            held: [0; COALESCE_CAP],
            held_len: 0,
        }
    }
}

impl<T: AsyncWrite + Unpin> Coalesce<T> {
    /// Drops the first `n` held bytes (they were written).
    fn consume_held(&mut self, n: usize) {
        self.held.copy_within(n..self.held_len, 0);
        self.held_len -= n;
    }

    /// Writes every held byte.
    fn poll_write_held(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.held_len > 0 {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.held[..self.held_len]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.consume_held(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Coalesce<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Coalesce<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.len() <= COALESCE_SMALL_WRITE && this.held_len + buf.len() <= COALESCE_CAP {
            this.held[this.held_len..this.held_len + buf.len()].copy_from_slice(buf);
            this.held_len += buf.len();
            return Poll::Ready(Ok(buf.len()));
        }
        while this.held_len > 0 {
            let bufs = [
                io::IoSlice::new(&this.held[..this.held_len]),
                io::IoSlice::new(buf),
            ];
            let n = ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, &bufs))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            if n <= this.held_len {
                this.consume_held(n);
                continue;
            }
            let taken = n - this.held_len;
            this.held_len = 0;
            return Poll::Ready(Ok(taken));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_held(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_held(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// The rustls client configuration for `tls`.
fn tls_config(tls: &TlsConfig) -> Result<rustls::ClientConfig, Error> {
    // One explicit provider: no reliance on a process-wide default (which panics when absent).
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let webpki = match &tls.ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                Error::Config(format!("cannot read CA file {}: {e}", path.display()))
            })?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| {
                    Error::Config(format!("bad certificate in {}: {e}", path.display()))
                })?;
                roots.add(cert).map_err(|e| {
                    Error::Config(format!("bad certificate in {}: {e}", path.display()))
                })?;
            }
            if roots.is_empty() {
                return Err(Error::Config(format!(
                    "no certificates in CA file {}",
                    path.display()
                )));
            }
            let verifier =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| Error::Config(format!("CA file {}: {e}", path.display())))?;
            Some(verifier)
        }
        None => None,
    };
    let verifier = Arc::new(FrpsVerifier {
        webpki,
        pin: tls.pinned_sha256,
        provider: provider.clone(),
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match &tls.client_cert {
        Some((cert_path, key_path)) => {
            let cert_pem = std::fs::read(cert_path)
                .map_err(|e| Error::Config(format!("cannot read {}: {e}", cert_path.display())))?;
            let key_pem = std::fs::read(key_path)
                .map_err(|e| Error::Config(format!("cannot read {}: {e}", key_path.display())))?;
            let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    Error::Config(format!("bad certificate {}: {e}", cert_path.display()))
                })?;
            let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
                .map_err(|e| Error::Config(format!("bad key {}: {e}", key_path.display())))?
                .ok_or_else(|| {
                    Error::Config(format!("no private key in {}", key_path.display()))
                })?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| Error::Config(format!("client certificate: {e}")))?
        }
        None => builder.with_no_client_auth(),
    };
    // No ALPN: Go frpc sends none over TCP (the captures confirm it).
    Ok(config)
}

/// Server-certificate policy: WebPKI against a CA file when given, a SHA-256 pin when given,
/// otherwise accept any certificate. Handshake signatures are verified in every case, so the
/// peer must hold the key of the certificate it presents.
#[derive(Debug)]
struct FrpsVerifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    pin: Option<[u8; 32]>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for FrpsVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(pin) = &self.pin {
            let digest = Sha256::digest(end_entity.as_ref());
            if digest.as_slice() != pin {
                return Err(rustls::Error::General(
                    "server certificate does not match the pinned SHA-256 fingerprint".into(),
                ));
            }
        }
        match &self.webpki {
            Some(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Parses a SHA-256 fingerprint written as hex, with or without `:` separators.
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let hex: Vec<u8> = text.bytes().filter(|b| *b != b':').collect();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}
