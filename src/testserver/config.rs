//! How to run a test server, and the hooks a test can install.

use frp_proto::msg::{Login, NewProxy};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

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

/// How to run a [`TestServer`](super::TestServer). `Default` gives frps's defaults on a loopback ephemeral port.
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
    /// Login hook, see [`LoginHook`]; can be changed later with
    /// [`super::TestServer::set_login_hook`].
    pub login_hook: Option<LoginHook>,
    /// NewProxy hook, see [`NewProxyHook`].
    pub new_proxy_hook: Option<NewProxyHook>,
    /// `udpPacketSize`: the largest datagram read on a udp proxy's port (frps's default 1500).
    pub udp_packet_size: usize,
    /// Accept wire v2 connections too (frps 0.69+); `false` is a frps before 0.69, which closes
    /// a connection that starts with the v2 magic.
    pub wire_v2: bool,
    /// `quicBindPort`: a QUIC listener on this UDP address (port 0 picks one, see
    /// [`super::TestServer::quic_addr`]); `None` (the default) runs none, as frps.
    pub quic_bind: Option<SocketAddr>,
    /// xtcp: hand both ends these candidate addresses (and no local ones) instead of the
    /// peer's, e.g. an address nobody answers on, so the punch cannot finish.
    pub nathole_candidates: Option<Vec<String>>,
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
            udp_packet_size: frp_proto::udp::DEFAULT_UDP_PACKET_SIZE,
            wire_v2: true,
            quic_bind: None,
            nathole_candidates: None,
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
            .field("udp_packet_size", &self.udp_packet_size)
            .field("wire_v2", &self.wire_v2)
            .field("quic_bind", &self.quic_bind)
            .finish()
    }
}
