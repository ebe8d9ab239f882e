//! Reaching frps: TCP (directly or through an HTTP/SOCKS5 proxy), optional TLS, optional
//! websocket, optional yamux; or QUIC.
//!
//! A [`Session`] is one logical connection to frps from which frp connections (the control
//! connection, work connections) are opened:
//! - with tcpMux (frp's default) it is one TCP(+TLS) connection carrying a yamux client session;
//!   each frp connection is a yamux stream. One driver task owns the socket and reads it
//!   continuously, so frps's keepalive pings are answered within its 10 s deadline even when no
//!   stream is busy;
//! - without tcpMux every frp connection is its own TCP(+TLS) connection;
//! - with QUIC (whatever tcpMux says, as in frpc) it is one QUIC connection and each frp
//!   connection a bidirectional QUIC stream.
//!
//! Inside, one role per module, each depending only on those listed before it:
//! - `yamux`: our yamux client (frame codec, windows, driver), O(1) per stream opened;
//! - `stream`: [`BoxStream`] and the yamux stream wrapper;
//! - `tls`: the rustls client configuration and certificate policy;
//! - `dns`: resolving the server name through a given DNS server (frpc's `dnsServer`);
//! - `ws`: frp's websocket transport (handshake and frame codec, both ends);
//! - `proxy`: the HTTP CONNECT and SOCKS5 tunnels of `transport.proxyURL`;
//! - `dial`: name resolution, TCP with Happy Eyeballs, the proxy tunnel, TLS, the websocket;
//! - `mux`: the yamux session and its driver task;
//! - `quic`: the QUIC connection (quinn), its streams, frp's ALPN and timers;
//! - this module: [`Connector`], [`Session`] and [`Opener`], which tie them together.

mod dial;
mod dns;
mod mux;
/// Used by the client plugins and the test server only.
#[cfg(any(feature = "plugins", feature = "testserver"))]
pub(crate) mod prefixed;
mod proxy;
/// The stream type is shared with the test server's QUIC listener.
pub(crate) mod quic;
mod stream;
mod tls;
pub(crate) mod ws;
mod yamux;

pub use mux::MAX_MUX_STREAMS;
pub use stream::BoxStream;
pub(crate) use stream::MuxStream;
pub use tls::parse_fingerprint;
/// The frps TLS client policy, reused by the plugins that speak HTTPS to a local service and
/// by xtcp's QUIC tunnel (any certificate accepted, signatures checked).
pub(crate) use tls::tls_config as client_tls_config;

use super::config::ClientConfig;
use super::error::Error;
use super::transport_opts::TransportProtocol;
use dial::Dialer;
use mux::{MuxOpener, MuxSession};
use quic::{QuicDialer, QuicOpener, QuicSession};
use std::sync::Arc;

/// Dials frps as configured. Cheap to clone; the TLS configuration is built once.
#[derive(Clone)]
pub(crate) struct Connector {
    dialer: Arc<Dialer>,
    tcp_mux: bool,
    /// Set for the quic transport, which replaces both the dialer and tcpMux.
    quic: Option<Arc<QuicDialer>>,
}

impl Connector {
    /// Validates the transport settings and builds the TLS client configuration.
    pub(crate) fn new(cfg: &ClientConfig) -> Result<Self, Error> {
        let quic = match cfg.transport.protocol {
            TransportProtocol::Quic => Some(Arc::new(QuicDialer::new(cfg)?)),
            _ => None,
        };
        Ok(Connector {
            dialer: Arc::new(Dialer::new(cfg)?),
            tcp_mux: cfg.tcp_mux,
            quic,
        })
    }

    /// Opens a session: the QUIC connection, the yamux connection (tcpMux) or nothing yet
    /// (each stream dials).
    pub(crate) async fn connect(&self) -> Result<Session, Error> {
        if let Some(quic) = &self.quic {
            Ok(Session::Quic(quic.connect().await?))
        } else if self.tcp_mux {
            let io = self.dialer.dial().await?;
            Ok(Session::Mux(MuxSession::start(io)))
        } else {
            Ok(Session::Direct(self.clone()))
        }
    }
}

/// A logical connection to frps, from which frp connections are opened.
pub(crate) enum Session {
    /// yamux over one connection.
    Mux(MuxSession),
    /// One TCP(+TLS) connection per frp connection.
    Direct(Connector),
    /// Streams on one QUIC connection.
    Quic(QuicSession),
}

impl Session {
    /// A handle for opening streams from other tasks.
    pub(crate) fn opener(&self) -> Opener {
        match self {
            Session::Mux(m) => Opener::Mux(m.opener()),
            Session::Direct(c) => Opener::Direct(c.clone()),
            Session::Quic(q) => Opener::Quic(q.opener()),
        }
    }

    /// Resolves when the session can no longer carry streams (mux and QUIC; a direct session
    /// has no shared state, its control connection's EOF is the signal).
    pub(crate) async fn dead(&self) -> String {
        match self {
            Session::Mux(m) => m.dead().await,
            Session::Direct(_) => std::future::pending().await,
            Session::Quic(q) => q.dead().await,
        }
    }

    /// Whether its streams share one connection whose end [`Session::dead`] reports.
    pub(crate) fn is_shared(&self) -> bool {
        !matches!(self, Session::Direct(_))
    }

    /// Ends the session after writing out what is queued on it (mux, QUIC); a direct session
    /// has nothing of its own to close.
    pub(crate) async fn close(self) {
        match self {
            Session::Mux(m) => m.close().await,
            Session::Direct(_) => {}
            Session::Quic(q) => q.close().await,
        }
    }
}

/// Opens frp connections on a session; cloned into every work-connection task.
#[derive(Clone)]
pub(crate) enum Opener {
    /// Ask the yamux driver for a stream.
    Mux(MuxOpener),
    /// Dial a new connection.
    Direct(Connector),
    /// Open a QUIC stream.
    Quic(QuicOpener),
}

impl Opener {
    /// A new frp connection to the server.
    pub(crate) async fn open(&self) -> Result<BoxStream, Error> {
        match self {
            Opener::Mux(m) => m.open().await.map(|s| Box::new(s) as BoxStream),
            Opener::Direct(c) => c.dialer.dial().await,
            Opener::Quic(q) => q.open().await.map(|s| Box::new(s) as BoxStream),
        }
    }
}

#[cfg(test)]
mod tests;
