//! frps's HTTPS vhost: reads the TLS ClientHello of a visitor, routes it by its server name
//! (exact domain, then `*.` wildcards as the HTTP vhost) to an https proxy, and splices the
//! untouched bytes, ClientHello included, to a work connection: the TLS session is between the
//! visitor and the local service.

use super::domains::{canonical_addr, routed_domains, validate_domains};
use super::gate::Gated;
use super::shared::{ControlHandle, Inner, ProxyEntry, Registry, Route};
use super::splice::{splice, Wrapping};
use super::state::ProxyInfo;
use super::vhost::{serve_until_killed, HEAD_TIMEOUT};
use super::wire::BoxIo;
use frp_proto::msg::{NewProxy, StartWorkConn};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// A TLS record header plus the largest record body.
const MAX_HELLO: usize = 5 + 16 * 1024;

/// Registers an https proxy's domains.
pub(super) fn register(
    inner: &Arc<Inner>,
    ctl: &Arc<ControlHandle>,
    np: NewProxy,
) -> Result<String, String> {
    validate_domains(inner, &np)?;
    let domains = routed_domains(inner, &np);
    let mut reg = inner.registry();
    if reg.proxies.contains_key(&np.proxy_name) {
        return Err(format!("proxy [{}] already exists", np.proxy_name));
    }
    let keys: Vec<String> = domains.iter().map(|d| d.to_ascii_lowercase()).collect();
    if keys.iter().any(|k| reg.https.contains_key(k)) {
        return Err("router config conflict".into());
    }
    let wrapping = Wrapping::for_proxy(&np, &inner.key);
    for key in &keys {
        reg.https.insert(
            key.clone(),
            Route {
                location: String::new(),
                proxy_name: np.proxy_name.clone(),
                ctl: ctl.clone(),
                wrapping: wrapping.clone(),
                http_user: String::new(),
                http_pwd: String::new(),
                host_header_rewrite: String::new(),
                headers: Default::default(),
            },
        );
    }
    reg.proxies.insert(
        np.proxy_name.clone(),
        ProxyEntry {
            ctl: ctl.clone(),
            stop: None,
            stopped: None,
            port: None,
            routes: Vec::new(),
            tcpmux_routes: Vec::new(),
            https_domains: keys,
            secret: None,
        },
    );
    drop(reg);
    let remote_addr = domains
        .iter()
        .map(|d| canonical_addr(d, inner.https_addr.port()))
        .collect::<Vec<_>>()
        .join(",");
    let info = ProxyInfo::registered(&np, &ctl.run_id, remote_addr.clone(), None, domains);
    inner.update(|s| {
        s.proxies.insert(info.name.clone(), info);
    });
    Ok(remote_addr)
}

/// Removes a closed proxy's https domains.
pub(super) fn unroute(reg: &mut Registry, e: &ProxyEntry) {
    for domain in &e.https_domains {
        reg.https.remove(domain);
    }
}

/// Accepts HTTPS vhost connections until the server is killed.
pub(crate) async fn accept_loop(
    inner: Arc<Inner>,
    listener: TcpListener,
    closed: CancellationToken,
) {
    serve_until_killed(inner, listener, closed, tls_conn).await;
}

/// The route for a server name: exact, then `*.` wildcards from the left, then `*`.
fn lookup(reg: &Registry, host: &str) -> Option<Route> {
    if let Some(r) = reg.https.get(host) {
        return Some(r.clone());
    }
    let mut labels: Vec<&str> = host.split('.').collect();
    while labels.len() >= 3 {
        labels[0] = "*";
        if let Some(r) = reg.https.get(&labels.join(".")) {
            return Some(r.clone());
        }
        labels.remove(0);
    }
    reg.https.get("*").cloned()
}

/// One visitor: read the first TLS record, route by its server name, splice.
async fn tls_conn(inner: Arc<Inner>, sock: TcpStream, peer: SocketAddr) {
    inner.update(|s| s.counters.user_conns += 1);
    let _ = sock.set_nodelay(true);
    let mut user: BoxIo = Box::new(Gated::new(sock, inner.gate.clone()));
    let mut buf = Vec::with_capacity(1024);
    let name = loop {
        match server_name(&buf) {
            Hello::Name(name) => break name,
            Hello::Invalid => return,
            Hello::Incomplete if buf.len() >= MAX_HELLO => return,
            Hello::Incomplete => {}
        }
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout(HEAD_TIMEOUT, user.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return,
        }
    };
    let Some(route) = lookup(&inner.registry(), &name.to_ascii_lowercase()) else {
        return;
    };
    let start = StartWorkConn {
        proxy_name: route.proxy_name.clone(),
        src_addr: peer.ip().to_string(),
        src_port: peer.port(),
        ..Default::default()
    };
    let Some(work) = route.ctl.take_work_conn(&inner, start).await else {
        return;
    };
    splice(user, work, &route.wrapping, &buf).await;
}

/// What the bytes read so far say about the ClientHello.
#[derive(Debug, PartialEq, Eq)]
enum Hello {
    Incomplete,
    Invalid,
    Name(String),
}

/// The server name of a ClientHello in the first TLS record of `buf`.
fn server_name(buf: &[u8]) -> Hello {
    if buf.len() < 5 {
        return Hello::Incomplete;
    }
    if buf[0] != 0x16 {
        return Hello::Invalid;
    }
    let len = usize::from(u16::from_be_bytes([buf[3], buf[4]]));
    let Some(record) = buf.get(5..5 + len) else {
        return Hello::Incomplete;
    };
    parse_hello(record).map_or(Hello::Invalid, Hello::Name)
}

/// The `server_name` extension of a handshake message holding a ClientHello.
fn parse_hello(msg: &[u8]) -> Option<String> {
    let mut r = Reader(msg);
    if r.u8()? != 1 {
        return None;
    }
    let body_len = r.u24()?;
    let body = r.take(body_len)?;
    let mut r = Reader(body);
    r.take(2 + 32)?; // version, random
    let session = usize::from(r.u8()?);
    r.take(session)?;
    let suites = r.u16()?;
    r.take(suites)?;
    let compressions = usize::from(r.u8()?);
    r.take(compressions)?;
    let extensions = r.u16()?;
    let mut ext = Reader(r.take(extensions)?);
    while !ext.0.is_empty() {
        let kind = ext.u16()?;
        let len = ext.u16()?;
        let data = ext.take(len)?;
        if kind == 0 {
            let mut list = Reader(data);
            let list_len = list.u16()?;
            let mut names = Reader(list.take(list_len)?);
            while !names.0.is_empty() {
                let name_type = names.u8()?;
                let name_len = names.u16()?;
                let name = names.take(name_len)?;
                if name_type == 0 {
                    return String::from_utf8(name.to_vec()).ok();
                }
            }
        }
    }
    None
}

/// Big-endian reads that fail instead of panicking on short input.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u16(&mut self) -> Option<usize> {
        let b = self.take(2)?;
        Some(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    fn u24(&mut self) -> Option<usize> {
        let b = self.take(3)?;
        Some((usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]))
    }
}

/// A minimal TLS ClientHello record naming `host` (for tests).
pub fn client_hello(host: &str) -> Vec<u8> {
    let name = host.as_bytes();
    let mut sni = Vec::new();
    sni.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
    sni.push(0);
    sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sni.extend_from_slice(name);
    let mut ext = vec![0, 0];
    ext.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    ext.extend_from_slice(&sni);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7u8; 32]);
    body.push(0); // no session id
    body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one cipher suite
    body.extend_from_slice(&[1, 0]); // null compression
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 3, 1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_name_of_a_client_hello() {
        let hello = client_hello("Site.Example.test");
        assert_eq!(server_name(&hello), Hello::Name("Site.Example.test".into()));
        for cut in 0..hello.len() {
            assert_eq!(server_name(&hello[..cut]), Hello::Incomplete, "{cut}");
        }
        assert_eq!(server_name(b"GET / HTTP/1.1\r\n"), Hello::Invalid);
        let mut broken = hello.clone();
        broken[5] = 2; // not a ClientHello
        assert_eq!(server_name(&broken), Hello::Invalid);
    }
}
