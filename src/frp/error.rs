//! Errors of the frp client engine.

use frp_proto::compress::CompressError;
use frp_proto::FrameError;
use std::io;
use std::sync::Arc;

use frp_proto::session::is_fatal_rejection;

/// Why a session, a login or a proxy failed.
///
/// `Clone` (I/O errors are shared through `Arc`) so one failure can be reported to every waiter.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration cannot work (bad CA file, empty proxy list, …).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// TCP connect failed or timed out.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// `host:port` we dialled.
        addr: String,
        /// The socket error.
        source: Arc<io::Error>,
    },
    /// The TLS handshake failed.
    #[error("TLS handshake with {addr} failed: {source}")]
    Tls {
        /// `host:port` we dialled.
        addr: String,
        /// The TLS error.
        source: Arc<io::Error>,
    },
    /// A step did not finish in time.
    #[error("timed out {0}")]
    Timeout(&'static str),
    /// The server refused the login; the text is the server's own.
    #[error("login rejected by the server: {0}")]
    LoginRejected(String),
    /// The server refused a proxy.
    #[error("proxy {name} rejected by the server: {reason}")]
    ProxyRejected {
        /// Proxy name without the user prefix.
        name: String,
        /// The server's text.
        reason: String,
    },
    /// frps refused a visitor connection (wrong secret key, no such proxy, user not allowed);
    /// the text is the server's own.
    #[error("visitor {name}: {reason}")]
    VisitorRefused {
        /// Visitor name without the user prefix.
        name: String,
        /// The server's text.
        reason: String,
    },
    /// The server said something we cannot parse, or broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The yamux session failed.
    #[error("multiplexer error: {0}")]
    Mux(String),
    /// The connection closed or failed.
    #[error("connection lost: {0}")]
    Io(Arc<io::Error>),
    /// The client was stopped.
    #[error("client stopped")]
    Stopped,
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        // Out of file descriptors: one warning per process that names the limit.
        crate::nofile::warn_once(&e);
        Error::Io(Arc::new(e))
    }
}

impl From<FrameError> for Error {
    fn from(e: FrameError) -> Self {
        Error::Protocol(e.to_string())
    }
}

impl From<CompressError> for Error {
    fn from(e: CompressError) -> Self {
        Error::Protocol(e.to_string())
    }
}

impl Error {
    /// True when retrying cannot fix this: the server rejected our credentials or the tunnel is
    /// gone. Network failures and everything else heal with time and are retried.
    pub fn is_fatal(&self) -> bool {
        match self {
            Error::Config(_) | Error::Stopped => true,
            Error::LoginRejected(reason) | Error::ProxyRejected { reason, .. } => {
                is_fatal_rejection(reason)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_are_classified() {
        assert!(Error::LoginRejected(
            "token in login doesn't match token from configuration".into()
        )
        .is_fatal());
        assert!(Error::LoginRejected("invalid binding secret".into()).is_fatal());
        assert!(Error::ProxyRejected {
            name: "t".into(),
            reason: "Tunnel not registered".into()
        }
        .is_fatal());
        assert!(!Error::ProxyRejected {
            name: "t".into(),
            reason: "proxy [u.t] already exists".into()
        }
        .is_fatal());
        assert!(!Error::Timeout("waiting for LoginResp").is_fatal());
    }
}
