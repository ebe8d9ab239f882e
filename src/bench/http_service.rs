//! The local HTTP/1.1 service an HTTP bench exposes, so that its figures never depend on the
//! user's own service.
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /bytes/N` | `200` with a body of `N` bytes (`Content-Length: N`) |
//! | `POST /sink` (any body) | `200` with the number of body bytes received, as text |
//! | anything else | `404` |
//!
//! Connections are kept alive. Bodies are sent from one buffer filled at start and read without
//! keeping them: the service costs as little per byte as the HTTP layer allows.

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Path prefix of a download: `GET /bytes/N`.
pub const BYTES_PATH: &str = "/bytes/";
/// Path of an upload: `POST /sink`.
pub const SINK_PATH: &str = "/sink";

/// Largest body a `GET /bytes/N` serves (1 TiB): a bound on what one request can ask for.
const MAX_BODY: u64 = 1 << 40;

/// Size of the shared fill buffer a download body is cut from.
const CHUNK: usize = 256 * 1024;

/// A running HTTP bench service on loopback; dropping it closes the listener and every
/// connection.
#[derive(Debug)]
pub struct HttpService {
    addr: SocketAddr,
    stop: CancellationToken,
    requests: Arc<AtomicU64>,
}

impl HttpService {
    /// Serves on `bind` (port 0 for a free port).
    pub async fn start(bind: SocketAddr) -> io::Result<HttpService> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let requests = Arc::new(AtomicU64::new(0));
        let fill = Bytes::from(vec![b'Z'; CHUNK]);
        tokio::spawn(accept_loop(listener, stop.clone(), requests.clone(), fill));
        Ok(HttpService {
            addr,
            stop,
            requests,
        })
    }

    /// One service on a free port of 127.0.0.1.
    pub async fn loopback() -> io::Result<HttpService> {
        Self::start(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests answered so far (a cheap check that traffic really reached the service).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for HttpService {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn accept_loop(
    listener: TcpListener,
    stop: CancellationToken,
    requests: Arc<AtomicU64>,
    fill: Bytes,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.cancelled() => return,
        };
        let Ok((stream, _)) = accepted else {
            // EMFILE and friends: back off briefly instead of spinning.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let stop = stop.clone();
        let requests = requests.clone();
        let fill = fill.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                requests.fetch_add(1, Ordering::Relaxed);
                answer(req, fill.clone())
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = stop.cancelled() => {}
            }
        });
    }
}

async fn answer(req: Request<Incoming>, fill: Bytes) -> Result<Response<Reply>, Infallible> {
    let path = req.uri().path();
    if req.method() == Method::GET {
        if let Some(size) = path.strip_prefix(BYTES_PATH) {
            return Ok(match size.parse::<u64>() {
                Ok(n) if n <= MAX_BODY => Response::new(Reply::Fill { fill, left: n }),
                _ => status(StatusCode::BAD_REQUEST, "bad size\n"),
            });
        }
    }
    if req.method() == Method::POST && path == SINK_PATH {
        let mut body = req.into_body();
        let mut received: u64 = 0;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Some(data) = f.data_ref() {
                        received += data.len() as u64;
                    }
                }
                Err(_) => return Ok(status(StatusCode::BAD_REQUEST, "body failed\n")),
            }
        }
        let text = Bytes::from(format!("{received}\n"));
        return Ok(Response::new(Reply::Text(Some(text))));
    }
    Ok(status(StatusCode::NOT_FOUND, "not found\n"))
}

fn status(code: StatusCode, text: &'static str) -> Response<Reply> {
    let mut r = Response::new(Reply::Text(Some(Bytes::from_static(text.as_bytes()))));
    *r.status_mut() = code;
    r
}

/// A response body: `left` bytes cut from the shared fill buffer, or one short text.
enum Reply {
    Fill { fill: Bytes, left: u64 },
    Text(Option<Bytes>),
}

impl Body for Reply {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let chunk = match self.get_mut() {
            Reply::Fill { fill, left } => {
                if *left == 0 {
                    None
                } else {
                    let n = (*left).min(fill.len() as u64) as usize;
                    *left -= n as u64;
                    // A reference-counted view of the shared buffer: no copy, no allocation.
                    Some(fill.slice(..n))
                }
            }
            Reply::Text(text) => text.take(),
        };
        Poll::Ready(chunk.map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Reply::Fill { left, .. } => *left == 0,
            Reply::Text(t) => t.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Reply::Fill { left, .. } => SizeHint::with_exact(*left),
            Reply::Text(t) => SizeHint::with_exact(t.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}
