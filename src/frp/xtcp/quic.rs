//! QUIC over the punched socket, configured as frpc configures it for xtcp: ALPN `frp`, the
//! proxy's end a server with a fresh self-signed certificate, the visitor's end a client that
//! accepts any certificate (the secret key protected the punch; the certificate proves
//! nothing either way), keepalive 10 s, idle timeout 30 s, up to 100000 streams.

use super::super::config::TlsConfig;
use super::super::error::Error;
use super::super::transport::client_tls_config;
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{Endpoint, EndpointConfig, IdleTimeout, TokioRuntime, VarInt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;

/// frp's ALPN for xtcp's QUIC.
const ALPN: &[u8] = b"frp";

/// frpc's `transport.quic` defaults, which its xtcp QUIC uses.
const KEEPALIVE: Duration = Duration::from_secs(10);
const MAX_IDLE: Duration = Duration::from_secs(30);
const MAX_STREAMS: u32 = 100_000;

fn transport() -> Result<quinn::TransportConfig, Error> {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(KEEPALIVE));
    t.max_idle_timeout(Some(
        IdleTimeout::try_from(MAX_IDLE).map_err(|e| Error::Config(e.to_string()))?,
    ));
    t.max_concurrent_bidi_streams(VarInt::from_u32(MAX_STREAMS));
    Ok(t)
}

/// The proxy's end: a QUIC server endpoint on the punched socket.
pub(super) fn server(socket: UdpSocket) -> Result<Endpoint, Error> {
    let config = server_config()?;
    let socket = socket.into_std()?;
    Ok(Endpoint::new(
        EndpointConfig::default(),
        Some(config),
        socket,
        Arc::new(TokioRuntime),
    )?)
}

#[cfg(feature = "xtcp")]
fn server_config() -> Result<quinn::ServerConfig, Error> {
    use quinn::crypto::rustls::QuicServerConfig;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let fail = |e: &dyn std::fmt::Display| Error::Config(format!("xtcp QUIC TLS: {e}"));
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).map_err(|e| fail(&e))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .map_err(|e| fail(&e))?
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .map_err(|e| fail(&e))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicServerConfig::try_from(tls).map_err(|e| fail(&e))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(transport()?));
    Ok(config)
}

/// Without the `xtcp` feature there is no certificate generator for the server end.
#[cfg(not(feature = "xtcp"))]
fn server_config() -> Result<quinn::ServerConfig, Error> {
    Err(Error::Config(
        "xtcp proxies need expose's `xtcp` feature (the QUIC tunnel's self-signed certificate)"
            .into(),
    ))
}

/// The visitor's end: a QUIC connection to `peer` over the punched socket.
pub(super) async fn connect(
    socket: UdpSocket,
    peer: SocketAddr,
) -> Result<(Endpoint, quinn::Connection), Error> {
    let fail = |e: &dyn std::fmt::Display| Error::Protocol(format!("dial quic error: {e}"));
    let mut tls = client_tls_config(&TlsConfig::default())?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicClientConfig::try_from(tls).map_err(|e| fail(&e))?;
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    client.transport_config(Arc::new(transport()?));
    let endpoint = Endpoint::new(
        EndpointConfig::default(),
        None,
        socket.into_std()?,
        Arc::new(TokioRuntime),
    )?;
    // frpc names the peer by its address; an IP sends no SNI.
    let connecting = endpoint
        .connect_with(client, peer, &peer.ip().to_string())
        .map_err(|e| fail(&e))?;
    let conn = connecting.await.map_err(|e| fail(&e))?;
    Ok((endpoint, conn))
}
