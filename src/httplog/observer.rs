//! The observer itself: the request and response sides of one connection, matched up into
//! exchanges.

use super::body::{BodyReader, ChunkedReader};
use super::capture::{CaptureOptions, Captured, Passthrough, Recording};
use super::limits::{MAX_COMPLETED, MAX_HEAD_BYTES, MAX_PENDING};
use super::syntax::{
    advance, parse_field, parse_request_line, parse_status_line, request_prefix_plausible,
    status_prefix_plausible, HeadReader, RequestLine, StatusLine, Stop,
};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

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
    /// The recorded heads and first body bytes, when the observer was made
    /// [`with_capture`](HttpLog::with_capture).
    pub captured: Option<Box<Captured>>,
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
    pub(super) pending: VecDeque<Pending>,
    completed: Vec<Exchange>,
    dropped: u64,
    pub(super) req: RequestSide,
    pub(super) resp: ResponseSide,
    /// Recording for the inspector; `None` (the request log alone) records nothing.
    capture: Option<CaptureOptions>,
    /// Why the observer went passthrough, and the bytes since, while recording.
    passthrough_info: Option<Passthrough>,
    /// The last response switched protocols (101, or 2xx to CONNECT).
    switched: bool,
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
            capture: None,
            passthrough_info: None,
            switched: false,
        }
    }

    /// An observer that also records each exchange's heads and first body bytes (see
    /// [`Exchange::captured`]), and what it stopped following ([`Self::take_passthrough`]).
    pub fn with_capture(options: CaptureOptions) -> Self {
        HttpLog {
            capture: Some(options),
            ..Self::new()
        }
    }

    /// While recording: what was passed through unfollowed since the observer went passthrough
    /// (not counting a normal close). Taken once.
    pub fn take_passthrough(&mut self) -> Option<Passthrough> {
        self.passthrough_info.take()
    }

    /// Observe bytes travelling visitor → local service (requests), in any chunking.
    ///
    /// `now` is when the caller saw them; a request's duration starts at the `now` of the chunk
    /// that completed its head. Call this *before* forwarding the chunk, so the observer cannot
    /// see a response before the request that caused it.
    pub fn on_request_bytes(&mut self, data: &[u8], now: Instant) {
        if self.passthrough || data.is_empty() {
            if let Some(p) = self.passthrough_info.as_mut() {
                p.request_bytes = p.request_bytes.saturating_add(data.len() as u64);
            }
            return;
        }
        if self.request_bytes(data, now).is_err() {
            self.stop_following("not HTTP/1.x, or beyond what the observer follows");
        }
    }

    /// Observe bytes travelling local service → visitor (responses), in any chunking.
    ///
    /// An exchange completes at the `now` of the chunk holding the last byte of its response.
    pub fn on_response_bytes(&mut self, data: &[u8], now: Instant) {
        if self.passthrough || data.is_empty() {
            if let Some(p) = self.passthrough_info.as_mut() {
                p.response_bytes = p.response_bytes.saturating_add(data.len() as u64);
            }
            return;
        }
        if self.response_bytes(data, now).is_err() {
            let reason = if self.switched {
                "protocol switched (101 or CONNECT)"
            } else {
                "response not HTTP/1.x, or beyond what the observer follows"
            };
            self.stop_following(reason);
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

    /// Goes passthrough in the middle of a connection; while recording, remembers why.
    fn stop_following(&mut self, reason: &'static str) {
        if self.capture.is_some() {
            self.passthrough_info = Some(Passthrough {
                reason,
                request_bytes: 0,
                response_bytes: 0,
            });
        }
        self.enter_passthrough();
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
                    let chunked = matches!(body, BodyReader::Chunked(_));
                    let progress = body.read(data)?;
                    if let (Some(options), Some(rec)) = (
                        self.capture.as_ref(),
                        self.pending.back_mut().and_then(|p| p.rec.as_mut()),
                    ) {
                        let used = data.get(..progress.used).unwrap_or_default();
                        rec.body(used, progress.content, options.body_limit, chunked);
                    }
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
                    if let Some(options) = self.capture.as_ref() {
                        let mut rec = Recording::new(options);
                        rec.head_line(line);
                        self.req.rec = Some(rec);
                    }
                }
            } else if line.is_empty() {
                self.finish_request_head(now)?;
                return Ok(used_total);
            } else {
                parse_field(line, &mut head.fields)?;
                if let Some(rec) = self.req.rec.as_mut() {
                    rec.head_line(line);
                }
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
            rec: self.req.rec.take(),
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
                    let chunked = matches!(body, BodyReader::Chunked(_));
                    let progress = body.read(data)?;
                    if let (Some(options), Some(rec)) =
                        (self.capture.as_ref(), self.resp.rec.as_mut())
                    {
                        let used = data.get(..progress.used).unwrap_or_default();
                        rec.body(used, progress.content, options.body_limit, chunked);
                    }
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
                    if let Some(options) = self.capture.as_ref() {
                        // A final response after an interim 1xx starts its recording afresh.
                        let rec = self.resp.rec.get_or_insert_with(|| Recording::new(options));
                        rec.reset_head();
                        rec.head_line(line);
                    }
                }
            } else if line.is_empty() {
                self.finish_response_head(now)?;
                return Ok(used_total);
            } else {
                parse_field(line, &mut head.fields)?;
                if let Some(rec) = self.resp.rec.as_mut() {
                    rec.head_line(line);
                }
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
            self.switched = true;
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
        let response = self.resp.rec.take();
        let Some(request) = self.pending.pop_front() else {
            return;
        };
        if self.completed.len() >= MAX_COMPLETED {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        let captured = self.capture.as_ref().map(|_| {
            Box::new(Captured {
                request: request.rec.map(Recording::finish).unwrap_or_default(),
                response: response.map(Recording::finish).unwrap_or_default(),
            })
        });
        self.completed.push(Exchange {
            method: request.method,
            path: request.path,
            status: self.resp.status,
            duration: now.saturating_duration_since(request.started),
            response_bytes: self.resp.body_bytes,
            captured,
        });
    }
}

/// A request whose head was seen and whose final response has not completed yet.
#[derive(Debug)]
pub(super) struct Pending {
    method: String,
    path: String,
    started: Instant,
    is_head: bool,
    is_connect: bool,
    /// CONNECT or Upgrade: the response may turn the connection into a tunnel.
    may_switch: bool,
    /// The request's recording, while capturing.
    rec: Option<Recording>,
}

#[derive(Debug, Default)]
pub(super) struct RequestSide {
    state: RequestState,
    pub(super) head: HeadReader,
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
    /// The recording of the request head being read, while capturing.
    rec: Option<Recording>,
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
pub(super) struct ResponseSide {
    state: ResponseState,
    pub(super) head: HeadReader,
    line: Option<StatusLine>,
    status: u16,
    body_bytes: u64,
    /// The recording of the response being read, while capturing.
    rec: Option<Recording>,
}

#[derive(Debug, Default)]
enum ResponseState {
    #[default]
    Head,
    Body(BodyReader),
}
