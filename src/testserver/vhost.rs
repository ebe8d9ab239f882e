//! The HTTP vhost: reads a visitor's first request head, routes it by host and path to an
//! http proxy, rewrites that head as frps does, and splices the connection to a work
//! connection.

use super::gate::Gated;
use super::shared::{Inner, Registry, Route};
use super::splice::splice;
use super::wire::{close, BoxIo};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use frp_proto::msg::StartWorkConn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Largest HTTP request head the vhost reads before routing.
const MAX_HEAD_LEN: usize = 64 * 1024;

/// How long the vhost waits for a request head (frps's `vhostHTTPTimeout` is 60 s).
const HEAD_TIMEOUT: Duration = Duration::from_secs(60);

/// Accepts HTTP vhost connections until the server is killed.
pub(crate) async fn vhost_accept_loop(
    inner: Arc<Inner>,
    listener: TcpListener,
    closed: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = inner.cancel.cancelled() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((sock, peer)) => {
                let i = inner.clone();
                inner.spawn(http_user_conn(i, sock, peer));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    drop(listener);
    closed.cancel();
}

/// A parsed request head.
struct Head<'a> {
    method: &'a str,
    target: &'a str,
    version: &'a str,
    headers: Vec<(&'a str, &'a str)>,
}

impl<'a> Head<'a> {
    fn parse(text: &'a str) -> Option<Head<'a>> {
        let mut lines = text.split("\r\n");
        let mut parts = lines.next()?.split(' ');
        let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || !version.starts_with("HTTP/") {
            return None;
        }
        let mut headers = Vec::new();
        for line in lines.filter(|l| !l.is_empty()) {
            let (name, value) = line.split_once(':')?;
            headers.push((name.trim(), value.trim()));
        }
        Some(Head {
            method,
            target,
            version,
            headers,
        })
    }

    fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// (Host as sent, path) — the host from an absolute-form target wins, as in Go.
    fn host_and_path(&self) -> (&'a str, &'a str) {
        let (host, rest) = match self.target.strip_prefix("http://") {
            Some(rest) => match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            },
            None => (self.header("host").unwrap_or(""), self.target),
        };
        let path = rest.split(['?', '#']).next().unwrap_or("");
        (host, path)
    }
}

/// Lowercased host without its port (Go's `CanonicalHost`).
fn canonical_host(host: &str) -> String {
    let host = host.trim();
    let bare = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        match host.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        }
    };
    bare.to_ascii_lowercase()
}

/// frps's vhost lookup: exact domain, then `*.` wildcards from the left, then `*`; within a
/// domain the first location that prefixes the path.
fn lookup(reg: &Registry, host: &str, path: &str) -> Option<Route> {
    let find = |domain: &str| {
        reg.vhosts
            .get(domain)?
            .iter()
            .find(|r| path.starts_with(&r.location))
            .cloned()
    };
    if let Some(r) = find(host) {
        return Some(r);
    }
    let mut labels: Vec<&str> = host.split('.').collect();
    while labels.len() >= 3 {
        labels[0] = "*";
        if let Some(r) = find(&labels.join(".")) {
            return Some(r);
        }
        labels.remove(0);
    }
    find("*")
}

fn authorized(route: &Route, head: &Head<'_>) -> bool {
    if route.http_user.is_empty() && route.http_pwd.is_empty() {
        return true;
    }
    head.header("authorization")
        .is_some_and(|auth| basic_auth_matches(auth, &route.http_user, &route.http_pwd))
}

/// Whether an `Authorization` value carries exactly these basic-auth credentials.
fn basic_auth_matches(auth: &str, user: &str, pwd: &str) -> bool {
    let expected = STANDARD.encode(format!("{user}:{pwd}"));
    // `get` rather than indexing: the header is peer text and may not be ASCII.
    auth.get(..6)
        .is_some_and(|p| p.eq_ignore_ascii_case("basic "))
        && auth.get(6..).is_some_and(|c| c.trim() == expected)
}

/// A complete response with `Connection: close`.
fn response(status: &str, extra: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nServer: frp/0.66.0\r\nContent-Type: {content_type}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn not_found() -> Vec<u8> {
    response(
        "404 Not Found",
        "",
        "text/html",
        "<!DOCTYPE html>\n<html><head><title>Not Found</title></head>\n<body><h1>404 Not Found</h1>\n\
         <p>No proxy of this frp test server serves this host and path.</p></body></html>\n",
    )
}

/// The first request's head as forwarded: the proxy's host rewrite and headers applied, and
/// `X-Forwarded-For/-Host/-Proto` set as Go's `ReverseProxy.SetXForwarded` does.
fn rewrite_head(head: &Head<'_>, route: &Route, host: &str, client_ip: &str) -> String {
    let mut out = format!("{} {} {}\r\n", head.method, head.target, head.version);
    let mut forwarded_for: Vec<&str> = Vec::new();
    for &(name, value) in &head.headers {
        if name.eq_ignore_ascii_case("x-forwarded-for") {
            forwarded_for.push(value);
            continue;
        }
        if name.eq_ignore_ascii_case("x-forwarded-host")
            || name.eq_ignore_ascii_case("x-forwarded-proto")
            || route.headers.keys().any(|k| k.eq_ignore_ascii_case(name))
        {
            continue;
        }
        if name.eq_ignore_ascii_case("host") && !route.host_header_rewrite.is_empty() {
            out.push_str(&format!("Host: {}\r\n", route.host_header_rewrite));
            continue;
        }
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    for (k, v) in &route.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    forwarded_for.push(client_ip);
    out.push_str(&format!(
        "X-Forwarded-For: {}\r\nX-Forwarded-Host: {host}\r\nX-Forwarded-Proto: http\r\n\r\n",
        forwarded_for.join(", ")
    ));
    out
}

/// Sends a complete response and closes the connection.
async fn reply(mut user: BoxIo, bytes: Vec<u8>) {
    let _ = user.write_all(&bytes).await;
    let _ = user.flush().await;
    close(&mut user).await;
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// One HTTP vhost connection: read the first head, route, then splice.
async fn http_user_conn(inner: Arc<Inner>, sock: TcpStream, peer: SocketAddr) {
    inner.update(|s| s.counters.user_conns += 1);
    let _ = sock.set_nodelay(true);
    let mut user: BoxIo = Box::new(Gated::new(sock, inner.gate.clone()));
    let mut buf = Vec::with_capacity(4096);
    let head_end = loop {
        if let Some(end) = find_head_end(&buf) {
            break end;
        }
        if buf.len() >= MAX_HEAD_LEN {
            let too_large = response("431 Request Header Fields Too Large", "", "text/plain", "");
            reply(user, too_large).await;
            return;
        }
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout(HEAD_TIMEOUT, user.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return,
        }
    };
    let parsed = std::str::from_utf8(&buf[..head_end - 4])
        .ok()
        .and_then(Head::parse);
    let Some(head) = parsed else {
        reply(
            user,
            response("400 Bad Request", "", "text/plain", "Bad Request\n"),
        )
        .await;
        return;
    };
    let (host, path) = head.host_and_path();
    let route = lookup(&inner.registry(), &canonical_host(host), path);
    let Some(route) = route else {
        reply(user, not_found()).await;
        return;
    };
    if !authorized(&route, &head) {
        reply(
            user,
            response(
                "401 Unauthorized",
                "Www-Authenticate: Basic realm=\"Restricted\"\r\n",
                "text/plain; charset=utf-8",
                "Unauthorized\n",
            ),
        )
        .await;
        return;
    }
    let start = StartWorkConn {
        proxy_name: route.proxy_name.clone(),
        src_addr: peer.ip().to_string(),
        src_port: peer.port(),
        ..Default::default()
    };
    let Some(work) = route.ctl.take_work_conn(&inner, start).await else {
        reply(
            user,
            response(
                "502 Bad Gateway",
                "",
                "text/plain",
                "no work connection from the frp client\n",
            ),
        )
        .await;
        return;
    };
    let mut first = rewrite_head(&head, &route, host, &peer.ip().to_string()).into_bytes();
    first.extend_from_slice(&buf[head_end..]);
    splice(user, work, &route.wrapping, &first).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_survives_non_ascii() {
        assert!(basic_auth_matches("Basic dTpwdw==", "u", "pw"));
        assert!(basic_auth_matches("basic  dTpwdw== ", "u", "pw"));
        assert!(!basic_auth_matches("Basic dTpwdg==", "u", "pw"));
        assert!(!basic_auth_matches("Basi€€€", "u", "pw"));
        assert!(!basic_auth_matches("€", "u", "pw"));
    }

    #[test]
    fn hosts_are_canonicalised() {
        assert_eq!(canonical_host("A.Tunnel.Test:8080"), "a.tunnel.test");
        assert_eq!(canonical_host("a.tunnel.test"), "a.tunnel.test");
        assert_eq!(canonical_host("[::1]:80"), "::1");
    }

    #[test]
    fn heads_parse_and_rewrite() {
        let text =
            "GET http://x.test:81/a/b?q=1 HTTP/1.1\r\nHost: ignored\r\nX-Forwarded-For: 1.2.3.4";
        let head = Head::parse(text).unwrap();
        assert_eq!(head.host_and_path(), ("x.test:81", "/a/b"));
        let text = "GET /p?x HTTP/1.1\r\nhost: H.test\r\nX-Forwarded-For: 1.2.3.4";
        let head = Head::parse(text).unwrap();
        assert_eq!(head.host_and_path(), ("H.test", "/p"));
        assert!(Head::parse("garbage").is_none());
    }
}
