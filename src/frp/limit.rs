//! The client-side bandwidth limit of a proxy: one token bucket per proxy, shared by both
//! directions of all its work connections, as frpc's rate limiter.
//!
//! The bucket holds at most one second's worth of bytes (frp's burst equals its rate) and
//! starts full. Bytes read from frps are paid for before they reach the local service; bytes
//! for frps are paid for before they are written; a payment may take the bucket below zero,
//! and the payer then waits until it would be back at zero. At most one burst is moved per
//! payment. The limit applies to the bytes on the work connection, after encryption and
//! compression, as in frpc.
//!
//! Waiting is a timer in the splice's future (one per direction, allocated once per
//! connection): nothing blocks the runtime and nothing is allocated per chunk.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// A token bucket in bytes.
#[derive(Debug)]
pub(crate) struct Limiter {
    /// Bytes per second.
    rate: f64,
    /// Bucket size in bytes (one second's worth).
    burst: usize,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// May go negative: bytes already promised beyond what the bucket held.
    tokens: f64,
    last: Option<Instant>,
}

impl Limiter {
    /// A full bucket for `bytes_per_second` (> 0).
    pub(crate) fn new(bytes_per_second: u64) -> Self {
        let burst = usize::try_from(bytes_per_second)
            .unwrap_or(usize::MAX)
            .max(1);
        Limiter {
            rate: bytes_per_second.max(1) as f64,
            burst,
            bucket: Mutex::new(Bucket {
                tokens: burst as f64,
                last: None,
            }),
        }
    }

    /// The most one payment may cover.
    pub(crate) fn burst(&self) -> usize {
        self.burst
    }

    /// Pays for `n` bytes at `now`; returns how long to wait before moving them.
    pub(crate) fn reserve(&self, n: usize, now: Instant) -> Duration {
        let mut b = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let elapsed = b
            .last
            .map_or(Duration::ZERO, |last| now.saturating_duration_since(last));
        let refilled = b.tokens + elapsed.as_secs_f64() * self.rate;
        b.tokens = refilled.min(self.burst as f64) - n as f64;
        b.last = Some(b.last.map_or(now, |last| last.max(now)));
        if b.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-b.tokens / self.rate)
        }
    }
}

/// One direction's view of a proxy's limiter: a reusable timer and the bytes paid for but not
/// moved yet.
pub(crate) struct Throttle {
    limiter: std::sync::Arc<Limiter>,
    sleep: Pin<Box<Sleep>>,
    waiting: bool,
    /// Bytes already paid for and not yet written.
    credit: usize,
}

impl Throttle {
    pub(crate) fn new(limiter: std::sync::Arc<Limiter>) -> Self {
        Throttle {
            limiter,
            sleep: Box::pin(tokio::time::sleep_until(Instant::now())),
            waiting: false,
            credit: 0,
        }
    }

    /// The most one read or write may move.
    pub(crate) fn burst(&self) -> usize {
        self.limiter.burst()
    }

    /// Ready once the last payment's wait is over.
    pub(crate) fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.waiting {
            std::task::ready!(self.sleep.as_mut().poll(cx));
            self.waiting = false;
        }
        Poll::Ready(())
    }

    /// Pays for `n` bytes that were just read; [`Throttle::poll_wait`] then holds them back.
    pub(crate) fn charge(&mut self, n: usize) {
        let now = Instant::now();
        let wait = self.limiter.reserve(n, now);
        if !wait.is_zero() {
            self.sleep.as_mut().reset(now + wait);
            self.waiting = true;
        }
    }

    /// How many of `want` bytes may be written now: pays for up to one burst when nothing is
    /// paid for yet. Pending while a payment's wait runs.
    pub(crate) fn poll_allowance(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<usize> {
        std::task::ready!(self.poll_wait(cx));
        if self.credit == 0 {
            let n = want.min(self.burst());
            self.charge(n);
            self.credit = n;
            std::task::ready!(self.poll_wait(cx));
        }
        Poll::Ready(want.min(self.credit))
    }

    /// `n` paid-for bytes were written.
    pub(crate) fn spent(&mut self, n: usize) {
        self.credit = self.credit.saturating_sub(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_starts_full_then_refills_at_the_rate() {
        let l = Limiter::new(1000);
        let t0 = Instant::now();
        assert_eq!(l.reserve(1000, t0), Duration::ZERO);
        // Empty: 500 more bytes cost half a second.
        assert_eq!(l.reserve(500, t0), Duration::from_millis(500));
        // Another 500 queue behind them.
        assert_eq!(l.reserve(500, t0), Duration::from_secs(1));
        // Two seconds later the debt is paid and the bucket is full again, capped at a burst.
        let t1 = t0 + Duration::from_secs(4);
        assert_eq!(l.reserve(1000, t1), Duration::ZERO);
        assert_eq!(l.reserve(100, t1), Duration::from_millis(100));
    }

    #[test]
    fn a_clock_going_back_refills_nothing() {
        let l = Limiter::new(100);
        let t0 = Instant::now() + Duration::from_secs(1);
        assert_eq!(l.reserve(100, t0), Duration::ZERO);
        assert_eq!(
            l.reserve(10, t0 - Duration::from_millis(500)),
            Duration::from_millis(100)
        );
    }

    #[tokio::test]
    async fn a_throttle_moves_a_burst_at_once_then_the_rate() {
        let limiter = std::sync::Arc::new(Limiter::new(40_000));
        let mut t = Throttle::new(limiter);
        let start = Instant::now();
        let mut moved = 0;
        while moved < 60_000 {
            let n = std::future::poll_fn(|cx| t.poll_allowance(cx, 4096)).await;
            assert!(n <= 4096);
            t.spent(n);
            moved += n;
        }
        // 40 000 from the full bucket, the other 20 000 (paid in 4096-byte steps) at 40 000/s.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(400), "{took:?}");
        assert!(took <= Duration::from_secs(3), "{took:?}");
    }
}
