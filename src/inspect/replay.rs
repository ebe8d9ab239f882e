//! Replay: send a recorded request (optionally edited) to the local service again, read the
//! answer through the same observer the tunnel uses, and keep the result as a new record.

use super::present::{content, is_secret, split_head, MASK};
use crate::capture::{CaptureStore, Record, RecordKind};
use crate::httplog::HttpLog;
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bound on a whole replay: connect, send, and the complete response.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(15);

/// Most response bytes read; the observer keeps only the first of them anyway.
const MAX_RESPONSE_READ: usize = 64 * 1024 * 1024;

/// Changes to the recorded request; anything left out is sent as recorded.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edits {
    /// Request method.
    pub method: Option<String>,
    /// Request target.
    pub path: Option<String>,
    /// Every header field, in order (a value of `[masked]` for a secret field sends the
    /// recorded value). Content-Length, Transfer-Encoding and Connection are set by the replay.
    pub headers: Option<Vec<(String, String)>>,
    /// The body, as text.
    pub body: Option<String>,
}

/// Why a replay did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Not an HTTP record.
    #[error("only HTTP requests can be replayed")]
    NotHttp,
    /// The recorded body is incomplete and no replacement was given.
    #[error("the request body was not kept whole ({kept} of {total} bytes); send an edited body to replay it")]
    BodyIncomplete {
        /// Bytes kept.
        kept: usize,
        /// Bytes the body had.
        total: u64,
    },
    /// An edited value cannot go into an HTTP/1.1 head.
    #[error("invalid {0}: it must not contain line breaks, and a method must be a token")]
    Invalid(&'static str),
    /// The local service did not answer completely.
    #[error("replay to {addr} failed: {reason}")]
    Local {
        /// The local service.
        addr: String,
        /// What happened.
        reason: String,
    },
}

fn clean_value(v: &str, what: &'static str) -> Result<(), ReplayError> {
    if v.contains(['\r', '\n']) {
        return Err(ReplayError::Invalid(what));
    }
    Ok(())
}

/// The request bytes a replay sends.
fn build_request(record: &Record, edits: Edits) -> Result<Vec<u8>, ReplayError> {
    let RecordKind::Http { captured, .. } = &record.kind else {
        return Err(ReplayError::NotHttp);
    };
    let (start, fields) = split_head(&captured.request.head);
    let mut parts = start.split(' ');
    let method = edits
        .method
        .unwrap_or_else(|| parts.next().unwrap_or("GET").to_owned());
    let path = edits
        .path
        .unwrap_or_else(|| parts.next().unwrap_or("/").to_owned());
    if method.is_empty()
        || !method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    {
        return Err(ReplayError::Invalid("method"));
    }
    if path.is_empty() || path.contains([' ', '\r', '\n']) {
        return Err(ReplayError::Invalid("path"));
    }
    let body = match edits.body {
        Some(b) => b.into_bytes(),
        None => {
            let (data, truncated) = content(&captured.request.body);
            if truncated {
                return Err(ReplayError::BodyIncomplete {
                    kept: data.len(),
                    total: captured.request.body.total,
                });
            }
            data
        }
    };
    let headers = match edits.headers {
        Some(edited) => edited
            .into_iter()
            .map(|(n, v)| {
                // The page shows secrets masked: the mask stands for the recorded value.
                let v = if v == MASK && is_secret(&n) {
                    fields
                        .iter()
                        .find(|(o, _)| o.eq_ignore_ascii_case(&n))
                        .map(|(_, ov)| ov.clone())
                        .unwrap_or_default()
                } else {
                    v
                };
                (n, v)
            })
            .collect(),
        None => fields,
    };
    let mut out = format!("{method} {path} HTTP/1.1\r\n").into_bytes();
    for (n, v) in &headers {
        let framing = ["content-length", "transfer-encoding", "connection"]
            .iter()
            .any(|f| n.eq_ignore_ascii_case(f));
        if framing || n.is_empty() {
            continue;
        }
        clean_value(n, "header name")?;
        clean_value(v, "header value")?;
        if n.contains([':', ' ']) {
            return Err(ReplayError::Invalid("header name"));
        }
        out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    if !body.is_empty() || !matches!(method.as_str(), "GET" | "HEAD") {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(&body);
    Ok(out)
}

/// Replays `record` with `edits` and stores the outcome as a new record, which it returns.
pub async fn replay(
    store: &CaptureStore,
    record: &Record,
    edits: Edits,
) -> Result<Arc<Record>, ReplayError> {
    let request = build_request(record, edits)?;
    let addr = record.local_addr.clone();
    let local = |reason: String| ReplayError::Local {
        addr: addr.clone(),
        reason,
    };
    let run = async {
        let mut log = HttpLog::with_capture(store.capture_options());
        let mut stream = TcpStream::connect(addr.as_str())
            .await
            .map_err(|e| local(e.to_string()))?;
        log.on_request_bytes(&request, Instant::now());
        stream
            .write_all(&request)
            .await
            .map_err(|e| local(e.to_string()))?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut read = 0usize;
        loop {
            let n = stream
                .read(&mut buf)
                .await
                .map_err(|e| local(e.to_string()))?;
            let now = Instant::now();
            if n == 0 {
                log.on_close(now);
            } else {
                log.on_response_bytes(buf.get(..n).unwrap_or_default(), now);
                read = read.saturating_add(n);
            }
            if let Some(ex) = log.drain().next() {
                return Ok(store.push_exchange(&record.proxy, &record.local_addr, ex));
            }
            if n == 0 || log.is_passthrough() || read > MAX_RESPONSE_READ {
                return Err(local("no complete HTTP/1.x response".into()));
            }
        }
    };
    tokio::time::timeout(REPLAY_TIMEOUT, run)
        .await
        .map_err(|_| local(format!("no answer within {}s", REPLAY_TIMEOUT.as_secs())))?
}
