//! The console: everything the tunnel commands print goes through one writer thread.
//!
//! A terminal or pipe that stops reading (a paused `| less`, a stuck log collector) makes
//! writes to it block. Written from the async runtime, such a write would stall Ctrl-C
//! handling, and a log call on a worker thread would stall the engine itself. So callers only
//! queue their text, which never blocks; a dedicated thread does the writing.
//!
//! The queue is bounded for ordinary text (request lines, notes, status updates, logs): when
//! the console falls that far behind, new ordinary text is dropped and counted, and the count
//! is reported on stderr once the console reads again. Essential text (the `ready` banner or
//! event, the `closed` event, the final error) is never dropped; [`flush`] waits, with a bound,
//! until everything queued has been written, so the last lines are not lost at exit.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Ordinary lines held for a slow console before new ones are dropped.
const MAX_QUEUED: usize = 1024;

/// Where a piece of text goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

/// One queued piece of text, written as is (it carries its own line break, if any).
#[derive(Debug)]
struct Chunk {
    stream: Stream,
    text: String,
    essential: bool,
    /// The report of dropped text, made by the queue itself.
    report: bool,
}

/// What waits to be written; the logic of bounds and drops, without any I/O.
#[derive(Debug, Default)]
struct Queue {
    chunks: VecDeque<Chunk>,
    /// Ordinary chunks in `chunks`.
    ordinary: usize,
    /// Ordinary chunks dropped since the last report.
    dropped: u64,
    /// The writer is writing a chunk it has taken out of the queue.
    writing: bool,
}

impl Queue {
    /// Queues `text`; ordinary text is dropped (and counted) when `MAX_QUEUED` are waiting.
    fn push(&mut self, stream: Stream, text: String, essential: bool) {
        if !essential {
            if self.ordinary >= MAX_QUEUED {
                self.dropped += 1;
                return;
            }
            self.ordinary += 1;
        }
        self.chunks.push_back(Chunk {
            stream,
            text,
            essential,
            report: false,
        });
    }

    /// The next chunk to write: the report of dropped text once the queue has drained, else
    /// the oldest chunk.
    fn pop(&mut self) -> Option<Chunk> {
        if self.chunks.is_empty() && self.dropped > 0 {
            let n = std::mem::take(&mut self.dropped);
            return Some(Chunk {
                stream: Stream::Err,
                text: format!(
                    "expose: {n} console line(s) dropped: the console was not reading fast \
                     enough\n"
                ),
                essential: true,
                report: true,
            });
        }
        let chunk = self.chunks.pop_front()?;
        if !chunk.essential {
            self.ordinary -= 1;
        }
        Some(chunk)
    }

    /// Nothing queued and nothing being written.
    fn idle(&self) -> bool {
        self.chunks.is_empty() && self.dropped == 0 && !self.writing
    }
}

/// The queue and the writer thread's wake-ups.
struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when text is queued.
    queued: Condvar,
    /// Signalled when the writer goes idle.
    idle: Condvar,
    /// No writer thread could be started: callers write themselves.
    direct: AtomicBool,
}

/// The console of one stream, its writer thread started on first use. Each stream has its own
/// queue and thread, so a stdout that stops reading does not hold back stderr, or the reverse.
fn console(stream: Stream) -> &'static Shared {
    static OUT: OnceLock<&'static Shared> = OnceLock::new();
    static ERR: OnceLock<&'static Shared> = OnceLock::new();
    let cell = match stream {
        Stream::Out => &OUT,
        Stream::Err => &ERR,
    };
    cell.get_or_init(|| {
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            queue: Mutex::new(Queue::default()),
            queued: Condvar::new(),
            idle: Condvar::new(),
            direct: AtomicBool::new(false),
        }));
        let started = std::thread::Builder::new()
            .name("console".into())
            .spawn(move || write_forever(shared));
        if started.is_err() {
            // Without a writer thread, writing in place beats printing nothing.
            shared.direct.store(true, Ordering::Relaxed);
        }
        shared
    })
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Queue> {
    // A panic while holding the lock leaves a queue that is still consistent enough to print.
    shared.queue.lock().unwrap_or_else(|e| e.into_inner())
}

/// A writer thread: takes its stream's chunks in order and writes them, blocking only itself.
fn write_forever(shared: &'static Shared) {
    loop {
        let chunk = {
            let mut q = lock(shared);
            loop {
                if let Some(c) = q.pop() {
                    q.writing = true;
                    break c;
                }
                shared.idle.notify_all();
                q = shared.queued.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        if chunk.report {
            // The report of dropped text goes to stderr, whichever stream dropped it.
            push(Stream::Err, chunk.text, true);
        } else {
            write_chunk(&chunk);
        }
        let mut q = lock(shared);
        q.writing = false;
        if q.idle() {
            shared.idle.notify_all();
        }
    }
}

/// Writes one chunk where it belongs, blocking until the console takes it.
fn write_chunk(chunk: &Chunk) {
    // Errors (a closed pipe) are ignored: there is nobody to tell.
    let _ = match chunk.stream {
        Stream::Out => {
            let mut out = std::io::stdout().lock();
            out.write_all(chunk.text.as_bytes())
                .and_then(|_| out.flush())
        }
        Stream::Err => {
            let mut err = std::io::stderr().lock();
            err.write_all(chunk.text.as_bytes())
                .and_then(|_| err.flush())
        }
    };
}

fn push(stream: Stream, text: String, essential: bool) {
    let shared = console(stream);
    if shared.direct.load(Ordering::Relaxed) {
        write_chunk(&Chunk {
            stream,
            text,
            essential,
            report: false,
        });
        return;
    }
    lock(shared).push(stream, text, essential);
    shared.queued.notify_one();
}

/// Ordinary text for stdout; dropped if the console is far behind.
pub fn out(text: impl Into<String>) {
    push(Stream::Out, text.into(), false);
}

/// Text for stdout that must not be lost (`ready`, `closed`).
pub fn out_essential(text: impl Into<String>) {
    push(Stream::Out, text.into(), true);
}

/// Ordinary text for stderr; dropped if the console is far behind.
pub fn err(text: impl Into<String>) {
    push(Stream::Err, text.into(), false);
}

/// Text for stderr that must not be lost (the final error).
pub fn err_essential(text: impl Into<String>) {
    push(Stream::Err, text.into(), true);
}

/// Waits until everything queued so far has been written, at most `timeout`. Returns whether
/// it all was.
pub fn flush(timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    // Stdout first: draining it may queue a report of dropped lines on stderr.
    flush_one(console(Stream::Out), deadline) && flush_one(console(Stream::Err), deadline)
}

fn flush_one(shared: &Shared, deadline: Instant) -> bool {
    let mut q = lock(shared);
    while !q.idle() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        q = match shared.idle.wait_timeout(q, left) {
            Ok((q, _)) => q,
            Err(e) => e.into_inner().0,
        };
    }
    true
}

/// A log destination for `tracing-subscriber`: each formatted event becomes ordinary stderr
/// text on the console.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        err(String::from_utf8_lossy(buf).into_owned());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(q: &mut Queue) -> Vec<String> {
        std::iter::from_fn(|| q.pop()).map(|c| c.text).collect()
    }

    #[test]
    fn keeps_order_and_essential_text() {
        let mut q = Queue::default();
        q.push(Stream::Out, "a\n".into(), false);
        q.push(Stream::Err, "b\n".into(), true);
        q.push(Stream::Out, "c\n".into(), false);
        assert_eq!(texts(&mut q), ["a\n", "b\n", "c\n"]);
        assert!(q.idle());
    }

    #[test]
    fn drops_ordinary_text_beyond_the_bound_and_reports_it() {
        let mut q = Queue::default();
        for i in 0..MAX_QUEUED + 10 {
            q.push(Stream::Out, format!("{i}\n"), false);
        }
        // The final event still gets in, behind the kept lines.
        q.push(Stream::Out, "closed\n".into(), true);
        let all = texts(&mut q);
        assert_eq!(all.len(), MAX_QUEUED + 2);
        assert_eq!(all[MAX_QUEUED - 1], format!("{}\n", MAX_QUEUED - 1));
        assert_eq!(all[MAX_QUEUED], "closed\n");
        assert!(all[MAX_QUEUED + 1].contains("10 console line(s) dropped"));
        assert!(q.idle());
    }

    #[test]
    fn room_comes_back_as_the_writer_catches_up() {
        let mut q = Queue::default();
        for _ in 0..MAX_QUEUED {
            q.push(Stream::Err, "x\n".into(), false);
        }
        assert!(q.pop().is_some());
        q.push(Stream::Err, "y\n".into(), false);
        assert_eq!(q.dropped, 0);
        assert_eq!(q.ordinary, MAX_QUEUED);
    }
}
