//! static_file: serves the files under `localPath` over HTTP/1 as frpc does (Go's
//! `http.FileServer` behind basic auth, routed by prefix, GET only): `/<stripPrefix>/` (or `/`)
//! is the directory; wrong credentials get `401` after frpc's delay, other paths `404 page not
//! found`, other methods `405`; directories redirect to their `/` form and list their entries
//! unless they hold an `index.html`; `…/index.html` redirects to `./`; files carry
//! `Last-Modified`, answer `If-Modified-Since` with `304` and a single `Range` with `206`.
//! Files are streamed in chunks, never read whole. frpc gzips when asked; this does not (the
//! `Accept-Encoding` is optional for a server) and answers multi-range requests with the
//! whole file.

use super::config::PluginConfig;
use super::conn::PluginConn;
use super::http::{
    basic_auth_ok, error, full, http1_server, status, Body, AUTH_FAIL_DELAY, READ_HEADER_TIMEOUT,
};
use crate::frp::error::Error;
use crate::frp::transport_opts::percent_decode;
use crate::secret::Secret;
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// The static_file plugin of one proxy.
pub(super) struct StaticFile {
    root: PathBuf,
    /// `/<stripPrefix>/` or `/`.
    prefix: String,
    auth: Option<(String, Secret)>,
}

impl StaticFile {
    pub(super) fn new(config: &PluginConfig) -> Self {
        let prefix = if config.strip_prefix.is_empty() {
            "/".to_owned()
        } else {
            format!("/{}/", config.strip_prefix)
        };
        StaticFile {
            root: config.local_path.clone(),
            prefix,
            auth: config
                .has_auth()
                .then(|| (config.user.clone(), config.password.clone())),
        }
    }

    /// Serves one connection's requests.
    pub(super) async fn handle(&self, conn: PluginConn) -> Result<(), Error> {
        let service = hyper::service::service_fn(|req| self.serve(req));
        http1_server(Some(READ_HEADER_TIMEOUT))
            .serve_connection(TokioIo::new(conn), service)
            .await
            .map_err(|e| Error::Protocol(format!("static_file: {e}")))
    }

    async fn serve(&self, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
        if let Some((user, password)) = &self.auth {
            if !basic_auth_ok(
                req.headers().get(header::AUTHORIZATION),
                user,
                password,
                true,
            ) {
                tokio::time::sleep(AUTH_FAIL_DELAY).await;
                let mut r = error(StatusCode::UNAUTHORIZED, "Unauthorized");
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"Restricted\""),
                );
                return Ok(r);
            }
        }
        let query = req.uri().query().map(str::to_owned);
        let Some(path) = percent_decode(req.uri().path()) else {
            return Ok(error(StatusCode::BAD_REQUEST, "400 Bad Request"));
        };
        // The router answers unclean paths with a redirect to their clean form.
        let cleaned = clean_keep_slash(&path);
        if cleaned != path {
            return Ok(redirect(&cleaned, query.as_deref()));
        }
        let Some(rest) = path.strip_prefix(self.prefix.as_str()) else {
            return Ok(error(StatusCode::NOT_FOUND, "404 page not found"));
        };
        if req.method() != Method::GET {
            return Ok(status(StatusCode::METHOD_NOT_ALLOWED));
        }
        let url_path = format!("/{rest}");
        let name = clean(&url_path);
        Ok(self
            .serve_file(&req, &url_path, &name, query.as_deref())
            .await
            .unwrap_or_else(|e| io_error(&e)))
    }

    async fn serve_file(
        &self,
        req: &Request<Incoming>,
        url_path: &str,
        name: &str,
        query: Option<&str>,
    ) -> io::Result<Response<Body>> {
        if url_path.ends_with("/index.html") {
            return Ok(redirect("./", query));
        }
        if name.contains('\0') {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        let mut fs_path = self.root.join(name.trim_start_matches('/'));
        let mut meta = tokio::fs::metadata(&fs_path).await?;
        let base = base_name(url_path);
        if meta.is_dir() && !url_path.ends_with('/') {
            return Ok(redirect(&format!("{base}/"), query));
        }
        if !meta.is_dir() && url_path.ends_with('/') {
            return Ok(redirect(&format!("../{base}"), query));
        }
        if meta.is_dir() {
            let index = fs_path.join("index.html");
            if let Ok(m) = tokio::fs::metadata(&index).await {
                meta = m;
                fs_path = index;
            }
        }
        let modified = meta.modified().ok();
        if not_modified(req, modified) {
            return Ok(status(StatusCode::NOT_MODIFIED));
        }
        let mut resp = if meta.is_dir() {
            list_dir(&fs_path).await?
        } else {
            serve_content(req, &fs_path, meta.len()).await?
        };
        if let Some(t) = modified.filter(|t| *t > SystemTime::UNIX_EPOCH) {
            if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(t)) {
                resp.headers_mut().insert(header::LAST_MODIFIED, v);
            }
        }
        Ok(resp)
    }
}

/// Go's `toHTTPError`.
fn io_error(e: &io::Error) -> Response<Body> {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => {
            error(StatusCode::NOT_FOUND, "404 page not found")
        }
        io::ErrorKind::PermissionDenied => error(StatusCode::FORBIDDEN, "403 Forbidden"),
        _ => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "500 Internal Server Error",
        ),
    }
}

/// A `301` to `location` (relative or absolute), keeping the query.
fn redirect(location: &str, query: Option<&str>) -> Response<Body> {
    let mut target = escape_path(location);
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        target.push('?');
        target.push_str(q);
    }
    let mut r = status(StatusCode::MOVED_PERMANENTLY);
    if let Ok(v) = HeaderValue::from_str(&target) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// `If-Modified-Since` at or after the file's time (to the second).
fn not_modified(req: &Request<Incoming>, modified: Option<SystemTime>) -> bool {
    let (Some(modified), Some(since)) = (
        modified,
        req.headers()
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok()),
    ) else {
        return false;
    };
    let secs = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    secs(modified) <= secs(since)
}

/// A file, whole or one range of it, streamed.
async fn serve_content(
    req: &Request<Incoming>,
    path: &Path,
    size: u64,
) -> io::Result<Response<Body>> {
    let mut file = tokio::fs::File::open(path).await?;
    let content_type = match content_type_by_extension(path) {
        Some(t) => t,
        None => {
            let mut head = [0u8; 512];
            let mut n = 0;
            while n < head.len() {
                let k = file.read(&mut head[n..]).await?;
                if k == 0 {
                    break;
                }
                n += k;
            }
            file.seek(io::SeekFrom::Start(0)).await?;
            sniff(&head[..n])
        }
    };
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_range(v, size));
    let (start, len, code) = match range {
        Some(RangeSpec::One(start, end)) => (start, end - start + 1, StatusCode::PARTIAL_CONTENT),
        Some(RangeSpec::Unsatisfiable) => {
            let mut r = error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "invalid range: failed to overlap",
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(r);
        }
        Some(RangeSpec::Ignore) | None => (0, size, StatusCode::OK),
    };
    if start > 0 {
        file.seek(io::SeekFrom::Start(start)).await?;
    }
    let stream = tokio_util::io::ReaderStream::new(file.take(len));
    let body = StreamBody::new(futures::StreamExt::map(stream, |chunk| {
        chunk
            .map(Frame::data)
            .map_err(|e| Box::new(e) as super::http::BoxError)
    }));
    let mut r = Response::new(BodyExt::boxed_unsync(body));
    *r.status_mut() = code;
    let h = r.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if code == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{size}", start + len - 1)) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(r)
}

enum RangeSpec {
    One(u64, u64),
    Unsatisfiable,
    /// Malformed or several ranges: the whole file.
    Ignore,
}

/// One `bytes=` range against a file of `size` bytes.
fn parse_range(value: &str, size: u64) -> RangeSpec {
    let Some(spec) = value.strip_prefix("bytes=") else {
        return RangeSpec::Ignore;
    };
    if spec.contains(',') {
        return RangeSpec::Ignore;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeSpec::Ignore;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // The last `b` bytes.
        let Ok(n) = b.parse::<u64>() else {
            return RangeSpec::Ignore;
        };
        if n == 0 || size == 0 {
            return RangeSpec::Unsatisfiable;
        }
        let n = n.min(size);
        return RangeSpec::One(size - n, size - 1);
    }
    let Ok(start) = a.parse::<u64>() else {
        return RangeSpec::Ignore;
    };
    if start >= size {
        return RangeSpec::Unsatisfiable;
    }
    let end = if b.is_empty() {
        size - 1
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => e.min(size - 1),
            _ => return RangeSpec::Ignore,
        }
    };
    RangeSpec::One(start, end)
}

/// Go's directory listing: entries sorted by name, directories with a trailing `/`.
async fn list_dir(path: &Path) -> io::Result<Response<Body>> {
    let mut dir = tokio::fs::read_dir(path).await?;
    let mut names = Vec::new();
    while let Some(entry) = dir.next_entry().await? {
        let mut name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().await.map(|t| t.is_dir()).unwrap_or(false) {
            name.push('/');
        }
        names.push(name);
    }
    names.sort();
    let mut html = String::from(
        "<!doctype html>\n<meta name=\"viewport\" content=\"width=device-width\">\n<pre>\n",
    );
    for name in names {
        let mut href = escape_path(&name);
        // A first segment with a colon would read as a scheme.
        if href.split('/').next().is_some_and(|s| s.contains(':')) {
            href.insert_str(0, "./");
        }
        html.push_str(&format!("<a href=\"{href}\">{}</a>\n", escape_html(&name)));
    }
    html.push_str("</pre>\n");
    let mut r = Response::new(full(Bytes::from(html)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    Ok(r)
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes what may not stand in a URL path.
fn escape_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~$&+,/:;=@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Go's `path.Clean` of a rooted path.
fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The router's clean path: `clean`, keeping a trailing slash.
fn clean_keep_slash(p: &str) -> String {
    let mut c = clean(p);
    if p.ends_with('/') && c != "/" {
        c.push('/');
    }
    c
}

/// Go's `path.Base`.
fn base_name(p: &str) -> &str {
    let t = p.trim_end_matches('/');
    match t.rfind('/') {
        Some(i) => &t[i + 1..],
        None if t.is_empty() => "/",
        None => t,
    }
}

/// Go's built-in extension table (and `.txt`, which every system table has).
fn content_type_by_extension(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "avif" => "image/avif",
        "css" => "text/css; charset=utf-8",
        "gif" => "image/gif",
        "htm" | "html" => "text/html; charset=utf-8",
        "jpeg" | "jpg" => "image/jpeg",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "wasm" => "application/wasm",
        "webp" => "image/webp",
        "xml" => "text/xml; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        _ => return None,
    })
}

/// A small part of Go's content sniffing: HTML, text, or bytes.
fn sniff(head: &[u8]) -> &'static str {
    let start = head
        .iter()
        .position(|b| !b" \t\n\r\x0c".contains(b))
        .unwrap_or(head.len());
    let lead = &head[start..];
    let html = [&b"<!doctype html"[..], b"<html", b"<head", b"<body"]
        .iter()
        .any(|sig| lead.len() >= sig.len() && lead[..sig.len()].eq_ignore_ascii_case(sig));
    if html {
        return "text/html; charset=utf-8";
    }
    let binary = head.iter().any(|&b| {
        b <= 0x08 || b == 0x0b || (0x0e..=0x1a).contains(&b) || (0x1c..=0x1f).contains(&b)
    });
    if binary {
        "application/octet-stream"
    } else {
        "text/plain; charset=utf-8"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_clean_as_go_does() {
        assert_eq!(clean("/a/../../b/./c/"), "/b/c");
        assert_eq!(clean("/"), "/");
        assert_eq!(clean_keep_slash("/a//b/"), "/a/b/");
        assert_eq!(base_name("/a/b/"), "b");
        assert_eq!(base_name("/"), "/");
        assert_eq!(percent_decode("/a%20b"), Some("/a b".into()));
        assert_eq!(percent_decode("/a%2"), None);
        assert_eq!(percent_decode("/%ff"), None);
    }

    #[test]
    fn ranges() {
        assert!(matches!(parse_range("bytes=0-4", 10), RangeSpec::One(0, 4)));
        assert!(matches!(parse_range("bytes=-3", 10), RangeSpec::One(7, 9)));
        assert!(matches!(parse_range("bytes=5-", 10), RangeSpec::One(5, 9)));
        assert!(matches!(
            parse_range("bytes=5-100", 10),
            RangeSpec::One(5, 9)
        ));
        assert!(matches!(
            parse_range("bytes=10-", 10),
            RangeSpec::Unsatisfiable
        ));
        assert!(matches!(
            parse_range("bytes=0-1,3-4", 10),
            RangeSpec::Ignore
        ));
        assert!(matches!(parse_range("bytes=x", 10), RangeSpec::Ignore));
    }
}
