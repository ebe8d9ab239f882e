//! Proxies: registration (NewProxy / CloseProxy) and tcp listeners.

use super::domains::{canonical_addr, routed_domains, validate_domains};
use super::gate::Gated;
use super::shared::{ControlHandle, Inner, ProxyEntry, Registry, Route, SecretProxy};
use super::splice::{splice, Wrapping};
use super::state::ProxyInfo;
use super::udp;
use super::wire::BoxIo;
use frp_proto::msg::{NewProxy, NewProxyResp, StartWorkConn};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::{CancellationToken, DropGuard};

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
        "tcp" | "http" | "udp" | "stcp" | "sudp" | "xtcp" => {}
        "tcpmux" => return crate::testserver::tcpmux::register(inner, ctl, np),
        "https" => return crate::testserver::https::register(inner, ctl, np),
        other => return Err(format!("unknown proxy type: {other}")),
    }
    if np.proxy_type == "http" {
        validate_domains(inner, &np)?;
    }
    let wrapping = Wrapping::for_proxy(&np, &inner.key);
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
                tcpmux_routes: Vec::new(),
                https_domains: Vec::new(),
                secret: None,
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
        ProxyInfo::registered(&np, &ctl.run_id, format!(":{port}"), Some(port), Vec::new())
    } else if np.proxy_type == "udp" {
        let socket = bind_udp(inner, &np)?;
        let port = socket.local_addr().map_err(|e| e.to_string())?.port();
        let stop = inner.cancel.child_token();
        let stopped = CancellationToken::new();
        reg.proxies.insert(
            np.proxy_name.clone(),
            ProxyEntry {
                ctl: ctl.clone(),
                stop: Some(stop.clone()),
                stopped: Some(stopped.clone()),
                port: None,
                routes: Vec::new(),
                tcpmux_routes: Vec::new(),
                https_domains: Vec::new(),
                secret: None,
            },
        );
        let proxy = udp::UdpProxy {
            socket,
            name: np.proxy_name.clone(),
            ctl: ctl.clone(),
            wrapping: wrapping.clone(),
            packet_size: inner.cfg.udp_packet_size,
            _stopped: stopped.drop_guard(),
        };
        tokio::spawn(udp::run(inner.clone(), proxy, stop));
        ProxyInfo::registered(&np, &ctl.run_id, format!(":{port}"), Some(port), Vec::new())
    } else if matches!(np.proxy_type.as_str(), "stcp" | "sudp" | "xtcp") {
        // frps: an empty allow list means the owner's own user only.
        let allow_users = if np.allow_users.is_empty() {
            let owner = inner
                .state
                .borrow()
                .controls
                .get(&ctl.run_id)
                .map(|c| c.user.clone());
            vec![owner.unwrap_or_default()]
        } else {
            np.allow_users.clone()
        };
        reg.proxies.insert(
            np.proxy_name.clone(),
            ProxyEntry {
                ctl: ctl.clone(),
                stop: None,
                stopped: None,
                port: None,
                routes: Vec::new(),
                tcpmux_routes: Vec::new(),
                https_domains: Vec::new(),
                secret: Some(SecretProxy {
                    sk: np.sk.clone(),
                    allow_users,
                    ctl: ctl.clone(),
                    xtcp: np.proxy_type == "xtcp",
                    wrapping: wrapping.clone(),
                }),
            },
        );
        ProxyInfo::registered(&np, &ctl.run_id, String::new(), None, Vec::new())
    } else {
        let locations = if np.locations.is_empty() {
            vec![String::new()]
        } else {
            np.locations.clone()
        };
        let domains = routed_domains(inner, &np);
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
                tcpmux_routes: Vec::new(),
                https_domains: Vec::new(),
                secret: None,
            },
        );
        ProxyInfo::registered(&np, &ctl.run_id, addrs.join(","), None, domains)
    };
    drop(reg);
    let remote_addr = info.remote_addr.clone();
    inner.update(|s| {
        s.proxies.insert(info.name.clone(), info);
    });
    Ok(remote_addr)
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

/// Binds a udp proxy's socket: the fixed port, or any free one. (frps keeps udp ports in their
/// own table; the test double only asks the OS.)
fn bind_udp(inner: &Inner, np: &NewProxy) -> Result<tokio::net::UdpSocket, String> {
    let port = u16::try_from(np.remote_port).map_err(|_| "port not allowed".to_string())?;
    let sock = std::net::UdpSocket::bind(SocketAddr::new(inner.cfg.bind.ip(), port))
        .map_err(|_| "port unavailable".to_string())?;
    sock.set_nonblocking(true).map_err(|e| e.to_string())?;
    tokio::net::UdpSocket::from_std(sock).map_err(|e| e.to_string())
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
    super::tcpmux::unroute(reg, e);
    super::https::unroute(reg, e);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_addr_drops_port_80() {
        assert_eq!(canonical_addr("a.test", 80), "a.test");
        assert_eq!(canonical_addr("a.test", 8080), "a.test:8080");
    }
}
