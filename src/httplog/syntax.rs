//! HTTP/1.x message-head syntax: splitting lines, start lines, the header fields that decide
//! framing, and making request targets safe to print.

use super::limits::{
    ELLIPSIS, MAX_HEAD_BYTES, MAX_METHOD_BYTES, MAX_PATH_CHARS, PREFIX_CHECK_BYTES,
};

/// The connection cannot be followed further; the observer goes passthrough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stop;

/// Accumulates one message head line by line.
#[derive(Debug, Default)]
pub(super) struct HeadReader {
    pub(super) lines: LineReader,
    /// Head bytes consumed so far, limited to [`MAX_HEAD_BYTES`].
    pub(super) spent: usize,
    pub(super) fields: Fields,
}

impl HeadReader {
    /// Hands out the fields of the finished head and readies the reader for the next one.
    pub(super) fn take_fields(&mut self) -> Fields {
        self.lines.reset();
        self.spent = 0;
        std::mem::take(&mut self.fields)
    }
}

/// Splits a byte stream into lines without copying lines that arrive whole.
#[derive(Debug, Default)]
pub(super) struct LineReader {
    /// The start of a line split across chunks.
    pub(super) buf: Vec<u8>,
    /// `buf` holds a line already handed out; clear it before reading on.
    handed_out: bool,
}

impl LineReader {
    /// Consumes bytes of `data` up to and including the next LF. Returns how many bytes were
    /// consumed and, if a line was completed, that line without its LF and without one CR
    /// before the LF. Fails if the head would exceed [`MAX_HEAD_BYTES`] (tracked in `spent`).
    pub(super) fn next_line<'a>(
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
    pub(super) fn partial(&self) -> &[u8] {
        if self.handed_out {
            &[]
        } else {
            &self.buf
        }
    }

    pub(super) fn reset(&mut self) {
        self.buf.clear();
        self.handed_out = false;
    }
}

/// The header fields that decide framing. Everything else is skipped.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Fields {
    pub(super) content_length: Option<u64>,
    /// A Transfer-Encoding field with at least one coding was present.
    pub(super) transfer_encoding: bool,
    /// The final transfer coding is chunked.
    pub(super) chunked: bool,
    /// An Upgrade field, or an `upgrade` Connection option: the peer asked to switch.
    pub(super) upgrade: bool,
}

#[derive(Debug)]
pub(super) struct RequestLine {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) http10: bool,
    pub(super) is_head: bool,
    pub(super) is_connect: bool,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct StatusLine {
    pub(super) status: u16,
    pub(super) http10: bool,
}

/// `data` without its first `n` bytes (empty if `n` is too large).
pub(super) fn advance(data: &[u8], n: usize) -> &[u8] {
    data.get(n..).unwrap_or_default()
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Strips optional whitespace (SP, HTAB) from both ends.
pub(super) fn trim_ows(s: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = s.iter().position(|b| !is_ows(b)).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i.saturating_add(1));
    s.get(start..end).unwrap_or_default()
}

/// RFC 9110 §5.6.2 `tchar`.
pub(super) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

pub(super) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

pub(super) fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

pub(super) fn parse_decimal(s: &[u8]) -> Result<u64, Stop> {
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
pub(super) fn parse_version(v: &[u8]) -> Result<bool, Stop> {
    match v {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor] if minor.is_ascii_digit() => {
            Ok(*minor == b'0')
        }
        _ => Err(Stop),
    }
}

/// `method SP request-target SP HTTP-version` (RFC 9112 §3).
pub(super) fn parse_request_line(line: &[u8]) -> Result<RequestLine, Stop> {
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
pub(super) fn parse_status_line(line: &[u8]) -> Result<StatusLine, Stop> {
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
pub(super) fn parse_field(line: &[u8], fields: &mut Fields) -> Result<(), Stop> {
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
pub(super) fn request_prefix_plausible(partial: &[u8]) -> bool {
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
pub(super) fn status_prefix_plausible(partial: &[u8]) -> bool {
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
pub(super) fn sanitize(bytes: &[u8], max_chars: usize) -> String {
    let mut out = String::with_capacity(bytes.len().min(max_chars).saturating_add(3));
    let mut count = 0usize;
    for chunk in bytes.utf8_chunks() {
        let replacement = (!chunk.invalid().is_empty()).then_some(char::REPLACEMENT_CHARACTER);
        for c in chunk.valid().chars().chain(replacement) {
            if crate::text::is_unsafe_char(c) {
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
