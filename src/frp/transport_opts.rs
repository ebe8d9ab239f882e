//! How frps is reached, above TCP: frpc's `transport.protocol` (tcp, websocket, wss) and
//! `transport.proxyURL` (an HTTP CONNECT or SOCKS5 proxy in front of the connection).
//!
//! A leaf module: the config holds these values, the transport acts on them.

use crate::secret::Secret;
use std::fmt;

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
}

impl TransportProtocol {
    /// The protocol for frpc's name of it; `None` for names this client does not implement
    /// (`kcp`, `quic`) or that frpc does not know.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "" | "tcp" => Some(TransportProtocol::Tcp),
            "websocket" => Some(TransportProtocol::Websocket),
            "wss" => Some(TransportProtocol::Wss),
            _ => None,
        }
    }

    /// frpc's name of the protocol.
    pub fn name(self) -> &'static str {
        match self {
            TransportProtocol::Tcp => "tcp",
            TransportProtocol::Websocket => "websocket",
            TransportProtocol::Wss => "wss",
        }
    }
}

/// How frps is reached above TCP: frpc's `transport.protocol` and `transport.proxyURL`.
///
/// Start from [`TransportConfig::default`] (tcp, no proxy) and chain the setters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportConfig {
    /// tcp (default), websocket or wss.
    pub protocol: TransportProtocol,
    /// Reach frps through this HTTP CONNECT or SOCKS5 proxy.
    pub proxy_url: Option<ProxyUrl>,
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
}

/// A parsed `transport.proxyURL`: `http://[user[:password]@]host:port` or `socks5://…`.
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
            "https" | "ntlm" => {
                return Err(format!(
                    "proxy type {scheme:?} is not supported yet (http and socks5 are)"
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
        assert!(ProxyUrl::parse("https://h:1")
            .unwrap_err()
            .contains("not supported yet"));
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
        ] {
            assert_eq!(TransportProtocol::from_name(p.name()), Some(p));
        }
        assert_eq!(TransportProtocol::from_name("quic"), None);
    }
}
