//! The local traffic inspector (feature `inspect`): a small web server showing the exchanges
//! recorded in a [`CaptureStore`] live, with their heads and bodies, replaying them against the
//! local service, and serving `/metrics`.
//!
//! Routes: `GET /` (the page; its script and style are embedded in the binary), `GET
//! /api/requests`, `GET /api/requests/{id}`, `POST /api/requests/{id}/replay`, `GET
//! /api/events` (server-sent events: one `request` event per new record), `GET /metrics`.
//! See `docs/inspector.md`.
//!
//! The server binds loopback by default; `Authorization`, `Cookie`, `Set-Cookie` and
//! `Proxy-Authorization` values are masked in everything it serves unless
//! [`Options::secrets`] is set.

pub mod metrics;
mod present;
mod replay;
mod server;

pub use present::{Options, MASK};
pub use replay::Edits;

use crate::capture::CaptureStore;
use crate::frp::ClientHandle;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The default address: `127.0.0.1:4040`.
pub const DEFAULT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 4040);

/// How many ports after a taken one are tried.
pub const PORT_TRIES: u16 = 20;

/// Listens on `addr`, or on the next free port after it (up to [`PORT_TRIES`] more) if it is
/// taken. Port 0 lets the system choose.
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let mut last = None;
    for offset in 0..=PORT_TRIES {
        let Some(port) = addr.port().checked_add(offset) else {
            break;
        };
        match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(l) => return Ok(l),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && addr.port() != 0 => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse)))
}

/// A running inspector.
pub struct Inspector {
    addr: SocketAddr,
    stop: CancellationToken,
}

impl Inspector {
    /// Serves `store` (and the metrics of `client`, once set with `client`) on `listener` until
    /// the returned inspector is dropped.
    pub fn start(
        listener: TcpListener,
        store: Arc<CaptureStore>,
        client: Arc<std::sync::OnceLock<ClientHandle>>,
        options: Options,
    ) -> io::Result<Inspector> {
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let state = Arc::new(server::State {
            store,
            client,
            options,
            loopback: addr.ip().is_loopback(),
        });
        tokio::spawn(server::run(listener, state, stop.clone()));
        Ok(Inspector { addr, stop })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` for the banner (an unspecified address shows as loopback).
    pub fn url(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        }
        format!("http://{addr}")
    }
}

impl Drop for Inspector {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
