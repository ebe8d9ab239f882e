//! What a [`Client`](super::Client) needs to know: the server, how to reach it, who we are, and
//! which proxies to register.
//!
//! Defaults follow Go frpc 0.66 (login, heartbeats, reconnect backoff) so that an unmodified
//! frps sees the same client it would see from frpc. Where we deliberately differ, the field
//! says why.

use super::proxy_opts::{BandwidthLimit, HealthCheck};
use super::transport_opts::TransportConfig;
use crate::secret::Secret;
/// Which PROXY protocol header a proxy writes to its local service.
pub use frp_proto::proxy_protocol::Version as ProxyProtocolVersion;
/// Reconnect timing, after Go frpc's: immediate first retry, then exponential backoff with up
/// to 10 % jitter. The session state machine in `frp_proto` applies it.
pub use frp_proto::session::ReconnectPolicy;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

pub use super::visitor_config::{VisitorConfig, VisitorKind, XtcpVisitorOptions};
use std::path::PathBuf;
use std::time::Duration;

/// frp version we announce. frps v0.50–v0.51 reject strings that are not `x.y.z` ≥ 0.18.0, so this
/// must look like a real frp release; 0.66.0 is the frpc release whose behaviour we follow.
pub const DEFAULT_FRP_VERSION: &str = "0.66.0";

/// frpc's `dialServerTimeout`.
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Go frpc waits 10 s for LoginResp; the same bound keeps a frozen server from hanging login.
pub const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(10);

/// frp's heartbeat interval without tcpMux; we also use it with tcpMux because rust-yamux sends no
/// keepalives of its own and would otherwise never notice a frozen server.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);

/// frp's heartbeat timeout (90 s without a Pong ends the session).
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(90);

/// Go frpc's default `dialServerKeepalive` (7200 s); Prime's generated config lowers it to 60 s.
pub const DEFAULT_TCP_KEEPALIVE: Duration = Duration::from_secs(7200);

/// How long to wait for the local service to accept, as Go frpc does.
pub const DEFAULT_LOCAL_DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of one frp client session.
///
/// Build one with [`ClientConfig::new`] and adjust the public fields; the type is
/// `#[non_exhaustive]` so that new settings can be added without breaking callers.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// frps host name or IP address.
    pub server_host: String,
    /// frps `bindPort` (frp's default is 7000).
    pub server_port: u16,
    /// `auth.token`; also the key of the control-stream cipher.
    pub token: Secret,
    /// frp user; proxy names go on the wire as `<user>.<name>`. Empty: no prefix.
    pub user: String,
    /// Client metadata sent in Login `metas` (Prime's `binding_secret` travels here). Values
    /// are treated as secrets and never logged.
    pub metas: BTreeMap<String, Secret>,
    /// Transport security.
    pub tls: TlsConfig,
    /// Multiplex all frp connections over one yamux session. Must match the server (no
    /// negotiation exists); frp's default is on.
    pub tcp_mux: bool,
    /// Work connections to ask frps to keep ready (frps caps it at 5).
    pub pool_count: u32,
    /// Version string in Login.
    pub version: String,
    /// Host name in Login. Go frpc 0.66 sends none, so neither do we unless asked.
    pub hostname: Option<String>,
    /// frp v0.67 `client_id`; empty means none.
    pub client_id: String,
    /// App-level Ping interval; `None` disables Ping (not recommended, see the constant).
    pub heartbeat_interval: Option<Duration>,
    /// No Pong for this long ends the session.
    pub heartbeat_timeout: Duration,
    /// Add `privilege_key`/`timestamp` to Ping (frp `auth.additionalScopes = ["HeartBeats"]`).
    pub auth_heartbeats: bool,
    /// Add `privilege_key`/`timestamp` to NewWorkConn (scope `NewWorkConns`).
    pub auth_new_work_conns: bool,
    /// TCP connect timeout.
    pub dial_timeout: Duration,
    /// Time allowed for TLS and LoginResp after the TCP connection is up.
    pub login_timeout: Duration,
    /// TCP keepalive on the server connection; `None` leaves the OS default.
    pub tcp_keepalive: Option<Duration>,
    /// Give up when the *first* login fails (Go frpc's `loginFailExit`, default true). Server
    /// rejections that retrying cannot fix end the client either way.
    pub login_fail_exit: bool,
    /// Reconnect timing.
    pub reconnect: ReconnectPolicy,
    /// Proxies to register after every login.
    pub proxies: Vec<ProxyConfig>,
    /// Local address to connect from (frpc's `transport.connectServerLocalIP`), for hosts
    /// with several uplinks; `None` lets the OS choose.
    pub local_ip: Option<IpAddr>,
    /// DNS server that resolves `server_host` (frpc's `dnsServer`) instead of the system
    /// resolver; `None`: the system resolver.
    pub dns_server: Option<SocketAddr>,
    /// frpc's `udpPacketSize`: the largest datagram udp/sudp proxies and sudp visitors read
    /// (default 1500). A larger datagram is dropped with a warning.
    pub udp_packet_size: usize,
    /// stcp/sudp visitors, started after every login.
    pub visitors: Vec<VisitorConfig>,
    /// frpc's `transport.protocol` and `transport.proxyURL`.
    pub transport: TransportConfig,
    /// frpc's `transport.wireProtocol` (default v1), or `auto`.
    pub wire_protocol: super::wire_v2::WireProtocol,
    /// Where http proxies record their exchanges for the local inspector; `None` records
    /// nothing (the request log alone, when on, still reports each request).
    pub capture: Option<std::sync::Arc<crate::capture::CaptureStore>>,
    /// frpc's `natHoleStunServer`: where xtcp proxies and visitors learn their public UDP
    /// address (default `stun.easyvoip.com:3478`).
    pub nat_hole_stun_server: String,
}

impl ClientConfig {
    /// A config with frpc's defaults for `server_host:server_port` and `token`.
    pub fn new(server_host: impl Into<String>, server_port: u16, token: impl Into<Secret>) -> Self {
        ClientConfig {
            server_host: server_host.into(),
            server_port,
            token: token.into(),
            user: String::new(),
            metas: BTreeMap::new(),
            tls: TlsConfig::default(),
            tcp_mux: true,
            pool_count: 1,
            version: DEFAULT_FRP_VERSION.to_owned(),
            hostname: None,
            client_id: String::new(),
            heartbeat_interval: Some(DEFAULT_HEARTBEAT_INTERVAL),
            heartbeat_timeout: DEFAULT_HEARTBEAT_TIMEOUT,
            auth_heartbeats: false,
            auth_new_work_conns: false,
            dial_timeout: DEFAULT_DIAL_TIMEOUT,
            login_timeout: DEFAULT_LOGIN_TIMEOUT,
            tcp_keepalive: Some(DEFAULT_TCP_KEEPALIVE),
            login_fail_exit: true,
            reconnect: ReconnectPolicy::default(),
            proxies: Vec::new(),
            local_ip: None,
            dns_server: None,
            udp_packet_size: frp_proto::udp::DEFAULT_UDP_PACKET_SIZE,
            visitors: Vec::new(),
            transport: TransportConfig::default(),
            wire_protocol: Default::default(),
            capture: None,
            nat_hole_stun_server: frp_proto::nathole::DEFAULT_STUN_SERVER.to_owned(),
        }
    }

    /// Adds a visitor.
    pub fn visitor(mut self, visitor: VisitorConfig) -> Self {
        self.visitors.push(visitor);
        self
    }

    /// Adds a proxy.
    pub fn proxy(mut self, proxy: ProxyConfig) -> Self {
        self.proxies.push(proxy);
        self
    }

    /// The name a proxy has on the wire: `<user>.<name>`, or just `<name>` without a user.
    pub(crate) fn wire_name(&self, name: &str) -> String {
        if self.user.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{}", self.user, name)
        }
    }
}

/// Transport security towards frps.
///
/// Start from [`TlsConfig::default`] (TLS on, any server certificate accepted) or
/// [`TlsConfig::disabled`] and chain the setters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TlsConfig {
    /// Use TLS (frpc's default since v0.50).
    pub enable: bool,
    /// Name for SNI and certificate checks; default: the server host. No SNI is sent for an IP
    /// literal, as Go does.
    pub server_name: Option<String>,
    /// Verify the server certificate against these PEM CA certificates and the server name.
    /// Without it any certificate is accepted (frps's default certificate is self-signed and
    /// nameless, so nothing else could work), but handshake signatures are still checked.
    pub ca_file: Option<PathBuf>,
    /// Accept only a server certificate whose SHA-256 fingerprint (of the DER) is this.
    pub pinned_sha256: Option<[u8; 32]>,
    /// Client certificate and key (PEM), for frps with `tls.trustedCaFile` (mTLS).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Send frp's `0x17` byte before the ClientHello. Needed when frps shares its bind port with
    /// the HTTPS vhost; off by default as in frpc.
    pub custom_first_byte: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            enable: true,
            server_name: None,
            ca_file: None,
            pinned_sha256: None,
            client_cert: None,
            custom_first_byte: false,
        }
    }
}

impl TlsConfig {
    /// Plain TCP to frps (frps with `transport.tls.force = false`).
    pub fn disabled() -> Self {
        TlsConfig::default().enable(false)
    }

    /// Turns TLS on or off.
    pub fn enable(mut self, enable: bool) -> Self {
        self.enable = enable;
        self
    }

    /// Sets the name for SNI and certificate checks.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Verifies the server certificate against the PEM CA certificates in `path`.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Accepts only the server certificate with this SHA-256 fingerprint.
    pub fn pinned_sha256(mut self, fingerprint: [u8; 32]) -> Self {
        self.pinned_sha256 = Some(fingerprint);
        self
    }

    /// Presents this client certificate and key (PEM files) for mutual TLS.
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some((cert.into(), key.into()));
        self
    }

    /// Sends frp's `0x17` byte before the ClientHello.
    pub fn custom_first_byte(mut self, on: bool) -> Self {
        self.custom_first_byte = on;
        self
    }
}

/// One proxy: a public endpoint on frps that forwards to a local address.
///
/// Build one with [`ProxyConfig::http`], [`ProxyConfig::tcp`] or [`ProxyConfig::new`], then
/// chain the setters or adjust the public fields. Two configs are equal when every setting is
/// (a reload re-registers a proxy whose config changed in any way, as frpc does).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyConfig {
    /// Name without the user prefix; unique per frps across all clients.
    pub name: String,
    /// What kind of endpoint frps opens.
    pub kind: ProxyKind,
    /// Local service host (default 127.0.0.1).
    pub local_host: String,
    /// Local service port.
    pub local_port: u16,
    /// Encrypt the work-connection payload with the token key.
    pub use_encryption: bool,
    /// Compress the work-connection payload with snappy.
    pub use_compression: bool,
    /// Proxy-level metadata (NewProxy `metas`).
    pub metas: BTreeMap<String, Secret>,
    /// Parse the forwarded HTTP stream and publish one [`super::Event::HttpRequest`] per
    /// exchange (method, path, status, duration, size). Bodies are counted, never buffered.
    /// Only meaningful for http proxies; off by default.
    pub request_log: bool,
    /// Load-balancing group (frp `loadBalancer.group`): frps spreads visitors over the proxies
    /// of one group that share its key. Empty: none.
    pub group: String,
    /// The group's shared key (frp `loadBalancer.groupKey`).
    pub group_key: Secret,
    /// Proxy annotations (frp `annotations`), shown by frps's dashboard and API.
    pub annotations: BTreeMap<String, String>,
    /// Write this PROXY protocol header to the local service before each connection's payload
    /// (frp `transport.proxyProtocolVersion`).
    pub proxy_protocol: Option<ProxyProtocolVersion>,
    /// Bandwidth limit (frp `transport.bandwidthLimit` and `bandwidthLimitMode`).
    pub bandwidth_limit: Option<BandwidthLimit>,
    /// Register the proxy only while this check of the local service passes (frp
    /// `healthCheck`).
    pub health_check: Option<HealthCheck>,
    /// Hand each connection to this plugin instead of dialing the local address.
    pub plugin: Option<super::plugin::config::PluginConfig>,
}

impl ProxyConfig {
    /// An http proxy reached at `<subdomain>.<frps subDomainHost>`.
    pub fn http(name: impl Into<String>, local_port: u16, subdomain: impl Into<String>) -> Self {
        Self::new(
            name,
            local_port,
            ProxyKind::Http(HttpOptions::default().subdomain(subdomain)),
        )
    }

    /// A tcp proxy on `remote_port` (0: frps picks one).
    pub fn tcp(name: impl Into<String>, local_port: u16, remote_port: u16) -> Self {
        Self::new(name, local_port, ProxyKind::Tcp { remote_port })
    }

    /// A udp proxy on `remote_port` (0: frps picks one).
    pub fn udp(name: impl Into<String>, local_port: u16, remote_port: u16) -> Self {
        Self::new(name, local_port, ProxyKind::Udp { remote_port })
    }

    /// An stcp proxy: reachable only through stcp visitors that know `secret_key`.
    pub fn stcp(name: impl Into<String>, local_port: u16, secret_key: impl Into<Secret>) -> Self {
        Self::new(
            name,
            local_port,
            ProxyKind::Stcp(SecretOptions::new(secret_key)),
        )
    }

    /// An sudp proxy: reachable only through sudp visitors that know `secret_key`.
    pub fn sudp(name: impl Into<String>, local_port: u16, secret_key: impl Into<Secret>) -> Self {
        Self::new(
            name,
            local_port,
            ProxyKind::Sudp(SecretOptions::new(secret_key)),
        )
    }

    /// An xtcp proxy: reachable only through xtcp visitors that know `secret_key`.
    pub fn xtcp(name: impl Into<String>, local_port: u16, secret_key: impl Into<Secret>) -> Self {
        Self::new(
            name,
            local_port,
            ProxyKind::Xtcp(SecretOptions::new(secret_key)),
        )
    }

    /// A proxy of any kind to 127.0.0.1:`local_port`.
    pub fn new(name: impl Into<String>, local_port: u16, kind: ProxyKind) -> Self {
        ProxyConfig {
            name: name.into(),
            kind,
            local_host: "127.0.0.1".to_owned(),
            local_port,
            use_encryption: false,
            use_compression: false,
            metas: BTreeMap::new(),
            request_log: false,
            group: String::new(),
            group_key: Secret::default(),
            annotations: BTreeMap::new(),
            proxy_protocol: None,
            bandwidth_limit: None,
            health_check: None,
            plugin: None,
        }
    }

    /// Forwards to this local host instead of 127.0.0.1.
    pub fn local_host(mut self, host: impl Into<String>) -> Self {
        self.local_host = host.into();
        self
    }

    /// Encrypts the work-connection payload (frp `useEncryption`).
    pub fn use_encryption(mut self, on: bool) -> Self {
        self.use_encryption = on;
        self
    }

    /// Compresses the work-connection payload (frp `useCompression`).
    pub fn use_compression(mut self, on: bool) -> Self {
        self.use_compression = on;
        self
    }

    /// Adds a proxy-level metadata entry (NewProxy `metas`).
    pub fn meta(mut self, key: impl Into<String>, value: impl Into<Secret>) -> Self {
        self.metas.insert(key.into(), value.into());
        self
    }

    /// Publishes one [`super::Event::HttpRequest`] per forwarded HTTP exchange.
    pub fn request_log(mut self, on: bool) -> Self {
        self.request_log = on;
        self
    }

    /// Puts the proxy in a load-balancing group with this key.
    pub fn load_balancer(mut self, group: impl Into<String>, key: impl Into<Secret>) -> Self {
        self.group = group.into();
        self.group_key = key.into();
        self
    }

    /// Adds an annotation.
    pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// Writes a PROXY protocol header to the local service before each connection's payload.
    pub fn proxy_protocol(mut self, version: ProxyProtocolVersion) -> Self {
        self.proxy_protocol = Some(version);
        self
    }

    /// Limits the proxy's bandwidth.
    pub fn bandwidth_limit(mut self, limit: BandwidthLimit) -> Self {
        self.bandwidth_limit = Some(limit);
        self
    }

    /// Registers the proxy only while this health check passes.
    pub fn health_check(mut self, check: HealthCheck) -> Self {
        self.health_check = Some(check);
        self
    }

    /// Hands each connection to `plugin` instead of the local address.
    pub fn plugin(mut self, plugin: super::plugin::config::PluginConfig) -> Self {
        self.plugin = Some(plugin);
        self
    }

    /// The local address as `host:port`, bracketing IPv6 literals.
    pub fn local_addr(&self) -> String {
        match self.local_host.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("[{ip}]:{}", self.local_port),
            _ => format!("{}:{}", self.local_host, self.local_port),
        }
    }

    /// True for proxies whose visitors speak HTTP, so a dead local service gets a 502 page.
    pub fn is_http(&self) -> bool {
        matches!(self.kind, ProxyKind::Http(_))
    }
}

/// The proxy types this client serves. All of them splice work connections to the local address.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyKind {
    /// frps routes HTTP requests by Host header through its vhost port.
    Http(HttpOptions),
    /// frps routes TLS connections by SNI and passes them through untouched.
    Https {
        /// Label under frps's `subDomainHost`.
        subdomain: Option<String>,
        /// Full domain names.
        custom_domains: Vec<String>,
    },
    /// frps listens on a TCP port.
    Tcp {
        /// Public port; 0 lets frps choose.
        remote_port: u16,
    },
    /// frps's tcpmux port (`httpconnect` multiplexer): a visitor sends `CONNECT host:port`,
    /// frps routes it by host (and optionally by proxy-auth user), answers 200 and splices the
    /// rest of the connection here.
    TcpMux {
        /// Label under frps's `subDomainHost`.
        subdomain: Option<String>,
        /// Full domain names.
        custom_domains: Vec<String>,
        /// Proxy-Authorization user frps requires.
        http_user: Option<String>,
        /// Proxy-Authorization password frps requires.
        http_password: Option<Secret>,
        /// Route only CONNECTs authenticated as this user here.
        route_by_http_user: Option<String>,
    },
    /// frps listens on a UDP port and relays datagrams as UDPPacket messages.
    Udp {
        /// Public port; 0 lets frps choose.
        remote_port: u16,
    },
    /// No public port: stcp visitors holding the secret key reach the local TCP service.
    Stcp(SecretOptions),
    /// No public port: sudp visitors holding the secret key reach the local UDP service.
    Sudp(SecretOptions),
    /// No public port: xtcp visitors holding the secret key reach the local TCP service
    /// directly, over a UDP path punched through both NATs.
    Xtcp(SecretOptions),
}

impl ProxyKind {
    /// frp's name of the type (`proxy_type` on the wire, frpc's status groups).
    pub fn type_name(&self) -> &'static str {
        match self {
            ProxyKind::Http(_) => "http",
            ProxyKind::Https { .. } => "https",
            ProxyKind::Tcp { .. } => "tcp",
            ProxyKind::TcpMux { .. } => "tcpmux",
            ProxyKind::Udp { .. } => "udp",
            ProxyKind::Stcp(_) => "stcp",
            ProxyKind::Sudp(_) => "sudp",
            ProxyKind::Xtcp(_) => "xtcp",
        }
    }

    /// True for http/https/tcpmux, whose `remote_addr` is a list of domains.
    pub fn is_vhost(&self) -> bool {
        matches!(
            self,
            ProxyKind::Http(_) | ProxyKind::Https { .. } | ProxyKind::TcpMux { .. }
        )
    }

    /// True for udp and sudp, whose work connections carry UDPPacket messages.
    pub fn is_udp(&self) -> bool {
        matches!(self, ProxyKind::Udp { .. } | ProxyKind::Sudp(_))
    }
}

/// Options of an stcp/sudp proxy: who may visit it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecretOptions {
    /// The shared secret (`secretKey`); visitors sign with it and encrypt with it.
    pub secret_key: Secret,
    /// frp users allowed to visit (`allowUsers`); empty means only our own user, `"*"` anyone.
    pub allow_users: Vec<String>,
    /// xtcp only: tell visitors no local addresses, only the public ones
    /// (`natTraversal.disableAssistedAddrs`).
    pub disable_assisted_addrs: bool,
}

impl SecretOptions {
    /// Options with this secret key and only our own user allowed.
    pub fn new(secret_key: impl Into<Secret>) -> Self {
        SecretOptions {
            secret_key: secret_key.into(),
            allow_users: Vec::new(),
            disable_assisted_addrs: false,
        }
    }

    /// Allows this frp user (or `"*"`: anyone) to visit; call again for more.
    pub fn allow_user(mut self, user: impl Into<String>) -> Self {
        self.allow_users.push(user.into());
        self
    }
}

/// Options of an http proxy (all enforced by frps, none by the client).
///
/// Start from [`HttpOptions::default`] and chain the setters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpOptions {
    /// Label under frps's `subDomainHost`.
    pub subdomain: Option<String>,
    /// Full domain names.
    pub custom_domains: Vec<String>,
    /// URL path prefixes to route (empty: all).
    pub locations: Vec<String>,
    /// Host header sent to the local service.
    pub host_header_rewrite: Option<String>,
    /// Basic-auth user required by frps.
    pub http_user: Option<String>,
    /// Basic-auth password required by frps.
    pub http_password: Option<Secret>,
    /// Request headers frps sets.
    pub request_headers: BTreeMap<String, String>,
    /// Response headers frps sets (frp `responseHeaders.set`).
    pub response_headers: BTreeMap<String, String>,
    /// Route by the basic-auth user of the request (frp `routeByHTTPUser`); empty: any user.
    pub route_by_http_user: String,
}

impl HttpOptions {
    /// Routes `<subdomain>.<frps subDomainHost>` here.
    pub fn subdomain(mut self, subdomain: impl Into<String>) -> Self {
        self.subdomain = Some(subdomain.into());
        self
    }

    /// Routes this full domain name here; call again for more.
    pub fn custom_domain(mut self, domain: impl Into<String>) -> Self {
        self.custom_domains.push(domain.into());
        self
    }

    /// Routes only URLs under this path prefix; call again for more.
    pub fn location(mut self, prefix: impl Into<String>) -> Self {
        self.locations.push(prefix.into());
        self
    }

    /// Rewrites the Host header sent to the local service.
    pub fn host_header_rewrite(mut self, host: impl Into<String>) -> Self {
        self.host_header_rewrite = Some(host.into());
        self
    }

    /// Makes frps require HTTP basic auth with this user and password.
    pub fn basic_auth(mut self, user: impl Into<String>, password: impl Into<Secret>) -> Self {
        self.http_user = Some(user.into());
        self.http_password = Some(password.into());
        self
    }

    /// Makes frps set this request header; call again for more.
    pub fn request_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.request_headers.insert(name.into(), value.into());
        self
    }

    /// Makes frps set this response header; call again for more.
    pub fn response_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.response_headers.insert(name.into(), value.into());
        self
    }

    /// Routes here only requests whose basic-auth user is `user`.
    pub fn route_by_http_user(mut self, user: impl Into<String>) -> Self {
        self.route_by_http_user = user.into();
        self
    }
}
