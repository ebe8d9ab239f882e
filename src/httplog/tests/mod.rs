//! Unit tests of the HTTP request-log observer, by theme.
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use super::syntax::sanitize;
use super::*;
use std::time::{Duration, Instant};

mod bounds;
mod exchanges;
mod random;

/// Exchanges without their durations, for comparison.
fn summary(log: &mut HttpLog) -> Vec<(String, String, u16, u64)> {
    log.drain()
        .map(|e| (e.method, e.path, e.status, e.response_bytes))
        .collect()
}

fn ex(method: &str, path: &str, status: u16, bytes: u64) -> (String, String, u16, u64) {
    (method.to_string(), path.to_string(), status, bytes)
}

/// Feeds a whole conversation (requests first, then responses) in one chunk each.
fn run(requests: &[u8], responses: &[u8]) -> HttpLog {
    let now = Instant::now();
    let mut log = HttpLog::new();
    log.on_request_bytes(requests, now);
    log.on_response_bytes(responses, now);
    log
}

/// A tiny deterministic PRNG, so the random tests need no dependencies and are repeatable.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Splits `data` into random chunks of 1..=max bytes.
fn random_chunks<'a>(rng: &mut XorShift, data: &'a [u8], max: usize) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let n = 1 + rng.below(max.min(rest.len()));
        out.push(&rest[..n]);
        rest = &rest[n..];
    }
    out
}

const KEEP_ALIVE_REQUESTS: &[u8] = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\
    POST /b?q=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
    DELETE /c HTTP/1.1\r\nHost: x\r\n\r\n";
const KEEP_ALIVE_RESPONSES: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc\
    HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n\
    HTTP/1.1 404 Not Found\r\nCONTENT-LENGTH: 9\r\n\r\nnot found";

fn keep_alive_expected() -> Vec<(String, String, u16, u64)> {
    vec![
        ex("GET", "/a", 200, 3),
        ex("POST", "/b?q=1", 201, 0),
        ex("DELETE", "/c", 404, 9),
    ]
}

const CHUNKED_RESPONSES: &[u8] = b"HTTP/1.1 200 OK\r\n\
    Transfer-Encoding: gzip, chunked\r\n\r\n\
    5;name=value\r\nhello\r\n\
    1a ; a=\"q;x\" ; b\r\nabcdefghijklmnopqrstuvwxyz\r\n\
    000\r\nX-Trailer: yes\r\nX-Other: 1\r\n\r\n\
    HTTP/1.1 204 No Content\r\n\r\n";
