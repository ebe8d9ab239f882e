//! Per-proxy counters for metrics: connections, bytes and HTTP requests of each proxy.
//!
//! Updated once per work connection (looked up by name when it starts, bytes added when it
//! ends) and once per HTTP exchange, never per chunk: the splice's own per-connection tally is
//! added here when the connection closes, so a long-lived connection's bytes appear when it
//! ends (the engine-wide [`super::Stats`] byte counters are live).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Upper bounds (seconds) of the HTTP request-duration histogram buckets; a last `+Inf` bucket
/// is implied.
pub const HTTP_DURATION_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The live counters of one proxy.
#[derive(Debug, Default)]
pub(crate) struct ProxyCounters {
    pub open_conns: AtomicU64,
    pub total_conns: AtomicU64,
    pub bytes_to_local: AtomicU64,
    pub bytes_from_local: AtomicU64,
    pub http_requests: AtomicU64,
    /// Non-cumulative counts per bucket of [`HTTP_DURATION_BUCKETS`], then `+Inf`.
    http_buckets: [AtomicU64; HTTP_DURATION_BUCKETS.len() + 1],
    http_duration_micros: AtomicU64,
}

impl ProxyCounters {
    /// Counts one completed HTTP exchange.
    pub(crate) fn observe_http(&self, duration: Duration) {
        self.http_requests.fetch_add(1, Ordering::Relaxed);
        let secs = duration.as_secs_f64();
        let i = HTTP_DURATION_BUCKETS
            .iter()
            .position(|&le| secs <= le)
            .unwrap_or(HTTP_DURATION_BUCKETS.len());
        if let Some(b) = self.http_buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        self.http_duration_micros
            .fetch_add(micros, Ordering::Relaxed);
    }

    fn snapshot(&self, name: &str) -> ProxyStats {
        let http_buckets = HTTP_DURATION_BUCKETS
            .iter()
            .chain(std::iter::once(&f64::INFINITY))
            .zip(&self.http_buckets)
            .map(|(&le, count)| (le, count.load(Ordering::Relaxed)))
            .collect();
        ProxyStats {
            name: name.to_owned(),
            open_conns: self.open_conns.load(Ordering::Relaxed),
            total_conns: self.total_conns.load(Ordering::Relaxed),
            bytes_to_local: self.bytes_to_local.load(Ordering::Relaxed),
            bytes_from_local: self.bytes_from_local.load(Ordering::Relaxed),
            http_requests: self.http_requests.load(Ordering::Relaxed),
            http_buckets,
            http_duration_sum: Duration::from_micros(
                self.http_duration_micros.load(Ordering::Relaxed),
            ),
        }
    }
}

/// The counters of every proxy that had a connection, by name (without the user prefix).
#[derive(Debug, Default)]
pub(crate) struct ProxyTable(Mutex<BTreeMap<String, Arc<ProxyCounters>>>);

impl ProxyTable {
    /// The counters of `name`, made on first use.
    pub(crate) fn get(&self, name: &str) -> Arc<ProxyCounters> {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = map.get(name) {
            return c.clone();
        }
        let c = Arc::new(ProxyCounters::default());
        map.insert(name.to_owned(), c.clone());
        c
    }

    pub(crate) fn snapshot(&self) -> Vec<ProxyStats> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.iter().map(|(name, c)| c.snapshot(name)).collect()
    }
}

/// A snapshot of one proxy's counters.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ProxyStats {
    /// Proxy name without the user prefix.
    pub name: String,
    /// Work connections splicing to the local service now.
    pub open_conns: u64,
    /// Work connections that reached the local service since start.
    pub total_conns: u64,
    /// Bytes from visitors to the local service, of connections that have ended.
    pub bytes_to_local: u64,
    /// Bytes from the local service to visitors, of connections that have ended.
    pub bytes_from_local: u64,
    /// HTTP exchanges completed (proxies whose requests are observed).
    pub http_requests: u64,
    /// Counts per bucket (not cumulative): each upper bound of [`HTTP_DURATION_BUCKETS`], then
    /// `f64::INFINITY`.
    pub http_buckets: Vec<(f64, u64)>,
    /// Sum of all exchange durations.
    pub http_duration_sum: Duration,
}

/// Engine-wide figures beyond [`super::Stats`], for metrics.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Metrics {
    /// Login attempts that did not end logged in (dial, TLS, or refused login).
    pub login_failures: u64,
    /// Work connections waiting in frps's pool for a visitor.
    pub pooled_work_conns: u64,
    /// Per proxy, in name order.
    pub proxies: Vec<ProxyStats>,
}
