//! http_proxy: an HTTP proxy on each connection, as frpc's. A connection whose first seven
//! bytes spell `CONNECT` (any case) is a tunnel: its request head is read here (at most
//! [`MAX_HEAD`] bytes), checked against `Proxy-Authorization`, the target dialled, and
//! `200 OK` written before the join; a failed check gets frpc's `407 Not authorized`, a failed
//! dial `400 Bad Request`. Anything else goes to an HTTP/1 server that forwards absolute-URI
//! requests (with proxy headers removed) and streams the answers back, and takes a later
//! CONNECT on the same connection as frpc's HTTP server does: `200` and the tunnel.

use super::config::PluginConfig;
use super::conn::PluginConn;
use super::http::{
    basic_auth_ok, error, http1_server, status, Body, BoxError, AUTH_FAIL_DELAY, MAX_HEAD,
    READ_HEADER_TIMEOUT,
};
use crate::frp::error::Error;
use crate::frp::transport::prefixed::Prefixed;
use crate::secret::Secret;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Upstream = Client<hyper_rustls::HttpsConnector<HttpConnector>, Incoming>;

/// A CONNECT tunnel agreed inside the HTTP server: the visitor's side (once hyper lets go of
/// it) and the dialled target.
type Tunnel = std::sync::Mutex<Option<(hyper::upgrade::OnUpgrade, TcpStream)>>;

/// frpc's answer to a CONNECT with wrong or missing credentials.
const NOT_AUTHORIZED: &[u8] = b"HTTP/1.1 407 Not authorized\r\nContent-Length: 0\r\n\
Connection: close\r\nProxy-Authenticate: Basic\r\n\r\n";
/// frpc's answer to a CONNECT whose target cannot be reached.
const BAD_REQUEST: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
/// frpc's answer to a CONNECT whose tunnel is up.
const ESTABLISHED: &[u8] = b"HTTP/1.1 200 OK\r\n\r\n";

/// The http_proxy plugin of one proxy.
pub(super) struct HttpProxy {
    auth: Option<(String, Secret)>,
    client: Upstream,
}

impl HttpProxy {
    pub(super) fn new(config: &PluginConfig) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(HttpProxy {
            auth: config
                .has_auth()
                .then(|| (config.user.clone(), config.password.clone())),
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// True when no auth is configured or the request carries the right credentials; waits
    /// frpc's delay after wrong ones.
    async fn authorized(&self, value: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = &self.auth else {
            return true;
        };
        if basic_auth_ok(value, user, password, false) {
            return true;
        }
        if value.is_some() {
            tokio::time::sleep(AUTH_FAIL_DELAY).await;
        }
        false
    }

    /// Serves one connection: a CONNECT tunnel or HTTP requests.
    pub(super) async fn handle(&self, mut conn: PluginConn) -> Result<(), Error> {
        let mut first = [0u8; 7];
        let mut n = 0;
        while n < first.len() {
            let k = conn.read(&mut first[n..]).await?;
            if k == 0 {
                break;
            }
            n += k;
        }
        if n == first.len() && first.eq_ignore_ascii_case(b"CONNECT") {
            return self.connect(&first, conn).await;
        }
        let io = TokioIo::new(Prefixed::new(Bytes::copy_from_slice(&first[..n]), conn));
        let tunnel = std::sync::Mutex::new(None);
        let service = hyper::service::service_fn(|req| self.forward(req, &tunnel));
        http1_server(Some(READ_HEADER_TIMEOUT))
            .serve_connection(io, service)
            .with_upgrades()
            .await
            .map_err(|e| Error::Protocol(format!("http_proxy: {e}")))?;
        // A CONNECT after other requests: hyper has handed the connection over once the
        // `200` was out.
        let taken = tunnel
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some((visitor, remote)) = taken {
            let visitor = visitor
                .await
                .map_err(|e| Error::Protocol(format!("http_proxy: {e}")))?;
            super::conn::join(TokioIo::new(visitor), remote).await?;
        }
        Ok(())
    }

    /// A CONNECT tunnel: the request head, the check, the dial, then the join.
    async fn connect(&self, first: &[u8], mut conn: PluginConn) -> Result<(), Error> {
        let mut buf = BytesMut::with_capacity(1024);
        buf.extend_from_slice(first);
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() >= MAX_HEAD {
                return Err(Error::Protocol("http_proxy: request head too large".into()));
            }
            buf.reserve(1024.min(MAX_HEAD - buf.len()));
            if conn.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        };
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        let target = match req.parse(&buf[..end]) {
            Ok(httparse::Status::Complete(_)) => req.path.unwrap_or("").to_owned(),
            _ => return Err(Error::Protocol("http_proxy: malformed CONNECT".into())),
        };
        let auth = req
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(PROXY_AUTHORIZATION.as_str()))
            .and_then(|h| HeaderValue::from_bytes(h.value).ok());
        if !self.authorized(auth.as_ref()).await {
            conn.write_all(NOT_AUTHORIZED).await?;
            let _ = conn.shutdown().await;
            return Ok(());
        }
        let mut remote = match TcpStream::connect(target.as_str()).await {
            Ok(s) => s,
            Err(_) => {
                conn.write_all(BAD_REQUEST).await?;
                let _ = conn.shutdown().await;
                return Ok(());
            }
        };
        let _ = remote.set_nodelay(true);
        conn.write_all(ESTABLISHED).await?;
        conn.flush().await?;
        // Bytes the client sent after the head belong to the tunnel.
        if buf.len() > end {
            remote.write_all(&buf[end..]).await?;
        }
        drop(buf);
        super::conn::join(conn, remote).await?;
        Ok(())
    }

    /// One absolute-URI request, forwarded; or a CONNECT that was not the connection's first
    /// request (frpc's `ConnectHandler`): the target dialled, then `200` and the tunnel, which
    /// `tunnel` carries to [`HttpProxy::handle`]. A failed dial closes the connection without
    /// an answer (frpc's has already taken the connection from its HTTP server by then).
    async fn forward(
        &self,
        mut req: Request<Incoming>,
        tunnel: &Tunnel,
    ) -> Result<Response<Body>, BoxError> {
        if !self
            .authorized(req.headers().get(PROXY_AUTHORIZATION))
            .await
        {
            let mut r = status(StatusCode::PROXY_AUTHENTICATION_REQUIRED);
            r.headers_mut()
                .insert(PROXY_AUTHENTICATE, HeaderValue::from_static("Basic"));
            return Ok(r);
        }
        if req.method() == Method::CONNECT {
            let target = req
                .uri()
                .authority()
                .map(|a| a.to_string())
                .unwrap_or_default();
            let remote = TcpStream::connect(target.as_str())
                .await
                .map_err(|e| format!("http_proxy: dial {target}: {e}"))?;
            let _ = remote.set_nodelay(true);
            *tunnel
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some((hyper::upgrade::on(&mut req), remote));
            return Ok(status(StatusCode::OK));
        }
        if req.uri().scheme().is_none() || req.uri().authority().is_none() {
            return Ok(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "unsupported protocol scheme \"\"",
            ));
        }
        let h = req.headers_mut();
        for name in [
            "proxy-connection",
            "connection",
            "proxy-authenticate",
            "proxy-authorization",
            "te",
            "trailers",
            "transfer-encoding",
            "upgrade",
        ] {
            h.remove(name);
        }
        match self.client.request(req).await {
            Ok(resp) => Ok(resp.map(|b| b.map_err(Into::into).boxed_unsync())),
            Err(e) => Ok(error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())),
        }
    }
}
