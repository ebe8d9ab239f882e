//! What the engine tells its caller: a stream of [`Event`]s and live [`Stats`].
//!
//! Lower layers never call up into the application; they publish here. Events go through a
//! broadcast channel: a slow subscriber misses old events (it sees `Lagged`) but never slows the
//! tunnel.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// How long repeated warnings of one kind (say, [`Event::LocalUnreachable`] for one proxy) are
/// summed up rather than reported one by one.
pub const REPEAT_WINDOW: Duration = Duration::from_secs(10);

/// Something that happened to the client session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
    /// The server refused a proxy, or its plugin could not start (frpc's "start error"; the
    /// proxy is closed on the server and registered again 30 s later).
    ProxyFailed {
        /// Proxy name without the user prefix.
        name: String,
        /// The server's text, or the plugin's error.
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
    ///
    /// Reported once per run of failures, then summed up: while failures of one proxy keep
    /// coming, at most one event per [`REPEAT_WINDOW`] says how many more there were.
    LocalUnreachable {
        /// Proxy name without the user prefix.
        name: String,
        /// `host:port` of the local service.
        local_addr: String,
        /// The dial error (in a summary, the latest one).
        error: String,
        /// 0 for a first failure, reported as it happens. Otherwise this is a summary: that many
        /// further failures happened in the last [`REPEAT_WINDOW`] and were not reported one
        /// by one.
        suppressed: u64,
    },
    /// One HTTP exchange through a proxy with `request_log` on.
    HttpRequest(HttpRequest),
    /// [`super::Client::set_proxies`] changed the proxy set (names without the user prefix; a
    /// changed proxy is in both lists).
    ProxiesUpdated {
        /// Closed at frps: gone or changed.
        removed: Vec<String>,
        /// Registered: new or changed.
        added: Vec<String>,
    },
    /// [`super::Client::set_visitors`] replaced the visitor set (names without the user
    /// prefix).
    VisitorsUpdated {
        /// Stopped: gone or changed.
        removed: Vec<String>,
        /// Started: new or changed.
        added: Vec<String>,
    },
    /// A visitor is listening (after each login).
    VisitorStarted {
        /// Visitor name without the user prefix.
        name: String,
        /// Where it listens; `None` for a visitor without a listener (`bindPort = -1`).
        bind_addr: Option<std::net::SocketAddr>,
    },
    /// A visitor could not listen, or frps refused one of its connections.
    VisitorFailed {
        /// Visitor name without the user prefix.
        name: String,
        /// The error; for a refusal, frps's text.
        error: String,
    },
    /// One probe of a proxy's health check failed (one event per failed probe, at most one
    /// per check interval).
    HealthCheckFailed {
        /// Proxy name without the user prefix.
        name: String,
        /// Why, in frpc's words.
        error: String,
    },
    /// A proxy's health changed: healthy registers it at frps, unhealthy closes it there.
    HealthChanged {
        /// Proxy name without the user prefix.
        name: String,
        /// The new health.
        healthy: bool,
    },
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
    pub buffered_bytes: AtomicU64,
    pub peak_buffered_bytes: AtomicU64,
    /// Login attempts that did not end logged in.
    pub login_failures: AtomicU64,
    /// Work connections waiting for StartWorkConn.
    pub pooled_work_conns: AtomicU64,
    /// Per-proxy counters, for metrics.
    pub proxies: super::proxy_stats::ProxyTable,
}

impl Counters {
    /// One more login attempt that did not end logged in.
    pub(crate) fn login_failed(&self) {
        self.login_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn metrics(&self) -> super::proxy_stats::Metrics {
        super::proxy_stats::Metrics {
            login_failures: self.login_failures.load(Ordering::Relaxed),
            pooled_work_conns: self.pooled_work_conns.load(Ordering::Relaxed),
            proxies: self.proxies.snapshot(),
        }
    }

    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            active_work_conns: self.active_work_conns.load(Ordering::Relaxed),
            total_work_conns: self.total_work_conns.load(Ordering::Relaxed),
            bytes_to_local: self.bytes_to_local.load(Ordering::Relaxed),
            bytes_from_local: self.bytes_from_local.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            buffered_bytes: self.buffered_bytes.load(Ordering::Relaxed),
            peak_buffered_bytes: self.peak_buffered_bytes.load(Ordering::Relaxed),
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
    /// Payload bytes the work connections hold right now: taken from one side, not yet
    /// written to the other (a slow local service or visitor makes this grow, up to a bound
    /// per connection).
    pub buffered_bytes: u64,
    /// The most payload bytes one direction of one work connection has held at once, since
    /// start. Never more than [`frp_proto::pipeline::MAX_BUFFERED`], whatever the traffic and
    /// its compression ratio.
    pub peak_buffered_bytes: u64,
}

/// What to do with one occurrence of a repeated warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Report it now.
    Report,
    /// Count it for the summary. `flush_at` is set on the first one held back in a window:
    /// call [`RepeatLimiter::flush`] then.
    Suppress { flush_at: Option<Instant> },
}

/// Rate limit for one kind of warning, with the clock passed in: the first occurrence is
/// reported, the following ones are counted, and [`RepeatLimiter::flush`] at the end of the
/// window gives their number for one summary. While occurrences keep coming there is one
/// summary per window ([`REPEAT_WINDOW`] in the engine); after a quiet window the next one is
/// reported at once again.
#[derive(Debug)]
pub(crate) struct RepeatLimiter {
    /// Length of a window.
    length: Duration,
    /// Start of the current window; `None` before the first occurrence.
    window: Option<Instant>,
    /// Occurrences held back since the last report or summary.
    suppressed: u64,
}

impl RepeatLimiter {
    /// A limiter with windows of `length`.
    pub(crate) fn new(length: Duration) -> Self {
        RepeatLimiter {
            length,
            window: None,
            suppressed: 0,
        }
    }

    /// Length of a window.
    pub(crate) fn length(&self) -> Duration {
        self.length
    }

    /// Records one occurrence at `now`.
    pub(crate) fn hit(&mut self, now: Instant) -> Verdict {
        match self.window {
            // A summary is still due (even if its timer is late): count this one in it.
            Some(start) if now < start + self.length || self.suppressed > 0 => {
                self.suppressed += 1;
                Verdict::Suppress {
                    flush_at: (self.suppressed == 1).then_some(start + self.length),
                }
            }
            _ => {
                self.window = Some(now);
                Verdict::Report
            }
        }
    }

    /// At the end of a window: how many occurrences were held back, if any; a new window
    /// starts at `now`. `None` before the window is over or when nothing was held back.
    pub(crate) fn flush(&mut self, now: Instant) -> Option<u64> {
        let start = self.window?;
        if self.suppressed == 0 || now < start + self.length {
            return None;
        }
        self.window = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
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

    #[test]
    fn repeated_warnings_are_reported_once_then_summed_up_per_window() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let w = REPEAT_WINDOW.as_millis() as u64;
        let mut l = RepeatLimiter::new(REPEAT_WINDOW);
        assert_eq!(l.hit(at(0)), Verdict::Report);
        // 299 more in the same second: one timer, set for the end of the window.
        assert_eq!(
            l.hit(at(1)),
            Verdict::Suppress {
                flush_at: Some(at(w))
            }
        );
        for i in 2..300 {
            assert_eq!(l.hit(at(i)), Verdict::Suppress { flush_at: None });
        }
        assert_eq!(l.flush(at(w - 1)), None, "not before the window ends");
        assert_eq!(l.flush(at(w)), Some(299));
        assert_eq!(l.flush(at(w)), None, "one summary per window");
        // Still failing: the next window is summed up too, not reported at once.
        assert_eq!(
            l.hit(at(w + 5)),
            Verdict::Suppress {
                flush_at: Some(at(2 * w))
            }
        );
        // A late timer: occurrences after the window's end still go into its summary.
        assert_eq!(l.hit(at(2 * w + 50)), Verdict::Suppress { flush_at: None });
        assert_eq!(l.flush(at(2 * w + 60)), Some(2));
        // After a quiet window the next failure is news again.
        assert_eq!(l.flush(at(4 * w)), None);
        assert_eq!(l.hit(at(4 * w)), Verdict::Report);
    }

    #[test]
    fn a_lone_warning_needs_no_summary() {
        let t0 = Instant::now();
        let mut l = RepeatLimiter::new(REPEAT_WINDOW);
        assert_eq!(l.hit(t0), Verdict::Report);
        assert_eq!(l.flush(t0 + REPEAT_WINDOW), None);
        assert_eq!(l.hit(t0 + REPEAT_WINDOW), Verdict::Report);
    }
}
