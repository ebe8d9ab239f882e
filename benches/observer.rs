//! The request-log observer with and without the inspector's capture: what recording heads and
//! the first body bytes costs on the splice's path.
//!
//! Two workloads: many small keep-alive exchanges (heads dominate), and one large body in
//! 64 KiB chunks (after the first `body_limit` bytes capture is one comparison per chunk).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use expose::capture::{CaptureStore, StoreLimits};
use expose::httplog::HttpLog;
use std::hint::black_box;
use std::time::Instant;

const SMALL: usize = 200;

fn small_exchanges() -> (Vec<u8>, Vec<u8>) {
    let req = b"GET /api/items?page=2 HTTP/1.1\r\nHost: app.example.com\r\nUser-Agent: bench\r\nAccept: application/json\r\nAuthorization: Bearer abc\r\n\r\n";
    let body = br#"{"items":[1,2,3],"next":"/api/items?page=3"}"#;
    let resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut r = resp.into_bytes();
    r.extend_from_slice(body);
    (req.to_vec(), r)
}

fn run(log: &mut HttpLog, store: Option<&CaptureStore>, req: &[u8], chunks: &[&[u8]]) {
    let now = Instant::now();
    log.on_request_bytes(req, now);
    for c in chunks {
        log.on_response_bytes(c, now);
    }
    for ex in log.drain() {
        match store {
            Some(s) => {
                s.push_exchange("p", "127.0.0.1:1", ex);
            }
            None => {
                black_box(ex);
            }
        }
    }
}

fn observer(c: &mut Criterion) {
    let mut g = c.benchmark_group("observer");
    let (req, resp) = small_exchanges();
    g.throughput(Throughput::Bytes(((req.len() + resp.len()) * SMALL) as u64));
    for capture in [false, true] {
        let name = if capture { "capture" } else { "log-only" };
        g.bench_with_input(
            BenchmarkId::new("small-exchanges", name),
            &capture,
            |b, &capture| {
                let store = CaptureStore::new(StoreLimits::default());
                b.iter(|| {
                    let mut log = if capture {
                        HttpLog::with_capture(store.capture_options())
                    } else {
                        HttpLog::new()
                    };
                    for _ in 0..SMALL {
                        run(&mut log, capture.then_some(&*store), &req, &[&resp]);
                    }
                })
            },
        );
    }
    const BIG: usize = 16 * 1024 * 1024;
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {BIG}\r\n\r\n");
    let chunk = vec![b'z'; 64 * 1024];
    let mut chunks: Vec<&[u8]> = vec![head.as_bytes()];
    chunks.extend(std::iter::repeat_n(&chunk[..], BIG / chunk.len()));
    g.throughput(Throughput::Bytes(BIG as u64));
    for capture in [false, true] {
        let name = if capture { "capture" } else { "log-only" };
        g.bench_with_input(
            BenchmarkId::new("16MiB-body", name),
            &capture,
            |b, &capture| {
                let store = CaptureStore::new(StoreLimits::default());
                b.iter(|| {
                    let mut log = if capture {
                        HttpLog::with_capture(store.capture_options())
                    } else {
                        HttpLog::new()
                    };
                    run(
                        &mut log,
                        capture.then_some(&*store),
                        b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n",
                        &chunks,
                    );
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, observer);
criterion_main!(benches);
