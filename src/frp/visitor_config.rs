//! What a visitor is: the settings of one stcp/sudp visitor (frpc's `[[visitors]]`).

use crate::secret::Secret;

/// The kinds of visitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VisitorKind {
    /// Local TCP connections to an stcp proxy.
    Stcp,
    /// Local UDP datagrams to an sudp proxy.
    Sudp,
}

impl VisitorKind {
    /// frp's name of the type.
    pub fn type_name(self) -> &'static str {
        match self {
            VisitorKind::Stcp => "stcp",
            VisitorKind::Sudp => "sudp",
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
}
