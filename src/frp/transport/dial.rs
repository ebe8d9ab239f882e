//! One connection to frps: name resolution, TCP with Happy Eyeballs, the optional proxy
//! tunnel, optional TLS, the optional websocket.

use super::dns;
use super::proxy;
use super::stream::{AsyncStream, BoxStream};
use super::tls::{proxy_tls_config, tls_config, CUSTOM_TLS_FIRST_BYTE};
use super::ws::{self, Role, WsStream};
use crate::frp::config::ClientConfig;
use crate::frp::error::Error;
use crate::frp::transport_opts::{ProxyScheme, ProxyUrl, TransportProtocol};
use futures::stream::{FuturesUnordered, StreamExt};
use rustls::pki_types::ServerName;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;

/// How long a connection attempt to one address runs alone before the next address is tried
/// in parallel (RFC 8305's "Connection Attempt Delay", whose recommended value this is). A
/// name whose first address silently drops packets then costs a quarter of a second, not the
/// whole dial timeout.
pub(super) const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Read buffer under TLS on the multiplexed connection. Profiling showed about a fifth of the
/// client's CPU in `recvfrom` before it: rustls asks for 4 KiB per read.
const MUX_READ_BUF: usize = 64 * 1024;

/// Read buffer under TLS on a direct (non-mux) work connection: one full TLS record (16 KiB of
/// payload plus header and tag), so an idle pooled connection stays small.
const DIRECT_TLS_READ_BUF: usize = 17 * 1024;

/// Dials frps as configured: the address, timeouts, socket options and TLS settings of one
/// client. The TLS configuration is built once, here.
pub(super) struct Dialer {
    host: String,
    port: u16,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    custom_first_byte: bool,
    dial_timeout: Duration,
    handshake_timeout: Duration,
    keepalive: Option<Duration>,
    /// The connection will carry yamux (sizes the read buffer).
    mux: bool,
    /// Connect from this local address.
    local_ip: Option<IpAddr>,
    /// Resolve `host` through this DNS server.
    dns_server: Option<SocketAddr>,
    /// tcp, websocket or wss.
    protocol: TransportProtocol,
    /// Tunnel through this proxy.
    proxy: Option<ProxyUrl>,
    /// TLS to an `https://` proxy, under the proxy's host name.
    proxy_tls: Option<(TlsConnector, ServerName<'static>)>,
    /// wss's TLS (built whatever `tls.enable` says) and the websocket Host (the TLS name).
    wss_tls: Option<(TlsConnector, ServerName<'static>, String)>,
}

impl Dialer {
    /// Validates the transport settings and builds the TLS client configuration.
    pub(super) fn new(cfg: &ClientConfig) -> Result<Self, Error> {
        let name = cfg
            .tls
            .server_name
            .clone()
            .unwrap_or_else(|| cfg.server_host.clone());
        let connector = || -> Result<_, Error> {
            let server_name = ServerName::try_from(name.clone())
                .map_err(|_| Error::Config(format!("invalid TLS server name {name:?}")))?;
            Ok((
                TlsConnector::from(Arc::new(tls_config(&cfg.tls)?)),
                server_name,
            ))
        };
        // wss is TLS then websocket, with no second TLS inside.
        let wss = cfg.transport.protocol == TransportProtocol::Wss;
        let tls = if cfg.tls.enable && !wss {
            Some(connector()?)
        } else {
            None
        };
        let wss_tls = if wss {
            let (c, n) = connector()?;
            Some((c, n, name.clone()))
        } else {
            None
        };
        let proxy_tls = match &cfg.transport.proxy_url {
            // frpc dials QUIC without the proxy: no reason to need its CA certificates then.
            Some(p)
                if p.scheme == ProxyScheme::Https
                    && cfg.transport.protocol != TransportProtocol::Quic =>
            {
                let name = ServerName::try_from(p.host.clone()).map_err(|_| {
                    Error::Config(format!("invalid https proxy host name {:?}", p.host))
                })?;
                let tls = proxy_tls_config(cfg.transport.proxy_ca_file.as_deref())?;
                Some((TlsConnector::from(Arc::new(tls)), name))
            }
            _ => None,
        };
        Ok(Dialer {
            proxy_tls,
            host: cfg.server_host.clone(),
            port: cfg.server_port,
            tls,
            custom_first_byte: cfg.tls.custom_first_byte,
            dial_timeout: cfg.dial_timeout,
            handshake_timeout: cfg.login_timeout,
            keepalive: cfg.tcp_keepalive,
            mux: cfg.tcp_mux,
            local_ip: cfg.local_ip,
            dns_server: cfg.dns_server,
            protocol: cfg.transport.protocol,
            proxy: cfg.transport.proxy_url.clone(),
            wss_tls,
        })
    }

    fn addr_text(&self) -> String {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("[{ip}]:{}", self.port),
            _ => format!("{}:{}", self.host, self.port),
        }
    }

    /// Resolves `host` and connects to one of its addresses, all within the dial timeout.
    async fn connect_tcp(&self, host: &str, port: u16) -> io::Result<TcpStream> {
        let connect = async {
            let addrs: Vec<SocketAddr> = match self.dns_server {
                Some(server) => dns::resolve(server, host, port).await?,
                None => tokio::net::lookup_host((host, port)).await?.collect(),
            };
            connect_addrs(addrs, self.local_ip).await
        };
        match tokio::time::timeout(self.dial_timeout, connect).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
        }
    }

    /// One connection to frps as configured: TCP (to the proxy, which then tunnels to frps,
    /// when one is set), then per protocol TLS and/or the websocket.
    pub(super) async fn dial(&self) -> Result<BoxStream, Error> {
        let addr = self.addr_text();
        let tcp = match &self.proxy {
            None => self.connect_tcp(&self.host, self.port).await,
            Some(p) => self.connect_tcp(&p.host, p.port).await,
        };
        let tcp = tcp.map_err(|source| Error::Connect {
            addr: match &self.proxy {
                None => addr.clone(),
                Some(p) => format!("proxy {p} (for {addr})"),
            },
            source: source.into(),
        })?;
        // Go sets TCP_NODELAY on every connection; frp messages are small and latency-bound.
        let _ = tcp.set_nodelay(true);
        if let Some(idle) = self.keepalive {
            let ka = socket2::TcpKeepalive::new().with_time(idle);
            let _ = socket2::SockRef::from(&tcp).set_tcp_keepalive(&ka);
        }
        if self.proxy.is_none() && self.protocol == TransportProtocol::Tcp {
            return self.plain_or_tls(tcp, &addr).await;
        }
        // rustls reads the socket 4 KiB at a time and the websocket reader a frame header at
        // a time: one large buffered read serves many of them from memory.
        let read_buf = if self.mux {
            MUX_READ_BUF
        } else {
            DIRECT_TLS_READ_BUF
        };
        let io = BufReader::with_capacity(read_buf, tcp);
        let setup = async {
            match &self.proxy_tls {
                Some((connector, name)) => {
                    // https proxy: TLS to the proxy first, the tunnel and the rest inside it.
                    let tls = connector
                        .connect(name.clone(), io)
                        .await
                        .map_err(|source| Error::Tls {
                            addr: format!(
                                "proxy {} (for {addr})",
                                self.proxy
                                    .as_ref()
                                    .map(|p| p.to_string())
                                    .unwrap_or_default()
                            ),
                            source: source.into(),
                        })?;
                    self.tunnel_and_wrap(tls, &addr).await
                }
                None => self.tunnel_and_wrap(io, &addr).await,
            }
        };
        match tokio::time::timeout(self.handshake_timeout, setup).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout("setting up the connection to the server")),
        }
    }

    /// On a connection to the proxy (when one is set) or to frps: the proxy tunnel, then per
    /// protocol the websocket and/or TLS.
    async fn tunnel_and_wrap<S: AsyncStream + 'static>(
        &self,
        mut io: S,
        addr: &str,
    ) -> Result<BoxStream, Error> {
        if let Some(p) = &self.proxy {
            proxy::establish(&mut io, p, &self.host, self.port)
                .await
                .map_err(|source| Error::Connect {
                    addr: format!("{addr} through proxy {p}"),
                    source: source.into(),
                })?;
        }
        let ws_failed = |source: io::Error| Error::Connect {
            addr: addr.to_owned(),
            source: io::Error::new(source.kind(), format!("websocket: {source}")).into(),
        };
        match self.protocol {
            TransportProtocol::Websocket => {
                // frpc's Host header is the dialled `server:port`; TLS, when on, runs inside
                // the websocket.
                ws::client_handshake(&mut io, addr)
                    .await
                    .map_err(ws_failed)?;
                self.secure(WsStream::new(io, Role::Client), addr).await
            }
            TransportProtocol::Wss => {
                // TLS first whatever `tls.enable` says, without the 0x17 byte; the websocket's
                // Host is the TLS server name, without a port, as in frpc.
                let (connector, server_name, name) = self
                    .wss_tls
                    .as_ref()
                    .ok_or_else(|| Error::Config("wss needs a TLS configuration".into()))?;
                let mut tls =
                    connector
                        .connect(server_name.clone(), io)
                        .await
                        .map_err(|source| Error::Tls {
                            addr: addr.to_owned(),
                            source: source.into(),
                        })?;
                ws::client_handshake(&mut tls, name)
                    .await
                    .map_err(ws_failed)?;
                Ok(Box::new(WsStream::new(tls, Role::Client)) as BoxStream)
            }
            _ => self.secure(io, addr).await,
        }
    }

    /// TLS (with the optional `0x17` byte first) over `io` when configured, else `io` itself.
    async fn secure<S: AsyncStream + 'static>(
        &self,
        mut io: S,
        addr: &str,
    ) -> Result<BoxStream, Error> {
        let Some((connector, server_name)) = &self.tls else {
            return Ok(Box::new(io));
        };
        let handshake = async {
            if self.custom_first_byte {
                io.write_all(&[CUSTOM_TLS_FIRST_BYTE]).await?;
            }
            connector.connect(server_name.clone(), io).await
        };
        handshake
            .await
            .map(|tls| Box::new(tls) as BoxStream)
            .map_err(|source| Error::Tls {
                addr: addr.to_owned(),
                source: source.into(),
            })
    }

    /// The direct tcp transport: plain or TLS on the socket, read buffers sized for the use.
    async fn plain_or_tls(&self, tcp: TcpStream, addr: &str) -> Result<BoxStream, Error> {
        if self.tls.is_none() {
            // The yamux driver reads 256 KiB at a time, a direct work connection is read by the
            // splice in 64 KiB chunks: neither needs a buffer of its own.
            return Ok(Box::new(tcp));
        }
        // rustls reads the socket 4 KiB at a time (its deframer's fixed read size), several
        // syscalls per 16 KiB record; one large buffered read serves many of them from memory.
        let read_buf = if self.mux {
            MUX_READ_BUF
        } else {
            DIRECT_TLS_READ_BUF
        };
        let io = BufReader::with_capacity(read_buf, tcp);
        match tokio::time::timeout(self.handshake_timeout, self.secure(io, addr)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout("waiting for the TLS handshake")),
        }
    }
}

/// Connects to the first of `addrs` that answers, Happy Eyeballs style (see [`connect_any`]),
/// after interleaving the address families. No timeout of its own: the caller bounds it.
pub(super) async fn connect_addrs(
    addrs: Vec<SocketAddr>,
    local_ip: Option<IpAddr>,
) -> io::Result<TcpStream> {
    connect_any(interleave_families(addrs), ATTEMPT_DELAY, move |addr| {
        connect_from(addr, local_ip)
    })
    .await
}

/// One TCP connection, from `local_ip` when given (an address of the other family fails, as
/// Go's dialer with a local address does).
async fn connect_from(addr: SocketAddr, local_ip: Option<IpAddr>) -> io::Result<TcpStream> {
    let Some(ip) = local_ip else {
        return TcpStream::connect(addr).await;
    };
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    sock.bind(SocketAddr::new(ip, 0))?;
    sock.connect(addr).await
}

/// Reorders resolved addresses so the families alternate, starting with the family of the
/// first (the resolver's preferred) address; within a family the resolver's order is kept.
/// A broken IPv6 path then costs one attempt delay, not one per IPv6 address.
fn interleave_families(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return addrs;
    };
    let first_v6 = first.is_ipv6();
    let (preferred, other): (Vec<_>, Vec<_>) =
        addrs.into_iter().partition(|a| a.is_ipv6() == first_v6);
    let mut out = Vec::with_capacity(preferred.len() + other.len());
    let (mut preferred, mut other) = (preferred.into_iter(), other.into_iter());
    loop {
        let (a, b) = (preferred.next(), other.next());
        if a.is_none() && b.is_none() {
            break;
        }
        out.extend(a);
        out.extend(b);
    }
    out
}

/// Runs `connect` on the addresses in order, starting the next one when the previous attempts
/// have neither succeeded nor failed within `delay`, or at once when an attempt fails. The
/// first success wins and the attempts still running are dropped. If every attempt fails, the
/// first error is returned (that of the most preferred address). With no addresses at all the
/// error is `NotFound`.
pub(super) async fn connect_any<A, T, F, Fut>(
    addrs: impl IntoIterator<Item = A>,
    delay: Duration,
    mut connect: F,
) -> io::Result<T>
where
    F: FnMut(A) -> Fut,
    Fut: Future<Output = io::Result<T>>,
{
    let mut waiting = addrs.into_iter().peekable();
    let mut running = FuturesUnordered::new();
    let mut first_error: Option<io::Error> = None;
    let next_start = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(next_start);
    // Every pass through the loop follows an event that calls for the next attempt: the start,
    // a failed attempt, or an attempt that has run for `delay` without an answer.
    loop {
        if let Some(addr) = waiting.next() {
            running.push(connect(addr));
            next_start
                .as_mut()
                .reset(tokio::time::Instant::now() + delay);
        }
        if running.is_empty() {
            return Err(first_error.unwrap_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "the name has no addresses")
            }));
        }
        tokio::select! {
            Some(result) = running.next() => match result {
                Ok(conn) => return Ok(conn),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            },
            () = &mut next_start, if waiting.peek().is_some() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn connects_from_the_given_local_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let from: IpAddr = "127.0.0.2".parse().unwrap();
        let (conn, accepted) =
            tokio::join!(connect_addrs(vec![addr], Some(from)), listener.accept());
        conn.unwrap();
        assert_eq!(accepted.unwrap().1.ip(), from);
        // A local address of the other family cannot reach this one.
        let v6: IpAddr = "::1".parse().unwrap();
        assert!(connect_addrs(vec![addr], Some(v6)).await.is_err());
    }

    fn v4(last: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, last], port))
    }

    fn v6(last: u16, port: u16) -> SocketAddr {
        SocketAddr::from(([0xfd00, 0, 0, 0, 0, 0, 0, last], port))
    }

    #[test]
    fn families_alternate_from_the_preferred_one() {
        let addrs = vec![v6(1, 1), v6(2, 1), v6(3, 1), v4(1, 1), v4(2, 1)];
        assert_eq!(
            interleave_families(addrs),
            vec![v6(1, 1), v4(1, 1), v6(2, 1), v4(2, 1), v6(3, 1)]
        );
        let addrs = vec![v4(1, 1), v6(1, 1), v4(2, 1)];
        assert_eq!(
            interleave_families(addrs),
            vec![v4(1, 1), v6(1, 1), v4(2, 1)]
        );
        assert!(interleave_families(Vec::new()).is_empty());
    }

    /// Fails the test instead of hanging if `f` does not finish within 10 s.
    async fn within_10s<T>(f: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), f)
            .await
            .expect("the attempts did not finish")
    }

    /// An address that never answers holds the next one back by the attempt delay, no more.
    #[tokio::test]
    async fn a_silent_address_costs_one_attempt_delay() {
        let delay = Duration::from_millis(100);
        let start = Instant::now();
        let got = within_10s(connect_any([0u8, 1], delay, |a| async move {
            if a == 0 {
                std::future::pending::<io::Result<u8>>().await
            } else {
                Ok(a)
            }
        }))
        .await
        .unwrap();
        assert_eq!(got, 1);
        assert!(start.elapsed() >= delay);
    }

    /// A refused address moves on to the next at once, without waiting for the delay.
    #[tokio::test]
    async fn a_failed_address_moves_on_at_once() {
        let hour = Duration::from_secs(3600);
        let got = within_10s(connect_any([0u8, 1, 2], hour, |a| async move {
            match a {
                0 | 1 => Err(io::ErrorKind::ConnectionRefused.into()),
                _ => Ok(a),
            }
        }))
        .await
        .unwrap();
        assert_eq!(got, 2);
    }

    /// An earlier attempt that answers while a later one is still running wins.
    #[tokio::test]
    async fn first_success_wins() {
        let got = within_10s(connect_any(
            [0u8, 1],
            Duration::from_millis(50),
            |a| async move {
                let wait = if a == 0 { 300 } else { 60_000 };
                tokio::time::sleep(Duration::from_millis(wait)).await;
                Ok(a)
            },
        ))
        .await
        .unwrap();
        assert_eq!(got, 0);
    }

    #[tokio::test]
    async fn all_failing_returns_the_first_error() {
        let err = connect_any([0u8, 1], ATTEMPT_DELAY, |a| async move {
            Err::<(), _>(if a == 0 {
                io::Error::from(io::ErrorKind::ConnectionRefused)
            } else {
                io::Error::from(io::ErrorKind::HostUnreachable)
            })
        })
        .await
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        let err = connect_any(Vec::<u8>::new(), ATTEMPT_DELAY, |_| async { Ok(()) })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    /// A listener whose accept queue is full drops new SYNs, so a connect to it hangs the way
    /// a connect to a host that silently drops packets does. Such an address first, a good one
    /// second: the connection must come from the second well within a second, not after the
    /// kernel's SYN retries (over a minute) or the dial timeout.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_stuck_first_address_does_not_hold_the_dial() {
        use socket2::{Domain, Socket, Type};
        let stuck = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        stuck
            .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        stuck.listen(0).unwrap();
        let stuck_addr = stuck.local_addr().unwrap().as_socket().unwrap();
        // Fill the accept queue (never accepted), then check that one more connect hangs.
        let mut fillers = Vec::new();
        let mut hangs = false;
        for _ in 0..8 {
            match tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(stuck_addr))
                .await
            {
                Ok(conn) => fillers.push(conn.unwrap()),
                Err(_) => {
                    hangs = true;
                    break;
                }
            }
        }
        assert!(hangs, "a full accept queue should drop new connections");

        let good = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let good_addr = good.local_addr().unwrap();
        let start = Instant::now();
        let conn = tokio::time::timeout(
            Duration::from_secs(10),
            connect_addrs(vec![stuck_addr, good_addr], None),
        )
        .await
        .expect("the dial waited on the silent address")
        .unwrap();
        assert_eq!(conn.peer_addr().unwrap(), good_addr);
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        drop(fillers);
    }
}
