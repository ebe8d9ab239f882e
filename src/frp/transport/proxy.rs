//! Tunnels through `transport.proxyURL`, on a TCP connection already open to the proxy:
//! HTTP `CONNECT` (with basic auth) and SOCKS5 (with username/password), the requests laid
//! out as frpc's (Go's `net/http` and `x/net/proxy`) are.

use super::ws::read_head;
use crate::frp::transport_opts::{ProxyScheme, ProxyUrl};
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Asks the proxy on `io` for a tunnel to `host:port`. On success the stream carries the
/// tunnel; errors say what the proxy answered, never the password.
pub(super) async fn establish<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    proxy: &ProxyUrl,
    host: &str,
    port: u16,
) -> io::Result<()> {
    match proxy.scheme {
        // For https the caller has put TLS to the proxy under `io` already.
        ProxyScheme::Http | ProxyScheme::Https => http_connect(io, proxy, host, port).await,
        ProxyScheme::Socks5 => socks5_connect(io, proxy, host, port).await,
    }
}

/// `host:port` with brackets around an IPv6 address.
fn join(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

async fn http_connect<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    proxy: &ProxyUrl,
    host: &str,
    port: u16,
) -> io::Result<()> {
    use base64::Engine;
    let target = join(host, port);
    // Go's request writer: request line, Host, User-Agent, then the other headers.
    let mut req =
        format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: Mozilla/5.0\r\n");
    if let Some((user, pass)) = &proxy.auth {
        let mut cred = zeroize::Zeroizing::new(format!("{user}:{}", pass.expose()));
        let b64 = zeroize::Zeroizing::new(
            base64::engine::general_purpose::STANDARD.encode(cred.as_bytes()),
        );
        cred.clear();
        req.push_str("Proxy-Authorization: Basic ");
        req.push_str(&b64);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    let req = zeroize::Zeroizing::new(req);
    io.write_all(req.as_bytes()).await?;
    io.flush().await?;
    let head = read_head(io).await?;
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "HTTP proxy {}: malformed answer to CONNECT",
                    proxy.addr_text()
                ),
            ))
        }
    }
    match resp.code {
        Some(200) => Ok(()),
        Some(407) => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "HTTP proxy {} answered CONNECT with 407 {}: {}",
                proxy.addr_text(),
                resp.reason.unwrap_or(""),
                if proxy.auth.is_some() {
                    "wrong user or password in the proxy URL"
                } else {
                    "the proxy needs a user and password in the proxy URL"
                }
            ),
        )),
        code => Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!(
                "HTTP proxy {} answered CONNECT {target} with {} {}",
                proxy.addr_text(),
                code.unwrap_or(0),
                resp.reason.unwrap_or("")
            ),
        )),
    }
}

/// SOCKS5 reply codes (RFC 1928 §6), in Go's words.
fn socks_reply_text(code: u8) -> &'static str {
    match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unknown error",
    }
}

async fn socks5_connect<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    proxy: &ProxyUrl,
    host: &str,
    port: u16,
) -> io::Result<()> {
    let addr = proxy.addr_text();
    let fail = |kind: io::ErrorKind, what: String| {
        io::Error::new(kind, format!("SOCKS5 proxy {addr}: {what}"))
    };
    // Methods offered as Go does: none, plus username/password when the URL has a user.
    if proxy.auth.is_some() {
        io.write_all(&[5, 2, 0, 2]).await?;
    } else {
        io.write_all(&[5, 1, 0]).await?;
    }
    io.flush().await?;
    let mut choice = [0u8; 2];
    io.read_exact(&mut choice).await?;
    if choice[0] != 5 {
        return Err(fail(
            io::ErrorKind::InvalidData,
            "not a SOCKS5 server".into(),
        ));
    }
    match (choice[1], &proxy.auth) {
        (0, _) => {}
        (2, Some((user, pass))) => {
            let (u, p) = (user.as_bytes(), pass.expose().as_bytes());
            let (Ok(ul), Ok(pl)) = (u8::try_from(u.len()), u8::try_from(p.len())) else {
                return Err(fail(
                    io::ErrorKind::InvalidInput,
                    "user or password longer than 255 bytes".into(),
                ));
            };
            let mut msg = zeroize::Zeroizing::new(Vec::with_capacity(3 + u.len() + p.len()));
            msg.push(1);
            msg.push(ul);
            msg.extend_from_slice(u);
            msg.push(pl);
            msg.extend_from_slice(p);
            io.write_all(&msg).await?;
            io.flush().await?;
            let mut status = [0u8; 2];
            io.read_exact(&mut status).await?;
            if status != [1, 0] {
                return Err(fail(
                    io::ErrorKind::PermissionDenied,
                    "username/password authentication failed (wrong user or password in the proxy URL)".into(),
                ));
            }
        }
        (0xff, None) | (2, None) => {
            return Err(fail(
                io::ErrorKind::PermissionDenied,
                "the proxy needs a user and password in the proxy URL".into(),
            ))
        }
        (m, _) => {
            return Err(fail(
                io::ErrorKind::InvalidData,
                format!("no acceptable authentication method (proxy chose {m})"),
            ))
        }
    }
    // CONNECT: an IP literal as such, a name for the proxy to resolve.
    let mut req = Vec::with_capacity(7 + host.len());
    req.extend_from_slice(&[5, 1, 0]);
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => {
            req.push(1);
            req.extend_from_slice(&ip.octets());
        }
        Ok(std::net::IpAddr::V6(ip)) => {
            req.push(4);
            req.extend_from_slice(&ip.octets());
        }
        Err(_) => {
            let len = u8::try_from(host.len())
                .map_err(|_| fail(io::ErrorKind::InvalidInput, "server name too long".into()))?;
            req.push(3);
            req.push(len);
            req.extend_from_slice(host.as_bytes());
        }
    }
    req.extend_from_slice(&port.to_be_bytes());
    io.write_all(&req).await?;
    io.flush().await?;
    let mut head = [0u8; 4];
    io.read_exact(&mut head).await?;
    if head[0] != 5 {
        return Err(fail(io::ErrorKind::InvalidData, "bad reply version".into()));
    }
    if head[1] != 0 {
        return Err(fail(
            io::ErrorKind::ConnectionRefused,
            format!(
                "connect to {} failed: {}",
                join(host, port),
                socks_reply_text(head[1])
            ),
        ));
    }
    // Skip the bound address and port.
    let skip = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => usize::from(io.read_u8().await?) + 2,
        _ => {
            return Err(fail(
                io::ErrorKind::InvalidData,
                "bad address type in reply".into(),
            ))
        }
    };
    let mut rest = [0u8; 257];
    io.read_exact(&mut rest[..skip]).await?;
    Ok(())
}
