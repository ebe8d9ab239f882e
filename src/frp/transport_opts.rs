//! How frps is reached: frpc's `transport.protocol` (tcp, websocket, wss, quic), its
//! `transport.quic` options and `transport.proxyURL` (an HTTP, HTTPS or SOCKS5 proxy in
//! front of a TCP connection).
//!
//! A leaf module: the config holds these values, the transport acts on them.

use crate::secret::Secret;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// frpc's `transport.protocol`: what runs between TCP and frp's own bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TransportProtocol {
    /// frp over TCP, with TLS when `tls.enable` (frpc's default).
    #[default]
    Tcp,
    /// An HTTP upgrade to a websocket on frps's path `/~!frp`, then frp inside the websocket;
    /// with `tls.enable` the TLS session runs inside the websocket, as in frpc.
    Websocket,
    /// TLS first (always, whatever `tls.enable` says), then the websocket inside it. frps
    /// itself does not terminate TLS for websockets: a TLS-terminating reverse proxy in front
    /// of frps forwards the websocket to its bind port.
    Wss,
    /// QUIC to frps's `quicBindPort` (UDP): one QUIC connection per session, each frp
    /// connection a bidirectional stream on it, TLS 1.3 with ALPN `frp` always (`tls.enable`
    /// only decides whether the CA and client certificate files are used), no yamux whatever
    /// `tcp_mux` says.
    Quic,
}

impl TransportProtocol {
    /// The protocol for frpc's name of it; `None` for names this client does not implement
    /// (`kcp`: no Rust crate speaks kcp-go's FEC framing) or that frpc does not know.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "" | "tcp" => Some(TransportProtocol::Tcp),
            "websocket" => Some(TransportProtocol::Websocket),
            "wss" => Some(TransportProtocol::Wss),
            "quic" => Some(TransportProtocol::Quic),
            _ => None,
        }
    }

    /// frpc's name of the protocol.
    pub fn name(self) -> &'static str {
        match self {
            TransportProtocol::Tcp => "tcp",
            TransportProtocol::Websocket => "websocket",
            TransportProtocol::Wss => "wss",
            TransportProtocol::Quic => "quic",
        }
    }
}

/// frpc's `transport.quic`: the QUIC connection's timers and stream limit, frp's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct QuicOptions {
    /// `keepalivePeriod` (10 s): a PING after this long without sending, so NATs and frps's
    /// idle timer see traffic; `None` sends none.
    pub keepalive_period: Option<Duration>,
    /// `maxIdleTimeout` (30 s): the connection is dead after this long without a packet.
    pub max_idle_timeout: Duration,
    /// `maxIncomingStreams` (100000): streams the server may open towards us at once (frps
    /// opens none; frps's own value bounds the streams we open).
    pub max_incoming_streams: u32,
}

impl Default for QuicOptions {
    fn default() -> Self {
        QuicOptions {
            keepalive_period: Some(Duration::from_secs(10)),
            max_idle_timeout: Duration::from_secs(30),
            max_incoming_streams: 100_000,
        }
    }
}

impl QuicOptions {
    /// Sets the keepalive period (`None`: no keepalive).
    pub fn keepalive_period(mut self, period: Option<Duration>) -> Self {
        self.keepalive_period = period;
        self
    }

    /// Sets the idle timeout.
    pub fn max_idle_timeout(mut self, timeout: Duration) -> Self {
        self.max_idle_timeout = timeout;
        self
    }

    /// Sets how many streams the server may open at once.
    pub fn max_incoming_streams(mut self, n: u32) -> Self {
        self.max_incoming_streams = n;
        self
    }
}

/// How frps is reached above TCP: frpc's `transport.protocol` and `transport.proxyURL`.
///
/// Start from [`TransportConfig::default`] (tcp, no proxy) and chain the setters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportConfig {
    /// tcp (default), websocket, wss or quic.
    pub protocol: TransportProtocol,
    /// Reach frps through this HTTP CONNECT or SOCKS5 proxy (TCP transports only: frpc dials
    /// QUIC directly).
    pub proxy_url: Option<ProxyUrl>,
    /// For an `https://` proxy: trust the CA certificates in this PEM file instead of the
    /// system's (frpc has no such setting; for private proxies and tests).
    pub proxy_ca_file: Option<PathBuf>,
    /// The QUIC settings (protocol quic only).
    pub quic: QuicOptions,
}

impl TransportConfig {
    /// Sets the transport protocol.
    pub fn protocol(mut self, protocol: TransportProtocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Reaches frps through this proxy.
    pub fn proxy_url(mut self, proxy: ProxyUrl) -> Self {
        self.proxy_url = Some(proxy);
        self
    }

    /// Trusts the CA certificates in this PEM file for an `https://` proxy.
    pub fn proxy_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.proxy_ca_file = Some(path.into());
        self
    }

    /// Sets the QUIC options.
    pub fn quic(mut self, quic: QuicOptions) -> Self {
        self.quic = quic;
        self
    }
}

/// The kind of proxy in `transport.proxyURL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyScheme {
    /// `http://`: an HTTP proxy asked for a tunnel with `CONNECT host:port`, with basic auth
    /// when the URL carries a user.
    Http,
    /// `socks5://`: a SOCKS5 proxy (RFC 1928), with username/password auth (RFC 1929) when the
    /// URL carries a user. The proxy resolves the server name.
    Socks5,
    /// `https://`: TLS to the proxy (its certificate verified against the system's CA
    /// certificates under the proxy's host name, as frpc 0.69+ does), then `CONNECT` as for
    /// `http://`. frpc before 0.69 refuses this scheme.
    Https,
}

/// A parsed `transport.proxyURL`: `http://[user[:password]@]host:port`, `https://…` or
/// `socks5://…`.
/// The password never prints: `Display` and `Debug` show `scheme://host:port` only.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    /// HTTP CONNECT or SOCKS5.
    pub scheme: ProxyScheme,
    /// Proxy host name or IP address (without brackets).
    pub host: String,
    /// Proxy port.
    pub port: u16,
    /// User name and password, percent-decoded; `None` when the URL has no `user@`.
    pub auth: Option<(String, Secret)>,
}

impl ProxyUrl {
    /// Parses a proxy URL. Errors name what is wrong; they never contain the password.
    ///
    /// Unlike frpc, a URL without `scheme://` or without a port is an error here: Go's parser
    /// would take some of those for a URL without a host and connect directly, silently
    /// bypassing the proxy the user asked for.
    pub fn parse(text: &str) -> Result<ProxyUrl, String> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| "expected scheme://[user:password@]host:port".to_owned())?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => ProxyScheme::Http,
            "socks5" => ProxyScheme::Socks5,
            "https" => ProxyScheme::Https,
            "ntlm" => {
                return Err(format!(
                    "proxy type {scheme:?} is not supported yet (http, https and socks5 are)"
                ))
            }
            other => {
                return Err(format!(
                    "ProxyType must be http, https, socks5 or ntlm, not [{other}]"
                ))
            }
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let auth = match userinfo {
            None => None,
            Some(u) => {
                let (user, pass) = u.split_once(':').unwrap_or((u, ""));
                let user = percent_decode(user).ok_or("bad %-escape in the proxy user")?;
                let pass = percent_decode(pass).ok_or("bad %-escape in the proxy password")?;
                Some((user, Secret::new(pass)))
            }
        };
        let (host, port) = split_host_port(hostport)
            .ok_or_else(|| format!("expected host:port after the scheme, got {hostport:?}"))?;
        Ok(ProxyUrl {
            scheme,
            host,
            port,
            auth,
        })
    }

    /// `host:port`, with brackets around an IPv6 address.
    pub fn addr_text(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            ProxyScheme::Http => "http",
            ProxyScheme::Socks5 => "socks5",
            ProxyScheme::Https => "https",
        };
        write!(f, "{scheme}://{}", self.addr_text())
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({self})")
    }
}

/// `host:port` or `[v6]:port` with a non-empty host and a port in 1..=65535.
fn split_host_port(text: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (host, after.strip_prefix(':')?)
    } else {
        let (host, port) = text.rsplit_once(':')?;
        if host.contains(':') {
            return None;
        }
        (host, port)
    };
    let port: u16 = port.parse().ok().filter(|&p| p != 0)?;
    (!host.is_empty()).then(|| (host.to_owned(), port))
}

/// Decodes `%XX` escapes as Go's URL parser does (user info here, request paths in the
/// static_file plugin); `None` for a bad escape or bytes that are not UTF-8.
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_frpc_proxy_urls() {
        let u = ProxyUrl::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(u.scheme, ProxyScheme::Http);
        assert_eq!((u.host.as_str(), u.port), ("127.0.0.1", 8080));
        assert!(u.auth.is_none());

        let u = ProxyUrl::parse("socks5://admin:a%40bc@proxy.corp:1080/").unwrap();
        assert_eq!(u.scheme, ProxyScheme::Socks5);
        assert_eq!((u.host.as_str(), u.port), ("proxy.corp", 1080));
        let (user, pass) = u.auth.clone().unwrap();
        assert_eq!((user.as_str(), pass.expose()), ("admin", "a@bc"));
        assert_eq!(u.to_string(), "socks5://proxy.corp:1080");
        assert!(!format!("{u:?}").contains("a@bc"));

        let u = ProxyUrl::parse("HTTP://user@[::1]:3128").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 3128));
        assert_eq!(u.addr_text(), "[::1]:3128");
        assert_eq!(u.auth.unwrap().1.expose(), "");
    }

    #[test]
    fn refuses_what_would_silently_bypass_the_proxy() {
        for bad in [
            "127.0.0.1:3128",
            "http://127.0.0.1",
            "http://:3128",
            "http://h:0",
            "http://h:99999",
            "http://u:%zz@h:1",
        ] {
            assert!(ProxyUrl::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            ProxyUrl::parse("ftp://h:1").unwrap_err(),
            "ProxyType must be http, https, socks5 or ntlm, not [ftp]"
        );
        assert!(ProxyUrl::parse("ntlm://h:1")
            .unwrap_err()
            .contains("not supported yet"));
        let u = ProxyUrl::parse("https://u:p@proxy.corp:443").unwrap();
        assert_eq!(u.scheme, ProxyScheme::Https);
        assert_eq!(u.to_string(), "https://proxy.corp:443");
        // The password never appears in an error.
        assert!(!ProxyUrl::parse("http://u:hunter2@h")
            .unwrap_err()
            .contains("hunter2"));
    }

    #[test]
    fn protocol_names() {
        for p in [
            TransportProtocol::Tcp,
            TransportProtocol::Websocket,
            TransportProtocol::Wss,
            TransportProtocol::Quic,
        ] {
            assert_eq!(TransportProtocol::from_name(p.name()), Some(p));
        }
        assert_eq!(
            TransportProtocol::from_name("quic"),
            Some(TransportProtocol::Quic)
        );
        // kcp-go's framing (FEC 10/3) has no credible Rust implementation: refused.
        assert_eq!(TransportProtocol::from_name("kcp"), None);
    }
}
