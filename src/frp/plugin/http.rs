//! What the HTTP plugins share: the response body type, Go's `http.Error` responses, basic
//! auth, hop-by-hop headers, and serving one connection with hyper under bounded header sizes.

use crate::secret::Secret;
use base64::Engine;
use bytes::Bytes;
use frp_proto::auth::bytes_match;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use std::time::Duration;

/// The error type of response bodies.
pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Every plugin response body: a file, a forwarded response, or a short text.
pub(super) type Body = UnsyncBoxBody<Bytes, BoxError>;

/// The largest request head the plugins read: frpc's servers allow more, but no real client
/// needs more than this, and it bounds what one connection holds.
pub(super) const MAX_HEAD: usize = 64 * 1024;

/// frpc's `ReadHeaderTimeout` of http_proxy, static_file and the https2* plugins.
pub(super) const READ_HEADER_TIMEOUT: Duration = Duration::from_secs(60);

/// frpc's delay after a failed basic-auth check, which slows down password guessing.
pub(super) const AUTH_FAIL_DELAY: Duration = Duration::from_millis(200);

/// An empty body.
pub(super) fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A body of these bytes.
pub(super) fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A response with `status` and no body.
pub(super) fn status(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(empty());
    *r.status_mut() = status;
    r
}

/// Go's `http.Error`: the text and a newline, as plain text, not to be sniffed.
pub(super) fn error(status: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(full(format!("{text}\n")));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// True when the `Basic` credentials in `value` (an `Authorization` or
/// `Proxy-Authorization` header) are `user`/`password`. `strict_scheme`: the scheme must be
/// `Basic` (Go's `Request.BasicAuth`); frpc's http_proxy looks only at what follows the first
/// space.
pub(super) fn basic_auth_ok(
    value: Option<&HeaderValue>,
    user: &str,
    password: &Secret,
    strict_scheme: bool,
) -> bool {
    let Some(value) = value.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return false;
    };
    if strict_scheme && !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
        return false;
    };
    let Some(colon) = decoded.iter().position(|&b| b == b':') else {
        return false;
    };
    bytes_match(&decoded[..colon], user.as_bytes())
        & bytes_match(&decoded[colon + 1..], password.expose().as_bytes())
}

/// Removes the hop-by-hop headers, which describe one connection and so are never forwarded,
/// and those the `Connection` header names.
pub(super) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<String> = headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    for name in named {
        headers.remove(name.as_str());
    }
    for name in [
        "connection",
        "proxy-connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ] {
        headers.remove(name);
    }
}

/// An HTTP/1 server for one plugin connection, with bounded buffers; `header_timeout`: frpc's
/// `ReadHeaderTimeout` where the plugin has one.
pub(super) fn http1_server(
    header_timeout: Option<Duration>,
) -> hyper::server::conn::http1::Builder {
    let mut b = hyper::server::conn::http1::Builder::new();
    b.max_buf_size(MAX_HEAD)
        .timer(hyper_util::rt::TokioTimer::new());
    if let Some(t) = header_timeout {
        b.header_read_timeout(t);
    }
    b
}
