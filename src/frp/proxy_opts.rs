//! Per-proxy runtime options beyond the address: the bandwidth limit and the health check of
//! the local service (the PROXY protocol version is `frp_proto`'s
//! [`Version`](frp_proto::proxy_protocol::Version)).

use std::time::Duration;

/// frp's unit sizes: `KB` and `MB` are binary (1024, 1024²).
const KB: f64 = 1024.0;
const MB: f64 = 1024.0 * 1024.0;

/// Why a bandwidth quantity was refused; the texts are frp's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BandwidthError {
    /// Neither `KB` nor `MB` at the end.
    #[error("unit not support")]
    Unit,
    /// The number before the unit is not one (Go's `strconv.ParseFloat` error).
    #[error("strconv.ParseFloat: parsing {0:?}: invalid syntax")]
    Number(String),
}

/// Where a bandwidth limit is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BandwidthLimitMode {
    /// By this client, on both directions of every work connection of the proxy together
    /// (frp's default).
    #[default]
    Client,
    /// By frps; the client only sends the limit in NewProxy.
    Server,
}

/// A proxy's bandwidth limit (frp's `transport.bandwidthLimit` and `bandwidthLimitMode`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BandwidthLimit {
    /// The quantity as written (trimmed), which NewProxy carries to frps: `"1MB"`, `"100KB"`.
    pub text: String,
    /// Bytes per second; 0 (an empty, zero or negative quantity) limits nothing.
    pub bytes_per_second: u64,
    /// Who enforces it.
    pub mode: BandwidthLimitMode,
}

impl BandwidthLimit {
    /// Parses frp's bandwidth quantity: a decimal number followed by `KB` or `MB` (binary
    /// units, case-sensitive), surrounding spaces ignored; empty means no limit. Fractions
    /// are truncated to whole bytes.
    pub fn parse(text: &str) -> Result<BandwidthLimit, BandwidthError> {
        let text = text.trim();
        let none = BandwidthLimit {
            text: String::new(),
            bytes_per_second: 0,
            mode: BandwidthLimitMode::Client,
        };
        if text.is_empty() {
            return Ok(none);
        }
        let (number, base) = if let Some(n) = text.strip_suffix("MB") {
            (n, MB)
        } else if let Some(n) = text.strip_suffix("KB") {
            (n, KB)
        } else {
            return Err(BandwidthError::Unit);
        };
        let value = parse_go_float(number).ok_or_else(|| BandwidthError::Number(number.into()))?;
        let bytes = value * base;
        // Go converts with int64(f); NaN, infinities and negatives all end up as no limit.
        let bytes_per_second = if (1.0..9.2e18).contains(&bytes) {
            bytes as u64
        } else {
            0
        };
        Ok(BandwidthLimit {
            text: text.to_owned(),
            bytes_per_second,
            mode: BandwidthLimitMode::Client,
        })
    }

    /// Sets who enforces the limit.
    pub fn mode(mut self, mode: BandwidthLimitMode) -> Self {
        self.mode = mode;
        self
    }

    /// The rate this client enforces itself, if any.
    pub(crate) fn client_rate(&self) -> Option<u64> {
        (self.mode == BandwidthLimitMode::Client && self.bytes_per_second > 0)
            .then_some(self.bytes_per_second)
    }
}

/// Go's `strconv.ParseFloat` on the decimal forms frp configs use: an optional sign, digits
/// with an optional fraction and exponent, or `inf`/`infinity`/`nan` in any case. Rust's
/// parser accepts the same set, so only its extras are filtered out.
fn parse_go_float(s: &str) -> Option<f64> {
    if s.is_empty() || s.contains(char::is_whitespace) {
        return None;
    }
    s.parse::<f64>().ok()
}

/// How a health check probes the local service.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HealthCheckKind {
    /// A TCP connect succeeds.
    Tcp,
    /// `GET http://<local address><path>` answers 2xx.
    Http {
        /// Request path (a `/` is put in front if missing).
        path: String,
        /// Extra request headers, in order; a `Host` header replaces the request's host.
        headers: Vec<(String, String)>,
    },
}

/// A health check of a proxy's local service, as frpc runs it: one probe every `interval`,
/// each bounded by `timeout`. The proxy is registered only after a probe succeeds; after
/// `max_failed` consecutive failures it is closed at frps (CloseProxy) until the next success.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthCheck {
    /// What a probe does.
    pub kind: HealthCheckKind,
    /// Bound on one probe (frp's default 3 s).
    pub timeout: Duration,
    /// Consecutive failures that take the proxy down (frp's default 1).
    pub max_failed: u32,
    /// Time between probes (frp's default 10 s).
    pub interval: Duration,
}

impl HealthCheck {
    /// A TCP connect check with frp's defaults.
    pub fn tcp() -> Self {
        Self::new(HealthCheckKind::Tcp)
    }

    /// An HTTP GET check of `path` with frp's defaults.
    pub fn http(path: impl Into<String>) -> Self {
        Self::new(HealthCheckKind::Http {
            path: path.into(),
            headers: Vec::new(),
        })
    }

    fn new(kind: HealthCheckKind) -> Self {
        HealthCheck {
            kind,
            timeout: Duration::from_secs(3),
            max_failed: 1,
            interval: Duration::from_secs(10),
        }
    }

    /// Bounds one probe (zero is raised to 1 ms).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Failures in a row before the proxy is taken down (0 counts as 1).
    pub fn max_failed(mut self, n: u32) -> Self {
        self.max_failed = n.max(1);
        self
    }

    /// Time between probes (zero is raised to 1 ms).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Adds a request header to an HTTP check (ignored for TCP).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        if let HealthCheckKind::Http { headers, .. } = &mut self.kind {
            headers.push((name.into(), value.into()));
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(s: &str) -> u64 {
        BandwidthLimit::parse(s).unwrap().bytes_per_second
    }

    #[test]
    fn bandwidth_quantities_parse_as_frp() {
        assert_eq!(bytes("1MB"), 1024 * 1024);
        assert_eq!(bytes("100KB"), 100 * 1024);
        assert_eq!(bytes(" 10KB "), 10 * 1024);
        assert_eq!(bytes("0.5KB"), 512);
        assert_eq!(bytes("1.5MB"), 1536 * 1024);
        assert_eq!(bytes("1e1KB"), 10 * 1024);
        assert_eq!(bytes("0.0001KB"), 0);
        assert_eq!(bytes("-1MB"), 0);
        assert_eq!(bytes("0MB"), 0);
        assert_eq!(bytes("NaNKB"), 0);
        assert_eq!(bytes("infMB"), 0);
        assert_eq!(bytes(""), 0);
        let q = BandwidthLimit::parse("  2MB ").unwrap();
        assert_eq!(q.text, "2MB");
        assert_eq!(q.client_rate(), Some(2 * 1024 * 1024));
        assert_eq!(q.mode(BandwidthLimitMode::Server).client_rate(), None);
    }

    #[test]
    fn bandwidth_errors_are_frps() {
        for bad in ["1GB", "1mb", "1024", "1 M B", "KB1"] {
            assert_eq!(
                BandwidthLimit::parse(bad).unwrap_err().to_string(),
                "unit not support",
                "{bad}"
            );
        }
        assert_eq!(
            BandwidthLimit::parse("abcKB").unwrap_err().to_string(),
            "strconv.ParseFloat: parsing \"abc\": invalid syntax"
        );
        assert_eq!(
            BandwidthLimit::parse("1 MB").unwrap_err().to_string(),
            "strconv.ParseFloat: parsing \"1 \": invalid syntax"
        );
        assert_eq!(
            BandwidthLimit::parse("MB").unwrap_err().to_string(),
            "strconv.ParseFloat: parsing \"\": invalid syntax"
        );
    }

    #[test]
    fn health_check_defaults_are_frps() {
        let h = HealthCheck::http("/healthz").header("Host", "a");
        assert_eq!(h.timeout, Duration::from_secs(3));
        assert_eq!(h.max_failed, 1);
        assert_eq!(h.interval, Duration::from_secs(10));
        assert!(matches!(h.kind, HealthCheckKind::Http { ref headers, .. } if headers.len() == 1));
        assert_eq!(HealthCheck::tcp().max_failed(0).max_failed, 1);
    }
}
