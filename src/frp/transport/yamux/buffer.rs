//! Byte queues made of fixed-size blocks lent by a session-wide pool.
//!
//! A stream's receive and send buffers hold only the blocks their bytes occupy: a drained
//! buffer gives every block back, so an idle stream holds no buffer memory however busy it
//! once was. Blocks come back to the pool, which keeps a bounded number for the next stream,
//! so a busy session recycles blocks instead of allocating one per frame.

use std::collections::VecDeque;
use tokio::io::ReadBuf;

/// Size of one block. Small enough that a stream with a few unread bytes pins little memory,
/// large enough that a 64 KiB frame spans only four.
pub(super) const BLOCK_SIZE: usize = 16 * 1024;

/// Free blocks the pool keeps (2 MiB); beyond it, returned blocks are freed.
const POOL_KEEP: usize = 128;

/// Capacity of a queue's block list kept when it drains; a larger list is released, so a
/// stream that once buffered megabytes does not keep the list for them.
const KEEP_SLOTS: usize = 16;

/// Free blocks shared by the buffers of one session (used under the session lock).
pub(super) struct Pool {
    free: Vec<Box<[u8]>>,
}

impl Pool {
    /// An empty pool; blocks are allocated on first use.
    pub(super) fn new() -> Self {
        Pool { free: Vec::new() }
    }

    fn take(&mut self) -> Box<[u8]> {
        self.free
            .pop()
            .unwrap_or_else(|| vec![0u8; BLOCK_SIZE].into_boxed_slice())
    }

    fn give(&mut self, block: Box<[u8]>) {
        if self.free.len() < POOL_KEEP {
            self.free.push(block);
        }
    }

    /// Blocks waiting in the pool (tests).
    #[cfg(test)]
    pub(super) fn free_blocks(&self) -> usize {
        self.free.len()
    }
}

/// A FIFO byte queue over pool blocks.
///
/// Bytes are `blocks[0][head..]`, the full middle blocks, and `blocks[last][..tail]` (or
/// `blocks[0][head..tail]` for a single block). An empty queue holds no block.
pub(super) struct Chain {
    blocks: VecDeque<Box<[u8]>>,
    head: usize,
    tail: usize,
    len: usize,
}

impl Chain {
    /// An empty queue; allocates nothing.
    pub(super) const fn new() -> Self {
        Chain {
            blocks: VecDeque::new(),
            head: 0,
            tail: 0,
            len: 0,
        }
    }

    /// Bytes queued.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Blocks held (tests).
    #[cfg(test)]
    pub(super) fn blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Appends `data`, taking blocks from the pool as needed.
    pub(super) fn push(&mut self, mut data: &[u8], pool: &mut Pool) {
        while !data.is_empty() {
            if self.blocks.is_empty() || self.tail == BLOCK_SIZE {
                self.blocks.push_back(pool.take());
                self.tail = 0;
            }
            let Some(back) = self.blocks.back_mut() else {
                return;
            };
            let n = data.len().min(BLOCK_SIZE - self.tail);
            back[self.tail..self.tail + n].copy_from_slice(&data[..n]);
            self.tail += n;
            self.len += n;
            data = &data[n..];
        }
    }

    /// The first contiguous bytes (empty when the queue is).
    fn front(&self) -> &[u8] {
        match self.blocks.front() {
            None => &[],
            Some(b) if self.blocks.len() == 1 => &b[self.head..self.tail],
            Some(b) => &b[self.head..],
        }
    }

    /// The queued bytes as slices, front first, as many as fit in `out`; returns how many
    /// were set. For a vectored write straight from the blocks.
    pub(super) fn slices<'a>(&'a self, out: &mut [std::io::IoSlice<'a>]) -> usize {
        let last = self.blocks.len().saturating_sub(1);
        let mut k = 0;
        for (i, b) in self.blocks.iter().enumerate() {
            if k == out.len() {
                break;
            }
            let from = if i == 0 { self.head } else { 0 };
            let to = if i == last { self.tail } else { BLOCK_SIZE };
            if from < to {
                out[k] = std::io::IoSlice::new(&b[from..to]);
                k += 1;
            }
        }
        k
    }

    /// Drops the first `n` bytes (at most `len`), giving emptied blocks back.
    pub(super) fn advance(&mut self, mut n: usize, pool: &mut Pool) {
        while n > 0 {
            let avail = self.front().len();
            if avail == 0 {
                return;
            }
            let k = n.min(avail);
            self.head += k;
            self.len -= k;
            n -= k;
            if k == avail {
                self.release_front(pool);
            }
        }
    }

    /// The front block is used up: back to the pool.
    fn release_front(&mut self, pool: &mut Pool) {
        if let Some(b) = self.blocks.pop_front() {
            pool.give(b);
        }
        self.head = 0;
        if self.blocks.is_empty() {
            self.tail = 0;
            if self.blocks.capacity() > KEEP_SLOTS {
                self.blocks = VecDeque::new();
            }
        }
    }

    /// Moves as many bytes as fit into `dst`.
    pub(super) fn read_to(&mut self, dst: &mut ReadBuf<'_>, pool: &mut Pool) {
        while dst.remaining() > 0 {
            let src = self.front();
            if src.is_empty() {
                return;
            }
            let k = src.len().min(dst.remaining());
            dst.put_slice(&src[..k]);
            self.advance(k, pool);
        }
    }

    /// Moves the first `n` bytes (at most `len`) to the end of `out`.
    pub(super) fn move_to_vec(&mut self, mut n: usize, out: &mut Vec<u8>, pool: &mut Pool) {
        while n > 0 {
            let src = self.front();
            if src.is_empty() {
                return;
            }
            let k = src.len().min(n);
            out.extend_from_slice(&src[..k]);
            n -= k;
            self.advance(k, pool);
        }
    }

    /// Empties the queue, giving every block back.
    pub(super) fn clear(&mut self, pool: &mut Pool) {
        while !self.blocks.is_empty() {
            self.release_front(pool);
        }
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_come_out_in_order_and_blocks_go_back() {
        let mut pool = Pool::new();
        let mut c = Chain::new();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for piece in data.chunks(7_000) {
            c.push(piece, &mut pool);
        }
        assert_eq!(c.len(), data.len());
        assert_eq!(c.blocks(), data.len().div_ceil(BLOCK_SIZE));
        let mut got = Vec::new();
        let mut buf = vec![0u8; 5_000];
        let mut first = true;
        while !c.is_empty() {
            if first {
                c.move_to_vec(30_000, &mut got, &mut pool);
                first = false;
            }
            let mut rb = ReadBuf::new(&mut buf);
            c.read_to(&mut rb, &mut pool);
            got.extend_from_slice(rb.filled());
        }
        assert_eq!(got, data);
        assert_eq!(c.blocks(), 0, "a drained queue holds no block");
        assert_eq!(pool.free_blocks(), data.len().div_ceil(BLOCK_SIZE));
        // The next bytes reuse a pooled block.
        c.push(b"again", &mut pool);
        assert_eq!(pool.free_blocks(), data.len().div_ceil(BLOCK_SIZE) - 1);
        c.clear(&mut pool);
        assert_eq!((c.len(), c.blocks()), (0, 0));
    }

    #[test]
    fn slices_show_the_queued_bytes_in_order() {
        let mut pool = Pool::new();
        let mut c = Chain::new();
        let data: Vec<u8> = (0..40_000u32).map(|i| (i % 253) as u8).collect();
        c.push(&data, &mut pool);
        // Consumed in uneven steps, checking the slices against the remaining bytes each time.
        let mut at = 0;
        for step in [1, 5_000, 11_383, 16_384, 7_232] {
            let mut out = [std::io::IoSlice::new(&[]); 8];
            let n = c.slices(&mut out);
            let joined: Vec<u8> = out[..n].iter().flat_map(|s| s.iter().copied()).collect();
            assert_eq!(joined, &data[at..], "after {at} bytes");
            let mut one = [std::io::IoSlice::new(&[]); 1];
            assert_eq!(c.slices(&mut one), 1);
            assert_eq!(&one[0][..], &data[at..at + one[0].len()]);
            c.advance(step, &mut pool);
            at += step;
        }
        assert!(c.is_empty());
        let mut out = [std::io::IoSlice::new(&[]); 2];
        assert_eq!(c.slices(&mut out), 0);
        assert_eq!(c.blocks(), 0);
    }

    #[test]
    fn the_pool_keeps_a_bounded_number_of_blocks() {
        let mut pool = Pool::new();
        let mut c = Chain::new();
        c.push(&vec![1u8; (POOL_KEEP + 10) * BLOCK_SIZE], &mut pool);
        c.clear(&mut pool);
        assert_eq!(pool.free_blocks(), POOL_KEEP);
        assert!(c.blocks.capacity() <= KEEP_SLOTS);
    }
}
