//! The store behind the local inspector: a bounded ring of recent exchanges recorded by the
//! request-log observer ([`crate::httplog::HttpLog::with_capture`]).
//!
//! Memory stays bounded under any load: each body is recorded up to
//! [`StoreLimits::body_limit`] bytes, recordings still in flight share one
//! [`CaptureBudget`] of [`StoreLimits::inflight_bytes`], and the ring drops its oldest records
//! as soon as it holds more than [`StoreLimits::max_records`] records or
//! [`StoreLimits::max_bytes`] bytes (by its own accounting, [`CaptureStore::bytes`]). Secrets
//! are kept as they travelled (replay needs them); masking is the presenter's job.

use crate::httplog::{CaptureBudget, CaptureOptions, Captured, Exchange, Passthrough};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};
use tokio::sync::broadcast;

/// How much the store and the recordings feeding it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreLimits {
    /// Most records kept.
    pub max_records: usize,
    /// Most bytes kept, by [`CaptureStore::bytes`]'s accounting.
    pub max_bytes: usize,
    /// Most bytes kept of one message body.
    pub body_limit: usize,
    /// Most bytes held by recordings not yet complete, across all connections.
    pub inflight_bytes: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        StoreLimits {
            max_records: 1000,
            max_bytes: 32 * 1024 * 1024,
            body_limit: 256 * 1024,
            inflight_bytes: 16 * 1024 * 1024,
        }
    }
}

/// What one record is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKind {
    /// A request and its response.
    Http {
        /// Method, path, status, timing and sizes as the request log reports them.
        exchange: Exchange,
        /// The recorded heads and first body bytes.
        captured: Captured,
    },
    /// Bytes the observer did not follow as HTTP, forwarded untouched.
    Passthrough(Passthrough),
}

/// One entry of the ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Increasing from 1, never reused while the store lives.
    pub id: u64,
    /// Proxy name without the user prefix.
    pub proxy: String,
    /// The local service (`host:port`) the bytes went to: where a replay goes.
    pub local_addr: String,
    /// When the record completed (wall clock).
    pub at: SystemTime,
    /// The exchange, or the passed-through bytes.
    pub kind: RecordKind,
}

impl Record {
    /// Bytes the store accounts for this record: the recorded bytes and strings, plus a fixed
    /// share for the structure itself.
    pub fn size(&self) -> usize {
        const OVERHEAD: usize = 256;
        let data = match &self.kind {
            RecordKind::Http { exchange, captured } => captured
                .size()
                .saturating_add(exchange.method.len())
                .saturating_add(exchange.path.len()),
            RecordKind::Passthrough(_) => 0,
        };
        data.saturating_add(self.proxy.len())
            .saturating_add(self.local_addr.len())
            .saturating_add(OVERHEAD)
    }
}

#[derive(Debug, Default)]
struct Ring {
    records: VecDeque<Arc<Record>>,
    bytes: usize,
    next_id: u64,
}

/// The ring of recent records, shared by the engine (which pushes) and the inspector (which
/// reads and follows).
#[derive(Debug)]
pub struct CaptureStore {
    ring: Mutex<Ring>,
    limits: StoreLimits,
    budget: Arc<CaptureBudget>,
    added: broadcast::Sender<Arc<Record>>,
}

/// How many new records a follower may fall behind before it sees `Lagged`.
const FOLLOW_CAPACITY: usize = 256;

impl CaptureStore {
    /// An empty store with these limits.
    pub fn new(limits: StoreLimits) -> Arc<Self> {
        let (added, _) = broadcast::channel(FOLLOW_CAPACITY);
        Arc::new(CaptureStore {
            ring: Mutex::new(Ring::default()),
            limits,
            budget: CaptureBudget::new(limits.inflight_bytes),
            added,
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> StoreLimits {
        self.limits
    }

    /// What an observer recording into this store needs.
    pub fn capture_options(&self) -> CaptureOptions {
        CaptureOptions {
            body_limit: self.limits.body_limit,
            budget: self.budget.clone(),
        }
    }

    /// Bytes held right now by recordings not yet complete.
    pub fn inflight_bytes(&self) -> usize {
        self.budget.used()
    }

    /// Adds a completed exchange (its capture is taken out of it); returns the new record.
    pub fn push_exchange(
        &self,
        proxy: &str,
        local_addr: &str,
        mut exchange: Exchange,
    ) -> Arc<Record> {
        let captured = exchange.captured.take().map(|c| *c).unwrap_or_default();
        self.push(proxy, local_addr, RecordKind::Http { exchange, captured })
    }

    /// Adds a passed-through connection; returns the new record.
    pub fn push_passthrough(
        &self,
        proxy: &str,
        local_addr: &str,
        passthrough: Passthrough,
    ) -> Arc<Record> {
        self.push(proxy, local_addr, RecordKind::Passthrough(passthrough))
    }

    fn push(&self, proxy: &str, local_addr: &str, kind: RecordKind) -> Arc<Record> {
        let record = {
            let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
            ring.next_id = ring.next_id.saturating_add(1);
            let record = Arc::new(Record {
                id: ring.next_id,
                proxy: proxy.to_owned(),
                local_addr: local_addr.to_owned(),
                at: SystemTime::now(),
                kind,
            });
            ring.bytes = ring.bytes.saturating_add(record.size());
            ring.records.push_back(record.clone());
            while ring.records.len() > self.limits.max_records || ring.bytes > self.limits.max_bytes
            {
                let Some(old) = ring.records.pop_front() else {
                    break;
                };
                ring.bytes = ring.bytes.saturating_sub(old.size());
            }
            record
        };
        // Nobody following is the usual case and costs nothing.
        let _ = self.added.send(record.clone());
        record
    }

    /// The records kept, oldest first.
    pub fn list(&self) -> Vec<Arc<Record>> {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        ring.records.iter().cloned().collect()
    }

    /// One record, if still kept.
    pub fn get(&self, id: u64) -> Option<Arc<Record>> {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        // Ids increase along the ring: binary search.
        let i = ring.records.binary_search_by_key(&id, |r| r.id).ok()?;
        ring.records.get(i).cloned()
    }

    /// Bytes the ring holds by its own accounting ([`Record::size`]); never more than
    /// [`StoreLimits::max_bytes`] once a push returns.
    pub fn bytes(&self) -> usize {
        self.ring
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .bytes
    }

    /// Every record added from now on.
    pub fn follow(&self) -> broadcast::Receiver<Arc<Record>> {
        self.added.subscribe()
    }
}

/// A duration in milliseconds with a fraction, for display and JSON.
pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
