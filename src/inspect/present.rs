//! Records as the page and the JSON API show them: heads split into fields, secrets masked,
//! bodies as text, pretty-printed JSON, or a hex dump with their size.

use crate::capture::{millis, Record, RecordKind};
use crate::httplog::{BodyCapture, MessageCapture};
use serde_json::{json, Value};
use std::time::UNIX_EPOCH;

/// What the inspector serves.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Options {
    /// Show secret header values instead of masking them.
    pub secrets: bool,
}

impl Options {
    /// Shows (`true`) or masks secret header values.
    pub fn secrets(mut self, show: bool) -> Self {
        self.secrets = show;
        self
    }
}

/// What a masked header value reads as. A replay sent with this value gets the original back.
pub const MASK: &str = "[masked]";

/// Header fields whose values are masked unless secrets are shown.
const SECRET_FIELDS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// Whether `name`'s value is masked.
pub fn is_secret(name: &str) -> bool {
    SECRET_FIELDS.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// Most bytes shown as a hex dump; the size says how many there were.
const HEX_LIMIT: usize = 4096;

/// A record's line in the list.
pub fn summary(r: &Record) -> Value {
    let time =
        r.at.duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
    match &r.kind {
        RecordKind::Http { exchange, captured } => json!({
            "id": r.id,
            "kind": "http",
            "time_ms": time,
            "proxy": r.proxy,
            "method": exchange.method,
            "path": exchange.path,
            "status": exchange.status,
            "duration_ms": millis(exchange.duration),
            "request_bytes": captured.request.body.total,
            "response_bytes": exchange.response_bytes,
        }),
        RecordKind::Passthrough(p) => json!({
            "id": r.id,
            "kind": "passthrough",
            "time_ms": time,
            "proxy": r.proxy,
            "reason": p.reason,
            "request_bytes": p.request_bytes,
            "response_bytes": p.response_bytes,
        }),
    }
}

/// A record with its heads and bodies.
pub fn detail(r: &Record, secrets: bool) -> Value {
    let mut v = summary(r);
    if let (RecordKind::Http { captured, .. }, Some(obj)) = (&r.kind, v.as_object_mut()) {
        obj.insert("request".into(), message(&captured.request, secrets));
        obj.insert("response".into(), message(&captured.response, secrets));
    }
    v
}

/// A head split into its start line and fields (values as sent, not masked).
pub fn split_head(head: &[u8]) -> (String, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    let start = lines.next().unwrap_or_default().to_owned();
    let fields = lines
        .map(|l| match l.split_once(':') {
            Some((n, v)) => (n.to_owned(), v.trim().to_owned()),
            None => (l.to_owned(), String::new()),
        })
        .collect();
    (start, fields)
}

fn message(m: &MessageCapture, secrets: bool) -> Value {
    let (start, fields) = split_head(&m.head);
    let content_type = fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.to_ascii_lowercase())
        .unwrap_or_default();
    let headers: Vec<Value> = fields
        .iter()
        .map(|(n, v)| {
            let shown = if !secrets && is_secret(n) { MASK } else { v };
            json!([n, shown])
        })
        .collect();
    json!({
        "start_line": start,
        "headers": headers,
        "body": body(&m.body, &content_type),
    })
}

/// The body's content: chunked framing removed when the kept bytes allow it.
pub fn content(b: &BodyCapture) -> (Vec<u8>, bool) {
    if !b.chunked {
        return (b.bytes.clone(), b.truncated);
    }
    match dechunk(&b.bytes) {
        Some((data, complete)) => (data, b.truncated || !complete),
        None => (b.bytes.clone(), true),
    }
}

/// Decodes chunked framing for display; `None` if the bytes are not chunked framing. The flag
/// says whether the final chunk was seen.
fn dechunk(mut raw: &[u8]) -> Option<(Vec<u8>, bool)> {
    let mut out = Vec::with_capacity(raw.len());
    loop {
        let Some(eol) = raw.iter().position(|&b| b == b'\n') else {
            return Some((out, false));
        };
        let line = String::from_utf8_lossy(raw.get(..eol)?);
        let size = line.split(';').next()?.trim();
        let size = usize::from_str_radix(size, 16).ok()?;
        raw = raw.get(eol + 1..)?;
        if size == 0 {
            return Some((out, true));
        }
        let take = size.min(raw.len());
        out.extend_from_slice(raw.get(..take)?);
        if take < size {
            return Some((out, false));
        }
        raw = raw.get(size..)?;
        // The CRLF after the chunk data.
        raw = raw
            .strip_prefix(b"\r\n")
            .or_else(|| raw.strip_prefix(b"\n"))
            .unwrap_or(raw);
    }
}

fn body(b: &BodyCapture, content_type: &str) -> Value {
    let (data, truncated) = content(b);
    let mut v = json!({
        "size": b.total,
        "kept": data.len(),
        "truncated": truncated,
    });
    let Some(obj) = v.as_object_mut() else {
        return v;
    };
    if data.is_empty() {
        obj.insert("encoding".into(), "none".into());
        return v;
    }
    if !truncated && (content_type.contains("json") || data.first() == Some(&b'{')) {
        if let Ok(parsed) = serde_json::from_slice::<Value>(&data) {
            let pretty = serde_json::to_string_pretty(&parsed).unwrap_or_default();
            obj.insert("encoding".into(), "json".into());
            obj.insert("text".into(), pretty.into());
            return v;
        }
    }
    if let Some(text) = as_text(&data, truncated) {
        obj.insert("encoding".into(), "text".into());
        obj.insert("text".into(), text.into());
        return v;
    }
    obj.insert("encoding".into(), "hex".into());
    obj.insert("text".into(), hex_dump(&data).into());
    v
}

/// UTF-8 text without control characters other than whitespace; a cut body may end inside a
/// character.
fn as_text(data: &[u8], truncated: bool) -> Option<String> {
    let text = match std::str::from_utf8(data) {
        Ok(t) => t,
        Err(e) if truncated && e.error_len().is_none() => {
            std::str::from_utf8(data.get(..e.valid_up_to())?).ok()?
        }
        Err(_) => return None,
    };
    let printable = text
        .chars()
        .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'));
    printable.then(|| text.to_owned())
}

/// `offset  hex bytes  |ascii|`, 16 bytes a line, at most [`HEX_LIMIT`] bytes.
fn hex_dump(data: &[u8]) -> String {
    use std::fmt::Write as _;
    let shown = data.get(..HEX_LIMIT).unwrap_or(data);
    let mut out = String::with_capacity(shown.len() * 4 + 16);
    for (i, line) in shown.chunks(16).enumerate() {
        let _ = write!(out, "{:08x} ", i * 16);
        for b in line {
            let _ = write!(out, " {b:02x}");
        }
        for _ in line.len()..16 {
            out.push_str("   ");
        }
        out.push_str("  |");
        out.extend(line.iter().map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '.'
            }
        }));
        out.push_str("|\n");
    }
    if data.len() > shown.len() {
        let _ = writeln!(out, "… {} more bytes", data.len() - shown.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_shown_without_framing() {
        let b = BodyCapture {
            bytes: b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n".to_vec(),
            total: 11,
            chunked: true,
            truncated: false,
        };
        assert_eq!(content(&b), (b"hello world".to_vec(), false));
        let cut = BodyCapture {
            bytes: b"5\r\nhel".to_vec(),
            total: 5,
            chunked: true,
            truncated: true,
        };
        assert_eq!(content(&cut), (b"hel".to_vec(), true));
    }

    #[test]
    fn bodies_are_json_text_or_hex() {
        let mk = |bytes: &[u8]| BodyCapture {
            bytes: bytes.to_vec(),
            total: bytes.len() as u64,
            chunked: false,
            truncated: false,
        };
        let j = body(&mk(br#"{"a":[1,2]}"#), "application/json");
        assert_eq!(j["encoding"], "json");
        assert!(j["text"].as_str().unwrap().contains("\n  \"a\": ["));
        assert_eq!(
            body(&mk(b"plain words\n"), "text/plain")["encoding"],
            "text"
        );
        let h = body(&mk(&[0, 1, 2, 0xff]), "");
        assert_eq!(h["encoding"], "hex");
        assert!(h["text"]
            .as_str()
            .unwrap()
            .starts_with("00000000  00 01 02 ff"));
    }

    #[test]
    fn secret_headers_are_masked_unless_asked() {
        let m = MessageCapture {
            head: b"GET / HTTP/1.1\r\nAuthorization: Bearer abc\r\ncookie: s=1\r\nX-A: b\r\n"
                .to_vec(),
            body: BodyCapture::default(),
        };
        let masked = message(&m, false).to_string();
        assert!(!masked.contains("Bearer abc") && !masked.contains("s=1"));
        assert!(masked.contains(MASK) && masked.contains("\"X-A\",\"b\""));
        let shown = message(&m, true).to_string();
        assert!(shown.contains("Bearer abc") && shown.contains("s=1"));
    }
}
