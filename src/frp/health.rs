//! Health checks of local services, as frpc runs them: one task per checked proxy probes the
//! local address every interval (a TCP connect, or an HTTP GET that must answer 2xx), each
//! probe bounded by the timeout.
//!
//! The proxy starts unhealthy, so it is registered only after the first probe succeeds. After
//! `max_failed` failed probes in a row a healthy proxy becomes unhealthy and is closed at frps;
//! the next successful probe registers it again. frpc 0.66 never resets its failure counter, so
//! after the first recovery it takes a proxy down on the first failure whatever `maxFailed`
//! says; this client counts failures in a row, which is what `maxFailed` describes.
//!
//! The task only decides; it asks the control task to switch the proxy on or off
//! (`super::switch`) and publishes [`Event::HealthCheckFailed`] and [`Event::HealthChanged`].

use super::config::ProxyConfig;
use super::events::Event;
use super::proxy_opts::{HealthCheck, HealthCheckKind};
use super::switch::{Switch, SwitchSender};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// The running health checks by proxy name, each under its own token (a child of the
/// client's), so that a reload can stop the checks of the proxies it removes or changes and
/// start those of the ones it adds.
pub(crate) struct HealthTasks {
    parent: CancellationToken,
    running: Mutex<HashMap<String, CancellationToken>>,
}

impl HealthTasks {
    /// No checks yet; every check started later ends with `parent`.
    pub(crate) fn new(parent: CancellationToken) -> Self {
        HealthTasks {
            parent,
            running: Mutex::new(HashMap::new()),
        }
    }

    /// Starts the check of every proxy in `proxies` that has one.
    pub(crate) fn start_all(
        &self,
        proxies: &[ProxyConfig],
        switches: &SwitchSender,
        events: &broadcast::Sender<Event>,
    ) {
        for p in proxies {
            self.start(p, switches, events);
        }
    }

    /// Starts the check of `p` if it has one, replacing a running check of the same name.
    pub(crate) fn start(
        &self,
        p: &ProxyConfig,
        switches: &SwitchSender,
        events: &broadcast::Sender<Event>,
    ) {
        self.stop(&p.name);
        let Some(check) = &p.health_check else {
            return;
        };
        let token = self.parent.child_token();
        let monitor = Monitor {
            name: p.name.clone(),
            max_failed: check.max_failed.max(1),
            interval: check.interval,
            timeout: check.timeout,
            probe: Probe::new(p, check),
            switches: switches.clone(),
            events: events.clone(),
        };
        tokio::spawn(monitor.run(token.clone()));
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(p.name.clone(), token);
    }

    /// Stops the check of the proxy `name`, if one runs.
    pub(crate) fn stop(&self, name: &str) {
        let stopped = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
        if let Some(token) = stopped {
            token.cancel();
        }
    }
}

/// The health decision for one proxy, apart from any I/O.
#[derive(Debug, Default)]
struct Health {
    healthy: bool,
    failures: u32,
}

impl Health {
    /// Records a probe; returns the new health when it changed.
    fn record(&mut self, ok: bool, max_failed: u32) -> Option<bool> {
        if ok {
            self.failures = 0;
            if !self.healthy {
                self.healthy = true;
                return Some(true);
            }
            return None;
        }
        self.failures = self.failures.saturating_add(1);
        if self.healthy && self.failures >= max_failed {
            self.healthy = false;
            return Some(false);
        }
        None
    }
}

struct Monitor {
    name: String,
    max_failed: u32,
    interval: Duration,
    timeout: Duration,
    probe: Probe,
    switches: SwitchSender,
    events: broadcast::Sender<Event>,
}

impl Monitor {
    async fn run(self, stop: CancellationToken) {
        let mut health = Health::default();
        loop {
            let result = tokio::select! {
                r = tokio::time::timeout(self.timeout, self.probe.run()) => {
                    r.unwrap_or_else(|_| Err(self.probe.timeout_error()))
                }
                _ = stop.cancelled() => return,
            };
            let ok = match result {
                Ok(()) => {
                    tracing::trace!(proxy = %self.name, "do one health check success");
                    true
                }
                Err(error) => {
                    tracing::warn!(proxy = %self.name, "do one health check failed: {error}");
                    let _ = self.events.send(Event::HealthCheckFailed {
                        name: self.name.clone(),
                        error,
                    });
                    false
                }
            };
            if let Some(healthy) = health.record(ok, self.max_failed) {
                let word = if healthy { "success" } else { "failed" };
                tracing::info!(proxy = %self.name, "health check status change to {word}");
                let _ = self.events.send(Event::HealthChanged {
                    name: self.name.clone(),
                    healthy,
                });
                let switch = if healthy {
                    Switch::On(self.name.clone())
                } else {
                    Switch::Off(self.name.clone())
                };
                if self.switches.send(switch).is_err() {
                    // The control task is gone: the client is stopping.
                    return;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = stop.cancelled() => return,
            }
        }
    }
}

/// One kind of probe against one local address; the HTTP request is built once.
struct Probe {
    host: String,
    port: u16,
    /// `host:port` as Go joins it, for messages and the default `Host` header.
    addr: String,
    /// For HTTP: the URL (for messages) and the whole request.
    http: Option<(String, Vec<u8>)>,
}

impl Probe {
    fn new(p: &ProxyConfig, check: &HealthCheck) -> Self {
        let addr = p.local_addr();
        let http = match &check.kind {
            HealthCheckKind::Tcp => None,
            HealthCheckKind::Http { path, headers } => Some(http_request(&addr, path, headers)),
        };
        Probe {
            host: p.local_host.clone(),
            port: p.local_port,
            addr,
            http,
        }
    }

    async fn run(&self) -> Result<(), String> {
        let dial = TcpStream::connect((self.host.as_str(), self.port)).await;
        let Some((url, request)) = &self.http else {
            return dial
                .map(drop)
                .map_err(|e| format!("dial tcp {}: connect: {}", self.addr, go_error(&e)));
        };
        let mut stream = dial.map_err(|e| {
            format!(
                "Get \"{url}\": dial tcp {}: connect: {}",
                self.addr,
                go_error(&e)
            )
        })?;
        let status = exchange(&mut stream, request)
            .await
            .map_err(|e| format!("Get \"{url}\": {e}"))?;
        if status / 100 != 2 {
            return Err(format!(
                "do http health check, StatusCode is [{status}] not 2xx"
            ));
        }
        Ok(())
    }

    fn timeout_error(&self) -> String {
        match &self.http {
            None => format!("dial tcp {}: i/o timeout", self.addr),
            Some((url, _)) => format!("Get \"{url}\": context deadline exceeded"),
        }
    }
}

/// Writes the request and reads the status code of the answer; the body is not read.
async fn exchange(stream: &mut TcpStream, request: &[u8]) -> Result<u16, String> {
    stream.write_all(request).await.map_err(|e| go_error(&e))?;
    let mut buf = [0u8; 256];
    let mut len = 0;
    loop {
        let n = stream
            .read(&mut buf[len..])
            .await
            .map_err(|e| go_error(&e))?;
        if n == 0 {
            return Err("EOF".into());
        }
        len += n;
        if let Some(end) = buf[..len].windows(2).position(|w| w == b"\r\n") {
            return status_code(&buf[..end]).ok_or_else(|| {
                let line = String::from_utf8_lossy(&buf[..end]);
                format!("malformed HTTP response {line:?}")
            });
        }
        if len == buf.len() {
            return Err("malformed HTTP response: status line too long".into());
        }
    }
}

/// The code of an `HTTP/1.x NNN reason` status line.
fn status_code(line: &[u8]) -> Option<u16> {
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let code = rest.get(2..5)?;
    if rest.get(1) != Some(&b' ') || !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// Go's canonical header name (`content-type` → `Content-Type`).
fn canonical(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

/// frpc's probe URL and a GET request like Go's client sends: `Host` from a configured `Host`
/// header or the address, a default `User-Agent`, each configured header once (the last value
/// of a name wins).
fn http_request(addr: &str, path: &str, headers: &[(String, String)]) -> (String, Vec<u8>) {
    let slash = if path.starts_with('/') { "" } else { "/" };
    let url = format!("http://{addr}{slash}{path}");
    let mut set: BTreeMap<String, &str> = BTreeMap::new();
    for (name, value) in headers {
        set.insert(canonical(name), value);
    }
    let host = set.remove("Host").unwrap_or(addr);
    let agent = set.remove("User-Agent").unwrap_or("Go-http-client/1.1");
    let mut req = format!("GET {slash}{path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {agent}\r\n");
    for (name, value) in &set {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("Accept-Encoding: gzip\r\n\r\n");
    (url, req.into_bytes())
}

/// An I/O error as Go words it: `connection refused`, not `Connection refused (os error 111)`.
fn go_error(e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::ConnectionRefused {
        return "connection refused".into();
    }
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_in_a_row_take_a_healthy_proxy_down() {
        let mut h = Health::default();
        // Unhealthy from the start: failures change nothing, the first success registers.
        assert_eq!(h.record(false, 2), None);
        assert_eq!(h.record(true, 2), Some(true));
        assert_eq!(h.record(true, 2), None);
        assert_eq!(h.record(false, 2), None);
        assert_eq!(h.record(true, 2), None);
        assert_eq!(h.record(false, 2), None);
        assert_eq!(h.record(false, 2), Some(false));
        assert_eq!(h.record(false, 2), None);
        assert_eq!(h.record(true, 2), Some(true));
        // The count starts again after a recovery.
        assert_eq!(h.record(false, 2), None);
        assert_eq!(h.record(false, 2), Some(false));
    }

    #[test]
    fn the_http_request_is_what_go_sends() {
        let headers = vec![
            ("x-probe".to_string(), "1".to_string()),
            ("host".to_string(), "svc.local".to_string()),
            ("X-PROBE".to_string(), "2".to_string()),
        ];
        let (url, req) = http_request("127.0.0.1:8080", "healthz?x=1", &headers);
        assert_eq!(url, "http://127.0.0.1:8080/healthz?x=1");
        assert_eq!(
            String::from_utf8(req).unwrap(),
            "GET /healthz?x=1 HTTP/1.1\r\nHost: svc.local\r\nUser-Agent: Go-http-client/1.1\r\n\
             X-Probe: 2\r\nAccept-Encoding: gzip\r\n\r\n"
        );
        let (url, _) = http_request("[::1]:80", "/h", &[]);
        assert_eq!(url, "http://[::1]:80/h");
    }

    #[test]
    fn status_lines() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK"), Some(200));
        assert_eq!(status_code(b"HTTP/1.0 503"), Some(503));
        assert_eq!(status_code(b"HTTP/2 200"), None);
        assert_eq!(status_code(b"HTTP/1.1 2x0 OK"), None);
        assert_eq!(status_code(b"garbage"), None);
    }

    #[test]
    fn io_errors_read_like_go() {
        let e = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(go_error(&e), "connection refused");
        let e = io::Error::from_raw_os_error(113);
        assert!(!go_error(&e).contains("os error"), "{}", go_error(&e));
    }
}
