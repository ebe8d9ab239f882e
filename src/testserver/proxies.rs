//! Forward proxies on loopback for tests of frpc's `transport.proxyURL`: an HTTP proxy that
//! answers `CONNECT` (optionally with basic auth), the same inside TLS (an `https://` proxy,
//! with the test server's kind of self-signed certificate) and a SOCKS5 proxy (optionally
//! with username/password). Each tunnel is a plain byte copy to the requested address.

use super::conn::make_tls;
use super::wire::BoxIo;
use crate::frp::ws::read_head;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// Which proxy protocol a [`TestProxy`] speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyProtocol {
    /// HTTP `CONNECT host:port`, basic auth in `Proxy-Authorization`.
    HttpConnect,
    /// SOCKS5 (RFC 1928), username/password auth (RFC 1929).
    Socks5,
    /// TLS (a self-signed certificate for `localhost` and `127.0.0.1`, see
    /// [`TestProxy::cert_pem`]), then HTTP `CONNECT` as [`ProxyProtocol::HttpConnect`].
    HttpsConnect,
}

/// What a [`TestProxy`] has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Tunnels opened (handshake done and the target connected).
    pub tunnels: u64,
    /// Requests refused for missing or wrong credentials.
    pub auth_failures: u64,
}

#[derive(Default)]
struct Counters {
    tunnels: AtomicU64,
    auth_failures: AtomicU64,
}

/// A running forward proxy on 127.0.0.1. Dropping it closes the listener and every tunnel.
pub struct TestProxy {
    addr: SocketAddr,
    protocol: ProxyProtocol,
    auth: Option<(String, String)>,
    counters: Arc<Counters>,
    cancel: CancellationToken,
    cert_pem: String,
}

impl std::fmt::Debug for TestProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestProxy")
            .field("addr", &self.addr)
            .field("protocol", &self.protocol)
            .field("auth", &self.auth.is_some())
            .finish()
    }
}

impl TestProxy {
    /// Starts a proxy on a free loopback port; with `auth` every client must present that
    /// user and password.
    pub async fn start(protocol: ProxyProtocol, auth: Option<(&str, &str)>) -> io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let addr = listener.local_addr()?;
        let auth = auth.map(|(u, p)| (u.to_owned(), p.to_owned()));
        let counters = Arc::new(Counters::default());
        let cancel = CancellationToken::new();
        let (acceptor, _, cert_pem, _) = make_tls()?;
        let tls = (protocol == ProxyProtocol::HttpsConnect).then_some(acceptor);
        let (a, c, k) = (auth.clone(), counters.clone(), cancel.clone());
        tokio::spawn(async move {
            loop {
                let sock = tokio::select! {
                    _ = k.cancelled() => break,
                    r = listener.accept() => match r {
                        Ok((sock, _)) => sock,
                        Err(_) => continue,
                    },
                };
                let (a, c, k, t) = (a.clone(), c.clone(), k.clone(), tls.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        _ = k.cancelled() => {}
                        _ = serve(protocol, sock, t, a, c) => {}
                    }
                });
            }
        });
        Ok(TestProxy {
            addr,
            protocol,
            auth,
            counters,
            cancel,
            cert_pem,
        })
    }

    /// PEM of the proxy's certificate (an `https://` proxy), for a client's CA file.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy URL for `transport.proxyURL`, with this proxy's credentials when it has any.
    pub fn url(&self) -> String {
        match &self.auth {
            Some((u, p)) => self.url_with(u, p),
            None => format!("{}://{}", self.scheme(), self.addr),
        }
    }

    /// The proxy URL with the given credentials (to test wrong ones).
    pub fn url_with(&self, user: &str, password: &str) -> String {
        format!("{}://{user}:{password}@{}", self.scheme(), self.addr)
    }

    fn scheme(&self) -> &'static str {
        match self.protocol {
            ProxyProtocol::HttpConnect => "http",
            ProxyProtocol::Socks5 => "socks5",
            ProxyProtocol::HttpsConnect => "https",
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> ProxyStats {
        ProxyStats {
            tunnels: self.counters.tunnels.load(Ordering::Relaxed),
            auth_failures: self.counters.auth_failures.load(Ordering::Relaxed),
        }
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// One client connection: TLS for an https proxy, the handshake, then the tunnel until
/// either side closes.
async fn serve(
    protocol: ProxyProtocol,
    sock: TcpStream,
    tls: Option<TlsAcceptor>,
    auth: Option<(String, String)>,
    counters: Arc<Counters>,
) -> io::Result<()> {
    let _ = sock.set_nodelay(true);
    let mut client: BufReader<BoxIo> = match tls {
        Some(acceptor) => BufReader::new(Box::new(acceptor.accept(sock).await?)),
        None => BufReader::new(Box::new(sock)),
    };
    let target = match protocol {
        ProxyProtocol::HttpConnect | ProxyProtocol::HttpsConnect => {
            http_handshake(&mut client, &auth, &counters).await?
        }
        ProxyProtocol::Socks5 => socks5_handshake(&mut client, &auth, &counters).await?,
    };
    let Some(mut upstream) = target else {
        return Ok(());
    };
    let _ = upstream.set_nodelay(true);
    counters.tunnels.fetch_add(1, Ordering::Relaxed);
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

async fn http_handshake(
    client: &mut BufReader<BoxIo>,
    auth: &Option<(String, String)>,
    counters: &Counters,
) -> io::Result<Option<TcpStream>> {
    use base64::Engine;
    let head = read_head(client).await?;
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let parsed = matches!(req.parse(&head), Ok(httparse::Status::Complete(_)));
    let (Some("CONNECT"), Some(target), true) = (req.method, req.path, parsed) else {
        client
            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            .await?;
        return Ok(None);
    };
    if let Some((user, pass)) = auth {
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        );
        let given = req
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("Proxy-Authorization"))
            .map(|h| h.value);
        if given != Some(want.as_bytes()) {
            counters.auth_failures.fetch_add(1, Ordering::Relaxed);
            client
                .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
                .await?;
            return Ok(None);
        }
    }
    match TcpStream::connect(target).await {
        Ok(up) => {
            client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await?;
            Ok(Some(up))
        }
        Err(_) => {
            client
                .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                .await?;
            Ok(None)
        }
    }
}

async fn socks5_handshake(
    client: &mut BufReader<BoxIo>,
    auth: &Option<(String, String)>,
    counters: &Counters,
) -> io::Result<Option<TcpStream>> {
    let mut hello = [0u8; 2];
    client.read_exact(&mut hello).await?;
    if hello[0] != 5 {
        return Ok(None);
    }
    let mut methods = vec![0u8; usize::from(hello[1])];
    client.read_exact(&mut methods).await?;
    let want = if auth.is_some() { 2 } else { 0 };
    if !methods.contains(&want) {
        if auth.is_some() {
            counters.auth_failures.fetch_add(1, Ordering::Relaxed);
        }
        client.write_all(&[5, 0xff]).await?;
        return Ok(None);
    }
    client.write_all(&[5, want]).await?;
    if let Some((user, pass)) = auth {
        let mut ver_len = [0u8; 2];
        client.read_exact(&mut ver_len).await?;
        let mut u = vec![0u8; usize::from(ver_len[1])];
        client.read_exact(&mut u).await?;
        let plen = client.read_u8().await?;
        let mut p = vec![0u8; usize::from(plen)];
        client.read_exact(&mut p).await?;
        if ver_len[0] != 1 || u != user.as_bytes() || p != pass.as_bytes() {
            counters.auth_failures.fetch_add(1, Ordering::Relaxed);
            client.write_all(&[1, 1]).await?;
            return Ok(None);
        }
        client.write_all(&[1, 0]).await?;
    }
    let mut req = [0u8; 4];
    client.read_exact(&mut req).await?;
    if req[..3] != [5, 1, 0] {
        client.write_all(&[5, 7, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
        return Ok(None);
    }
    let host = match req[3] {
        1 => {
            let mut ip = [0u8; 4];
            client.read_exact(&mut ip).await?;
            std::net::IpAddr::from(ip).to_string()
        }
        4 => {
            let mut ip = [0u8; 16];
            client.read_exact(&mut ip).await?;
            std::net::IpAddr::from(ip).to_string()
        }
        3 => {
            let len = client.read_u8().await?;
            let mut name = vec![0u8; usize::from(len)];
            client.read_exact(&mut name).await?;
            String::from_utf8_lossy(&name).into_owned()
        }
        _ => {
            client.write_all(&[5, 8, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
            return Ok(None);
        }
    };
    let port = client.read_u16().await?;
    match TcpStream::connect((host.as_str(), port)).await {
        Ok(up) => {
            client.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]).await?;
            Ok(Some(up))
        }
        Err(_) => {
            client.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
            Ok(None)
        }
    }
}
