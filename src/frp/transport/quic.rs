//! frp's QUIC transport (`transport.protocol = "quic"`), with quinn on the same rustls + ring
//! as the TCP transports.
//!
//! As frpc does it: one QUIC connection per session to frps's `quicBindPort`, each frp
//! connection (control, work, visitor) a bidirectional stream on it, no yamux. TLS 1.3 with
//! ALPN `frp` always; the certificate policy is the TCP one (any certificate unless a CA file
//! or a pin is given), and as in frpc the CA and client certificate files count only with
//! `tls.enable`. The server name is `tls.server_name` or the server host (no SNI for an IP).
//! `transport.quic` gives the keepalive period, the idle timeout and the streams the server
//! may open. A reconnect dials a new connection; the old one is closed with code 0, as
//! frpc's connector does.

use super::dial::{connect_any, ATTEMPT_DELAY};
use super::dns;
use super::tls::tls_config;
use crate::frp::config::{ClientConfig, TlsConfig};
use crate::frp::error::Error;
use futures::future::BoxFuture;
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{Connection, Endpoint, IdleTimeout, RecvStream, SendStream, VarInt};
use rustls::pki_types::ServerName;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// frp's ALPN protocol on QUIC (frps accepts nothing else).
pub(crate) const ALPN: &[u8] = b"frp";

/// How long a deliberate close waits for frps to acknowledge what the control stream still
/// carries (CloseProxy, FIN) before the connection goes: closing a QUIC connection discards
/// unacknowledged stream data, unlike closing a TCP socket.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Receive window of the whole connection. quinn's default is unbounded (each stream is held
/// to its own window); 64 MiB bounds what slow local services can make us buffer across all
/// streams, the same budget the yamux session has.
const CONNECTION_RECEIVE_WINDOW: u32 = 64 * 1024 * 1024;

/// Dials frps over QUIC as configured; the quinn client configuration is built once.
pub(super) struct QuicDialer {
    host: String,
    port: u16,
    server_name: String,
    client: quinn::ClientConfig,
    dial_timeout: Duration,
    local_ip: Option<IpAddr>,
    dns_server: Option<SocketAddr>,
}

impl QuicDialer {
    /// Builds the TLS and QUIC configuration from the client's settings.
    pub(super) fn new(cfg: &ClientConfig) -> Result<Self, Error> {
        let server_name = cfg
            .tls
            .server_name
            .clone()
            .unwrap_or_else(|| cfg.server_host.clone());
        if ServerName::try_from(server_name.as_str()).is_err() {
            return Err(Error::Config(format!(
                "invalid TLS server name {server_name:?}"
            )));
        }
        if cfg.transport.proxy_url.is_some() {
            // frpc dials QUIC directly whatever `transport.proxyURL` (or `http_proxy`) says.
            tracing::warn!("transport.proxyURL is not used with the quic transport");
        }
        // frpc reads the CA and client certificate files for QUIC only with `tls.enable`.
        let tls = if cfg.tls.enable {
            cfg.tls.clone()
        } else {
            let mut tls = TlsConfig::default();
            tls.pinned_sha256 = cfg.tls.pinned_sha256;
            tls
        };
        let mut rustls_cfg = tls_config(&tls)?;
        rustls_cfg.alpn_protocols = vec![ALPN.to_vec()];
        let crypto = QuicClientConfig::try_from(rustls_cfg)
            .map_err(|e| Error::Config(format!("QUIC TLS: {e}")))?;
        let mut client = quinn::ClientConfig::new(Arc::new(crypto));
        client.transport_config(Arc::new(transport_config(&cfg.transport.quic)?));
        Ok(QuicDialer {
            host: cfg.server_host.clone(),
            port: cfg.server_port,
            server_name,
            client,
            dial_timeout: cfg.dial_timeout,
            local_ip: cfg.local_ip,
            dns_server: cfg.dns_server,
        })
    }

    fn addr_text(&self) -> String {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("[{ip}]:{}", self.port),
            _ => format!("{}:{}", self.host, self.port),
        }
    }

    /// Resolves the server and completes a QUIC handshake with one of its addresses (tried
    /// in turn as for TCP, each attempt on its own UDP socket), within the dial timeout.
    pub(super) async fn connect(&self) -> Result<QuicSession, Error> {
        let addr = self.addr_text();
        let attempt = async {
            let addrs: Vec<SocketAddr> = match self.dns_server {
                Some(server) => dns::resolve(server, &self.host, self.port).await,
                None => tokio::net::lookup_host((self.host.as_str(), self.port))
                    .await
                    .map(Iterator::collect),
            }
            .map_err(|source| Error::Connect {
                addr: addr.clone(),
                source: source.into(),
            })?;
            connect_any(addrs, ATTEMPT_DELAY, |a| self.connect_one(a))
                .await
                .map_err(|e| {
                    let failure = e.get_ref().and_then(|r| r.downcast_ref::<QuicFailure>());
                    match failure {
                        // A TLS refusal (bad certificate, no common ALPN) is worth its own error.
                        Some(QuicFailure(q)) if is_crypto(q) => Error::Tls {
                            addr: addr.clone(),
                            source: io::Error::other(format!("QUIC: {q}")).into(),
                        },
                        _ => Error::Connect {
                            addr: addr.clone(),
                            source: io::Error::new(e.kind(), format!("QUIC: {e}")).into(),
                        },
                    }
                })
        };
        let (endpoint, conn) = match tokio::time::timeout(self.dial_timeout, attempt).await {
            Ok(r) => r?,
            Err(_) => return Err(Error::Timeout("connecting to the server over QUIC")),
        };
        Ok(QuicSession {
            opener: QuicOpener {
                conn,
                first: Arc::new(Mutex::new(FirstStream::NotYet)),
            },
            _endpoint: endpoint,
        })
    }

    /// One handshake with `addr`, from a fresh UDP socket of its family. A failed handshake
    /// is a [`QuicFailure`] inside the `io::Error`.
    async fn connect_one(&self, addr: SocketAddr) -> io::Result<(Endpoint, Connection)> {
        let local = match (self.local_ip, addr) {
            (Some(ip), _) => SocketAddr::new(ip, 0),
            (None, SocketAddr::V4(_)) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            (None, SocketAddr::V6(_)) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
        };
        let endpoint = Endpoint::client(local)?;
        let connecting = endpoint
            .connect_with(self.client.clone(), addr, &self.server_name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let conn = connecting
            .await
            .map_err(|e| io::Error::other(QuicFailure(e)))?;
        Ok((endpoint, conn))
    }
}

/// A QUIC handshake failure (TLS refusal, timeout, the peer's close), carried through
/// `io::Error` by the address race.
#[derive(Debug)]
struct QuicFailure(quinn::ConnectionError);

impl std::fmt::Display for QuicFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for QuicFailure {}

/// Whether the handshake failed in TLS (QUIC's CRYPTO_ERROR range, 0x100–0x1ff).
fn is_crypto(e: &quinn::ConnectionError) -> bool {
    match e {
        quinn::ConnectionError::TransportError(t) => is_crypto_code(t.code),
        quinn::ConnectionError::ConnectionClosed(c) => is_crypto_code(c.error_code),
        _ => false,
    }
}

fn is_crypto_code<C: Into<u64>>(code: C) -> bool {
    (0x100..0x200).contains(&code.into())
}

/// quinn's transport settings from frpc's `transport.quic`.
fn transport_config(
    opts: &crate::frp::transport_opts::QuicOptions,
) -> Result<quinn::TransportConfig, Error> {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(opts.keepalive_period.filter(|d| !d.is_zero()));
    let idle = IdleTimeout::try_from(opts.max_idle_timeout)
        .map_err(|_| Error::Config("transport.quic.maxIdleTimeout is too large".into()))?;
    t.max_idle_timeout(Some(idle));
    t.max_concurrent_bidi_streams(VarInt::from_u32(opts.max_incoming_streams));
    t.receive_window(VarInt::from_u32(CONNECTION_RECEIVE_WINDOW));
    Ok(t)
}

/// What the session knows about its first stream, the control stream.
enum FirstStream {
    /// No stream opened yet.
    NotYet,
    /// Resolves once frps has acknowledged all of it after our FIN (or stopped it, or the
    /// connection ended).
    Opened(BoxFuture<'static, ()>),
    /// Awaited already, or given up.
    Done,
}

/// One QUIC connection to frps. Dropping it closes the connection (code 0), which ends every
/// stream on it, as frpc's connector does when it rebuilds a session.
pub(crate) struct QuicSession {
    opener: QuicOpener,
    /// Keeps the UDP socket's driver for as long as the session lives.
    _endpoint: Endpoint,
}

impl QuicSession {
    /// A handle for opening streams from other tasks.
    pub(super) fn opener(&self) -> QuicOpener {
        self.opener.clone()
    }

    /// Resolves when the connection is gone (idle timeout, frps closed it, network error),
    /// with the reason.
    pub(super) async fn dead(&self) -> String {
        format!("QUIC connection: {}", self.opener.conn.closed().await)
    }

    /// Closes the connection after frps has acknowledged what the control stream carries
    /// (bounded by [`CLOSE_GRACE`]).
    pub(super) async fn close(self) {
        let first = {
            let mut first = self.opener.first.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::replace(&mut *first, FirstStream::Done)
        };
        if let FirstStream::Opened(acked) = first {
            let _ = tokio::time::timeout(CLOSE_GRACE, acked).await;
        }
        self.opener.conn.close(VarInt::from_u32(0), b"");
    }
}

impl Drop for QuicSession {
    fn drop(&mut self) {
        self.opener.conn.close(VarInt::from_u32(0), b"");
    }
}

/// Opens bidirectional streams on the session's connection; cloned into work tasks.
#[derive(Clone)]
pub(crate) struct QuicOpener {
    conn: Connection,
    first: Arc<Mutex<FirstStream>>,
}

impl QuicOpener {
    /// A new stream (waits for frps's stream credit, as frpc's `OpenStreamSync` does).
    pub(super) async fn open(&self) -> Result<QuicStream, Error> {
        let (send, recv) = self
            .conn
            .open_bi()
            .await
            .map_err(|e| Error::Mux(format!("QUIC: cannot open a stream: {e}")))?;
        {
            let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
            if matches!(*first, FirstStream::NotYet) {
                let stopped = send.stopped();
                *first = FirstStream::Opened(Box::pin(async move {
                    let _ = stopped.await;
                }));
            }
        }
        Ok(QuicStream::new(send, recv))
    }
}

/// One frp connection on QUIC: a bidirectional stream as one byte stream. Dropping it sends
/// FIN and, if unread data remains, STOP_SENDING (frp's close of a QUIC stream).
pub(crate) struct QuicStream {
    send: SendStream,
    recv: RecvStream,
}

impl QuicStream {
    /// Joins the two halves of a bidirectional stream.
    pub(crate) fn new(send: SendStream, recv: RecvStream) -> Self {
        QuicStream { send, recv }
    }
}

impl AsyncRead for QuicStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.recv).poll_read(cx, buf)
    }
}

impl AsyncWrite for QuicStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        AsyncWrite::poll_write(Pin::new(&mut self.send), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.send).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.send).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frp::transport_opts::QuicOptions;

    #[test]
    fn crypto_error_range() {
        assert!(is_crypto_code(0x100u64));
        assert!(is_crypto_code(0x12au64));
        assert!(!is_crypto_code(0x0au64));
        assert!(!is_crypto_code(0x200u64));
    }

    #[test]
    fn frpc_defaults_and_limits() {
        let o = QuicOptions::default();
        assert_eq!(o.keepalive_period, Some(Duration::from_secs(10)));
        assert_eq!(o.max_idle_timeout, Duration::from_secs(30));
        assert_eq!(o.max_incoming_streams, 100_000);
        assert!(transport_config(&o).is_ok());
        let huge = o.max_idle_timeout(Duration::from_secs(u64::MAX / 2));
        assert!(transport_config(&huge).is_err());
    }

    /// Without `tls.enable` frpc ignores the CA file for QUIC: a missing file is no error.
    #[test]
    fn ca_file_counts_only_with_tls_enable() {
        let mut cfg = ClientConfig::new("127.0.0.1", 7000, "t");
        cfg.tls = TlsConfig::default()
            .enable(false)
            .ca_file("/nonexistent/ca.pem");
        assert!(QuicDialer::new(&cfg).is_ok());
        cfg.tls = cfg.tls.clone().enable(true);
        assert!(matches!(QuicDialer::new(&cfg), Err(Error::Config(_))));
    }
}
