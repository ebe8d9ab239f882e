//! What a visitor is: the settings of one stcp/sudp/xtcp visitor (frpc's `[[visitors]]`).

use crate::secret::Secret;

/// The kinds of visitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VisitorKind {
    /// Local TCP connections to an stcp proxy.
    Stcp,
    /// Local UDP datagrams to an sudp proxy.
    Sudp,
    /// Local TCP connections to an xtcp proxy, over a UDP path punched through both NATs.
    Xtcp,
}

impl VisitorKind {
    /// frp's name of the type.
    pub fn type_name(self) -> &'static str {
        match self {
            VisitorKind::Stcp => "stcp",
            VisitorKind::Sudp => "sudp",
            VisitorKind::Xtcp => "xtcp",
        }
    }
}

/// A visitor: a local listener whose connections (or datagrams) go to an stcp/sudp proxy of
/// this or another frp client, through frps.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VisitorConfig {
    /// Name without the user prefix.
    pub name: String,
    /// stcp or sudp.
    pub kind: VisitorKind,
    /// The proxy to visit, without a user prefix (`serverName`).
    pub server_name: String,
    /// The frp user owning that proxy (`serverUser`); empty: our own user.
    pub server_user: String,
    /// The proxy's secret key.
    pub secret_key: Secret,
    /// Address to listen on (default 127.0.0.1).
    pub bind_addr: String,
    /// Port to listen on. 0 or negative: no listener (frp's `bindPort = -1`, a visitor that
    /// only other visitors use).
    pub bind_port: i32,
    /// Encrypt the visitor connection's payload with the secret key.
    pub use_encryption: bool,
    /// Compress the visitor connection's payload with snappy.
    pub use_compression: bool,
    /// xtcp only: the tunnel's settings.
    pub xtcp: XtcpVisitorOptions,
}

/// The settings only an xtcp visitor has, with frpc's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct XtcpVisitorOptions {
    /// The tunnel protocol over the punched path: `quic` (the only one supported).
    pub protocol: String,
    /// Punch at start and keep the tunnel up (`keepTunnelOpen`).
    pub keep_tunnel_open: bool,
    /// Re-punches an hour at most with `keep_tunnel_open` (`maxRetriesAnHour`, default 8).
    pub max_retries_an_hour: u32,
    /// How often `keep_tunnel_open` checks the tunnel (`minRetryInterval`, default 90 s).
    pub min_retry_interval: std::time::Duration,
    /// Another visitor (by name, an stcp one) that takes a user connection when no tunnel is
    /// ready within `fallback_timeout` (`fallbackTo`).
    pub fallback_to: String,
    /// `fallbackTimeoutMs` (default 1 s).
    pub fallback_timeout: std::time::Duration,
    /// Tell the peer no local addresses, only the public ones
    /// (`natTraversal.disableAssistedAddrs`).
    pub disable_assisted_addrs: bool,
}

impl Default for XtcpVisitorOptions {
    fn default() -> Self {
        XtcpVisitorOptions {
            protocol: "quic".to_owned(),
            keep_tunnel_open: false,
            max_retries_an_hour: 8,
            min_retry_interval: std::time::Duration::from_secs(90),
            fallback_to: String::new(),
            fallback_timeout: std::time::Duration::from_millis(1000),
            disable_assisted_addrs: false,
        }
    }
}

impl VisitorConfig {
    /// A visitor of `kind` for `server_name`, listening on 127.0.0.1:`bind_port`.
    pub fn new(
        name: impl Into<String>,
        kind: VisitorKind,
        server_name: impl Into<String>,
        secret_key: impl Into<Secret>,
        bind_port: i32,
    ) -> Self {
        VisitorConfig {
            name: name.into(),
            kind,
            server_name: server_name.into(),
            server_user: String::new(),
            secret_key: secret_key.into(),
            bind_addr: "127.0.0.1".to_owned(),
            bind_port,
            use_encryption: false,
            use_compression: false,
            xtcp: XtcpVisitorOptions::default(),
        }
    }

    /// Visits a proxy of this frp user instead of our own.
    pub fn server_user(mut self, user: impl Into<String>) -> Self {
        self.server_user = user.into();
        self
    }

    /// Listens on this address instead of 127.0.0.1.
    pub fn bind_addr(mut self, addr: impl Into<String>) -> Self {
        self.bind_addr = addr.into();
        self
    }

    /// Encrypts the payload with the secret key (frp `useEncryption`).
    pub fn use_encryption(mut self, on: bool) -> Self {
        self.use_encryption = on;
        self
    }

    /// Compresses the payload (frp `useCompression`).
    pub fn use_compression(mut self, on: bool) -> Self {
        self.use_compression = on;
        self
    }

    /// xtcp: hands user connections to visitor `name` when no tunnel is ready within
    /// `timeout` (frp `fallbackTo`, `fallbackTimeoutMs`).
    pub fn fallback(mut self, name: impl Into<String>, timeout: std::time::Duration) -> Self {
        self.xtcp.fallback_to = name.into();
        self.xtcp.fallback_timeout = timeout;
        self
    }

    /// xtcp: punches at start and keeps the tunnel up (frp `keepTunnelOpen`).
    pub fn keep_tunnel_open(mut self, on: bool) -> Self {
        self.xtcp.keep_tunnel_open = on;
        self
    }
}
