//! TLS towards frps, as Go frpc does it: no ALPN, SNI from the configured name or the host
//! (none for an IP literal), optionally the `0x17` byte before the ClientHello, and by default
//! a verifier that accepts any certificate, because frps's default certificate is self-signed
//! and nameless. Handshake signatures are still checked, and a CA file or a pinned fingerprint
//! turns real verification on.

use crate::frp::config::TlsConfig;
use crate::frp::error::Error;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The byte frpc may send before the TLS ClientHello so that frps, which serves plain and TLS
/// connections on one port, knows TLS follows without sniffing.
pub(super) const CUSTOM_TLS_FIRST_BYTE: u8 = 0x17;

/// The rustls client configuration for `tls`.
pub(crate) fn tls_config(tls: &TlsConfig) -> Result<rustls::ClientConfig, Error> {
    // One explicit provider: no reliance on a process-wide default (which panics when absent).
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let webpki = match &tls.ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                Error::Config(format!("cannot read CA file {}: {e}", path.display()))
            })?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| {
                    Error::Config(format!("bad certificate in {}: {e}", path.display()))
                })?;
                roots.add(cert).map_err(|e| {
                    Error::Config(format!("bad certificate in {}: {e}", path.display()))
                })?;
            }
            if roots.is_empty() {
                return Err(Error::Config(format!(
                    "no certificates in CA file {}",
                    path.display()
                )));
            }
            let verifier =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| Error::Config(format!("CA file {}: {e}", path.display())))?;
            Some(verifier)
        }
        None => None,
    };
    let verifier = Arc::new(FrpsVerifier {
        webpki,
        pin: tls.pinned_sha256,
        provider: provider.clone(),
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match &tls.client_cert {
        Some((cert_path, key_path)) => {
            let cert_pem = std::fs::read(cert_path)
                .map_err(|e| Error::Config(format!("cannot read {}: {e}", cert_path.display())))?;
            let key_pem = std::fs::read(key_path)
                .map_err(|e| Error::Config(format!("cannot read {}: {e}", key_path.display())))?;
            let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    Error::Config(format!("bad certificate {}: {e}", cert_path.display()))
                })?;
            let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
                .map_err(|e| Error::Config(format!("bad key {}: {e}", key_path.display())))?
                .ok_or_else(|| {
                    Error::Config(format!("no private key in {}", key_path.display()))
                })?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| Error::Config(format!("client certificate: {e}")))?
        }
        None => builder.with_no_client_auth(),
    };
    // No ALPN: Go frpc sends none over TCP (the captures confirm it).
    Ok(config)
}

/// The certificate files Go reads for the system's CA certificates on Linux and the BSDs
/// (macOS keeps one at the last path too); `SSL_CERT_FILE` replaces the list, as in Go.
const SYSTEM_CA_FILES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The rustls client configuration for TLS to an `https://` proxy: full WebPKI verification
/// of the proxy under its host name, against `ca_file` when given, else the system's CA
/// certificates (`SSL_CERT_FILE`, or the first of [`SYSTEM_CA_FILES`] that exists), as Go's
/// default TLS configuration does for frpc.
pub(super) fn proxy_tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, Error> {
    let path = match ca_file {
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os("SSL_CERT_FILE") {
            Some(p) => PathBuf::from(p),
            None => SYSTEM_CA_FILES
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file())
                .ok_or_else(|| {
                    Error::Config(
                        "no system CA certificates found to verify the https proxy (set SSL_CERT_FILE)"
                            .into(),
                    )
                })?,
        },
    };
    let pem = std::fs::read(&path)
        .map_err(|e| Error::Config(format!("cannot read CA file {}: {e}", path.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    // A system bundle may hold a certificate rustls cannot use; the others still count.
    let (added, _ignored) =
        roots.add_parsable_certificates(rustls_pemfile::certs(&mut pem.as_slice()).flatten());
    if added == 0 {
        return Err(Error::Config(format!(
            "no usable certificates in CA file {}",
            path.display()
        )));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Server-certificate policy: WebPKI against a CA file when given, a SHA-256 pin when given,
/// otherwise accept any certificate. Handshake signatures are verified in every case, so the
/// peer must hold the key of the certificate it presents.
#[derive(Debug)]
struct FrpsVerifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    pin: Option<[u8; 32]>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for FrpsVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(pin) = &self.pin {
            let digest = Sha256::digest(end_entity.as_ref());
            if digest.as_slice() != pin {
                return Err(rustls::Error::General(
                    "server certificate does not match the pinned SHA-256 fingerprint".into(),
                ));
            }
        }
        match &self.webpki {
            Some(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Parses a SHA-256 fingerprint written as hex, with or without `:` separators.
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let hex: Vec<u8> = text.bytes().filter(|b| *b != b':').collect();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}
