//! What the engine tells its caller: a stream of [`Event`]s and live [`Stats`].
//!
//! Lower layers never call up into the application; they publish here. Events go through a
//! broadcast channel: a slow subscriber misses old events (it sees `Lagged`) but never slows the
//! tunnel.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Something that happened to the client session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Dialling the server (attempt 1 is the first connection).
    Connecting {
        /// Attempt number since the last successful login.
        attempt: u32,
    },
    /// Login accepted.
    LoggedIn {
        /// The run id the server assigned or confirmed.
        run_id: String,
    },
    /// A proxy is registered and reachable.
    ProxyReady(ProxyReady),
    /// The server refused a proxy.
    ProxyFailed {
        /// Proxy name without the user prefix.
        name: String,
        /// The server's text.
        reason: String,
    },
    /// The session was lost; the next attempt comes after `delay`.
    Reconnecting {
        /// Attempt number of the next try.
        attempt: u32,
        /// Wait before it.
        delay: Duration,
        /// What went wrong.
        cause: String,
    },
    /// A work connection could not reach the local service.
    LocalUnreachable {
        /// Proxy name without the user prefix.
        name: String,
        /// `host:port` of the local service.
        local_addr: String,
        /// The dial error.
        error: String,
    },
    /// One HTTP exchange through a proxy with `request_log` on.
    HttpRequest(HttpRequest),
    /// The client has stopped for good.
    Stopped {
        /// Why: `None` after a requested shutdown, else the fatal error's text.
        cause: Option<String>,
    },
}

/// One request and its response, as seen in the forwarded stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Proxy name without the user prefix.
    pub proxy: String,
    /// Request method.
    pub method: String,
    /// Request target, cleaned of control characters and shortened for display.
    pub path: String,
    /// Response status.
    pub status: u16,
    /// From the request head to the end of the response.
    pub duration: Duration,
    /// Response body bytes.
    pub response_bytes: u64,
}

/// A registered proxy and where the public can reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyReady {
    /// Proxy name without the user prefix.
    pub name: String,
    /// `remote_addr` exactly as the server sent it.
    pub remote_addr: String,
    /// For http/https: `http://<first domain>[:port]` built from `remote_addr` (add a TLS edge's
    /// `https://` yourself if one fronts frps). For tcp: `None`.
    pub url: Option<String>,
    /// For tcp: the public port parsed from `remote_addr`.
    pub remote_port: Option<u16>,
}

/// Counters shared by the engine's tasks. Updated with relaxed atomics: each is independent and
/// only read for display.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub active_work_conns: AtomicU64,
    pub total_work_conns: AtomicU64,
    pub bytes_to_local: AtomicU64,
    pub bytes_from_local: AtomicU64,
    pub reconnects: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            active_work_conns: self.active_work_conns.load(Ordering::Relaxed),
            total_work_conns: self.total_work_conns.load(Ordering::Relaxed),
            bytes_to_local: self.bytes_to_local.load(Ordering::Relaxed),
            bytes_from_local: self.bytes_from_local.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
        }
    }
}

/// A snapshot of the client's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Work connections currently splicing to the local service.
    pub active_work_conns: u64,
    /// Work connections that reached the local service since start.
    pub total_work_conns: u64,
    /// Bytes from visitors to the local service.
    pub bytes_to_local: u64,
    /// Bytes from the local service to visitors.
    pub bytes_from_local: u64,
    /// Sessions re-established after a loss.
    pub reconnects: u64,
}

/// Builds a [`ProxyReady`] from the server's `remote_addr`.
///
/// http/https `remote_addr` is a comma list of `host[:port]` (no scheme, no path); the first
/// entry gives the URL. tcp's is `":port"`.
pub(crate) fn proxy_ready(name: &str, remote_addr: &str, is_vhost: bool) -> ProxyReady {
    let (url, remote_port) = if is_vhost {
        let first = remote_addr.split(',').next().unwrap_or("").trim();
        let url = (!first.is_empty()).then(|| format!("http://{first}"));
        (url, None)
    } else {
        let port = remote_addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok());
        (None, port)
    };
    ProxyReady {
        name: name.to_owned(),
        remote_addr: remote_addr.to_owned(),
        url,
        remote_port,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_addr_formats() {
        let http = proxy_ready("a", "a.tunnel.test:8080,b.example.com:8080", true);
        assert_eq!(http.url.as_deref(), Some("http://a.tunnel.test:8080"));
        let tcp = proxy_ready("t", ":37919", false);
        assert_eq!(tcp.remote_port, Some(37919));
        assert_eq!(proxy_ready("t", "garbage", false).remote_port, None);
        assert_eq!(proxy_ready("h", "", true).url, None);
    }
}
