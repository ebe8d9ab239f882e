//! Proxies: registration (NewProxy / CloseProxy), tcp listeners, and the HTTP vhost.

use super::control::ControlHandle;
use super::gate::Gated;
use super::splice::{close, splice, Wrapping};
use super::state::ProxyInfo;
use super::{BoxIo, Inner};
use frp_proto::msg::{NewProxy, NewProxyResp, StartWorkConn, StringMap};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::{CancellationToken, DropGuard};

/// Largest HTTP request head the vhost reads before routing.
const MAX_HEAD_LEN: usize = 64 * 1024;

/// How long the vhost waits for a request head (frps's `vhostHTTPTimeout` is 60 s).
const HEAD_TIMEOUT: Duration = Duration::from_secs(60);

/// Server-wide proxy and routing tables.
#[derive(Default)]
pub(crate) struct Registry {
    /// Live controls by run id.
    pub(crate) controls: HashMap<String, Arc<ControlHandle>>,
    /// Live proxies by name (global across controls, as in frps).
    proxies: HashMap<String, ProxyEntry>,
    /// Lowercased domain → routes, sorted by location descending (longest prefix first for
    /// nested locations), as frps's vhost router.
    vhosts: HashMap<String, Vec<Route>>,
    /// Last port of each tcp proxy name, so a re-login gets the same port if it is free.
    port_memory: HashMap<String, u16>,
}

struct ProxyEntry {
    ctl: Arc<ControlHandle>,
    /// tcp: stops the accept loop.
    stop: Option<CancellationToken>,
    /// tcp: fired once the listener is closed.
    stopped: Option<CancellationToken>,
    port: Option<u16>,
    /// http: (lowercased domain, location) pairs registered in `vhosts`.
    routes: Vec<(String, String)>,
}

/// Where an HTTP request goes and how it is rewritten.
#[derive(Clone)]
struct Route {
    location: String,
    proxy_name: String,
    ctl: Arc<ControlHandle>,
    wrapping: Wrapping,
    http_user: String,
    http_pwd: String,
    host_header_rewrite: String,
    headers: StringMap,
}

/// Binds a listener with SO_REUSEADDR (so a port closed moments ago can be bound again),
/// synchronously, so it can happen under the registry lock.
fn bind_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let sock = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(1024)
}

/// A listener whose drop fires a token, so closing a proxy can wait until its port is free
/// (fields drop in order: the listener first).
struct OwnedListener {
    listener: TcpListener,
    _stopped: DropGuard,
}

/// Handles NewProxy on a control and returns the answer.
pub(crate) fn new_proxy(
    inner: &Arc<Inner>,
    ctl: &Arc<ControlHandle>,
    np: NewProxy,
) -> NewProxyResp {
    let name = np.proxy_name.clone();
    let hook = inner.hooks().new_proxy.clone();
    let result = match hook.and_then(|h| h(&np).err()) {
        Some(reason) => Err(reason),
        None => register(inner, ctl, np),
    };
    match &result {
        Ok(addr) => tracing::debug!(proxy = %name, remote_addr = %addr, "test server: new proxy"),
        Err(error) => tracing::debug!(proxy = %name, %error, "test server: proxy refused"),
    }
    match result {
        Ok(remote_addr) => NewProxyResp {
            proxy_name: name,
            remote_addr,
            error: String::new(),
        },
        Err(error) => NewProxyResp {
            proxy_name: name,
            remote_addr: String::new(),
            error,
        },
    }
}

fn register(
    inner: &Arc<Inner>,
    ctl: &Arc<ControlHandle>,
    mut np: NewProxy,
) -> Result<String, String> {
    if np.proxy_type.is_empty() {
        np.proxy_type = "tcp".into();
    }
    match np.proxy_type.as_str() {
        "tcp" | "http" => {}
        "udp" | "https" | "stcp" | "sudp" | "xtcp" | "tcpmux" => {
            return Err(format!(
                "type [{}] not supported by the test server",
                np.proxy_type
            ))
        }
        other => return Err(format!("unknown proxy type: {other}")),
    }
    if np.proxy_type == "http" {
        validate_domains(inner, &np)?;
    }
    let wrapping = Wrapping {
        encryption: np.use_encryption.then(|| inner.key.clone()),
        compression: np.use_compression,
    };
    let mut reg = inner.registry();
    if reg.proxies.contains_key(&np.proxy_name) {
        return Err(format!("proxy [{}] already exists", np.proxy_name));
    }
    let info = if np.proxy_type == "tcp" {
        let listener = bind_tcp(inner, &reg, &np)?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        reg.port_memory.insert(np.proxy_name.clone(), port);
        let stop = inner.cancel.child_token();
        let stopped = CancellationToken::new();
        let owned = OwnedListener {
            listener,
            _stopped: stopped.clone().drop_guard(),
        };
        reg.proxies.insert(
            np.proxy_name.clone(),
            ProxyEntry {
                ctl: ctl.clone(),
                stop: Some(stop.clone()),
                stopped: Some(stopped),
                port: Some(port),
                routes: Vec::new(),
            },
        );
        let i = inner.clone();
        tokio::spawn(tcp_accept_loop(
            i,
            owned,
            stop,
            np.proxy_name.clone(),
            ctl.clone(),
            wrapping.clone(),
        ));
        ProxyInfo {
            name: np.proxy_name.clone(),
            proxy_type: np.proxy_type.clone(),
            run_id: ctl.run_id.clone(),
            remote_addr: format!(":{port}"),
            remote_port: Some(port),
            domains: Vec::new(),
            use_encryption: np.use_encryption,
            use_compression: np.use_compression,
        }
    } else {
        let locations = if np.locations.is_empty() {
            vec![String::new()]
        } else {
            np.locations.clone()
        };
        let mut domains: Vec<String> = np
            .custom_domains
            .iter()
            .filter(|d| !d.is_empty())
            .cloned()
            .collect();
        if !np.subdomain.is_empty() {
            domains.push(format!("{}.{}", np.subdomain, inner.cfg.subdomain_host));
        }
        let mut routes = Vec::new();
        let mut addrs = Vec::new();
        for domain in &domains {
            let key = domain.to_ascii_lowercase();
            for location in &locations {
                let taken = reg
                    .vhosts
                    .get(&key)
                    .is_some_and(|rs| rs.iter().any(|r| &r.location == location))
                    || routes.contains(&(key.clone(), location.clone()));
                if taken {
                    return Err("router config conflict".into());
                }
                routes.push((key.clone(), location.clone()));
                addrs.push(canonical_addr(domain, inner.vhost_public_port()));
            }
        }
        for (domain, location) in &routes {
            let list = reg.vhosts.entry(domain.clone()).or_default();
            list.push(Route {
                location: location.clone(),
                proxy_name: np.proxy_name.clone(),
                ctl: ctl.clone(),
                wrapping: wrapping.clone(),
                http_user: np.http_user.clone(),
                http_pwd: np.http_pwd.clone(),
                host_header_rewrite: np.host_header_rewrite.clone(),
                headers: np.headers.clone(),
            });
            list.sort_by(|a, b| b.location.cmp(&a.location));
        }
        reg.proxies.insert(
            np.proxy_name.clone(),
            ProxyEntry {
                ctl: ctl.clone(),
                stop: None,
                stopped: None,
                port: None,
                routes,
            },
        );
        ProxyInfo {
            name: np.proxy_name.clone(),
            proxy_type: np.proxy_type.clone(),
            run_id: ctl.run_id.clone(),
            remote_addr: addrs.join(","),
            remote_port: None,
            domains,
            use_encryption: np.use_encryption,
            use_compression: np.use_compression,
        }
    };
    drop(reg);
    let remote_addr = info.remote_addr.clone();
    inner.update(|s| {
        s.proxies.insert(info.name.clone(), info);
    });
    Ok(remote_addr)
}

/// frps's domain checks for http proxies, with its error texts.
fn validate_domains(inner: &Inner, np: &NewProxy) -> Result<(), String> {
    let host = &inner.cfg.subdomain_host;
    for domain in &np.custom_domains {
        if !host.is_empty()
            && host.split('.').count() < domain.split('.').count()
            && domain.contains(host.as_str())
        {
            return Err(format!(
                "custom domain [{domain}] should not belong to subdomain host [{host}]"
            ));
        }
    }
    if !np.subdomain.is_empty() {
        if host.is_empty() {
            return Err(
                "subdomain is not supported because this feature is not enabled in server".into(),
            );
        }
        if np.subdomain.contains('.') || np.subdomain.contains('*') {
            return Err("'.' and '*' are not supported in subdomain".into());
        }
    }
    Ok(())
}

/// `host:port`, or just `host` when the port is 80 (frps's `CanonicalAddr`).
fn canonical_addr(host: &str, port: u16) -> String {
    if port == 80 {
        host.to_string()
    } else {
        format!("{host}:{port}")
    }
}

/// Binds a tcp proxy's port following frps's port manager: a fixed port must not belong to
/// another live proxy ("port already used") and must be bindable ("port unavailable"); port 0
/// reuses the port this name had before if it is free, else any free port.
fn bind_tcp(inner: &Inner, reg: &Registry, np: &NewProxy) -> Result<TcpListener, String> {
    let ip: IpAddr = inner.cfg.bind.ip();
    let in_use = |port: u16| reg.proxies.values().any(|p| p.port == Some(port));
    if np.remote_port != 0 {
        let port = u16::try_from(np.remote_port).map_err(|_| "port not allowed".to_string())?;
        if in_use(port) {
            return Err("port already used".into());
        }
        return bind_listener(SocketAddr::new(ip, port)).map_err(|_| "port unavailable".into());
    }
    if let Some(&port) = reg.port_memory.get(&np.proxy_name) {
        if !in_use(port) {
            if let Ok(l) = bind_listener(SocketAddr::new(ip, port)) {
                return Ok(l);
            }
        }
    }
    bind_listener(SocketAddr::new(ip, 0)).map_err(|_| "no available port".into())
}

/// Removes one proxy of `ctl` (CloseProxy); unknown names or other controls' proxies are
/// ignored, as frps does. Returns once the proxy's port is closed.
pub(crate) async fn close_proxy(inner: &Inner, ctl: &ControlHandle, name: &str) {
    let entry = {
        let mut reg = inner.registry();
        let owned = reg
            .proxies
            .get(name)
            .is_some_and(|e| std::ptr::eq(Arc::as_ptr(&e.ctl), ctl));
        if !owned {
            return;
        }
        let entry = reg.proxies.remove(name);
        if let Some(e) = &entry {
            unroute(&mut reg, e);
        }
        entry
    };
    if let Some(e) = entry {
        stop_entry(e).await;
    }
    inner.update(|s| {
        s.proxies.remove(name);
    });
}

/// Removes every proxy of a finishing control.
pub(crate) async fn close_all_of(inner: &Inner, ctl: &Arc<ControlHandle>) {
    let entries: Vec<(String, ProxyEntry)> = {
        let mut reg = inner.registry();
        let names: Vec<String> = reg
            .proxies
            .iter()
            .filter(|(_, e)| Arc::ptr_eq(&e.ctl, ctl))
            .map(|(n, _)| n.clone())
            .collect();
        let mut out = Vec::new();
        for n in names {
            if let Some(e) = reg.proxies.remove(&n) {
                unroute(&mut reg, &e);
                out.push((n, e));
            }
        }
        out
    };
    let names: Vec<String> = entries.iter().map(|(n, _)| n.clone()).collect();
    for (_, e) in entries {
        stop_entry(e).await;
    }
    if !names.is_empty() {
        inner.update(|s| {
            for n in &names {
                s.proxies.remove(n);
            }
        });
    }
}

fn unroute(reg: &mut Registry, e: &ProxyEntry) {
    for (domain, location) in &e.routes {
        if let Some(list) = reg.vhosts.get_mut(domain) {
            list.retain(|r| &r.location != location);
            if list.is_empty() {
                reg.vhosts.remove(domain);
            }
        }
    }
}

async fn stop_entry(e: ProxyEntry) {
    if let Some(stop) = e.stop {
        stop.cancel();
    }
    if let Some(stopped) = e.stopped {
        stopped.cancelled().await;
    }
}

/// Accepts user connections on a tcp proxy's port until the proxy is closed or the server
/// killed. Connections already spliced outlive the proxy, as in frps.
async fn tcp_accept_loop(
    inner: Arc<Inner>,
    owned: OwnedListener,
    stop: CancellationToken,
    name: String,
    ctl: Arc<ControlHandle>,
    wrapping: Wrapping,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            r = owned.listener.accept() => r,
        };
        match accepted {
            Ok((sock, peer)) => {
                let i = inner.clone();
                inner.spawn(tcp_user_conn(
                    i,
                    sock,
                    peer,
                    name.clone(),
                    ctl.clone(),
                    wrapping.clone(),
                ));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

async fn tcp_user_conn(
    inner: Arc<Inner>,
    sock: TcpStream,
    peer: SocketAddr,
    name: String,
    ctl: Arc<ControlHandle>,
    wrapping: Wrapping,
) {
    inner.update(|s| s.counters.user_conns += 1);
    let _ = sock.set_nodelay(true);
    let local = sock.local_addr().ok();
    let user: BoxIo = Box::new(Gated::new(sock, inner.gate.clone()));
    let start = StartWorkConn {
        proxy_name: name,
        src_addr: peer.ip().to_string(),
        src_port: peer.port(),
        dst_addr: local.map(|a| a.ip().to_string()).unwrap_or_default(),
        dst_port: local.map(|a| a.port()).unwrap_or_default(),
        error: String::new(),
    };
    if let Some(work) = ctl.take_work_conn(&inner, start).await {
        splice(user, work, &wrapping, &[]).await;
    }
}

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

/// Standard base64 with padding (for comparing basic-auth credentials).
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
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
    let expected = base64(format!("{user}:{pwd}").as_bytes());
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
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
    }

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
        assert_eq!(canonical_addr("a.test", 80), "a.test");
        assert_eq!(canonical_addr("a.test", 8080), "a.test:8080");
    }
}
