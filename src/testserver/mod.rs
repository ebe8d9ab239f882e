//! An frps-compatible server for loopback tests, benchmarks and `expose bench`.
//!
//! A test double, not a product server: it speaks the frp v1 wire protocol the way frps 0.66
//! does (see `shared/reference/frp-protocol.md` §1, §2, §4–§9), holds everything in memory, and
//! lets a test observe and disturb it (kill, freeze, reject logins) without sleeps.
//!
//! # What it does
//! - Bind port: first-byte sniff within 10 s (`0x17` consumed then TLS, `0x16` TLS, anything
//!   else plain unless [`TlsMode::Force`]). TLS uses a self-signed certificate generated at
//!   start with SANs `localhost` and `127.0.0.1`, exposed by [`TestServer::cert_der`] and
//!   [`TestServer::cert_pem`].
//! - `tcp_mux` on: a yamux server session per connection, one driver task polling it, each
//!   inbound stream handled as a fresh frp connection. Off: one frp connection per socket.
//! - First message within 10 s: Login → control, NewWorkConn → work connection, else close.
//! - Login: optional login hook (like an frps Login plugin), then the token check, run id
//!   assignment and replacement of a live control with the same run id (waiting for it to
//!   finish), plaintext LoginResp, then AES-128-CFB both ways and `min(pool_count, 5)`
//!   ReqWorkConn.
//! - NewProxy: optional hook, `tcp` (fixed or chosen port, remembered per proxy name) and
//!   `http` (subdomain and custom domains, locations, `*.` wildcard domains, basic auth,
//!   `host_header_rewrite`, `headers`), global name uniqueness, frps's error texts.
//! - CloseProxy, Ping/Pong, the heartbeat timeout without tcp_mux, the work-connection pool
//!   (FIFO, `pool_count + 10`, extras closed silently), user connections with ReqWorkConn
//!   refills and StartWorkConn, `use_encryption` / `use_compression` on the payload.
//! - Observation: [`ServerState`] (logins, controls, proxies, every control message,
//!   CloseProxy names, counters) via [`TestServer::snapshot`] and [`TestServer::wait_for`].
//! - Disturbance: [`TestServer::kill`], [`TestServer::freeze`] / [`TestServer::thaw`],
//!   [`TestServer::set_login_hook`], [`TestServer::close_control`].
//!
//! # What it does not do
//! - Proxy types other than `tcp` and `http`: `https`, `tcpmux`, `udp`, `stcp`, `sudp`, `xtcp`
//!   get `NewProxyResp{error: "type [x] not supported by the test server"}`; NewVisitorConn
//!   connections and NatHole messages are ignored/closed.
//! - Server plugins over HTTP (the in-process hooks stand in for the Login and NewProxy ops),
//!   OIDC, auth scopes (Ping/NewWorkConn are never checked), the dashboard, metrics, bandwidth
//!   limits, load-balancing groups, `allowPorts`, `maxPortsPerClient`, `route_by_http_user`,
//!   `response_headers`, the 24 h port reservation (a port is remembered for the server's
//!   lifetime), wire protocol v2, QUIC/KCP/WebSocket transports, mTLS.
//! - The HTTP vhost is not a reverse proxy. It reads the first request head, routes it, adds
//!   `X-Forwarded-For`, `X-Forwarded-Host` and `X-Forwarded-Proto: http` (plus the proxy's
//!   `headers` and host rewrite) to that head, and from then on splices the whole TCP
//!   connection to one work connection. Later keep-alive requests on the same connection go to
//!   the same proxy unmodified; frps would route and rewrite each one, strip hop-by-hop headers
//!   and pool upstream connections. No work connection within `user_conn_timeout` answers
//!   `502 Bad Gateway` (frps answers its 404 page there).
//! - yamux: rust-yamux has no per-stream maximum window setting; its receive window starts at
//!   256 KiB and auto-tunes upwards (frps pins 6 MiB). rust-yamux sends no keepalive pings, so
//!   a client that stops answering pings is not dropped after 40 s as frps would.
//! - Unknown NewWorkConn run ids get `StartWorkConn{error}` before the close (frps 0.66 just
//!   closes).

mod conn;
mod control;
mod gate;
mod proxy;
mod splice;
mod state;

pub use state::{
    ControlInfo, ControlMessage, Counters, LoginRecord, ProxyInfo, ServerState, WaitTimeout,
};

use frp_proto::crypto::Key;
use frp_proto::msg::{Login, NewProxy};
use gate::Gate;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Decides on a Login before the token check, like an frps Login plugin: `Err(reason)` refuses
/// the login and `reason` reaches the client verbatim in `LoginResp.error`.
pub type LoginHook = Arc<dyn Fn(&Login) -> Result<(), String> + Send + Sync>;

/// Decides on a NewProxy before it is registered, like an frps NewProxy plugin: `Err(reason)`
/// is sent verbatim in `NewProxyResp.error`.
pub type NewProxyHook = Arc<dyn Fn(&NewProxy) -> Result<(), String> + Send + Sync>;

/// Whether the bind port speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// frps's default: sniff the first byte and accept both TLS and plain connections.
    #[default]
    Optional,
    /// `transport.tls.force = true`: plain connections are closed.
    Force,
    /// No TLS at all: every connection is plain, even one starting with `0x16`.
    Off,
}

/// How to run a [`TestServer`]. `Default` gives frps's defaults on a loopback ephemeral port.
#[derive(Clone)]
pub struct ServerConfig {
    /// Bind address of the frp port. Port 0 picks a free port; a fixed port lets a test
    /// "restart" the server where its clients expect it. Proxy listeners bind the same IP.
    pub bind: SocketAddr,
    /// `auth.token`.
    pub token: String,
    /// `transport.tcpMux`; the client must use the same setting.
    pub tcp_mux: bool,
    /// TLS on the bind port.
    pub tls: TlsMode,
    /// `subDomainHost`; empty disables subdomains as in frps.
    pub subdomain_host: String,
    /// Address of the HTTP vhost listener; `None` means 127.0.0.1 on a free port.
    pub vhost_http_bind: Option<SocketAddr>,
    /// Port written into http `remote_addr` instead of the real vhost port, to mimic a server
    /// whose vhost is on port 80 (then no port is written, as frps does).
    pub vhost_http_public_port: Option<u16>,
    /// `transport.maxPoolCount`: cap on the Login `pool_count`.
    pub max_pool_count: usize,
    /// `transport.heartbeatTimeout` without tcp_mux; `None` disables it. Ignored with tcp_mux,
    /// as frps ≥ 0.58 does.
    pub heartbeat_timeout: Option<Duration>,
    /// `userConnTimeout`: how long a user connection waits for a work connection.
    pub user_conn_timeout: Duration,
    /// Login hook, see [`LoginHook`]; can be changed later with [`TestServer::set_login_hook`].
    pub login_hook: Option<LoginHook>,
    /// NewProxy hook, see [`NewProxyHook`].
    pub new_proxy_hook: Option<NewProxyHook>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            token: String::new(),
            tcp_mux: true,
            tls: TlsMode::Optional,
            subdomain_host: "tunnel.test".into(),
            vhost_http_bind: None,
            vhost_http_public_port: None,
            max_pool_count: 5,
            heartbeat_timeout: Some(Duration::from_secs(90)),
            user_conn_timeout: Duration::from_secs(10),
            login_hook: None,
            new_proxy_hook: None,
        }
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("bind", &self.bind)
            .field("token", &"<redacted>")
            .field("tcp_mux", &self.tcp_mux)
            .field("tls", &self.tls)
            .field("subdomain_host", &self.subdomain_host)
            .field("vhost_http_bind", &self.vhost_http_bind)
            .field("vhost_http_public_port", &self.vhost_http_public_port)
            .field("max_pool_count", &self.max_pool_count)
            .field("heartbeat_timeout", &self.heartbeat_timeout)
            .field("user_conn_timeout", &self.user_conn_timeout)
            .field("login_hook", &self.login_hook.is_some())
            .field("new_proxy_hook", &self.new_proxy_hook.is_some())
            .finish()
    }
}

/// Any byte stream the server handles: TCP, TLS over TCP, a yamux stream.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A boxed [`Io`], so pools and splices need not be generic over the transport.
pub(crate) type BoxIo = Box<dyn Io>;

/// Runtime-replaceable hooks.
#[derive(Default)]
struct Hooks {
    login: Option<LoginHook>,
    new_proxy: Option<NewProxyHook>,
}

/// State shared by every task of one server.
pub(crate) struct Inner {
    cfg: ServerConfig,
    key: Key,
    hooks: Mutex<Hooks>,
    state: watch::Sender<ServerState>,
    registry: Mutex<proxy::Registry>,
    gate: Arc<Gate>,
    /// Fired by `kill` (and on drop): every task ends and drops its sockets.
    cancel: CancellationToken,
    tls: Option<tokio_rustls::TlsAcceptor>,
    vhost_addr: SocketAddr,
}

impl Inner {
    /// Applies a change to the observable state and wakes waiters.
    fn update(&self, f: impl FnOnce(&mut ServerState)) {
        self.state.send_modify(f);
    }

    fn registry(&self) -> MutexGuard<'_, proxy::Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn hooks(&self) -> MutexGuard<'_, Hooks> {
        self.hooks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Spawns a task that ends (dropping whatever it owns) when the server is killed.
    fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        let cancel = self.cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = fut => {}
            }
        });
    }

    /// The port written into http `remote_addr`.
    fn vhost_public_port(&self) -> u16 {
        self.cfg
            .vhost_http_public_port
            .unwrap_or(self.vhost_addr.port())
    }
}

/// A running frps double. Dropping it stops everything, like [`TestServer::kill`].
pub struct TestServer {
    inner: Arc<Inner>,
    bind_addr: SocketAddr,
    cert_der: Vec<u8>,
    cert_pem: String,
    /// Fired by the accept loops once their listeners are closed.
    listeners_closed: Vec<CancellationToken>,
}

impl fmt::Debug for TestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestServer")
            .field("bind_addr", &self.bind_addr)
            .field("vhost_http_addr", &self.inner.vhost_addr)
            .field("cfg", &self.inner.cfg)
            .finish()
    }
}

/// Binds `addr`; a fixed port still held by a just-killed server is retried for a few seconds
/// so restart tests need no sleep.
async fn bind_retrying(addr: SocketAddr) -> io::Result<TcpListener> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match TcpListener::bind(addr).await {
            Err(e)
                if e.kind() == io::ErrorKind::AddrInUse
                    && addr.port() != 0
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
}

impl TestServer {
    /// Binds the frp port and the HTTP vhost and starts serving. Must run inside a tokio
    /// runtime; the tasks live until [`TestServer::kill`] or drop.
    pub async fn start(cfg: ServerConfig) -> io::Result<TestServer> {
        let (tls, cert_der, cert_pem) = conn::make_tls()?;
        let listener = bind_retrying(cfg.bind).await?;
        let bind_addr = listener.local_addr()?;
        let vhost_bind = cfg
            .vhost_http_bind
            .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        let vhost_listener = bind_retrying(vhost_bind).await?;
        let vhost_addr = vhost_listener.local_addr()?;
        let gate = Gate::new();
        let inner = Arc::new(Inner {
            key: Key::derive(&cfg.token),
            hooks: Mutex::new(Hooks {
                login: cfg.login_hook.clone(),
                new_proxy: cfg.new_proxy_hook.clone(),
            }),
            state: watch::channel(ServerState::default()).0,
            registry: Mutex::new(proxy::Registry::default()),
            gate,
            cancel: CancellationToken::new(),
            tls: (cfg.tls != TlsMode::Off).then_some(tls),
            vhost_addr,
            cfg,
        });
        let frp_closed = CancellationToken::new();
        let vhost_closed = CancellationToken::new();
        tokio::spawn(conn::accept_loop(
            inner.clone(),
            listener,
            frp_closed.clone(),
        ));
        tokio::spawn(proxy::vhost_accept_loop(
            inner.clone(),
            vhost_listener,
            vhost_closed.clone(),
        ));
        Ok(TestServer {
            inner,
            bind_addr,
            cert_der,
            cert_pem,
            listeners_closed: vec![frp_closed, vhost_closed],
        })
    }

    /// Address of the frp port (give it to the client as server address and port).
    pub fn bind_addr(&self) -> SocketAddr {
        self.bind_addr
    }

    /// Address of the HTTP vhost listener (send requests here with the proxy's Host).
    pub fn vhost_http_addr(&self) -> SocketAddr {
        self.inner.vhost_addr
    }

    /// DER of the server certificate, to build a client root store that trusts it.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// PEM of the server certificate, to write a CA file for `transport.tls.trustedCaFile`.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Drops every connection and closes every listener, like a crashed or restarted frps.
    /// Returns at once; the sockets close within milliseconds (see [`TestServer::kill_and_wait`]).
    pub fn kill(&self) {
        self.inner.update(|s| s.killed = true);
        self.inner.gate.kill();
        self.inner.cancel.cancel();
    }

    /// [`TestServer::kill`], then waits until the listeners are closed and every control has
    /// finished, so the same ports can be bound again at once.
    pub async fn kill_and_wait(&self) {
        self.kill();
        for t in &self.listeners_closed {
            t.cancelled().await;
        }
        let mut rx = self.inner.state.subscribe();
        let _ = rx.wait_for(|s| s.controls.is_empty()).await;
    }

    /// Stops all reading and writing on existing and new connections while keeping them open,
    /// like a SIGSTOPped frps: bytes are accepted by the kernel, nothing is answered, yamux
    /// sessions are not polled (so no yamux ping is answered either).
    pub fn freeze(&self) {
        self.inner.gate.set_frozen(true);
        self.inner.update(|s| s.frozen = true);
    }

    /// Undoes [`TestServer::freeze`]; buffered bytes are then processed.
    pub fn thaw(&self) {
        self.inner.gate.set_frozen(false);
        self.inner.update(|s| s.frozen = false);
    }

    /// Replaces the login hook; e.g. `Some(Arc::new(|_| Err("invalid binding secret".into())))`
    /// rejects all new logins, `None` accepts them again.
    pub fn set_login_hook(&self, hook: Option<LoginHook>) {
        self.inner.hooks().login = hook;
    }

    /// Replaces the NewProxy hook.
    pub fn set_new_proxy_hook(&self, hook: Option<NewProxyHook>) {
        self.inner.hooks().new_proxy = hook;
    }

    /// Closes one control connection from the server side (its proxies and pooled work
    /// connections go with it), as frps does when a control dies. False if no such run id.
    pub fn close_control(&self, run_id: &str) -> bool {
        match self.inner.registry().controls.get(run_id) {
            Some(ctl) => {
                ctl.close.cancel();
                true
            }
            None => false,
        }
    }

    /// A copy of the current state.
    pub fn snapshot(&self) -> ServerState {
        self.inner.state.borrow().clone()
    }

    /// Waits until `f` holds for the state (checked now and after every change) and returns
    /// that state, or gives up after `timeout`.
    pub async fn wait_for(
        &self,
        f: impl Fn(&ServerState) -> bool,
        timeout: Duration,
    ) -> Result<ServerState, WaitTimeout> {
        let mut rx = self.inner.state.subscribe();
        let waited = tokio::time::timeout(timeout, async {
            rx.wait_for(|s| f(s)).await.map(|s| s.clone()).ok()
        })
        .await;
        match waited {
            Ok(Some(state)) => Ok(state),
            _ => Err(WaitTimeout {
                waited: timeout,
                last: Box::new(self.snapshot()),
            }),
        }
    }

    /// A receiver of every state change, for tests that want to drive their own loop.
    pub fn subscribe(&self) -> watch::Receiver<ServerState> {
        self.inner.state.subscribe()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.inner.gate.kill();
        self.inner.cancel.cancel();
    }
}

/// Shared helpers for the submodules.
pub(crate) mod util {
    use super::BoxIo;
    use bytes::BytesMut;
    use frp_proto::{decode_frame, encode_frame, Message, MAX_BODY_LEN};
    use std::io;
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

    /// 16 random lowercase hex characters, like frps's run ids.
    pub(crate) fn random_hex16() -> String {
        frp_proto::auth::to_hex(&rand::random::<[u8; 8]>())
    }

    fn invalid(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    /// Reads exactly one plaintext frame and nothing after it, so whatever follows (a Login's
    /// IV and ciphertext) is still in the stream for the next reader.
    pub(crate) async fn read_frame<R: AsyncRead + Unpin + ?Sized>(
        r: &mut R,
    ) -> io::Result<Message> {
        let mut buf = BytesMut::zeroed(frp_proto::frame::HEADER_LEN);
        r.read_exact(&mut buf).await?;
        // Validates the type byte and the length against frp's limits.
        if let Some(msg) = decode_frame(&mut buf).map_err(invalid)? {
            return Ok(msg);
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&buf[1..9]);
        let len = usize::try_from(i64::from_be_bytes(len))
            .ok()
            .filter(|&l| l <= MAX_BODY_LEN)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad frame length"))?;
        buf.resize(frp_proto::frame::HEADER_LEN + len, 0);
        r.read_exact(&mut buf[frp_proto::frame::HEADER_LEN..])
            .await?;
        decode_frame(&mut buf)
            .map_err(invalid)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "incomplete frame"))
    }

    /// Writes one plaintext frame and flushes.
    pub(crate) async fn write_frame(io: &mut BoxIo, msg: &Message) -> io::Result<()> {
        let mut buf = BytesMut::with_capacity(128);
        encode_frame(msg, &mut buf).map_err(invalid)?;
        io.write_all(&buf).await?;
        io.flush().await
    }
}
