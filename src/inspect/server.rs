//! The inspector's HTTP server: hyper, HTTP/1.1, one task per connection.

use super::present::{self, Options};
use super::replay;
use crate::capture::CaptureStore;
use crate::frp::ClientHandle;
use bytes::Bytes;
use futures::StreamExt as _;
use http_body_util::{combinators::BoxBody, BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HOST, ORIGIN};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Largest replay request body accepted.
const MAX_REPLAY_BODY: usize = 8 * 1024 * 1024;

/// A comment line keeps an idle event stream open through proxies and lets it notice a
/// closed page.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// What the handlers read.
pub(super) struct State {
    pub(super) store: Arc<CaptureStore>,
    pub(super) client: Arc<OnceLock<ClientHandle>>,
    pub(super) options: Options,
    /// The listener is on a loopback address: only requests naming a local host are served.
    pub(super) loopback: bool,
}

type Body = BoxBody<Bytes, Infallible>;

pub(super) async fn run(listener: TcpListener, state: Arc<State>, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.cancelled() => return,
        };
        let Ok((stream, _)) = accepted else {
            // Out of file descriptors or similar: wait instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let state = state.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(req, &state).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = stop.cancelled() => {}
            }
        });
    }
}

fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).boxed());
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    if let Ok(v) = "no-store".parse() {
        r.headers_mut().insert(CACHE_CONTROL, v);
    }
    r
}

fn json_response(status: StatusCode, v: &Value) -> Response<Body> {
    full(status, "application/json", v.to_string())
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    json_response(status, &json!({ "error": message }))
}

/// Whether `host` (a Host header: name or address, optional port) names this machine.
fn local_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(n, _)| n),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

/// Web pages elsewhere must not drive the inspector through the user's browser: on loopback,
/// a Host that is a DNS name other than `localhost` (DNS rebinding) is refused, and a request
/// that changes something (replay) must come from the inspector's own page when a browser
/// sends it (its `Origin` names the same host).
fn same_site(req: &Request<Incoming>, loopback: bool) -> bool {
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if loopback && !local_host(host) {
        return false;
    }
    if req.method() == Method::GET {
        return true;
    }
    match req.headers().get(ORIGIN) {
        None => true,
        Some(origin) => origin.to_str().ok() == Some(format!("http://{host}").as_str()),
    }
}

async fn handle(req: Request<Incoming>, state: &State) -> Response<Body> {
    if !same_site(&req, state.loopback) {
        return error(StatusCode::FORBIDDEN, "cross-site request refused");
    }
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method(), segments.as_slice()) {
        (&Method::GET, [""]) => full(StatusCode::OK, "text/html; charset=utf-8", INDEX_HTML),
        (&Method::GET, ["app.js"]) => full(StatusCode::OK, "text/javascript", APP_JS),
        (&Method::GET, ["app.css"]) => full(StatusCode::OK, "text/css", APP_CSS),
        (&Method::GET, ["metrics"]) => match state.client.get() {
            Some(client) => full(
                StatusCode::OK,
                super::metrics::CONTENT_TYPE,
                super::metrics::encode(client),
            ),
            None => error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the client is not running yet",
            ),
        },
        (&Method::GET, ["api", "requests"]) => {
            let list: Vec<Value> = state
                .store
                .list()
                .iter()
                .map(|r| present::summary(r))
                .collect();
            json_response(StatusCode::OK, &json!({ "requests": list }))
        }
        (&Method::GET, ["api", "requests", id]) => match record(state, id) {
            Some(r) => json_response(StatusCode::OK, &present::detail(&r, state.options.secrets)),
            None => error(
                StatusCode::NOT_FOUND,
                "no such request (it may have been dropped from the ring)",
            ),
        },
        (&Method::POST, ["api", "requests", id, "replay"]) => {
            let Some(r) = record(state, id) else {
                return error(StatusCode::NOT_FOUND, "no such request");
            };
            let body = match Limited::new(req.into_body(), MAX_REPLAY_BODY)
                .collect()
                .await
            {
                Ok(b) => b.to_bytes(),
                Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "replay body too large"),
            };
            let edits = if body.iter().all(u8::is_ascii_whitespace) {
                replay::Edits::default()
            } else {
                match serde_json::from_slice(&body) {
                    Ok(e) => e,
                    Err(e) => {
                        return error(StatusCode::BAD_REQUEST, &format!("bad replay request: {e}"))
                    }
                }
            };
            match replay::replay(&state.store, &r, edits).await {
                Ok(new) => json_response(
                    StatusCode::OK,
                    &present::detail(&new, state.options.secrets),
                ),
                Err(e @ replay::ReplayError::Local { .. }) => {
                    error(StatusCode::BAD_GATEWAY, &e.to_string())
                }
                Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
            }
        }
        (&Method::GET, ["api", "events"]) => events(state),
        (_, ["" | "app.js" | "app.css" | "metrics"] | ["api", "requests" | "events", ..]) => {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => error(StatusCode::NOT_FOUND, "not found"),
    }
}

fn record(state: &State, id: &str) -> Option<Arc<crate::capture::Record>> {
    state.store.get(id.parse().ok()?)
}

/// Server-sent events: `event: request` with a record's summary for each new record; `event:
/// reset` when the page fell behind and should reload the list.
fn events(state: &State) -> Response<Body> {
    let rx = state.store.follow();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let chunk = match tokio::time::timeout(KEEPALIVE, rx.recv()).await {
            Ok(Ok(record)) => format!("event: request\ndata: {}\n\n", present::summary(&record)),
            Ok(Err(RecvError::Lagged(_))) => "event: reset\ndata: {}\n\n".to_owned(),
            Ok(Err(RecvError::Closed)) => return None,
            Err(_) => ": keepalive\n\n".to_owned(),
        };
        Some((Ok::<_, Infallible>(Frame::data(Bytes::from(chunk))), rx))
    });
    // A first comment so the page's EventSource opens at once.
    let first = futures::stream::once(async {
        Ok::<_, Infallible>(Frame::data(Bytes::from_static(b": hello\n\n")))
    });
    let body = BodyExt::boxed(StreamBody::new(first.chain(stream)));
    let mut r = Response::new(body);
    if let Ok(v) = "text/event-stream".parse() {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    if let Ok(v) = "no-store".parse() {
        r.headers_mut().insert(CACHE_CONTROL, v);
    }
    r
}
