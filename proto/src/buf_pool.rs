//! Process-wide pools of payload buffers, so that a connection holds a buffer only while its
//! bytes move.
//!
//! An idle connection (a keep-alive HTTP connection, a held SSH session) may sit for hours with
//! nothing to forward; with a buffer of its own per direction, thousands of them would pin
//! megabytes for nothing. A pipe instead leases a buffer when it is about to read and gives it
//! back once it holds nothing again ([`crate::pipeline::Pipe::release`]). The pool keeps a
//! bounded number of free buffers, so a busy connection takes the same buffer back on every
//! read instead of allocating (and zeroing) a new one.

use std::sync::Mutex;

/// Free buffers of one size.
pub(crate) struct BufPool {
    /// Length of every buffer in the pool.
    len: usize,
    /// At most this many free buffers are kept; more are freed.
    keep: usize,
    free: Mutex<Vec<Box<[u8]>>>,
}

impl BufPool {
    /// An empty pool of `len`-byte buffers keeping at most `keep` free ones.
    pub(crate) const fn new(len: usize, keep: usize) -> Self {
        BufPool {
            len,
            keep,
            free: Mutex::new(Vec::new()),
        }
    }

    /// A buffer of the pool's length: a free one, or a new one. Its bytes are whatever the
    /// previous user left; a pipe only ever hands out bytes it wrote itself.
    pub(crate) fn lease(&self) -> Box<[u8]> {
        let reused = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        reused.unwrap_or_else(|| vec![0u8; self.len].into_boxed_slice())
    }

    /// Gives `buf` back; freed if the pool is full or `buf` is not of the pool's length.
    pub(crate) fn give_back(&self, buf: Box<[u8]>) {
        if buf.len() != self.len {
            return;
        }
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < self.keep {
            free.push(buf);
        }
    }

    /// Free buffers waiting in the pool (tests).
    #[cfg(test)]
    pub(crate) fn free(&self) -> usize {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_and_the_pool_is_bounded() {
        let pool = BufPool::new(100, 2);
        let a = pool.lease();
        let b = pool.lease();
        let c = pool.lease();
        assert_eq!(a.len(), 100);
        let at = a.as_ptr();
        pool.give_back(a);
        let again = pool.lease();
        assert_eq!(again.as_ptr(), at, "the free buffer comes back");
        pool.give_back(again);
        pool.give_back(b);
        pool.give_back(c);
        assert_eq!(pool.free(), 2, "full: the third is freed");
        pool.give_back(vec![0u8; 7].into_boxed_slice());
        assert_eq!(pool.free(), 2, "a buffer of another size is not kept");
    }
}
