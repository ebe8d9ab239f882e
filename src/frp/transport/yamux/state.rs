//! The session state shared by the driver and the stream handles: the stream table, each
//! stream's windows and buffers, and the queue of streams with something to send.
//!
//! Everything sits behind one mutex. Critical sections are short (a copy of at most one read
//! or write buffer, or one non-blocking vectored write of received bytes to a local socket by
//! `Stream::poll_send_to`), and one lock keeps the bookkeeping between streams and the driver
//! simple: a stream that queues bytes and the driver that frames them can never disagree.

use super::buffer::{Chain, Pool};
use super::config::{
    Config, INITIAL_WINDOW, MAX_CONTROL_QUEUE, MAX_STREAM_WINDOW, SPLIT_SEND_SIZE,
};
use super::error::ProtocolError;
use super::frame::{Header, ACK, FIN, HEADER_LEN, RST, SYN};
use super::tuning::Tuning;
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::task::Waker;
use std::time::Instant;
use tokio::sync::Semaphore;

/// Largest number of outbound streams not yet acknowledged by the peer. hashicorp's accept
/// backlog is 256: a peer with more un-accepted streams refuses the next ones with RST.
pub(super) const MAX_UNACKED: usize = 256;

/// One stream's half of the state.
pub(super) struct StreamState {
    /// Received bytes not yet read.
    pub(super) recv: Chain,
    /// Bytes the peer may still send before it needs a window update from us.
    recv_credit: u32,
    /// The receive window we currently grant (grows from [`INITIAL_WINDOW`]).
    recv_target: u32,
    /// When our last window update (or the SYN) went out: the window auto-tuning compares
    /// how long the reader took to consume half a window with the round-trip time.
    last_update: Instant,
    /// Bytes written by the handle, not yet framed.
    pub(super) send: Chain,
    /// Bytes we may still send.
    send_credit: u32,
    /// In the send queue already.
    queued: bool,
    /// Our SYN is out.
    syn_sent: bool,
    /// The peer acknowledged the stream (or the stream ended before it did).
    acked: bool,
    /// The handle asked to close: a FIN goes out after the queued bytes.
    pub(super) fin_queued: bool,
    /// Our FIN is out.
    fin_sent: bool,
    /// The peer sent FIN: no more bytes will come.
    pub(super) remote_fin: bool,
    /// The peer reset the stream.
    pub(super) reset: bool,
    /// The handle is gone; the entry stays until our FIN is out.
    dropped: bool,
    /// A reader waiting for bytes.
    pub(super) read_waker: Option<Waker>,
    /// A writer waiting for room.
    pub(super) write_waker: Option<Waker>,
}

impl StreamState {
    fn new() -> Self {
        StreamState {
            recv: Chain::new(),
            recv_credit: INITIAL_WINDOW,
            recv_target: INITIAL_WINDOW,
            last_update: Instant::now(),
            send: Chain::new(),
            send_credit: INITIAL_WINDOW,
            queued: false,
            syn_sent: false,
            acked: false,
            fin_queued: false,
            fin_sent: false,
            remote_fin: false,
            reset: false,
            dropped: false,
            read_waker: None,
            write_waker: None,
        }
    }

    /// Bytes we may still send (what the peer's window allows beyond what went out).
    pub(super) fn send_credit(&self) -> u32 {
        self.send_credit
    }

    /// Whether the peer has used up enough of its credit that a window update is worth a
    /// frame: at least half of the initial window, or a quarter of a grown one, was read by
    /// the handle. (A grown window is refilled more often: a window-limited sender moves
    /// about the window minus the part not yet refilled per round trip.)
    fn update_due(&self) -> bool {
        if self.remote_fin || self.reset {
            return false;
        }
        let share = if self.recv_target > INITIAL_WINDOW {
            4
        } else {
            2
        };
        self.consumed() >= self.recv_target as usize / share
    }

    /// Bytes read by the handle since the last window update.
    fn consumed(&self) -> usize {
        let outstanding = self.recv_credit as usize + self.recv.len();
        (self.recv_target as usize).saturating_sub(outstanding)
    }

    /// Whether the driver has anything to write for this stream.
    fn has_work(&self) -> bool {
        !self.syn_sent
            || self.update_due()
            || (!self.reset && !self.send.is_empty() && self.send_credit > 0)
            || (self.fin_queued && !self.fin_sent && (self.send.is_empty() || self.reset))
    }

    /// Whether the entry can leave the table: no handle, and nothing more to write.
    fn finished(&self) -> bool {
        self.dropped && (self.fin_sent || self.reset)
    }

    fn wake_all(&mut self) {
        if let Some(w) = self.read_waker.take() {
            w.wake();
        }
        if let Some(w) = self.write_waker.take() {
            w.wake();
        }
    }
}

/// Why opening a stream failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OpenError {
    /// The session ended, with its reason.
    #[error("session closed: {0}")]
    Closed(String),
    /// The peer sent GoAway: it accepts no new streams.
    #[error("the server is going away")]
    GoingAway,
    /// The table is full.
    #[error("more than {0} streams open")]
    TooManyStreams(usize),
    /// Every odd 32-bit stream id was used.
    #[error("stream ids exhausted")]
    IdsExhausted,
}

/// The mutable state of a session.
pub(super) struct Shared {
    /// Open streams by id; lookups are O(1), and nothing on the open path walks the table.
    pub(super) streams: HashMap<u32, StreamState>,
    /// Streams with something to send, each at most once.
    queue: VecDeque<u32>,
    /// Session frames to send (ping answers, refusals of streams the peer opened), in order.
    control: VecDeque<Header>,
    /// The id the next stream gets (odd: we are the client).
    next_id: u32,
    /// Round-trip time and the growth budget for receive windows.
    tuning: Tuning,
    /// Blocks for every stream's buffers.
    pub(super) pool: Pool,
    /// Most entries in `streams`.
    max_streams: usize,
    /// The peer sent GoAway.
    going_away: bool,
    /// Why the session ended, once it has.
    pub(super) dead: Option<String>,
    /// The driver, waiting for work.
    driver_waker: Option<Waker>,
    /// Stream entries visited by the driver and the open path; for tests of the open cost.
    pub(super) visits: u64,
}

/// The state plus what lives outside the lock.
pub(super) struct Session {
    shared: Mutex<Shared>,
    /// One permit per stream that may still wait for its ACK.
    pub(super) unacked: Semaphore,
}

impl Session {
    pub(super) fn new(cfg: &Config) -> Self {
        // The round trip is measured from the start, so that the first bulk transfer can
        // already grow its window.
        let mut tuning = Tuning::new(cfg.window_growth);
        let control = tuning.ping_due(Instant::now()).into_iter().collect();
        Session {
            shared: Mutex::new(Shared {
                streams: HashMap::new(),
                queue: VecDeque::new(),
                control,
                next_id: 1,
                tuning,
                pool: Pool::new(),
                max_streams: cfg.max_streams,
                going_away: false,
                dead: None,
                driver_waker: None,
                visits: 0,
            }),
            unacked: Semaphore::new(MAX_UNACKED),
        }
    }

    /// The state; a panic elsewhere while holding the lock does not make the state unusable
    /// (every update is complete before anything that could panic).
    pub(super) fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Shared {
    /// Adds a stream to the table and queues its SYN; O(1).
    pub(super) fn open(&mut self) -> Result<u32, OpenError> {
        if let Some(why) = &self.dead {
            return Err(OpenError::Closed(why.clone()));
        }
        if self.going_away {
            return Err(OpenError::GoingAway);
        }
        if self.streams.len() >= self.max_streams {
            return Err(OpenError::TooManyStreams(self.max_streams));
        }
        let id = self.next_id;
        self.next_id = id.checked_add(2).ok_or(OpenError::IdsExhausted)?;
        self.visits += 1;
        self.streams.insert(id, StreamState::new());
        self.enqueue(id);
        Ok(id)
    }

    /// Puts `id` in the send queue if it has work and is not there yet, and wakes the driver.
    pub(super) fn enqueue(&mut self, id: u32) {
        let Some(st) = self.streams.get_mut(&id) else {
            return;
        };
        if st.queued || !st.has_work() {
            return;
        }
        st.queued = true;
        self.queue.push_back(id);
        self.wake_driver();
    }

    fn wake_driver(&mut self) {
        if let Some(w) = self.driver_waker.take() {
            w.wake();
        }
    }

    /// The handle of `id` is gone: queue its FIN, or forget the stream if nothing is left.
    pub(super) fn drop_stream(&mut self, id: u32, unacked: &Semaphore) {
        let Some(st) = self.streams.get_mut(&id) else {
            return;
        };
        st.dropped = true;
        st.read_waker = None;
        st.write_waker = None;
        st.fin_queued = true;
        // Nobody will read these any more.
        st.recv.clear(&mut self.pool);
        if st.finished() {
            self.remove(id, unacked);
        } else {
            self.enqueue(id);
        }
    }

    /// Takes `id` out of the table and gives back its window growth and ACK slot.
    fn remove(&mut self, id: u32, unacked: &Semaphore) {
        if let Some(mut st) = self.streams.remove(&id) {
            self.tuning.give_back(st.recv_target - INITIAL_WINDOW);
            st.recv.clear(&mut self.pool);
            st.send.clear(&mut self.pool);
            if !st.acked {
                unacked.add_permits(1);
            }
        }
    }

    /// Whether the driver has nothing to write; if so, it is woken when that changes.
    pub(super) fn idle_or_register(&mut self, waker: &Waker) -> bool {
        if !self.queue.is_empty() || !self.control.is_empty() {
            return false;
        }
        match &self.driver_waker {
            Some(w) if w.will_wake(waker) => {}
            _ => self.driver_waker = Some(waker.clone()),
        }
        true
    }

    /// Appends frames to `out` until it holds at least `limit` bytes or nothing is left to send.
    /// Each stream gets at most one data frame per turn, so busy streams take turns.
    pub(super) fn fill(&mut self, out: &mut Vec<u8>, limit: usize, unacked: &Semaphore) {
        while out.len() < limit {
            if let Some(h) = self.control.pop_front() {
                out.extend_from_slice(&h.encode());
                continue;
            }
            let Some(id) = self.queue.pop_front() else {
                return;
            };
            self.visits += 1;
            let Some(st) = self.streams.get_mut(&id) else {
                continue;
            };
            st.queued = false;
            frame_stream(id, st, out, &mut self.tuning, &mut self.pool);
            if st.finished() {
                self.remove(id, unacked);
            } else if st.has_work() {
                st.queued = true;
                self.queue.push_back(id);
            }
        }
    }

    /// Handles a frame header from the peer. For a Data frame, returns where its body goes:
    /// `Some(id)` to the stream's buffer, `None` to be discarded.
    pub(super) fn on_header(
        &mut self,
        h: &Header,
        unacked: &Semaphore,
    ) -> Result<Option<u32>, PeerEvent> {
        use super::frame::Kind;
        match h.kind {
            Kind::Ping => {
                if h.has(SYN) {
                    self.push_control(Header::ping(ACK, h.length))?;
                } else if h.has(ACK) {
                    // Answers to pings we did not send are ignored.
                    self.tuning.on_pong(h.length);
                }
                Ok(None)
            }
            Kind::GoAway => Err(PeerEvent::GoAway(h.length)),
            Kind::Data | Kind::WindowUpdate => self.on_stream_header(h, unacked),
        }
    }

    fn on_stream_header(
        &mut self,
        h: &Header,
        unacked: &Semaphore,
    ) -> Result<Option<u32>, PeerEvent> {
        let id = h.stream;
        if id == 0 {
            return Err(PeerEvent::Violation(ProtocolError::InvalidStreamFrame {
                what: "stream frame",
                stream: 0,
            }));
        }
        let len = h.body_len();
        if len > MAX_STREAM_WINDOW {
            return Err(PeerEvent::Violation(ProtocolError::BodyTooLarge {
                len,
                stream: id,
            }));
        }
        self.visits += 1;
        if h.has(SYN) {
            if self.streams.contains_key(&id) {
                return Err(PeerEvent::Violation(ProtocolError::InvalidStreamFrame {
                    what: "SYN",
                    stream: id,
                }));
            }
            // frps never opens streams; one that does is refused, its bytes discarded.
            if !h.has(RST) {
                self.push_control(Header::window_update(id, RST, 0))?;
            }
            return Ok(None);
        }
        let Some(st) = self.streams.get_mut(&id) else {
            // A stream we already forgot (closed on our side): its late frames mean nothing.
            return Ok(None);
        };
        if h.has(ACK) && !st.acked {
            st.acked = true;
            unacked.add_permits(1);
        }
        match h.kind {
            super::frame::Kind::WindowUpdate => {
                st.send_credit = st
                    .send_credit
                    .checked_add(h.length)
                    .ok_or(PeerEvent::Violation(ProtocolError::WindowOverflow(id)))?;
                if h.length > 0 {
                    if let Some(w) = st.write_waker.take() {
                        w.wake();
                    }
                }
                self.on_flags(id, h.flags, unacked);
                self.enqueue(id);
                Ok(None)
            }
            _ => {
                if len > st.recv_credit {
                    return Err(PeerEvent::Violation(ProtocolError::WindowExceeded {
                        len,
                        stream: id,
                        window: st.recv_credit,
                    }));
                }
                st.recv_credit -= len;
                // A stream whose handle is gone, or that the peer already ended, takes no bytes.
                let keep = !st.dropped && !st.reset && !st.remote_fin;
                Ok(keep.then_some(id))
            }
        }
    }

    /// Bytes of a Data frame's body for stream `id`.
    pub(super) fn on_body(&mut self, id: u32, bytes: &[u8]) {
        if let Some(st) = self.streams.get_mut(&id) {
            st.recv.push(bytes, &mut self.pool);
            if let Some(w) = st.read_waker.take() {
                w.wake();
            }
        }
    }

    /// The end of a Data frame (or a WindowUpdate): applies FIN and RST.
    pub(super) fn on_flags(&mut self, id: u32, flags: u16, unacked: &Semaphore) {
        let Some(st) = self.streams.get_mut(&id) else {
            return;
        };
        if flags & RST != 0 {
            st.reset = true;
            st.send.clear(&mut self.pool);
            st.wake_all();
        } else if flags & FIN != 0 {
            st.remote_fin = true;
            if let Some(w) = st.read_waker.take() {
                w.wake();
            }
        } else {
            return;
        }
        if st.finished() {
            self.remove(id, unacked);
        }
    }

    fn push_control(&mut self, h: Header) -> Result<(), PeerEvent> {
        if self.control.len() >= MAX_CONTROL_QUEUE {
            return Err(PeerEvent::Violation(ProtocolError::RefusalFlood));
        }
        self.control.push_back(h);
        self.wake_driver();
        Ok(())
    }

    /// Queues a GoAway for the peer (best effort before the socket goes).
    pub(super) fn push_go_away(&mut self, code: u32) {
        self.control.push_back(Header::go_away(code));
    }

    /// Records the end of the session and wakes every handle and waiting opener. Visits the
    /// whole table once, at the end of the session only.
    pub(super) fn kill(&mut self, why: String, unacked: &Semaphore) {
        if self.dead.is_none() {
            self.dead = Some(why);
        }
        for st in self.streams.values_mut() {
            st.wake_all();
        }
        unacked.close();
    }

    /// The peer said GoAway: no new streams.
    pub(super) fn set_going_away(&mut self) {
        self.going_away = true;
    }
}

/// What the peer did that ends the session.
#[derive(Debug)]
pub(super) enum PeerEvent {
    /// It broke the protocol.
    Violation(ProtocolError),
    /// It sent GoAway with this code.
    GoAway(u32),
}

/// Writes the frames one stream is due: its SYN, a window update (preceded by a ping when the
/// round-trip time needs measuring), one data frame, its FIN.
fn frame_stream(
    id: u32,
    st: &mut StreamState,
    out: &mut Vec<u8>,
    tuning: &mut Tuning,
    pool: &mut Pool,
) {
    let mut syn = 0;
    if !st.syn_sent {
        st.syn_sent = true;
        syn = SYN;
    }
    let mut delta = 0;
    if st.update_due() {
        let now = Instant::now();
        if let Some(ping) = tuning.ping_due(now) {
            out.extend_from_slice(&ping.encode());
        }
        st.recv_target = tuning.grown(
            st.recv_target,
            st.consumed(),
            now.duration_since(st.last_update),
        );
        st.last_update = now;
        let outstanding = st.recv_credit + st.recv.len() as u32;
        delta = st.recv_target.saturating_sub(outstanding);
        st.recv_credit += delta;
    }
    if syn != 0 || delta > 0 {
        out.extend_from_slice(&Header::window_update(id, syn, delta).encode());
    }
    if st.reset {
        // Nothing more may go out on a reset stream; the handle learns of it on its next call.
        st.fin_sent = true;
        return;
    }
    let n = st
        .send
        .len()
        .min(st.send_credit as usize)
        .min(SPLIT_SEND_SIZE);
    if n > 0 {
        let fin = st.fin_queued && n == st.send.len();
        let flags = if fin { FIN } else { 0 };
        out.reserve(HEADER_LEN + n);
        out.extend_from_slice(&Header::data(id, flags, n as u32).encode());
        st.send.move_to_vec(n, out, pool);
        st.send_credit -= n as u32;
        st.fin_sent |= fin;
        if let Some(w) = st.write_waker.take() {
            w.wake();
        }
    }
    if st.fin_queued && !st.fin_sent && st.send.is_empty() {
        st.fin_sent = true;
        out.extend_from_slice(&Header::window_update(id, FIN, 0).encode());
    }
}
