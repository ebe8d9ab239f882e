//! An HTTP/1.1 load driver for a [`super::http_service::HttpService`], directly or through a
//! tunnel's public URL: a fixed number of workers, each sending one request after another on
//! its own keep-alive connection, until a time, byte or request bound.
//!
//! Every request is timed from send to the last body byte. Failures never stop a phase: they
//! are counted by kind ([`Errors`]), so a tunnel that drops one request in a thousand shows it
//! instead of aborting the run.

use super::http_service::{BYTES_PATH, SINK_PATH};
use super::summary::Percentiles;
use bytes::Bytes;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A pause after a failed request, so that a dead path is counted, not hammered.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// An HTTP client for the driver: keep-alive, HTTP/1.1, no proxy from the environment (the
/// figures are the path's, not a proxy's), `timeout` per request, and `resolve` overriding DNS
/// for the given host names (the port of each address is ignored: the URL's is used).
pub fn client(
    concurrency: usize,
    timeout: Duration,
    resolve: &[(String, SocketAddr)],
) -> reqwest::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(concurrency)
        .pool_idle_timeout(Duration::from_secs(90))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout);
    for (host, addr) in resolve {
        b = b.resolve(host, *addr);
    }
    b.build()
}

/// What each request of a phase does.
#[derive(Debug, Clone)]
pub enum Work {
    /// `GET /bytes/N`: download `N` bytes.
    Get(u64),
    /// `POST /sink` with this body (shared, never copied per request).
    Post(Bytes),
}

/// When a phase ends: at `max_time`, or earlier once `max_bytes` body bytes or `max_requests`
/// requests are done. Requests in flight at the bound finish and count.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Wall-clock bound.
    pub max_time: Duration,
    /// Body bytes moved (either direction).
    pub max_bytes: Option<u64>,
    /// Requests started.
    pub max_requests: Option<u64>,
}

/// Failed requests by kind.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Errors {
    /// All failed requests.
    pub total: u64,
    /// Answers with a status other than 2xx, by status code.
    pub status: BTreeMap<u16, u64>,
    /// No answer within the request timeout.
    pub timeout: u64,
    /// The connection could not be made (refused, DNS, TLS handshake).
    pub connect: u64,
    /// The answer's body broke off or the connection closed mid-request.
    pub body: u64,
    /// Anything else the HTTP client reported.
    pub other: u64,
}

impl Errors {
    fn add(&mut self, other: &Errors) {
        self.total += other.total;
        for (code, n) in &other.status {
            *self.status.entry(*code).or_default() += n;
        }
        self.timeout += other.timeout;
        self.connect += other.connect;
        self.body += other.body;
        self.other += other.other;
    }

    fn count(&mut self, e: &Failure) {
        self.total += 1;
        match e {
            Failure::Status(code) => *self.status.entry(*code).or_default() += 1,
            Failure::Http(e) if e.is_timeout() => self.timeout += 1,
            Failure::Http(e) if e.is_connect() => self.connect += 1,
            Failure::Http(e) if e.is_body() || e.is_decode() || e.is_request() => self.body += 1,
            Failure::Http(_) => self.other += 1,
        }
    }
}

/// What one phase measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseResult {
    /// Requests answered with 2xx and read to the end.
    pub requests: u64,
    /// Body bytes moved by those requests (response bodies for GET, request bodies for POST).
    pub bytes: u64,
    /// From the first request to the last answer.
    pub secs: f64,
    /// `requests / secs`.
    pub requests_per_sec: f64,
    /// `bytes / secs`.
    pub bytes_per_sec: f64,
    /// Time per successful request, send to last body byte.
    pub latency: Percentiles,
    /// Failed requests.
    pub errors: Errors,
}

/// Runs one phase against `base` (`http://host:port` or `https://…`, no trailing slash) with
/// `concurrency` workers.
pub async fn run(
    client: &reqwest::Client,
    base: &str,
    work: &Work,
    concurrency: usize,
    bounds: Bounds,
) -> PhaseResult {
    let url = match work {
        Work::Get(n) => format!("{base}{BYTES_PATH}{n}"),
        Work::Post(_) => format!("{base}{SINK_PATH}"),
    };
    let shared = Arc::new(Shared {
        bytes: AtomicU64::new(0),
        started: AtomicU64::new(0),
        done: AtomicBool::new(false),
    });
    let begin = Instant::now();
    let deadline = begin + bounds.max_time;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let worker = Worker {
            client: client.clone(),
            url: url.clone(),
            work: work.clone(),
            shared: shared.clone(),
            deadline,
            bounds,
        };
        tasks.spawn(worker.run());
    }
    let mut result = PhaseResult::default();
    let mut samples = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        // A worker never panics on the network's answers; a join error is a bug, not data.
        let Ok(w) = joined else { continue };
        result.requests += w.requests;
        result.bytes += w.bytes;
        result.errors.add(&w.errors);
        samples.extend_from_slice(&w.latencies);
    }
    result.secs = begin.elapsed().as_secs_f64();
    if result.secs > 0.0 {
        result.requests_per_sec = result.requests as f64 / result.secs;
        result.bytes_per_sec = result.bytes as f64 / result.secs;
    }
    result.latency = Percentiles::of(&samples);
    result
}

struct Shared {
    bytes: AtomicU64,
    started: AtomicU64,
    done: AtomicBool,
}

struct Worker {
    client: reqwest::Client,
    url: String,
    work: Work,
    shared: Arc<Shared>,
    deadline: Instant,
    bounds: Bounds,
}

#[derive(Default)]
struct WorkerResult {
    requests: u64,
    bytes: u64,
    latencies: Vec<Duration>,
    errors: Errors,
}

enum Failure {
    Status(u16),
    Http(reqwest::Error),
}

impl Worker {
    async fn run(self) -> WorkerResult {
        let mut r = WorkerResult::default();
        loop {
            if self.shared.done.load(Ordering::Relaxed) || Instant::now() >= self.deadline {
                return r;
            }
            let n = self.shared.started.fetch_add(1, Ordering::Relaxed);
            if self.bounds.max_requests.is_some_and(|max| n >= max) {
                self.shared.done.store(true, Ordering::Relaxed);
                return r;
            }
            let t0 = Instant::now();
            match self.once().await {
                Ok(bytes) => {
                    r.latencies.push(t0.elapsed());
                    r.requests += 1;
                    r.bytes += bytes;
                    let total = self.shared.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
                    if self.bounds.max_bytes.is_some_and(|max| total >= max) {
                        self.shared.done.store(true, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    r.errors.count(&e);
                    tokio::time::sleep(ERROR_PAUSE).await;
                }
            }
        }
    }

    /// One request, read to the end; the body bytes it moved.
    async fn once(&self) -> Result<u64, Failure> {
        let request = match &self.work {
            Work::Get(_) => self.client.get(&self.url),
            Work::Post(body) => self.client.post(&self.url).body(body.clone()),
        };
        let mut resp = request.send().await.map_err(Failure::Http)?;
        let code = resp.status();
        let mut read: u64 = 0;
        // Read every answer to its end, failures too, so that its connection can be reused.
        while let Some(chunk) = resp.chunk().await.map_err(Failure::Http)? {
            read += chunk.len() as u64;
        }
        if !code.is_success() {
            return Err(Failure::Status(code.as_u16()));
        }
        Ok(match &self.work {
            Work::Get(_) => read,
            Work::Post(body) => body.len() as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::http_service::HttpService;

    #[tokio::test]
    async fn every_kind_of_work_runs_against_the_service() {
        let svc = HttpService::loopback().await.unwrap();
        let base = format!("http://{}", svc.addr());
        let client = client(2, Duration::from_secs(5), &[]).unwrap();
        let bounds = Bounds {
            max_time: Duration::from_secs(5),
            max_bytes: None,
            max_requests: Some(20),
        };
        let small = run(&client, &base, &Work::Get(64), 2, bounds).await;
        assert_eq!((small.requests, small.bytes), (20, 20 * 64));
        assert_eq!(small.errors, Errors::default());
        assert_eq!(small.latency.count, 20);
        let up = run(
            &client,
            &base,
            &Work::Post(Bytes::from(vec![1u8; 300_000])),
            2,
            bounds,
        )
        .await;
        assert_eq!((up.requests, up.bytes), (20, 20 * 300_000));
        let bounds = Bounds {
            max_bytes: Some(4 << 20),
            ..bounds
        };
        let down = run(&client, &base, &Work::Get(1 << 20), 2, bounds).await;
        assert!(down.bytes >= 4 << 20 && down.errors.total == 0, "{down:?}");
    }

    #[tokio::test]
    async fn failures_are_counted_by_kind() {
        let svc = HttpService::loopback().await.unwrap();
        let client = client(1, Duration::from_secs(5), &[]).unwrap();
        let bounds = Bounds {
            max_time: Duration::from_secs(5),
            max_bytes: None,
            max_requests: Some(3),
        };
        let base = format!("http://{}/nowhere", svc.addr());
        let r = run(&client, &base, &Work::Get(1), 1, bounds).await;
        assert_eq!(r.requests, 0);
        assert_eq!(r.errors.status.get(&404), Some(&3), "{r:?}");
        // A port nothing listens on: connect errors.
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", dead.local_addr().unwrap());
        drop(dead);
        let r = run(&client, &base, &Work::Get(1), 1, bounds).await;
        assert_eq!((r.errors.total, r.errors.connect), (3, 3), "{r:?}");
    }
}
