//! frps's tcpmux port with the `httpconnect` multiplexer: a visitor sends `CONNECT host:port`,
//! the server routes it by host (and by the Proxy-Authorization user for proxies with
//! `route_by_http_user`), checks the proxy's credentials, answers `200 OK` and splices the rest
//! of the connection to a work connection of that proxy.

use super::domains::{canonical_addr, routed_domains, validate_domains};
use super::gate::Gated;
use super::shared::{ControlHandle, Inner, ProxyEntry, Registry, Route};
use super::splice::{splice, Wrapping};
use super::state::ProxyInfo;
use super::vhost::{
    basic_auth_matches, canonical_host, find_head_end, not_found, reply, response,
    serve_until_killed, Head, HEAD_TIMEOUT, MAX_HEAD_LEN,
};
use super::wire::BoxIo;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use frp_proto::msg::{NewProxy, StartWorkConn};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Registers a tcpmux proxy's routes (frps: one per domain and route-by user).
pub(super) fn register(
    inner: &Arc<Inner>,
    ctl: &Arc<ControlHandle>,
    np: NewProxy,
) -> Result<String, String> {
    if np.multiplexer != "httpconnect" {
        return Err(format!("tcpmux type [{}] not support", np.multiplexer));
    }
    validate_domains(inner, &np)?;
    let domains = routed_domains(inner, &np);
    let mut reg = inner.registry();
    if reg.proxies.contains_key(&np.proxy_name) {
        return Err(format!("proxy [{}] already exists", np.proxy_name));
    }
    let wrapping = Wrapping::for_proxy(&np, &inner.key);
    let mut routes = Vec::new();
    let mut addrs = Vec::new();
    for domain in &domains {
        let key = domain.to_ascii_lowercase();
        let user = np.route_by_http_user.clone();
        let taken = reg
            .tcpmux
            .get(&key)
            .is_some_and(|rs| rs.iter().any(|r| r.location == user))
            || routes.contains(&(key.clone(), user.clone()));
        if taken {
            return Err("router config conflict".into());
        }
        routes.push((key, user));
        addrs.push(canonical_addr(domain, inner.tcpmux_addr.port()));
    }
    for (domain, user) in &routes {
        reg.tcpmux.entry(domain.clone()).or_default().push(Route {
            location: user.clone(),
            proxy_name: np.proxy_name.clone(),
            ctl: ctl.clone(),
            wrapping: wrapping.clone(),
            http_user: np.http_user.clone(),
            http_pwd: np.http_pwd.clone(),
            host_header_rewrite: String::new(),
            headers: Default::default(),
        });
    }
    reg.proxies.insert(
        np.proxy_name.clone(),
        ProxyEntry {
            ctl: ctl.clone(),
            stop: None,
            stopped: None,
            port: None,
            routes: Vec::new(),
            tcpmux_routes: routes,
            https_domains: Vec::new(),
            secret: None,
        },
    );
    drop(reg);
    let info = ProxyInfo::registered(&np, &ctl.run_id, addrs.join(","), None, domains);
    let remote_addr = info.remote_addr.clone();
    inner.update(|s| {
        s.proxies.insert(info.name.clone(), info);
    });
    Ok(remote_addr)
}

/// Removes a closed proxy's tcpmux routes.
pub(super) fn unroute(reg: &mut Registry, e: &ProxyEntry) {
    for (domain, user) in &e.tcpmux_routes {
        if let Some(list) = reg.tcpmux.get_mut(domain) {
            // A domain and user pair belongs to one proxy only.
            list.retain(|r| r.location != *user);
            if list.is_empty() {
                reg.tcpmux.remove(domain);
            }
        }
    }
}

/// Accepts tcpmux connections until the server is killed.
pub(crate) async fn accept_loop(
    inner: Arc<Inner>,
    listener: TcpListener,
    closed: CancellationToken,
) {
    serve_until_killed(inner, listener, closed, connect_conn).await;
}

/// frps's route choice: the route for this user, else the one for any user.
fn lookup(reg: &Registry, host: &str, user: &str) -> Option<Route> {
    let routes = reg.tcpmux.get(host)?;
    routes
        .iter()
        .find(|r| !user.is_empty() && r.location == user)
        .or_else(|| routes.iter().find(|r| r.location.is_empty()))
        .cloned()
}

/// The basic-auth user of a `Proxy-Authorization` value.
fn proxy_user(head: &Head<'_>) -> String {
    let Some(value) = head.header("proxy-authorization") else {
        return String::new();
    };
    let encoded = value
        .get(..6)
        .filter(|p| p.eq_ignore_ascii_case("basic "))
        .and_then(|_| value.get(6..))
        .unwrap_or("");
    STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|text| text.split_once(':').map(|(u, _)| u.to_owned()))
        .unwrap_or_default()
}

/// One CONNECT: read the head, route, authorize, answer 200, splice.
async fn connect_conn(inner: Arc<Inner>, sock: TcpStream, peer: SocketAddr) {
    inner.update(|s| s.counters.user_conns += 1);
    let _ = sock.set_nodelay(true);
    let mut user: BoxIo = Box::new(Gated::new(sock, inner.gate.clone()));
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(end) = find_head_end(&buf) {
            break end;
        }
        if buf.len() >= MAX_HEAD_LEN {
            return;
        }
        let mut chunk = [0u8; 1024];
        match tokio::time::timeout(HEAD_TIMEOUT, user.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return,
        }
    };
    let parsed = std::str::from_utf8(&buf[..head_end - 4])
        .ok()
        .and_then(Head::parse)
        .filter(|h| h.method == "CONNECT");
    let Some(head) = parsed else {
        return;
    };
    let host = canonical_host(head.header("host").unwrap_or(head.target));
    let who = proxy_user(&head);
    let Some(route) = lookup(&inner.registry(), &host, &who) else {
        reply(user, not_found()).await;
        return;
    };
    if !(route.http_user.is_empty() && route.http_pwd.is_empty()) {
        let ok = head
            .header("proxy-authorization")
            .is_some_and(|a| basic_auth_matches(a, &route.http_user, &route.http_pwd));
        if !ok {
            let denied = response(
                "407 Proxy Authentication Required",
                "Proxy-Authenticate: Basic\r\n",
                "text/plain",
                "",
            );
            reply(user, denied).await;
            return;
        }
    }
    let start = StartWorkConn {
        proxy_name: route.proxy_name.clone(),
        src_addr: peer.ip().to_string(),
        src_port: peer.port(),
        ..Default::default()
    };
    let Some(work) = route.ctl.take_work_conn(&inner, start).await else {
        return;
    };
    if user
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        .await
        .is_err()
    {
        return;
    }
    splice(user, work, &route.wrapping, &buf[head_end..]).await;
}
