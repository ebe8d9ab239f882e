//! The HTTP request-log observer (`expose::httplog::HttpLog`) fed requests and responses
//! interleaved as the input says: each step is a selector byte (bit 0: 0 request bytes, 1
//! response bytes; bits 1–7: chunk length − 1) and then the chunk.
//!
//! Invariants: no panic; every reported exchange is plausible (a short printable method, a
//! path without control characters and within its length limit, a status from 100 to 999, no
//! more response bytes than were fed, a duration within the time fed); the observer is
//! passthrough after `on_close`; and the chunking does not matter: the same steps with every
//! chunk split in two report exactly the same exchanges.

use expose::httplog::{Exchange, HttpLog, MAX_COMPLETED, MAX_METHOD_BYTES, MAX_PATH_CHARS};
use std::time::{Duration, Instant};

/// The steps of an input: (response side, chunk).
fn steps(data: &[u8]) -> Vec<(bool, &[u8])> {
    let mut out = Vec::new();
    let mut input = data;
    while let [sel, rest @ ..] = input {
        let n = ((*sel >> 1) as usize + 1).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        input = tail;
        out.push((sel & 1 == 1, chunk));
    }
    out
}

/// Feeds the steps, each chunk split at `split(len)`, and collects what is reported.
fn observe(steps: &[(bool, &[u8])], split: impl Fn(usize) -> usize) -> Vec<Exchange> {
    let start = Instant::now();
    let mut log = HttpLog::new();
    let mut reported = Vec::new();
    let mut fed = 0u64;
    let mut check = |log: &mut HttpLog, elapsed: Duration, fed: u64| {
        let exchanges: Vec<Exchange> = log.drain().collect();
        assert!(exchanges.len() <= MAX_COMPLETED);
        for e in &exchanges {
            assert!(!e.method.is_empty() && e.method.len() <= MAX_METHOD_BYTES);
            assert!(
                e.method.bytes().all(|b| b.is_ascii_graphic()),
                "{:?}",
                e.method
            );
            assert!(e.path.chars().count() <= MAX_PATH_CHARS + 1, "{:?}", e.path);
            assert!(!e.path.chars().any(super::is_unsafe_char), "{:?}", e.path);
            assert!((100..=999).contains(&e.status), "{}", e.status);
            assert!(e.response_bytes <= fed, "{} of {fed}", e.response_bytes);
            assert!(e.duration <= elapsed, "{:?} of {elapsed:?}", e.duration);
        }
        reported.extend(exchanges);
    };
    let mut step = 0u64;
    for (response, chunk) in steps {
        step += 1;
        let elapsed = Duration::from_millis(step);
        let now = start + elapsed;
        if *response {
            fed += chunk.len() as u64;
        }
        let (a, b) = chunk.split_at(split(chunk.len()).min(chunk.len()));
        for piece in [a, b] {
            if *response {
                log.on_response_bytes(piece, now);
            } else {
                log.on_request_bytes(piece, now);
            }
            check(&mut log, elapsed, fed);
        }
    }
    let elapsed = Duration::from_millis(step + 1);
    log.on_close(start + elapsed);
    check(&mut log, elapsed, fed);
    assert!(log.is_passthrough());
    reported
}

/// Runs the checks on one input; returns the exchanges reported.
pub fn run(data: &[u8]) -> Vec<Exchange> {
    let steps = steps(data);
    let whole = observe(&steps, |len| len);
    let halves = observe(&steps, |len| len / 2);
    assert_eq!(whole, halves, "the chunking changed what was reported");
    whole
}
