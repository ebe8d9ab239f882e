//! One connection to frps: TCP, optional TLS.

use super::stream::BoxStream;
use super::tls::{tls_config, CUSTOM_TLS_FIRST_BYTE};
use crate::frp::config::ClientConfig;
use crate::frp::error::Error;
use rustls::pki_types::ServerName;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Read buffer under the multiplexed connection (below TLS when TLS is on). Profiling showed
/// about a fifth of the client's CPU in `recvfrom` before it: rustls asks for 4 KiB per read
/// and yamux for 12 bytes per frame header.
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
}

impl Dialer {
    /// Validates the transport settings and builds the TLS client configuration.
    pub(super) fn new(cfg: &ClientConfig) -> Result<Self, Error> {
        let tls = if cfg.tls.enable {
            let name = cfg
                .tls
                .server_name
                .clone()
                .unwrap_or_else(|| cfg.server_host.clone());
            let server_name = ServerName::try_from(name.clone())
                .map_err(|_| Error::Config(format!("invalid TLS server name {name:?}")))?;
            Some((
                TlsConnector::from(Arc::new(tls_config(&cfg.tls)?)),
                server_name,
            ))
        } else {
            None
        };
        Ok(Dialer {
            host: cfg.server_host.clone(),
            port: cfg.server_port,
            tls,
            custom_first_byte: cfg.tls.custom_first_byte,
            dial_timeout: cfg.dial_timeout,
            handshake_timeout: cfg.login_timeout,
            keepalive: cfg.tcp_keepalive,
            mux: cfg.tcp_mux,
        })
    }

    fn addr_text(&self) -> String {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("[{ip}]:{}", self.port),
            _ => format!("{}:{}", self.host, self.port),
        }
    }

    /// Resolves the server name and connects, within the dial timeout.
    async fn connect_tcp(&self) -> io::Result<TcpStream> {
        let connect = TcpStream::connect((self.host.as_str(), self.port));
        match tokio::time::timeout(self.dial_timeout, connect).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
        }
    }

    /// One TCP connection, with TLS when configured.
    pub(super) async fn dial(&self) -> Result<BoxStream, Error> {
        let addr = self.addr_text();
        let tcp = self.connect_tcp().await.map_err(|source| Error::Connect {
            addr: addr.clone(),
            source: source.into(),
        })?;
        // Go sets TCP_NODELAY on every connection; frp messages are small and latency-bound.
        let _ = tcp.set_nodelay(true);
        if let Some(idle) = self.keepalive {
            let ka = socket2::TcpKeepalive::new().with_time(idle);
            let _ = socket2::SockRef::from(&tcp).set_tcp_keepalive(&ka);
        }
        let Some((connector, server_name)) = &self.tls else {
            if self.mux {
                // yamux reads every frame as a 12-byte header and then its body: without a
                // buffer that is two syscalls per frame.
                return Ok(Box::new(BufReader::with_capacity(MUX_READ_BUF, tcp)));
            }
            // A direct work connection is read by the splice in 64 KiB chunks already.
            return Ok(Box::new(tcp));
        };
        // rustls reads the socket 4 KiB at a time (its deframer's fixed read size), several
        // syscalls per 16 KiB record; one large buffered read serves many of them from memory.
        let read_buf = if self.mux {
            MUX_READ_BUF
        } else {
            DIRECT_TLS_READ_BUF
        };
        let handshake = async {
            let mut tcp = BufReader::with_capacity(read_buf, tcp);
            if self.custom_first_byte {
                tcp.write_all(&[CUSTOM_TLS_FIRST_BYTE]).await?;
            }
            connector.connect(server_name.clone(), tcp).await
        };
        match tokio::time::timeout(self.handshake_timeout, handshake).await {
            Ok(Ok(tls)) => Ok(Box::new(tls)),
            Ok(Err(source)) => Err(Error::Tls {
                addr,
                source: source.into(),
            }),
            Err(_) => Err(Error::Timeout("waiting for the TLS handshake")),
        }
    }
}
