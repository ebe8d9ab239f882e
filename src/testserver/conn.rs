//! The bind port: accept, TLS sniff, yamux, and dispatch of each frp connection by its first
//! message.

use super::config::TlsMode;
use super::control;
use super::gate::Gated;
use super::shared::Inner;
use super::v2::{self, ControlWire};
use super::visitor;
use super::wire::{read_frame, BoxIo, CONN_READ_TIMEOUT};
use super::ws;
use crate::frp::Prefixed;
use frp_proto::Message;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::compat::{FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};
use tokio_util::sync::CancellationToken;

/// The custom first byte frpc may send before its ClientHello.
const CUSTOM_TLS_BYTE: u8 = 0x17;
/// First byte of a TLS handshake record.
const TLS_HANDSHAKE_BYTE: u8 = 0x16;

/// yamux stream limit; above the client's own yamux limit (`MAX_MUX_STREAMS` plus headroom),
/// so a burst of thousands of visitors never kills the session.
const MAX_STREAMS: usize = 24576;
/// rust-yamux requires at least 256 KiB per stream of connection window.
const STREAM_CREDIT: usize = 256 * 1024;

/// The self-signed certificate: the TLS acceptor, the certificate's DER and PEM, and the
/// key's PKCS#8 DER (for the QUIC listener).
pub(crate) type TestCert = (tokio_rustls::TlsAcceptor, Vec<u8>, String, Vec<u8>);

/// Generates the self-signed certificate and the acceptor.
pub(crate) fn make_tls() -> io::Result<TestCert> {
    let other = |e: &dyn std::fmt::Display| io::Error::other(e.to_string());
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".into()])
        .map_err(|e| other(&e))?;
    let der = ck.cert.der().to_vec();
    let pem = ck.cert.pem();
    let key_der = ck.key_pair.serialize_der();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der.clone()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| other(&e))?
    .with_no_client_auth()
    .with_single_cert(vec![CertificateDer::from(der.clone())], key)
    .map_err(|e| other(&e))?;
    Ok((
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        der,
        pem,
        key_der,
    ))
}

/// Accepts bind-port connections until the server is killed, then closes the listener and
/// fires `closed`.
pub(crate) async fn accept_loop(
    inner: Arc<Inner>,
    listener: TcpListener,
    closed: CancellationToken,
) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            _ = inner.cancel.cancelled() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((sock, peer)) => {
                backoff = Duration::from_millis(5);
                inner.update(|s| s.counters.connections += 1);
                let i = inner.clone();
                tokio::spawn(handle_socket(i, sock, peer));
            }
            Err(_) => {
                // EMFILE and friends: wait and retry, as Go's accept loops do.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
    drop(listener);
    closed.cancel();
}

/// Sniffs TLS, then runs yamux or a single frp connection on the socket.
///
/// Spawned without the kill wrapper so a control running inside can clean up; every phase
/// before that watches the kill token itself.
async fn handle_socket(inner: Arc<Inner>, sock: TcpStream, peer: SocketAddr) {
    let io = tokio::select! {
        _ = inner.cancel.cancelled() => return,
        io = prepare(&inner, sock) => io,
    };
    let Some(io) = io else { return };
    if inner.cfg.tcp_mux {
        tokio::select! {
            _ = inner.cancel.cancelled() => {}
            _ = run_mux(&inner, io, peer) => {}
        }
    } else {
        handle_frp_conn(inner, io, peer).await;
    }
}

/// The websocket upgrade (when the connection starts with one), the TLS sniff and handshake,
/// and a websocket inside TLS (wss); `None` closes the connection.
async fn prepare(inner: &Inner, sock: TcpStream) -> Option<BoxIo> {
    let _ = sock.set_nodelay(true);
    // A frozen server does not even look at new connections.
    inner.gate.wait_open().await;
    let io: BoxIo = Box::new(Gated::new(sock, inner.gate.clone()));
    // frps's port muxer sends `GET /~!frp` to its websocket listener, and every listener's
    // connections through the TLS sniff.
    let (io, ws) = match ws::maybe_accept(io).await? {
        Ok(ws) => (ws, true),
        Err(io) => (io, false),
    };
    if ws {
        inner.update(|s| s.counters.ws_connections += 1);
    }
    let (io, tls) = sniff_tls(inner, io).await?;
    if !tls || ws {
        return Some(io);
    }
    match ws::maybe_accept(io).await? {
        Ok(ws) => {
            inner.update(|s| s.counters.ws_connections += 1);
            Some(ws)
        }
        Err(io) => Some(io),
    }
}

/// First-byte TLS sniff: `0x17` (consumed) or `0x16` start TLS; anything else is plain unless
/// TLS is forced. Returns the stream and whether it is TLS.
async fn sniff_tls(inner: &Inner, mut io: BoxIo) -> Option<(BoxIo, bool)> {
    let Some(acceptor) = &inner.tls else {
        return Some((io, false));
    };
    let first = ws::read_some(&mut io, 1).await?;
    let io: BoxIo = match *first.first()? {
        // The marker is not part of TLS: it stays consumed.
        CUSTOM_TLS_BYTE => io,
        TLS_HANDSHAKE_BYTE => Box::new(Prefixed::new(first, io)),
        _ if inner.cfg.tls == TlsMode::Force => return None,
        _ => return Some((Box::new(Prefixed::new(first, io)), false)),
    };
    let s = tokio::time::timeout(CONN_READ_TIMEOUT, acceptor.accept(io))
        .await
        .ok()?
        .ok()?;
    inner.update(|s| s.counters.tls_connections += 1);
    Some((Box::new(s), true))
}

/// Drives one yamux server session: accepts streams and hands each to [`handle_frp_conn`].
/// The session is polled only while the server is not frozen.
async fn run_mux(inner: &Arc<Inner>, io: BoxIo, peer: SocketAddr) {
    let mut cfg = yamux::Config::default();
    // 6 GiB of window on a 64-bit target (counted, not allocated); saturating on 32 bits.
    cfg.set_max_connection_receive_window(Some(MAX_STREAMS.saturating_mul(STREAM_CREDIT)));
    cfg.set_max_num_streams(MAX_STREAMS);
    let mut conn = yamux::Connection::new(io.compat(), cfg, yamux::Mode::Server);
    loop {
        inner.gate.wait_open().await;
        let next = tokio::select! {
            next = poll_fn(|cx| conn.poll_next_inbound(cx)) => next,
            _ = inner.gate.wait_frozen() => continue,
        };
        match next {
            Some(Ok(stream)) => {
                inner.update(|s| s.counters.mux_streams += 1);
                let i = inner.clone();
                tokio::spawn(handle_frp_conn(i, Box::new(stream.compat()), peer));
            }
            Some(Err(_)) | None => break,
        }
    }
}

/// Reads the first message of a frp connection and dispatches on it. Not wrapped in the kill
/// token (controls clean up after themselves); the first read watches it.
pub(crate) async fn handle_frp_conn(inner: Arc<Inner>, mut io: BoxIo, peer: SocketAddr) {
    let first = tokio::select! {
        _ = inner.cancel.cancelled() => return,
        r = tokio::time::timeout(CONN_READ_TIMEOUT, first_message(&inner, &mut io)) => match r {
            Ok(Ok(first)) => first,
            _ => return,
        },
    };
    let v2 = first.1.is_some();
    let (first, wire) = match first {
        (msg, None) => (msg, ControlWire::V1),
        (msg, Some(None)) => (msg, ControlWire::V1),
        (msg, Some(Some(ctx))) => (msg, ControlWire::V2(ctx)),
    };
    if v2 {
        inner.update(|s| s.counters.v2_connections += 1);
    }
    // A v2 work or visitor connection answers its first frame in v2; the rest is raw.
    let side = |io: BoxIo| -> BoxIo {
        if v2 {
            Box::new(v2::FirstFrameV2::new(io))
        } else {
            io
        }
    };
    match first {
        Message::Login(login) => control::handle_login(inner, io, login, peer, wire).await,
        Message::NewWorkConn(nwc) => control::handle_work_conn(inner, side(io), nwc).await,
        Message::NewVisitorConn(m) => visitor::handle(inner, side(io), m).await,
        // Anything else: close.
        _ => {}
    }
}

/// The first message; `Some` second part for a wire v2 connection (with the crypto if it
/// opened with a ClientHello). A server configured without v2 reads the magic as a v1 type
/// byte it does not know and closes, as frps before 0.69 does.
async fn first_message(
    inner: &Inner,
    io: &mut BoxIo,
) -> io::Result<(Message, Option<Option<frp_proto::v2::CryptoContext>>)> {
    match v2::sniff(io).await? {
        Ok(()) if inner.cfg.wire_v2 => {
            let (msg, crypto) = v2::first_message(io).await?;
            Ok((msg, Some(crypto)))
        }
        Ok(()) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "message type error",
        )),
        Err(read) => {
            let msg = read_frame(&mut (&read[..]).chain(&mut *io)).await?;
            Ok((msg, None))
        }
    }
}
