//! The certificate the TLS-terminating plugins serve (https2http, https2https, tls2raw), and
//! tls2raw itself.
//!
//! As frpc: `crtPath` and `keyPath` (PEM) when both are set, otherwise a self-signed
//! certificate without names, made when the proxy starts (ECDSA P-256
//! where frpc makes RSA 2048; clients that accept a self-signed certificate accept either). No
//! client certificates are asked for.

use super::config::PluginConfig;
use super::conn::{PluginConn, Visitor};
use crate::frp::error::Error;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

/// The TLS server configuration for `config`, offering `alpn` (most preferred first). Errors
/// read as Go's `tls.LoadX509KeyPair` (`open PATH: no such file or directory`, `tls: failed
/// to find any PEM data in certificate input`), which frpc shows as the proxy's start error.
pub(super) fn server_config(
    config: &PluginConfig,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ServerConfig>, String> {
    let (certs, key) =
        if config.crt_path.as_os_str().is_empty() || config.key_path.as_os_str().is_empty() {
            self_signed()?
        } else {
            load(config)?
        };
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| format!("tls: {e}"))?;
    server.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(server))
}

type Pair = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn self_signed() -> Result<Pair, String> {
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = rcgen::CertificateParams::new(Vec::<String>::new())
        .and_then(|p| p.self_signed(&key))
        .map_err(|e| e.to_string())?;
    Ok((
        vec![cert.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    ))
}

/// Go's `os.ReadFile` error text.
fn read(path: &std::path::Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
            _ => e.to_string(),
        };
        format!("open {}: {why}", path.display())
    })
}

/// The certificate chain and key files: small PEM files, read on the control task when the
/// proxy starts.
fn load(config: &PluginConfig) -> Result<Pair, String> {
    let cert_pem = read(&config.crt_path)?;
    let key_pem = read(&config.key_path)?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls: {e}"))?;
    if certs.is_empty() {
        return Err("tls: failed to find any PEM data in certificate input".into());
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| format!("tls: {e}"))?
        .ok_or_else(|| "tls: failed to find any PEM data in key input".to_owned())?;
    Ok((certs, key))
}

/// The tls2raw plugin of one proxy: TLS from the visitor ends here, the plain bytes go to
/// `localAddr`.
pub(super) struct Tls2Raw {
    acceptor: TlsAcceptor,
    local_addr: String,
}

impl Tls2Raw {
    pub(super) fn new(config: &PluginConfig) -> Result<Self, String> {
        Ok(Tls2Raw {
            acceptor: TlsAcceptor::from(server_config(config, &[])?),
            local_addr: config.local_addr.clone(),
        })
    }

    /// The handshake, the dial, then the join.
    pub(super) async fn handle(&self, conn: PluginConn, visitor: Visitor) -> Result<(), Error> {
        let tls = match self.acceptor.accept(conn).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(proxy = %visitor.proxy, "tls handshake error: {e}");
                return Ok(());
            }
        };
        let local = match TcpStream::connect(self.local_addr.as_str()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(proxy = %visitor.proxy, "dial to local addr error: {e}");
                return Ok(());
            }
        };
        let _ = local.set_nodelay(true);
        super::conn::join(tls, local).await?;
        Ok(())
    }
}
