//! An frps-compatible server for loopback tests, benchmarks and `expose bench`.
//!
//! A test double, not a product server: it speaks the frp v1 wire protocol the way frps 0.66
//! does (bind port, login, proxies, work connections, payload wrapping), holds everything in
//! memory, and lets a test observe and disturb it (kill, freeze, reject logins) without sleeps.
//!
//! # What it does
//! - Bind port: a connection starting with `GET /~!frp` is a websocket upgrade (frps's port
//!   muxer), and the rest runs inside the websocket; then the first-byte sniff within 10 s (`0x17` consumed then TLS, `0x16` TLS, anything
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
//! - `udp`: a UDP socket on the remote port; 500 ms after registration one work connection
//!   is taken and carries UDPPacket messages both ways (inside the proxy's wrapping), replaced
//!   when it breaks or is silent for 60 s.
//! - `stcp`/`sudp`: no port; a connection whose first message is NewVisitorConn is checked as
//!   frps does (run id → visiting user, proxy exists, sign key, `allow_users` with `"*"`, empty
//!   meaning the owner's user), answered with NewVisitorConnResp and frps's error texts, then
//!   spliced to a work connection of the proxy (secret-key wrapping on the visitor side, the
//!   proxy's own on the work side).
//! - `xtcp`: no port; frps's hole-punching controller (`nathole`): the NatHoleVisitor
//!   pre-check and request with frps's checks and error texts, the session id to the proxy's
//!   client on a work connection, its NatHoleClient awaited 10 s, frps's plan
//!   (`frp_proto::nathole::analysis`) sent to both ends (the sender's 1 s later),
//!   NatHoleReport scoring the plan; a STUN responder on two loopback UDP sockets
//!   ([`TestServer::stun_addr`]); [`ServerConfig::nathole_candidates`] makes punches fail.
//! - CloseProxy, Ping/Pong, the heartbeat timeout without tcp_mux, the work-connection pool
//!   (FIFO, `pool_count + 10`, extras closed silently), user connections with ReqWorkConn
//!   refills and StartWorkConn, `use_encryption` / `use_compression` on the payload.
//! - wss: a websocket upgrade inside TLS is accepted too (frps leaves that to a TLS-terminating
//!   reverse proxy in front of it; this server plays both).
//! - QUIC (`quicBindPort`, with [`ServerConfig::quic_bind`]): the same certificate with ALPN
//!   `frp`, each bidirectional stream one frp connection (v1 or v2), frp's QUIC defaults;
//!   [`TestServer::quic_addr`].
//! - [`TestProxy`]: an HTTP CONNECT (plain or inside TLS) or SOCKS5 forward proxy on
//!   loopback, with optional credentials, for `transport.proxyURL`.
//! - Observation: [`ServerState`] (logins, controls, proxies, every control message,
//!   CloseProxy names, counters) via [`TestServer::snapshot`] and [`TestServer::wait_for`].
//! - Disturbance: [`TestServer::kill`], [`TestServer::freeze`] / [`TestServer::thaw`],
//!   [`TestServer::set_login_hook`], [`TestServer::close_control`].
//!
//! # What it does not do
//! - udp ports are not reserved per name (a fixed port must just be free; port 0 takes any).
//! - xtcp: the hole-punching analysis data is never cleaned (frps drops a pair's scores after
//!   `natholeAnalysisDataReserveHours`); the STUN responder is on loopback only, so every
//!   client looks like an easy NAT.
//! - Server plugins over HTTP (the in-process hooks stand in for the Login and NewProxy ops),
//!   OIDC, auth scopes (Ping/NewWorkConn are never checked), the dashboard, metrics, bandwidth
//!   limits, load-balancing groups, `allowPorts`, `maxPortsPerClient`, `route_by_http_user`,
//!   `response_headers`, the 24 h port reservation (a port is remembered for the server's
//!   lifetime), the KCP transport, mTLS.
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
//!
//! # Layout
//! Modules use only modules below them: `conn` (bind port, TLS, yamux, dispatch) →
//! `control` (logins, control streams, the work-connection pool) → `proxy` (registration,
//! tcp listeners) → `udp` (udp proxies); `visitor` (NewVisitorConn) and `nathole` (xtcp) beside `control`; `vhost` (HTTP routing) beside them; all of them → `shared` (server state,
//! registry, control handles) → `splice` (payload splicing through `frp_proto::pipeline`) →
//! `wire` (streams and plaintext frames); `ws` (the websocket upgrade) under `conn`; `quic`
//! (the QUIC listener) above `conn`, handing it streams;
//! `proxies` (the forward proxies) stands alone; `config`, `state` and `gate` are leaves.

mod config;
mod conn;
mod control;
mod dns;
mod domains;
mod gate;
mod https;
mod nathole;
mod proxies;
mod proxy;
mod quic;
mod shared;
mod splice;
mod state;
mod tcpmux;
mod udp;
mod v2;
mod vhost;
mod visitor;
mod wire;
mod ws;

pub use config::{LoginHook, NewProxyHook, ServerConfig, TlsMode};
pub use dns::dns_server;
pub use https::client_hello;
pub use proxies::{ProxyProtocol, ProxyStats, TestProxy};
pub use state::{
    ControlInfo, ControlMessage, Counters, LoginRecord, ProxyInfo, ServerState, WaitTimeout,
};

use frp_proto::crypto::Key;
use gate::Gate;
use shared::{Hooks, Inner, Registry};
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A running frps double. Dropping it stops everything, like [`TestServer::kill`].
pub struct TestServer {
    inner: Arc<Inner>,
    bind_addr: SocketAddr,
    quic_addr: Option<SocketAddr>,
    cert_der: Vec<u8>,
    cert_pem: String,
    stun_addr: SocketAddr,
    /// Fired by the accept loops once their listeners are closed.
    listeners_closed: Vec<CancellationToken>,
}

impl fmt::Debug for TestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestServer")
            .field("bind_addr", &self.bind_addr)
            .field("quic_addr", &self.quic_addr)
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
        let (tls, cert_der, cert_pem, key_der) = conn::make_tls()?;
        let listener = bind_retrying(cfg.bind).await?;
        let quic = match cfg.quic_bind {
            Some(addr) => Some(quic::bind(addr, &cert_der, &key_der).await?),
            None => None,
        };
        let quic_addr = quic.as_ref().map(|q| q.local_addr()).transpose()?;
        let bind_addr = listener.local_addr()?;
        let vhost_bind = cfg
            .vhost_http_bind
            .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        let vhost_listener = bind_retrying(vhost_bind).await?;
        let vhost_addr = vhost_listener.local_addr()?;
        let tcpmux_listener = bind_retrying(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let tcpmux_addr = tcpmux_listener.local_addr()?;
        let https_listener = bind_retrying(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let https_addr = https_listener.local_addr()?;
        let gate = Gate::new();
        let inner = Arc::new(Inner {
            key: Key::derive(&cfg.token),
            hooks: Mutex::new(Hooks {
                login: cfg.login_hook.clone(),
                new_proxy: cfg.new_proxy_hook.clone(),
            }),
            state: watch::channel(ServerState::default()).0,
            registry: Mutex::new(Registry::default()),
            gate,
            cancel: CancellationToken::new(),
            tls: (cfg.tls != TlsMode::Off).then_some(tls),
            vhost_addr,
            tcpmux_addr,
            https_addr,
            nathole: Mutex::new(Default::default()),
            cfg,
        });
        let stun_addr = nathole::start_stun(inner.cancel.clone()).await?;
        let frp_closed = CancellationToken::new();
        let vhost_closed = CancellationToken::new();
        tokio::spawn(conn::accept_loop(
            inner.clone(),
            listener,
            frp_closed.clone(),
        ));
        tokio::spawn(vhost::vhost_accept_loop(
            inner.clone(),
            vhost_listener,
            vhost_closed.clone(),
        ));
        let https_closed = CancellationToken::new();
        tokio::spawn(https::accept_loop(
            inner.clone(),
            https_listener,
            https_closed.clone(),
        ));
        let tcpmux_closed = CancellationToken::new();
        tokio::spawn(tcpmux::accept_loop(
            inner.clone(),
            tcpmux_listener,
            tcpmux_closed.clone(),
        ));
        let mut listeners_closed = vec![frp_closed, vhost_closed, tcpmux_closed, https_closed];
        if let Some(endpoint) = quic {
            let quic_closed = CancellationToken::new();
            tokio::spawn(quic::accept_loop(
                inner.clone(),
                endpoint,
                quic_closed.clone(),
            ));
            listeners_closed.push(quic_closed);
        }
        Ok(TestServer {
            inner,
            bind_addr,
            quic_addr,
            cert_der,
            cert_pem,
            stun_addr,
            listeners_closed,
        })
    }

    /// Address of the frp port (give it to the client as server address and port).
    pub fn bind_addr(&self) -> SocketAddr {
        self.bind_addr
    }

    /// Address of the QUIC listener (UDP), when [`ServerConfig::quic_bind`] asked for one: give
    /// its port to a client with the quic transport.
    pub fn quic_addr(&self) -> Option<SocketAddr> {
        self.quic_addr
    }

    /// Address of the HTTPS vhost listener (TLS routed by its server name, passed through).
    pub fn vhost_https_addr(&self) -> SocketAddr {
        self.inner.https_addr
    }

    /// Address of the tcpmux `httpconnect` listener (send `CONNECT host:port` here).
    pub fn tcpmux_httpconnect_addr(&self) -> SocketAddr {
        self.inner.tcpmux_addr
    }

    /// Address of the STUN responder (give it to xtcp clients as `natHoleStunServer`).
    pub fn stun_addr(&self) -> SocketAddr {
        self.stun_addr
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
