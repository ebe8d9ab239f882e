//! A request log for HTTP tunnels, read off the bytes the splice forwards anyway.
//!
//! [`HttpLog`] is a sans-IO observer of one forwarded connection. The splice shows it every chunk
//! in both directions, in whatever sizes the sockets produced, and it reports one [`Exchange`]
//! (method, path, status, duration, response size) per completed request/response pair. It never
//! changes or delays the stream it watches: it only looks.
//!
//! # Why it is built this way
//! The splice is the hot path, so the observer:
//!
//! - buffers only message heads (at most [`MAX_HEAD_BYTES`] per head, and only the part of a
//!   head line split across chunks); bodies are skipped by counting, chunked bodies by reading
//!   just their chunk-size lines;
//! - allocates nothing per chunk once warmed up (its buffers keep their capacity); the only
//!   allocations per request are the method and path strings it reports;
//! - costs O(bytes) with small constants: one `memchr`-like scan per head line, one comparison
//!   per body chunk;
//! - never panics, on any input, and never guesses: anything it cannot follow with certainty —
//!   malformed syntax, an oversized head, more than [`MAX_PENDING`] pipelined requests, a response
//!   nobody asked for, a protocol switch — turns the connection into *passthrough*, a permanent
//!   state that reports nothing more and frees its buffers. A log line missing is acceptable; a
//!   wrong one is not.
//!
//! Message framing follows RFC 9112 (HTTP/1.1 message syntax) §6, with the usual tolerance for
//! bare LF line endings and blank lines before a request line.
//!
//! # Protocol switches
//! After a CONNECT request, or one asking for an Upgrade, the request bytes that follow may be
//! HTTP (the server refuses) or tunneled data (it accepts with 101, or 2xx to CONNECT). Until the
//! response decides, up to [`MAX_HEAD_BYTES`] of them are held; they are parsed if the protocol
//! did not switch and dropped with everything else if it did. Requests parsed from held bytes
//! are timed from the moment the first held byte arrived.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Largest message head (start line, header fields, blank line) the observer will accumulate,
/// and the limit for one chunk-size line and for a chunked body's trailer section. Heads larger
/// than this are legal but rare; following them would mean unbounded buffering, so the
/// connection goes passthrough instead.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Most requests that may wait for their responses at once (pipelining). A client that pipelines
/// deeper than this is unusual enough that the connection goes passthrough rather than queueing
/// without bound.
pub const MAX_PENDING: usize = 64;

/// Most completed exchanges kept between two [`HttpLog::drain`] calls. If the caller falls
/// behind, newer exchanges are counted in [`HttpLog::dropped_exchanges`] instead of growing
/// memory without bound.
pub const MAX_COMPLETED: usize = 256;

/// Longest reported path, in characters, before it is cut and [`ELLIPSIS`] appended: a request
/// log line should fit a terminal.
pub const MAX_PATH_CHARS: usize = 200;

/// Longest accepted method, in bytes. Real methods are short tokens; a longer "method" is taken
/// as evidence the stream is not HTTP.
pub const MAX_METHOD_BYTES: usize = 32;

/// Appended to a path that was cut at [`MAX_PATH_CHARS`], so a reader knows it was cut.
pub const ELLIPSIS: char = '\u{2026}';

/// How many leading bytes of an incomplete start line are checked for plausibility, so that a
/// non-HTTP stream (TLS, HTTP/2, random bytes) goes passthrough at its first bytes instead of
/// after [`MAX_HEAD_BYTES`] of buffering. Bounded so the check costs O(1) per chunk.
const PREFIX_CHECK_BYTES: usize = MAX_METHOD_BYTES + 8;

/// One completed request/response pair, as the request log shows it.
///
/// Produced by [`HttpLog::drain`]; the fields are public because this is plain data for the
/// caller to format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The request method, a token of at most [`MAX_METHOD_BYTES`] bytes (so always printable).
    pub method: String,
    /// The request target, made safe for a terminal: control and bidi-formatting characters
    /// removed, invalid UTF-8 replaced by U+FFFD, cut to [`MAX_PATH_CHARS`] characters plus
    /// [`ELLIPSIS`]. Not percent-decoded.
    pub path: String,
    /// The final status code (never an interim 1xx other than 101).
    pub status: u16,
    /// From the moment the request head was complete to the moment the response body was
    /// complete, measured with the `Instant`s the caller passed in.
    pub duration: Duration,
    /// Bytes of response content: the body length, without chunked framing or trailers. Zero
    /// for responses without a body (HEAD, 1xx, 204, 304, 101).
    pub response_bytes: u64,
}

/// The HTTP/1.x request-log observer for one connection.
///
/// Create one per forwarded connection, feed it both directions with
/// [`on_request_bytes`](Self::on_request_bytes) and [`on_response_bytes`](Self::on_response_bytes),
/// call [`on_close`](Self::on_close) at the end, and collect results with
/// [`drain`](Self::drain). See the module documentation for the guarantees.
#[derive(Debug)]
pub struct HttpLog {
    passthrough: bool,
    /// Requests whose heads were seen, oldest first, waiting for their final responses.
    pending: VecDeque<Pending>,
    completed: Vec<Exchange>,
    dropped: u64,
    req: RequestSide,
    resp: ResponseSide,
}

impl Default for HttpLog {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpLog {
    /// A fresh observer for a new connection, expecting a request first. Allocates nothing until
    /// bytes arrive.
    pub fn new() -> Self {
        HttpLog {
            passthrough: false,
            pending: VecDeque::new(),
            completed: Vec::new(),
            dropped: 0,
            req: RequestSide::default(),
            resp: ResponseSide::default(),
        }
    }

    /// Observe bytes travelling visitor → local service (requests), in any chunking.
    ///
    /// `now` is when the caller saw them; a request's duration starts at the `now` of the chunk
    /// that completed its head. Call this *before* forwarding the chunk, so the observer cannot
    /// see a response before the request that caused it.
    pub fn on_request_bytes(&mut self, data: &[u8], now: Instant) {
        if self.passthrough || data.is_empty() {
            return;
        }
        if self.request_bytes(data, now).is_err() {
            self.enter_passthrough();
        }
    }

    /// Observe bytes travelling local service → visitor (responses), in any chunking.
    ///
    /// An exchange completes at the `now` of the chunk holding the last byte of its response.
    pub fn on_response_bytes(&mut self, data: &[u8], now: Instant) {
        if self.passthrough || data.is_empty() {
            return;
        }
        if self.response_bytes(data, now).is_err() {
            self.enter_passthrough();
        }
    }

    /// The connection ended: a response delimited by the close (no Content-Length, not chunked)
    /// is complete now, so it is reported with the bytes seen. Anything else still in flight was
    /// cut off and is not reported. The observer is passthrough afterwards.
    pub fn on_close(&mut self, now: Instant) {
        if self.passthrough {
            return;
        }
        if matches!(self.resp.state, ResponseState::Body(BodyReader::UntilClose)) {
            self.complete(now);
        }
        self.enter_passthrough();
    }

    /// Takes the exchanges completed since the last call, oldest first. Call it after each
    /// `on_*` call (or at least regularly): completed exchanges are kept only up to
    /// [`MAX_COMPLETED`]. Draining keeps the buffer's capacity, so it does not allocate.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Exchange> {
        self.completed.drain(..)
    }

    /// Whether the observer has stopped following this connection (non-HTTP or unparsable
    /// bytes, a limit exceeded, a protocol switch, or the connection closed). Once true it stays
    /// true, and further bytes cost nothing; the caller may stop feeding it.
    pub fn is_passthrough(&self) -> bool {
        self.passthrough
    }

    /// Exchanges completed but discarded because more than [`MAX_COMPLETED`] were waiting to be
    /// drained. Non-zero means the caller drains too rarely.
    pub fn dropped_exchanges(&self) -> u64 {
        self.dropped
    }

    fn enter_passthrough(&mut self) {
        self.passthrough = true;
        // Free everything but the completed exchanges, which the caller may still drain.
        self.pending = VecDeque::new();
        self.req = RequestSide::default();
        self.resp = ResponseSide::default();
    }

    fn request_bytes(&mut self, mut data: &[u8], now: Instant) -> Result<(), Stop> {
        while !data.is_empty() {
            let used = match &mut self.req.state {
                RequestState::Head => self.request_head(data, now)?,
                RequestState::Body(body) => {
                    let progress = body.read(data)?;
                    if progress.done {
                        self.req.state = self.req.after_message();
                    }
                    progress.used
                }
                RequestState::Held => {
                    self.req.hold(data, now);
                    data.len()
                }
            };
            data = advance(data, used);
        }
        Ok(())
    }

    /// Reads head lines until the head is complete or `data` is used up; returns bytes used.
    fn request_head(&mut self, data: &[u8], now: Instant) -> Result<usize, Stop> {
        let mut rest = data;
        let mut used_total = 0usize;
        loop {
            let head = &mut self.req.head;
            let (used, line) = head.lines.next_line(rest, &mut head.spent)?;
            used_total = used_total.saturating_add(used);
            rest = advance(rest, used);
            let Some(line) = line else {
                if self.req.line.is_none() && !request_prefix_plausible(head.lines.partial()) {
                    return Err(Stop);
                }
                return Ok(used_total);
            };
            if self.req.line.is_none() {
                // RFC 9112 §2.2: blank lines before the request line are ignored.
                if !line.is_empty() {
                    self.req.line = Some(parse_request_line(line)?);
                }
            } else if line.is_empty() {
                self.finish_request_head(now)?;
                return Ok(used_total);
            } else {
                parse_field(line, &mut head.fields)?;
            }
        }
    }

    fn finish_request_head(&mut self, now: Instant) -> Result<(), Stop> {
        let line = self.req.line.take().ok_or(Stop)?;
        let fields = self.req.head.take_fields();
        // RFC 9112 §6.3: a request body is chunked (if chunked is the final coding),
        // Content-Length delimited, or absent. Any other Transfer-Encoding, or one in HTTP/1.0,
        // cannot be framed; a server would answer 400 and close.
        let body = if fields.transfer_encoding {
            if !fields.chunked || line.http10 {
                return Err(Stop);
            }
            Some(BodyReader::Chunked(ChunkedReader::default()))
        } else {
            match fields.content_length {
                Some(n) if n > 0 => Some(BodyReader::Length(n)),
                _ => None,
            }
        };
        if self.pending.len() >= MAX_PENDING {
            return Err(Stop);
        }
        let may_switch = line.is_connect || fields.upgrade;
        self.pending.push_back(Pending {
            method: line.method,
            path: line.path,
            started: now,
            is_head: line.is_head,
            is_connect: line.is_connect,
            may_switch,
        });
        if may_switch {
            self.req.awaiting_switch = true;
        }
        self.req.state = match body {
            Some(body) => RequestState::Body(body),
            None => self.req.after_message(),
        };
        Ok(())
    }

    /// The response to a CONNECT or Upgrade request did not switch protocols: parse the request
    /// bytes that arrived meanwhile, which are HTTP after all.
    fn release_hold(&mut self) -> Result<(), Stop> {
        self.req.awaiting_switch = false;
        if !matches!(self.req.state, RequestState::Held) {
            // Still inside that request's body; it will continue with the next head.
            return Ok(());
        }
        self.req.state = RequestState::Head;
        let since = self.req.held_since.take();
        if std::mem::take(&mut self.req.held_overflow) {
            return Err(Stop);
        }
        let (Some(since), false) = (since, self.req.held.is_empty()) else {
            return Ok(());
        };
        let mut held = std::mem::take(&mut self.req.held);
        let result = self.request_bytes(&held, since);
        held.clear();
        if self.req.held.is_empty() {
            // Keep the allocation unless the replay started a new hold of its own.
            self.req.held = held;
        }
        result
    }

    fn response_bytes(&mut self, mut data: &[u8], now: Instant) -> Result<(), Stop> {
        while !data.is_empty() {
            let used = match &mut self.resp.state {
                ResponseState::Head => self.response_head(data, now)?,
                ResponseState::Body(body) => {
                    let progress = body.read(data)?;
                    self.resp.body_bytes = self.resp.body_bytes.saturating_add(progress.content);
                    if progress.done {
                        self.complete(now);
                    }
                    progress.used
                }
            };
            data = advance(data, used);
        }
        Ok(())
    }

    /// Reads head lines until the head is complete or `data` is used up; returns bytes used.
    fn response_head(&mut self, data: &[u8], now: Instant) -> Result<usize, Stop> {
        let mut rest = data;
        let mut used_total = 0usize;
        loop {
            let head = &mut self.resp.head;
            let (used, line) = head.lines.next_line(rest, &mut head.spent)?;
            used_total = used_total.saturating_add(used);
            rest = advance(rest, used);
            let Some(line) = line else {
                if self.resp.line.is_none() && !status_prefix_plausible(head.lines.partial()) {
                    return Err(Stop);
                }
                return Ok(used_total);
            };
            if self.resp.line.is_none() {
                if !line.is_empty() {
                    self.resp.line = Some(parse_status_line(line)?);
                }
            } else if line.is_empty() {
                self.finish_response_head(now)?;
                return Ok(used_total);
            } else {
                parse_field(line, &mut head.fields)?;
            }
        }
    }

    fn finish_response_head(&mut self, now: Instant) -> Result<(), Stop> {
        let line = self.resp.line.take().ok_or(Stop)?;
        let fields = self.resp.head.take_fields();
        let request = self.pending.front().ok_or(Stop)?;
        let (is_head, is_connect, may_switch) =
            (request.is_head, request.is_connect, request.may_switch);
        let status = line.status;
        self.resp.status = status;
        self.resp.body_bytes = 0;

        // RFC 9110 §15.2.2 / §9.3.6: after 101, or a 2xx to CONNECT, the bytes are no longer
        // HTTP. Report the exchange, then stop following the connection.
        if status == 101 || (is_connect && (200..300).contains(&status)) {
            self.complete(now);
            return Err(Stop);
        }
        // Other 1xx responses are interim: the final response follows.
        if (100..200).contains(&status) {
            return Ok(());
        }
        if may_switch {
            self.release_hold()?;
        }
        // RFC 9112 §6.3, in order.
        let body = if is_head || status == 204 || status == 304 {
            None
        } else if fields.transfer_encoding {
            if fields.chunked && !line.http10 {
                Some(BodyReader::Chunked(ChunkedReader::default()))
            } else {
                Some(BodyReader::UntilClose)
            }
        } else {
            match fields.content_length {
                Some(0) => None,
                Some(n) => Some(BodyReader::Length(n)),
                None => Some(BodyReader::UntilClose),
            }
        };
        match body {
            Some(body) => self.resp.state = ResponseState::Body(body),
            None => self.complete(now),
        }
        Ok(())
    }

    /// The response to the oldest pending request is complete.
    fn complete(&mut self, now: Instant) {
        self.resp.state = ResponseState::Head;
        let Some(request) = self.pending.pop_front() else {
            return;
        };
        if self.completed.len() >= MAX_COMPLETED {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        self.completed.push(Exchange {
            method: request.method,
            path: request.path,
            status: self.resp.status,
            duration: now.saturating_duration_since(request.started),
            response_bytes: self.resp.body_bytes,
        });
    }
}

/// The connection cannot be followed further; the observer goes passthrough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stop;

/// A request whose head was seen and whose final response has not completed yet.
#[derive(Debug)]
struct Pending {
    method: String,
    path: String,
    started: Instant,
    is_head: bool,
    is_connect: bool,
    /// CONNECT or Upgrade: the response may turn the connection into a tunnel.
    may_switch: bool,
}

#[derive(Debug, Default)]
struct RequestSide {
    state: RequestState,
    head: HeadReader,
    line: Option<RequestLine>,
    /// A CONNECT or Upgrade request is pending and its response has not decided yet whether
    /// the connection stays HTTP.
    awaiting_switch: bool,
    /// Request bytes that arrived while `awaiting_switch`: parsed if the protocol does not
    /// switch, discarded if it does. At most [`MAX_HEAD_BYTES`].
    held: Vec<u8>,
    held_since: Option<Instant>,
    /// More than [`MAX_HEAD_BYTES`] arrived while held; harmless if the protocol switches.
    held_overflow: bool,
}

impl RequestSide {
    fn after_message(&self) -> RequestState {
        if self.awaiting_switch {
            RequestState::Held
        } else {
            RequestState::Head
        }
    }

    fn hold(&mut self, data: &[u8], now: Instant) {
        if self.held_since.is_none() {
            self.held_since = Some(now);
        }
        if self.held_overflow {
            return;
        }
        if self.held.len().saturating_add(data.len()) > MAX_HEAD_BYTES {
            self.held_overflow = true;
            self.held = Vec::new();
            return;
        }
        self.held.extend_from_slice(data);
    }
}

#[derive(Debug, Default)]
enum RequestState {
    #[default]
    Head,
    Body(BodyReader),
    /// After a CONNECT or Upgrade request: hold further bytes until the response decides.
    Held,
}

#[derive(Debug, Default)]
struct ResponseSide {
    state: ResponseState,
    head: HeadReader,
    line: Option<StatusLine>,
    status: u16,
    body_bytes: u64,
}

#[derive(Debug, Default)]
enum ResponseState {
    #[default]
    Head,
    Body(BodyReader),
}

/// Accumulates one message head line by line.
#[derive(Debug, Default)]
struct HeadReader {
    lines: LineReader,
    /// Head bytes consumed so far, limited to [`MAX_HEAD_BYTES`].
    spent: usize,
    fields: Fields,
}

impl HeadReader {
    /// Hands out the fields of the finished head and readies the reader for the next one.
    fn take_fields(&mut self) -> Fields {
        self.lines.reset();
        self.spent = 0;
        std::mem::take(&mut self.fields)
    }
}

/// Splits a byte stream into lines without copying lines that arrive whole.
#[derive(Debug, Default)]
struct LineReader {
    /// The start of a line split across chunks.
    buf: Vec<u8>,
    /// `buf` holds a line already handed out; clear it before reading on.
    handed_out: bool,
}

impl LineReader {
    /// Consumes bytes of `data` up to and including the next LF. Returns how many bytes were
    /// consumed and, if a line was completed, that line without its LF and without one CR
    /// before the LF. Fails if the head would exceed [`MAX_HEAD_BYTES`] (tracked in `spent`).
    fn next_line<'a>(
        &'a mut self,
        data: &'a [u8],
        spent: &mut usize,
    ) -> Result<(usize, Option<&'a [u8]>), Stop> {
        if self.handed_out {
            self.buf.clear();
            self.handed_out = false;
        }
        let (piece, used, complete) = match data.iter().position(|&b| b == b'\n') {
            Some(i) => (data.get(..i).unwrap_or_default(), i.saturating_add(1), true),
            None => (data, data.len(), false),
        };
        *spent = spent.saturating_add(used);
        if *spent > MAX_HEAD_BYTES {
            return Err(Stop);
        }
        if !complete {
            self.buf.extend_from_slice(piece);
            return Ok((used, None));
        }
        if self.buf.is_empty() {
            return Ok((used, Some(strip_cr(piece))));
        }
        self.buf.extend_from_slice(piece);
        self.handed_out = true;
        Ok((used, Some(strip_cr(&self.buf))))
    }

    /// The incomplete line read so far.
    fn partial(&self) -> &[u8] {
        if self.handed_out {
            &[]
        } else {
            &self.buf
        }
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.handed_out = false;
    }
}

/// The header fields that decide framing. Everything else is skipped.
#[derive(Debug, Default, Clone, Copy)]
struct Fields {
    content_length: Option<u64>,
    /// A Transfer-Encoding field with at least one coding was present.
    transfer_encoding: bool,
    /// The final transfer coding is chunked.
    chunked: bool,
    /// An Upgrade field, or an `upgrade` Connection option: the peer asked to switch.
    upgrade: bool,
}

#[derive(Debug)]
struct RequestLine {
    method: String,
    path: String,
    http10: bool,
    is_head: bool,
    is_connect: bool,
}

#[derive(Debug, Clone, Copy)]
struct StatusLine {
    status: u16,
    http10: bool,
}

/// How a message body ends.
#[derive(Debug, Clone, Copy)]
enum BodyReader {
    /// Content-Length: this many bytes remain.
    Length(u64),
    Chunked(ChunkedReader),
    /// Ends when the connection closes (responses only).
    UntilClose,
}

/// What one `read` did.
#[derive(Debug, Clone, Copy)]
struct Progress {
    /// Bytes of the input that belong to this body.
    used: usize,
    /// Of those, bytes of content (not chunked framing).
    content: u64,
    /// The body is complete; bytes after `used` belong to the next message.
    done: bool,
}

impl BodyReader {
    fn read(&mut self, data: &[u8]) -> Result<Progress, Stop> {
        match self {
            BodyReader::Length(remaining) => {
                let take = usize::try_from(*remaining).map_or(data.len(), |r| r.min(data.len()));
                let content = u64::try_from(take).unwrap_or(u64::MAX);
                *remaining = remaining.saturating_sub(content);
                Ok(Progress {
                    used: take,
                    content,
                    done: *remaining == 0,
                })
            }
            BodyReader::Chunked(chunked) => chunked.read(data),
            BodyReader::UntilClose => Ok(Progress {
                used: data.len(),
                content: u64::try_from(data.len()).unwrap_or(u64::MAX),
                done: false,
            }),
        }
    }
}

/// Follows a chunked body (RFC 9112 §7.1): chunk-size lines with optional extensions, chunk
/// data skipped by counting, then trailer lines up to a blank line.
#[derive(Debug, Default, Clone, Copy)]
struct ChunkedReader {
    state: ChunkState,
    /// While reading a size line: the size so far. While in `Data`: bytes left in the chunk.
    size: u64,
    /// Bytes of the current size line, or of the trailer section; at most [`MAX_HEAD_BYTES`].
    spent: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Expecting the first hex digit of a chunk size.
    #[default]
    SizeStart,
    /// Inside the hex digits.
    Size,
    /// Whitespace after the digits, before `;` or the line end.
    SizeSpace,
    /// Inside chunk extensions: skipped up to LF.
    Ext,
    /// Saw CR ending the size line; expecting LF.
    SizeLf,
    /// Inside chunk data.
    Data,
    /// After chunk data; expecting CR or LF.
    DataCr,
    /// After chunk data and CR; expecting LF.
    DataLf,
    /// At the start of a trailer line (or of the final blank line).
    TrailerStart,
    /// Saw CR at the start of a trailer line.
    TrailerStartCr,
    /// Inside a trailer field line: skipped up to LF.
    TrailerLine,
}

impl ChunkedReader {
    fn charge(&mut self, n: usize) -> Result<(), Stop> {
        self.spent = self.spent.saturating_add(n);
        if self.spent > MAX_HEAD_BYTES {
            Err(Stop)
        } else {
            Ok(())
        }
    }

    fn end_size_line(&mut self) {
        if self.size == 0 {
            self.state = ChunkState::TrailerStart;
            self.spent = 0;
        } else {
            self.state = ChunkState::Data;
        }
    }

    fn next_size_line(&mut self) {
        self.state = ChunkState::SizeStart;
        self.size = 0;
        self.spent = 0;
    }

    fn read(&mut self, data: &[u8]) -> Result<Progress, Stop> {
        let mut rest = data;
        let mut content = 0u64;
        let mut done = false;
        while !done {
            let Some((&byte, tail)) = rest.split_first() else {
                break;
            };
            match self.state {
                ChunkState::Data => {
                    let take = usize::try_from(self.size).map_or(rest.len(), |s| s.min(rest.len()));
                    let counted = u64::try_from(take).unwrap_or(u64::MAX);
                    self.size = self.size.saturating_sub(counted);
                    content = content.saturating_add(counted);
                    rest = advance(rest, take);
                    if self.size == 0 {
                        self.state = ChunkState::DataCr;
                    }
                    continue;
                }
                ChunkState::Ext | ChunkState::TrailerLine => {
                    match rest.iter().position(|&b| b == b'\n') {
                        Some(i) => {
                            let used = i.saturating_add(1);
                            self.charge(used)?;
                            rest = advance(rest, used);
                            if self.state == ChunkState::Ext {
                                self.end_size_line();
                            } else {
                                self.state = ChunkState::TrailerStart;
                            }
                        }
                        None => {
                            self.charge(rest.len())?;
                            rest = &[];
                        }
                    }
                    continue;
                }
                _ => {}
            }
            rest = tail;
            self.charge(1)?;
            match (self.state, byte) {
                (ChunkState::SizeStart, _) => {
                    self.size = u64::from(hex_value(byte).ok_or(Stop)?);
                    self.state = ChunkState::Size;
                }
                (ChunkState::Size, _) if hex_value(byte).is_some() => {
                    let digit = u64::from(hex_value(byte).unwrap_or(0));
                    self.size = self
                        .size
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(digit))
                        .ok_or(Stop)?;
                }
                (ChunkState::Size | ChunkState::SizeSpace, b' ' | b'\t') => {
                    self.state = ChunkState::SizeSpace;
                }
                (ChunkState::Size | ChunkState::SizeSpace, b';') => self.state = ChunkState::Ext,
                (ChunkState::Size | ChunkState::SizeSpace, b'\r') => {
                    self.state = ChunkState::SizeLf;
                }
                (ChunkState::Size | ChunkState::SizeSpace | ChunkState::SizeLf, b'\n') => {
                    self.end_size_line();
                }
                (ChunkState::DataCr, b'\r') => self.state = ChunkState::DataLf,
                (ChunkState::DataCr | ChunkState::DataLf, b'\n') => self.next_size_line(),
                (ChunkState::TrailerStart, b'\r') => self.state = ChunkState::TrailerStartCr,
                (ChunkState::TrailerStart | ChunkState::TrailerStartCr, b'\n') => {
                    // The blank line ending the trailer section: the body is complete.
                    self.next_size_line();
                    done = true;
                }
                (ChunkState::TrailerStart | ChunkState::TrailerStartCr, _) => {
                    self.state = ChunkState::TrailerLine;
                }
                _ => return Err(Stop),
            }
        }
        Ok(Progress {
            used: data.len().saturating_sub(rest.len()),
            content,
            done,
        })
    }
}

/// `data` without its first `n` bytes (empty if `n` is too large).
fn advance(data: &[u8], n: usize) -> &[u8] {
    data.get(n..).unwrap_or_default()
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Strips optional whitespace (SP, HTAB) from both ends.
fn trim_ows(s: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = s.iter().position(|b| !is_ows(b)).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i.saturating_add(1));
    s.get(start..end).unwrap_or_default()
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

fn parse_decimal(s: &[u8]) -> Result<u64, Stop> {
    if s.is_empty() {
        return Err(Stop);
    }
    s.iter().try_fold(0u64, |acc, &b| {
        let digit = char::from(b).to_digit(10).ok_or(Stop)?;
        acc.checked_mul(10)
            .and_then(|a| a.checked_add(u64::from(digit)))
            .ok_or(Stop)
    })
}

/// `HTTP/1.x`; returns whether it is HTTP/1.0.
fn parse_version(v: &[u8]) -> Result<bool, Stop> {
    match v {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor] if minor.is_ascii_digit() => {
            Ok(*minor == b'0')
        }
        _ => Err(Stop),
    }
}

/// `method SP request-target SP HTTP-version` (RFC 9112 §3).
fn parse_request_line(line: &[u8]) -> Result<RequestLine, Stop> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Stop);
    };
    if !is_token(method) || method.len() > MAX_METHOD_BYTES || target.is_empty() {
        return Err(Stop);
    }
    let http10 = parse_version(version)?;
    Ok(RequestLine {
        // A token is ASCII, so this is exact.
        method: String::from_utf8_lossy(method).into_owned(),
        path: sanitize(target, MAX_PATH_CHARS),
        http10,
        is_head: method == b"HEAD",
        is_connect: method == b"CONNECT",
    })
}

/// `HTTP-version SP 3DIGIT SP [reason-phrase]` (RFC 9112 §4), tolerating a missing reason and
/// the space before it.
fn parse_status_line(line: &[u8]) -> Result<StatusLine, Stop> {
    let mut parts = line.splitn(3, |&b| b == b' ');
    let http10 = parse_version(parts.next().unwrap_or_default())?;
    let status = match parts.next() {
        Some(&[a @ b'1'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9']) => {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => return Err(Stop),
    };
    Ok(StatusLine { status, http10 })
}

/// Parses one `name: value` field line, keeping only what decides framing.
fn parse_field(line: &[u8], fields: &mut Fields) -> Result<(), Stop> {
    // Obsolete line folding (RFC 9112 §5.2): rare, and it could hide framing fields. Give up.
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err(Stop);
    }
    let colon = line.iter().position(|&b| b == b':').ok_or(Stop)?;
    let name = line.get(..colon).unwrap_or_default();
    let value = trim_ows(line.get(colon.saturating_add(1)..).unwrap_or_default());
    // Also rejects whitespace before the colon (RFC 9112 §5.1).
    if !is_token(name) {
        return Err(Stop);
    }
    if name.eq_ignore_ascii_case(b"content-length") {
        // A list of identical values is tolerated (RFC 9110 §8.6); differing values are not.
        for item in value.split(|&b| b == b',') {
            let n = parse_decimal(trim_ows(item))?;
            match fields.content_length {
                Some(old) if old != n => return Err(Stop),
                _ => fields.content_length = Some(n),
            }
        }
    } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
        for item in value.split(|&b| b == b',') {
            let coding = trim_ows(item.split(|&b| b == b';').next().unwrap_or_default());
            if !coding.is_empty() {
                fields.transfer_encoding = true;
                fields.chunked = coding.eq_ignore_ascii_case(b"chunked");
            }
        }
    } else if name.eq_ignore_ascii_case(b"connection") {
        if value
            .split(|&b| b == b',')
            .any(|option| trim_ows(option).eq_ignore_ascii_case(b"upgrade"))
        {
            fields.upgrade = true;
        }
    } else if name.eq_ignore_ascii_case(b"upgrade") && !value.is_empty() {
        fields.upgrade = true;
    }
    Ok(())
}

/// Could this incomplete line still become a request line? Checks only the first
/// [`PREFIX_CHECK_BYTES`] bytes: a token method followed by a space.
fn request_prefix_plausible(partial: &[u8]) -> bool {
    if partial == b"\r" {
        return true; // possibly a blank line before the request line
    }
    let prefix = partial.get(..PREFIX_CHECK_BYTES).unwrap_or(partial);
    for (i, &b) in prefix.iter().enumerate() {
        if b == b' ' {
            return i > 0;
        }
        if i >= MAX_METHOD_BYTES || !is_tchar(b) {
            return false;
        }
    }
    true
}

/// Could this incomplete line still become a status line? Checks for `HTTP/1.` and a digit.
fn status_prefix_plausible(partial: &[u8]) -> bool {
    if partial == b"\r" {
        return true;
    }
    const NAME: &[u8] = b"HTTP/1.";
    let n = partial.len().min(NAME.len());
    if partial.get(..n) != NAME.get(..n) {
        return false;
    }
    partial
        .get(NAME.len())
        .is_none_or(|minor| minor.is_ascii_digit())
}

/// Makes untrusted bytes safe to print on a terminal: drops control characters (C0, DEL, C1,
/// so no escape sequences) and invisible or bidi-reordering format characters (which could make
/// a path display as something it is not), replaces invalid UTF-8 with U+FFFD, and cuts the
/// result at `max_chars` characters, marking the cut with [`ELLIPSIS`].
fn sanitize(bytes: &[u8], max_chars: usize) -> String {
    let mut out = String::with_capacity(bytes.len().min(max_chars).saturating_add(3));
    let mut count = 0usize;
    for chunk in bytes.utf8_chunks() {
        let replacement = (!chunk.invalid().is_empty()).then_some(char::REPLACEMENT_CHARACTER);
        for c in chunk.valid().chars().chain(replacement) {
            if c.is_control() || is_hidden_format(c) {
                continue;
            }
            if count == max_chars {
                out.push(ELLIPSIS);
                return out;
            }
            out.push(c);
            count = count.saturating_add(1);
        }
    }
    out
}

/// Zero-width and bidirectional formatting characters.
fn is_hidden_format(c: char) -> bool {
    matches!(c,
        '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

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

    #[test]
    fn single_get_with_content_length() {
        let mut log = run(
            b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 12\r\n\r\nhello world!",
        );
        assert_eq!(summary(&mut log), vec![ex("GET", "/index.html", 200, 12)]);
        assert!(!log.is_passthrough());
    }

    #[test]
    fn nothing_reported_before_the_body_completes() {
        let now = Instant::now();
        let mut log = HttpLog::new();
        log.on_request_bytes(b"GET / HTTP/1.1\r\n\r\n", now);
        log.on_response_bytes(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab", now);
        assert!(summary(&mut log).is_empty());
        log.on_response_bytes(b"cd", now);
        assert_eq!(summary(&mut log), vec![ex("GET", "/", 200, 4)]);
    }

    #[test]
    fn keep_alive_alternating() {
        let now = Instant::now();
        let mut log = HttpLog::new();
        let requests: [&[u8]; 3] = [
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /b?q=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
            b"DELETE /c HTTP/1.1\r\nHost: x\r\n\r\n",
        ];
        let responses: [&[u8]; 3] = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
            b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\nCONTENT-LENGTH: 9\r\n\r\nnot found",
        ];
        let mut all = Vec::new();
        for (request, response) in requests.iter().zip(responses.iter()) {
            log.on_request_bytes(request, now);
            log.on_response_bytes(response, now);
            let got = summary(&mut log);
            assert_eq!(got.len(), 1);
            all.extend(got);
        }
        assert_eq!(all, keep_alive_expected());
        assert!(!log.is_passthrough());
    }

    #[test]
    fn pipelined_requests_are_matched_in_order() {
        let mut log = run(KEEP_ALIVE_REQUESTS, KEEP_ALIVE_RESPONSES);
        assert_eq!(summary(&mut log), keep_alive_expected());
        assert!(!log.is_passthrough());
    }

    #[test]
    fn byte_at_a_time_interleaved() {
        let now = Instant::now();
        let mut log = HttpLog::new();
        for b in KEEP_ALIVE_REQUESTS {
            log.on_request_bytes(std::slice::from_ref(b), now);
        }
        for b in KEEP_ALIVE_RESPONSES {
            log.on_response_bytes(std::slice::from_ref(b), now);
        }
        assert_eq!(summary(&mut log), keep_alive_expected());
    }

    #[test]
    fn random_chunkings_agree_with_one_chunk() {
        fn end_of(hay: &[u8], needle: &[u8]) -> usize {
            hay.windows(needle.len()).position(|w| w == needle).unwrap() + needle.len()
        }
        // Where each request head ends, and where each response starts.
        let head_ends = [
            end_of(KEEP_ALIVE_REQUESTS, b"/a HTTP/1.1\r\nHost: x\r\n\r\n"),
            end_of(KEEP_ALIVE_REQUESTS, b"Content-Length: 5\r\n\r\n"),
            KEEP_ALIVE_REQUESTS.len(),
        ];
        let response_starts = [
            0,
            end_of(KEEP_ALIVE_RESPONSES, b"abc"),
            end_of(KEEP_ALIVE_RESPONSES, b"length: 0\r\n\r\n"),
        ];
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..500 {
            let now = Instant::now();
            let mut log = HttpLog::new();
            let requests = random_chunks(&mut rng, KEEP_ALIVE_REQUESTS, 20);
            let responses = random_chunks(&mut rng, KEEP_ALIVE_RESPONSES, 20);
            let (mut i, mut j) = (0, 0);
            let (mut fed_req, mut fed_resp) = (0, 0);
            while j < responses.len() {
                // A response chunk may go once every request it answers has its head seen.
                let end = fed_resp + responses[j].len();
                let allowed = (0..3)
                    .filter(|&k| response_starts[k] < end)
                    .all(|k| fed_req >= head_ends[k]);
                if allowed && (i == requests.len() || rng.below(2) == 0) {
                    log.on_response_bytes(responses[j], now);
                    fed_resp = end;
                    j += 1;
                } else {
                    log.on_request_bytes(requests[i], now);
                    fed_req += requests[i].len();
                    i += 1;
                }
            }
            while i < requests.len() {
                log.on_request_bytes(requests[i], now);
                i += 1;
            }
            assert_eq!(summary(&mut log), keep_alive_expected());
            assert!(!log.is_passthrough());
        }
    }

    const CHUNKED_RESPONSES: &[u8] = b"HTTP/1.1 200 OK\r\n\
        Transfer-Encoding: gzip, chunked\r\n\r\n\
        5;name=value\r\nhello\r\n\
        1a ; a=\"q;x\" ; b\r\nabcdefghijklmnopqrstuvwxyz\r\n\
        000\r\nX-Trailer: yes\r\nX-Other: 1\r\n\r\n\
        HTTP/1.1 204 No Content\r\n\r\n";

    #[test]
    fn chunked_response_split_at_every_boundary() {
        let expected = vec![ex("GET", "/1", 200, 31), ex("GET", "/2", 204, 0)];
        let requests = b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n";
        let now = Instant::now();
        for split in 0..=CHUNKED_RESPONSES.len() {
            let mut log = HttpLog::new();
            log.on_request_bytes(requests, now);
            log.on_response_bytes(&CHUNKED_RESPONSES[..split], now);
            log.on_response_bytes(&CHUNKED_RESPONSES[split..], now);
            assert_eq!(summary(&mut log), expected, "split at {split}");
            assert!(!log.is_passthrough(), "split at {split}");
        }
        for a in 0..=CHUNKED_RESPONSES.len() {
            for b in a..=CHUNKED_RESPONSES.len() {
                let mut log = HttpLog::new();
                log.on_request_bytes(requests, now);
                log.on_response_bytes(&CHUNKED_RESPONSES[..a], now);
                log.on_response_bytes(&CHUNKED_RESPONSES[a..b], now);
                log.on_response_bytes(&CHUNKED_RESPONSES[b..], now);
                assert_eq!(summary(&mut log), expected, "splits at {a}, {b}");
            }
        }
    }

    #[test]
    fn chunked_with_bare_lf_and_no_trailers() {
        let mut log = run(
            b"GET / HTTP/1.1\n\n",
            b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n",
        );
        assert_eq!(summary(&mut log), vec![ex("GET", "/", 200, 3)]);
        assert!(!log.is_passthrough());
    }

    #[test]
    fn bare_lf_heads_and_leading_blank_lines() {
        let mut log = run(
            b"\r\nGET /x HTTP/1.0\nHost: a\n\n",
            b"HTTP/1.0 200 OK\nContent-Length: 2\n\nok",
        );
        assert_eq!(summary(&mut log), vec![ex("GET", "/x", 200, 2)]);
    }

    #[test]
    fn bad_chunk_framing_is_passthrough() {
        for body in [
            &b"zz\r\n"[..],
            b"3\r\nabcX",
            b"3\r\nabc\rX",
            b"3x\r\n",
            b"fffffffffffffffff\r\n",
        ] {
            let mut response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            response.extend_from_slice(body);
            let mut log = run(b"GET / HTTP/1.1\r\n\r\n", &response);
            assert!(log.is_passthrough(), "{:?}", String::from_utf8_lossy(body));
            assert!(summary(&mut log).is_empty());
        }
    }

    #[test]
    fn head_response_has_no_body() {
        let mut log = run(
            b"HEAD /big HTTP/1.1\r\n\r\nGET /small HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n\
              HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
        );
        assert_eq!(
            summary(&mut log),
            vec![ex("HEAD", "/big", 200, 0), ex("GET", "/small", 200, 2)]
        );
    }

    #[test]
    fn no_body_for_204_and_304() {
        let mut log = run(
            b"DELETE /x HTTP/1.1\r\n\r\nGET /y HTTP/1.1\r\n\r\nGET /z HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n\
              HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n\
              HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!",
        );
        assert_eq!(
            summary(&mut log),
            vec![
                ex("DELETE", "/x", 204, 0),
                ex("GET", "/y", 304, 0),
                ex("GET", "/z", 200, 1),
            ]
        );
    }

    #[test]
    fn interim_responses_do_not_complete_the_exchange() {
        let now = Instant::now();
        let mut log = HttpLog::new();
        log.on_request_bytes(
            b"PUT /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
            now,
        );
        log.on_response_bytes(b"HTTP/1.1 100 Continue\r\n\r\n", now);
        assert!(summary(&mut log).is_empty());
        log.on_request_bytes(b"data", now);
        log.on_response_bytes(
            b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            now,
        );
        assert_eq!(summary(&mut log), vec![ex("PUT", "/up", 200, 2)]);
        assert!(!log.is_passthrough());
    }

    #[test]
    fn switching_protocols_reports_then_passthrough() {
        let now = Instant::now();
        let mut log = HttpLog::new();
        log.on_request_bytes(
            b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x85garbage",
            now,
        );
        log.on_response_bytes(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello",
            now,
        );
        assert_eq!(summary(&mut log), vec![ex("GET", "/ws", 101, 0)]);
        assert!(log.is_passthrough());
        log.on_request_bytes(b"GET / HTTP/1.1\r\n\r\n", now);
        log.on_response_bytes(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", now);
        log.on_close(now);
        assert!(summary(&mut log).is_empty());
    }

    #[test]
    fn connect_2xx_reports_then_passthrough() {
        let mut log = run(
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01",
            b"HTTP/1.1 200 Connection Established\r\n\r\n\x16\x03\x03",
        );
        assert_eq!(
            summary(&mut log),
            vec![ex("CONNECT", "example.com:443", 200, 0)]
        );
        assert!(log.is_passthrough());
    }

    #[test]
    fn refused_upgrade_keeps_parsing_held_requests() {
        // The server ignores `Upgrade: h2c`; the request pipelined behind it is HTTP after all.
        let mut log = run(
            b"GET /a HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n\
              GET /b HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA\
              HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nBB",
        );
        assert_eq!(
            summary(&mut log),
            vec![ex("GET", "/a", 200, 1), ex("GET", "/b", 200, 2)]
        );
        assert!(!log.is_passthrough());
        // A refused CONNECT also keeps the connection in HTTP.
        let mut log = run(
            b"CONNECT h:1 HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n\
              HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(
            summary(&mut log),
            vec![ex("CONNECT", "h:1", 403, 0), ex("GET", "/c", 200, 0)]
        );
    }

    #[test]
    fn close_delimited_response_finishes_on_close() {
        let start = Instant::now();
        let mut log = HttpLog::new();
        log.on_request_bytes(b"GET /stream HTTP/1.0\r\n\r\n", start);
        log.on_response_bytes(
            b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nab",
            start,
        );
        log.on_response_bytes(b"cde", start);
        assert!(summary(&mut log).is_empty());
        let end = start + Duration::from_millis(250);
        log.on_close(end);
        let got: Vec<Exchange> = log.drain().collect();
        assert_eq!(
            got,
            vec![Exchange {
                method: "GET".into(),
                path: "/stream".into(),
                status: 200,
                duration: Duration::from_millis(250),
                response_bytes: 5,
            }]
        );
        assert!(log.is_passthrough());
    }

    #[test]
    fn non_chunked_transfer_encoding_response_is_close_delimited() {
        let now = Instant::now();
        let mut log = run(
            b"GET / HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\nContent-Length: 1\r\n\r\nxyz",
        );
        assert!(summary(&mut log).is_empty());
        log.on_close(now);
        assert_eq!(summary(&mut log), vec![ex("GET", "/", 200, 3)]);
    }

    #[test]
    fn on_close_does_not_report_truncated_bodies() {
        let now = Instant::now();
        let mut log = run(
            b"GET / HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        );
        log.on_close(now);
        assert!(summary(&mut log).is_empty());
        assert!(log.is_passthrough());
    }

    #[test]
    fn post_with_chunked_request_body() {
        let request = b"POST /upload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
            4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Checksum: 1\r\n\r\n\
            GET /after HTTP/1.1\r\n\r\n";
        let responses = b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok\
            HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        let now = Instant::now();
        for split in 0..=request.len() {
            let mut log = HttpLog::new();
            log.on_request_bytes(&request[..split], now);
            log.on_request_bytes(&request[split..], now);
            log.on_response_bytes(responses, now);
            assert_eq!(
                summary(&mut log),
                vec![ex("POST", "/upload", 201, 2), ex("GET", "/after", 200, 0)],
                "split at {split}"
            );
        }
    }

    #[test]
    fn request_framing_errors_are_passthrough() {
        for request in [
            &b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"[..],
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
            b"GET  / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET /\r\n\r\n",
            b"G(T / HTTP/1.1\r\n\r\n",
        ] {
            let mut log = HttpLog::new();
            log.on_request_bytes(request, Instant::now());
            assert!(
                log.is_passthrough(),
                "{:?}",
                String::from_utf8_lossy(request)
            );
        }
        // Repeated identical lengths are fine.
        let mut log = run(
            b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2, 2\r\n\r\nab",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(summary(&mut log), vec![ex("POST", "/", 200, 0)]);
    }

    #[test]
    fn oversized_head_is_passthrough() {
        let mut request = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        request.extend(std::iter::repeat_n(b'a', MAX_HEAD_BYTES));
        request.extend_from_slice(b"\r\n\r\n");
        let now = Instant::now();
        // Whole, and in small pieces: the limit holds either way.
        let mut log = HttpLog::new();
        log.on_request_bytes(&request, now);
        assert!(log.is_passthrough());
        let mut log = HttpLog::new();
        for piece in request.chunks(100) {
            log.on_request_bytes(piece, now);
        }
        assert!(log.is_passthrough());

        let mut response = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..2000 {
            response.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        let mut log = HttpLog::new();
        log.on_request_bytes(b"GET / HTTP/1.1\r\n\r\n", now);
        log.on_response_bytes(&response, now);
        assert!(log.is_passthrough());
        // Just under the limit is fine.
        let mut request = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        let fill = MAX_HEAD_BYTES - request.len() - 4;
        request.extend(std::iter::repeat_n(b'a', fill));
        request.extend_from_slice(b"\r\n\r\n");
        assert_eq!(request.len(), MAX_HEAD_BYTES);
        let mut log = run(&request, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(summary(&mut log), vec![ex("GET", "/", 200, 0)]);
    }

    #[test]
    fn non_http_streams_go_passthrough_at_once() {
        let now = Instant::now();
        let mut log = HttpLog::new();
        log.on_request_bytes(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", now);
        assert!(log.is_passthrough());
        let mut log = HttpLog::new();
        log.on_request_bytes(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", now);
        assert!(log.is_passthrough());
        let mut log = HttpLog::new();
        log.on_request_bytes(b"GET / HTTP/1.1\r\n\r\n", now);
        log.on_response_bytes(b"SSH-2.0-OpenSSH", now);
        assert!(log.is_passthrough());
    }

    #[test]
    fn response_without_request_is_passthrough() {
        let mut log = run(b"", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert!(log.is_passthrough());
        assert!(summary(&mut log).is_empty());
        // One response too many.
        let mut log = run(
            b"GET / HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(summary(&mut log), vec![ex("GET", "/", 200, 0)]);
        assert!(log.is_passthrough());
    }

    #[test]
    fn too_many_pipelined_requests_is_passthrough() {
        let mut requests = Vec::new();
        for _ in 0..MAX_PENDING {
            requests.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        }
        let mut log = HttpLog::new();
        log.on_request_bytes(&requests, Instant::now());
        assert!(!log.is_passthrough());
        log.on_request_bytes(b"GET / HTTP/1.1\r\n\r\n", Instant::now());
        assert!(log.is_passthrough());
    }

    #[test]
    fn undrained_exchanges_are_bounded() {
        let now = Instant::now();
        let mut log = HttpLog::new();
        for _ in 0..MAX_COMPLETED + 5 {
            log.on_request_bytes(b"GET / HTTP/1.1\r\n\r\n", now);
            log.on_response_bytes(b"HTTP/1.1 204 No Content\r\n\r\n", now);
        }
        assert_eq!(log.dropped_exchanges(), 5);
        assert_eq!(log.drain().count(), MAX_COMPLETED);
        log.on_request_bytes(b"GET / HTTP/1.1\r\n\r\n", now);
        log.on_response_bytes(b"HTTP/1.1 204 No Content\r\n\r\n", now);
        assert_eq!(log.drain().count(), 1);
    }

    #[test]
    fn path_is_sanitized_and_truncated() {
        let mut log = run(
            b"GET /a\x1b[31mred\x7f\x01/\xff\xfe/\xe2\x80\xaeevil HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(
            summary(&mut log),
            vec![ex("GET", "/a[31mred/\u{FFFD}\u{FFFD}/evil", 200, 0)]
        );

        let long = format!("/{}", "x".repeat(500));
        let request = format!("GET {long} HTTP/1.1\r\n\r\n");
        let mut log = run(
            request.as_bytes(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        );
        let got = log.drain().next().unwrap();
        assert_eq!(got.path.chars().count(), MAX_PATH_CHARS + 1);
        assert!(got.path.ends_with(ELLIPSIS));
        assert!(long.starts_with(got.path.trim_end_matches(ELLIPSIS)));

        // Exactly at the limit: no marker.
        assert_eq!(sanitize("é".repeat(5).as_bytes(), 5), "é".repeat(5));
        assert_eq!(sanitize(b"abcdef", 5), format!("abcde{ELLIPSIS}"));
    }

    #[test]
    fn duration_uses_the_supplied_instants() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut log = HttpLog::new();
        // The head completes at 10 ms; the body is done at 80 ms.
        log.on_request_bytes(b"GET /slow HTTP/1.1\r\nHost:", ms(0));
        log.on_request_bytes(b" x\r\n\r\n", ms(10));
        log.on_response_bytes(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n", ms(50));
        log.on_response_bytes(b"ab", ms(60));
        log.on_response_bytes(b"cd", ms(80));
        let got: Vec<Exchange> = log.drain().collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].duration, Duration::from_millis(70));
        // Pipelined requests each start when their own head is seen.
        log.on_request_bytes(b"GET /1 HTTP/1.1\r\n\r\n", ms(100));
        log.on_request_bytes(b"GET /2 HTTP/1.1\r\n\r\n", ms(120));
        log.on_response_bytes(b"HTTP/1.1 204 No Content\r\n\r\n", ms(150));
        log.on_response_bytes(b"HTTP/1.1 204 No Content\r\n\r\n", ms(200));
        let durations: Vec<Duration> = log.drain().map(|e| e.duration).collect();
        assert_eq!(
            durations,
            vec![Duration::from_millis(50), Duration::from_millis(80)]
        );
        // A clock that goes backwards gives zero, not a panic.
        log.on_request_bytes(b"GET / HTTP/1.1\r\n\r\n", ms(300));
        log.on_response_bytes(b"HTTP/1.1 204 No Content\r\n\r\n", ms(200));
        assert_eq!(log.drain().next().unwrap().duration, Duration::ZERO);
    }

    /// Bytes that are mostly HTTP-shaped messages, so random inputs get deep into the state
    /// machine: start lines, framing fields, blank lines and body-like pieces, in random order
    /// and with random bytes sprinkled in.
    fn random_http_ish(rng: &mut XorShift, requests: bool, len: usize) -> Vec<u8> {
        const REQUEST_LINES: &[&[u8]] = &[
            b"GET / HTTP/1.1\r\n",
            b"HEAD /h HTTP/1.1\r\n",
            b"POST /p HTTP/1.0\n",
            b"CONNECT a:1 HTTP/1.1\r\n",
        ];
        const STATUS_LINES: &[&[u8]] = &[
            b"HTTP/1.1 200 OK\r\n",
            b"HTTP/1.1 101 S\r\n",
            b"HTTP/1.1 100 C\r\n",
            b"HTTP/1.0 304 N\n",
            b"HTTP/1.1 204\r\n",
        ];
        const FIELDS: &[&[u8]] = &[
            b"Content-Length: 3\r\n",
            b"content-length: 0\n",
            b"Content-Length: 18446744073709551615\r\n",
            b"Transfer-Encoding: chunked\r\n",
            b"Transfer-Encoding: gzip\r\n",
            b"Upgrade: x\r\n",
            b"Host: h\r\n",
        ];
        const BODIES: &[&[u8]] = &[
            b"abc",
            b"3\r\nabc\r\n",
            b"5;e=1\r\nhello\n",
            b"0\r\n\r\n",
            b"0\r\nT: 1\r\n\n",
            b"ffffffffffffffff\r\n",
            b"\r\n",
        ];
        let pick = |rng: &mut XorShift, from: &[&'static [u8]]| from[rng.below(from.len())];
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let mut pieces = vec![pick(
                rng,
                if requests {
                    REQUEST_LINES
                } else {
                    STATUS_LINES
                },
            )];
            for _ in 0..rng.below(3) {
                pieces.push(pick(rng, FIELDS));
            }
            pieces.push(if rng.below(2) == 0 { b"\r\n" } else { b"\n" });
            for _ in 0..rng.below(3) {
                pieces.push(pick(rng, BODIES));
            }
            for piece in pieces {
                if rng.below(30) == 0 {
                    out.push(rng.next() as u8);
                }
                out.extend_from_slice(piece);
            }
        }
        out
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
        let start = Instant::now();
        let mut reported = 0;
        for round in 0..3000 {
            let mut log = HttpLog::new();
            let requests = if round % 3 == 0 {
                (0..rng.below(600)).map(|_| rng.next() as u8).collect()
            } else {
                let len = rng.below(600);
                random_http_ish(&mut rng, true, len)
            };
            let len = rng.below(600);
            let responses = random_http_ish(&mut rng, false, len);
            let mut req = random_chunks(&mut rng, &requests, 64).into_iter();
            let mut resp = random_chunks(&mut rng, &responses, 64).into_iter();
            let mut t = 0;
            loop {
                t += rng.below(5) as u64;
                let now = start + Duration::from_millis(t);
                let next = if rng.below(3) != 0 {
                    req.next().map(|c| (true, c))
                } else {
                    resp.next().map(|c| (false, c))
                };
                match next {
                    Some((true, c)) => log.on_request_bytes(c, now),
                    Some((false, c)) => log.on_response_bytes(c, now),
                    None if req.len() == 0 && resp.len() == 0 => break,
                    None => {}
                }
                for e in log.drain() {
                    reported += 1;
                    assert!(e.path.chars().count() <= MAX_PATH_CHARS + 1);
                    assert!(e.path.chars().all(|c| !c.is_control()));
                    assert!((100..1000).contains(&e.status));
                }
                assert!(log.req.head.lines.buf.capacity() <= 2 * MAX_HEAD_BYTES);
                assert!(log.resp.head.lines.buf.capacity() <= 2 * MAX_HEAD_BYTES);
                assert!(log.pending.len() <= MAX_PENDING);
            }
            log.on_close(start);
            reported += log.drain().count();
            assert!(log.is_passthrough());
        }
        // The inputs are HTTP-shaped enough to get past the first head now and then.
        assert!(reported > 100);
    }

    #[test]
    fn mutated_valid_traffic_never_panics() {
        let mut rng = XorShift(0xDEAD_BEEF_CAFE_F00D);
        let now = Instant::now();
        let mut reported = 0;
        for _ in 0..3000 {
            let mut requests = KEEP_ALIVE_REQUESTS.to_vec();
            let mut responses = [KEEP_ALIVE_RESPONSES, CHUNKED_RESPONSES].concat();
            for _ in 0..1 + rng.below(4) {
                let target = if rng.below(2) == 0 {
                    &mut requests
                } else {
                    &mut responses
                };
                let i = rng.below(target.len());
                match rng.below(3) {
                    0 => target[i] = rng.next() as u8,
                    1 => {
                        target.remove(i);
                    }
                    _ => target.insert(i, rng.next() as u8),
                }
            }
            let mut log = HttpLog::new();
            for c in random_chunks(&mut rng, &requests, 32) {
                log.on_request_bytes(c, now);
            }
            for c in random_chunks(&mut rng, &responses, 32) {
                log.on_response_bytes(c, now);
            }
            log.on_close(now);
            let n = log.drain().count();
            assert!(n <= 5);
            reported += n;
        }
        // Most single mutations leave at least the first exchange intact.
        assert!(reported > 1000);
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<HttpLog>();
    }
}
