//! Optional copies of what the observer reads anyway: the raw bytes of each message head and the
//! first bytes of each body, for the local inspector.
//!
//! Recording is off unless [`HttpLog::with_capture`](super::HttpLog::with_capture) is used. When
//! on, it stays bounded twice over: each body keeps at most [`CaptureOptions::body_limit`] bytes,
//! and all recordings in flight on every connection together hold at most the
//! [`CaptureBudget`]'s limit (a recording that would exceed it keeps what it has and is marked
//! truncated). Past a body's limit a chunk costs one comparison, so large transfers cost nothing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Bytes held by recordings not yet completed, across all connections that share it.
#[derive(Debug)]
pub struct CaptureBudget {
    used: AtomicUsize,
    limit: usize,
}

impl CaptureBudget {
    /// A budget of `limit` bytes in flight.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(CaptureBudget {
            used: AtomicUsize::new(0),
            limit,
        })
    }

    /// Bytes reserved right now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn try_reserve(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                u.checked_add(n).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    fn release(&self, n: usize) {
        // Never below zero, whatever the order of releases.
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(n))
            });
    }
}

/// What to record and within which bounds.
#[derive(Debug, Clone)]
pub struct CaptureOptions {
    /// Most bytes kept of one message body (as framed on the wire, so a chunked body's chunk-size
    /// lines count too).
    pub body_limit: usize,
    /// Shared by every connection recording into the same store.
    pub budget: Arc<CaptureBudget>,
}

/// The first bytes of one message body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyCapture {
    /// The bytes kept, as they travelled (chunked framing included when `chunked`).
    pub bytes: Vec<u8>,
    /// Content bytes the whole body had (without chunked framing).
    pub total: u64,
    /// The body used chunked transfer coding; `bytes` still holds the framing.
    pub chunked: bool,
    /// Bytes of the body were not kept (per-body limit or in-flight budget reached).
    pub truncated: bool,
}

/// One message as recorded: its raw head and the start of its body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageCapture {
    /// Start line and header fields, each line ending in CRLF, without the blank line.
    pub head: Vec<u8>,
    /// The start of the body.
    pub body: BodyCapture,
}

/// The request and the response of one exchange.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    /// The request as the local service received it.
    pub request: MessageCapture,
    /// The response as the local service sent it.
    pub response: MessageCapture,
}

impl Captured {
    /// Bytes this capture holds (what a store accounts for).
    pub fn size(&self) -> usize {
        self.request
            .head
            .len()
            .saturating_add(self.request.body.bytes.len())
            .saturating_add(self.response.head.len())
            .saturating_add(self.response.body.bytes.len())
    }
}

/// A message being recorded; gives its reservation back when dropped, however the connection
/// ends.
#[derive(Debug)]
pub(super) struct Recording {
    pub(super) message: MessageCapture,
    reserved: usize,
    budget: Arc<CaptureBudget>,
}

impl Recording {
    pub(super) fn new(options: &CaptureOptions) -> Self {
        Recording {
            message: MessageCapture::default(),
            reserved: 0,
            budget: options.budget.clone(),
        }
    }

    fn reserve(&mut self, n: usize) -> bool {
        if self.budget.try_reserve(n) {
            self.reserved = self.reserved.saturating_add(n);
            true
        } else {
            false
        }
    }

    /// One head line (without its line ending). Heads are bounded by the observer itself.
    pub(super) fn head_line(&mut self, line: &[u8]) {
        let n = line.len().saturating_add(2);
        if self.reserve(n) {
            self.message.head.extend_from_slice(line);
            self.message.head.extend_from_slice(b"\r\n");
        } else {
            self.message.body.truncated = true;
        }
    }

    /// Forgets the head read so far (an interim 1xx response is not the final one).
    pub(super) fn reset_head(&mut self) {
        let n = self.message.head.len();
        self.budget.release(n);
        self.reserved = self.reserved.saturating_sub(n);
        self.message.head.clear();
    }

    /// Body bytes as framed, of which `content` are content.
    pub(super) fn body(&mut self, data: &[u8], content: u64, limit: usize, chunked: bool) {
        let body = &mut self.message.body;
        body.total = body.total.saturating_add(content);
        body.chunked |= chunked;
        let room = limit.saturating_sub(body.bytes.len());
        if room == 0 {
            body.truncated |= !data.is_empty();
            return;
        }
        let take = room.min(data.len());
        if take < data.len() {
            self.message.body.truncated = true;
        }
        if !self.reserve(take) {
            self.message.body.truncated = true;
            return;
        }
        self.message
            .body
            .bytes
            .extend_from_slice(data.get(..take).unwrap_or_default());
    }

    /// The recorded message; the in-flight reservation ends here (the store accounts from now
    /// on).
    pub(super) fn finish(mut self) -> MessageCapture {
        std::mem::take(&mut self.message)
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        self.budget.release(self.reserved);
    }
}

/// A connection, or the rest of it, that the observer did not follow as HTTP: forwarded
/// untouched and reported as such.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passthrough {
    /// Why it was not followed.
    pub reason: &'static str,
    /// Bytes towards the local service after the observer stopped following.
    pub request_bytes: u64,
    /// Bytes from the local service after the observer stopped following.
    pub response_bytes: u64,
}
