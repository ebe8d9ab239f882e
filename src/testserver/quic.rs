//! The QUIC listener, as frps's `quicBindPort`: the server's self-signed certificate with
//! ALPN `frp`, frp's QUIC defaults (keepalive 10 s, idle timeout 30 s, 100000 incoming
//! streams), and every bidirectional stream handled like a bind-port frp connection (control,
//! work or visitor by its first message, wire v1 or v2). No yamux and no TLS sniff on it.

use super::conn::handle_frp_conn;
use super::gate::Gated;
use super::shared::Inner;
use crate::frp::quic::{QuicStream, ALPN};
use quinn::crypto::rustls::QuicServerConfig;
use quinn::{Endpoint, IdleTimeout, VarInt};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a killed server waits for its QUIC connections to finish closing before it says
/// the listener is closed.
const DRAIN_WAIT: Duration = Duration::from_secs(2);

/// Binds the QUIC endpoint on `addr` with the server certificate; a fixed port still held by
/// a just-killed server is retried for a few seconds, as the TCP listeners are.
pub(crate) async fn bind(
    addr: SocketAddr,
    cert_der: &[u8],
    key_der: &[u8],
) -> io::Result<Endpoint> {
    let config = server_config(cert_der, key_der)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match Endpoint::server(config.clone(), addr) {
            Err(e)
                if e.kind() == io::ErrorKind::AddrInUse
                    && addr.port() != 0
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
}

fn server_config(cert_der: &[u8], key_der: &[u8]) -> io::Result<quinn::ServerConfig> {
    let other = |e: &dyn std::fmt::Display| io::Error::other(e.to_string());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der.to_vec()));
    let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .map_err(|e| other(&e))?
    .with_no_client_auth()
    .with_single_cert(vec![CertificateDer::from(cert_der.to_vec())], key)
    .map_err(|e| other(&e))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicServerConfig::try_from(tls).map_err(|e| other(&e))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(Duration::from_secs(10)));
    transport.max_idle_timeout(Some(
        IdleTimeout::try_from(Duration::from_secs(30)).map_err(|e| other(&e))?,
    ));
    transport.max_concurrent_bidi_streams(VarInt::from_u32(100_000));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// Accepts QUIC connections until the server is killed, then closes every connection, waits
/// briefly for them to finish closing and fires `closed`.
pub(crate) async fn accept_loop(inner: Arc<Inner>, endpoint: Endpoint, closed: CancellationToken) {
    loop {
        let incoming = tokio::select! {
            _ = inner.cancel.cancelled() => break,
            i = endpoint.accept() => match i {
                Some(i) => i,
                None => break,
            },
        };
        tokio::spawn(serve_connection(inner.clone(), incoming));
    }
    endpoint.close(VarInt::from_u32(0), b"server stopped");
    let _ = tokio::time::timeout(DRAIN_WAIT, endpoint.wait_idle()).await;
    drop(endpoint);
    closed.cancel();
}

/// Completes the handshake, then hands every stream the client opens to the frp connection
/// dispatcher, as frps's QUIC listener does.
async fn serve_connection(inner: Arc<Inner>, incoming: quinn::Incoming) {
    let conn = tokio::select! {
        _ = inner.cancel.cancelled() => return,
        c = incoming => match c {
            Ok(c) => c,
            Err(_) => return,
        },
    };
    let peer = conn.remote_address();
    inner.update(|s| s.counters.quic_connections += 1);
    loop {
        let accepted = tokio::select! {
            _ = inner.cancel.cancelled() => break,
            a = conn.accept_bi() => a,
        };
        let Ok((send, recv)) = accepted else { break };
        inner.update(|s| s.counters.quic_streams += 1);
        let io = Gated::new(QuicStream::new(send, recv), inner.gate.clone());
        tokio::spawn(handle_frp_conn(inner.clone(), Box::new(io), peer));
    }
    // frps closes a connection whose stream accept failed.
    conn.close(VarInt::from_u32(0), b"");
}
