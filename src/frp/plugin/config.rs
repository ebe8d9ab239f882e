//! What a proxy's plugin is: frpc's `[proxies.plugin]` as the engine sees it. Always compiled
//! (it is part of [`ProxyConfig`](crate::frp::ProxyConfig)); the plugins themselves need the
//! `plugins` feature.

use crate::secret::Secret;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The client plugins of frpc 0.66 (`plugin.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PluginKind {
    /// Splices each connection to a Unix domain socket (`unixPath`).
    UnixDomainSocket,
    /// An HTTP proxy: `CONNECT host:port` tunnels and absolute-URI requests, optional
    /// `Proxy-Authorization` basic auth.
    HttpProxy,
    /// A SOCKS5 server (CONNECT only), optional username/password auth.
    Socks5,
    /// Serves the files under `localPath` over HTTP (GET), optional basic auth and prefix.
    StaticFile,
    /// HTTP in, HTTP to `localAddr` out (host header rewrite, request headers).
    Http2Http,
    /// HTTP in, HTTPS to `localAddr` out (the local certificate is not verified, as frpc).
    Http2Https,
    /// HTTPS in (our certificate), HTTP to `localAddr` out.
    Https2Http,
    /// HTTPS in (our certificate), HTTPS to `localAddr` out.
    Https2Https,
    /// TLS in (our certificate), the plain bytes to `localAddr`.
    Tls2Raw,
}

impl PluginKind {
    /// frpc's name of the plugin (`plugin.type`).
    pub fn name(self) -> &'static str {
        match self {
            PluginKind::UnixDomainSocket => "unix_domain_socket",
            PluginKind::HttpProxy => "http_proxy",
            PluginKind::Socks5 => "socks5",
            PluginKind::StaticFile => "static_file",
            PluginKind::Http2Http => "http2http",
            PluginKind::Http2Https => "http2https",
            PluginKind::Https2Http => "https2http",
            PluginKind::Https2Https => "https2https",
            PluginKind::Tls2Raw => "tls2raw",
        }
    }

    /// The plugin called `name` in frpc's config, if it is one of these.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            PluginKind::UnixDomainSocket,
            PluginKind::HttpProxy,
            PluginKind::Socks5,
            PluginKind::StaticFile,
            PluginKind::Http2Http,
            PluginKind::Http2Https,
            PluginKind::Https2Http,
            PluginKind::Https2Https,
            PluginKind::Tls2Raw,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }

    /// True for the plugins that terminate TLS with `crt_path`/`key_path` (or a self-signed
    /// certificate made at start).
    pub fn serves_tls(self) -> bool {
        matches!(
            self,
            PluginKind::Https2Http | PluginKind::Https2Https | PluginKind::Tls2Raw
        )
    }
}

/// A proxy's plugin: what each work connection is handed to instead of the local address.
///
/// Start from one of the constructors and chain the setters. Fields a plugin does not use are
/// ignored by it, as frpc's are absent from its options.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PluginConfig {
    /// Which plugin.
    pub kind: PluginKind,
    /// `localAddr` (`host:port`) of the http2*/https2* plugins and tls2raw.
    pub local_addr: String,
    /// `unixPath` of unix_domain_socket.
    pub unix_path: PathBuf,
    /// `localPath` of static_file: the directory served.
    pub local_path: PathBuf,
    /// `stripPrefix` of static_file: files are served under `/<prefix>/`; empty: under `/`.
    pub strip_prefix: String,
    /// `httpUser` (http_proxy, static_file) or `username` (socks5). Auth is on when this or
    /// the password is non-empty.
    pub user: String,
    /// `httpPassword` (http_proxy, static_file) or `password` (socks5).
    pub password: Secret,
    /// `hostHeaderRewrite` of the http2*/https2* plugins; empty: the visitor's Host.
    pub host_header_rewrite: String,
    /// `requestHeaders.set` of the http2*/https2* plugins.
    pub request_headers: BTreeMap<String, String>,
    /// `enableHTTP2` of https2http/https2https (default on): offer HTTP/2 by ALPN.
    pub enable_http2: bool,
    /// `crtPath` of https2http/https2https/tls2raw; with `key_path`, the certificate served.
    /// Either empty: a self-signed certificate made when the proxy starts, as frpc does.
    pub crt_path: PathBuf,
    /// `keyPath`, the private key of `crt_path`.
    pub key_path: PathBuf,
}

impl PluginConfig {
    /// A plugin of `kind` with frpc's defaults and nothing else set.
    pub fn new(kind: PluginKind) -> Self {
        PluginConfig {
            kind,
            local_addr: String::new(),
            unix_path: PathBuf::new(),
            local_path: PathBuf::new(),
            strip_prefix: String::new(),
            user: String::new(),
            password: Secret::default(),
            host_header_rewrite: String::new(),
            request_headers: BTreeMap::new(),
            enable_http2: true,
            crt_path: PathBuf::new(),
            key_path: PathBuf::new(),
        }
    }

    /// unix_domain_socket to `path`.
    pub fn unix_domain_socket(path: impl Into<PathBuf>) -> Self {
        let mut p = Self::new(PluginKind::UnixDomainSocket);
        p.unix_path = path.into();
        p
    }

    /// An HTTP proxy without auth.
    pub fn http_proxy() -> Self {
        Self::new(PluginKind::HttpProxy)
    }

    /// A SOCKS5 server without auth.
    pub fn socks5() -> Self {
        Self::new(PluginKind::Socks5)
    }

    /// static_file serving the directory `path`.
    pub fn static_file(path: impl Into<PathBuf>) -> Self {
        let mut p = Self::new(PluginKind::StaticFile);
        p.local_path = path.into();
        p
    }

    /// One of the forwarding plugins (http2http, http2https, https2http, https2https,
    /// tls2raw) to `local_addr` (`host:port`).
    pub fn forward(kind: PluginKind, local_addr: impl Into<String>) -> Self {
        let mut p = Self::new(kind);
        p.local_addr = local_addr.into();
        p
    }

    /// Requires this user and password (basic auth, or SOCKS5 username/password).
    pub fn auth(mut self, user: impl Into<String>, password: impl Into<Secret>) -> Self {
        self.user = user.into();
        self.password = password.into();
        self
    }

    /// static_file: serves the files under `/<prefix>/` instead of `/`.
    pub fn strip_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.strip_prefix = prefix.into();
        self
    }

    /// Sends this Host header to the local service.
    pub fn host_header_rewrite(mut self, host: impl Into<String>) -> Self {
        self.host_header_rewrite = host.into();
        self
    }

    /// Sets this request header on every forwarded request; call again for more.
    pub fn request_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.request_headers.insert(name.into(), value.into());
        self
    }

    /// Offers HTTP/2 (https2http, https2https) or not.
    pub fn enable_http2(mut self, on: bool) -> Self {
        self.enable_http2 = on;
        self
    }

    /// Serves this certificate and key (PEM files) instead of a self-signed one.
    pub fn certificate(mut self, crt: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.crt_path = crt.into();
        self.key_path = key.into();
        self
    }

    /// True when the plugin asks for a user and password.
    pub fn has_auth(&self) -> bool {
        !self.user.is_empty() || !self.password.expose().is_empty()
    }
}
