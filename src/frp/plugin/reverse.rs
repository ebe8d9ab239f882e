//! http2http, http2https, https2http, https2https: one reverse proxy in four directions, as
//! frpc's (Go's `httputil.ReverseProxy`). Requests go to `localAddr` over HTTP or HTTPS (the
//! local certificate is not checked), keeping the visitor's Host unless `hostHeaderRewrite`
//! is set, with `requestHeaders.set` applied and hop-by-hop headers removed; the answer streams
//! back; an HTTP/1.1 protocol switch (WebSocket) that the local service accepts with `101`
//! is passed through and then spliced both ways, as Go's reverse proxy does. The https2*
//! plugins terminate TLS first (HTTP/2 offered by ALPN unless
//! `enableHTTP2 = false`), answer `421` when the Host differs from the TLS server name, and
//! append the visitor's address to `X-Forwarded-For`, set `X-Forwarded-Host` and
//! `X-Forwarded-Proto: https`. http2https passes the visitor's `X-Forwarded-*` through;
//! http2http drops them. A local service that cannot be reached gets the visitor a `502`.

use super::config::{PluginConfig, PluginKind};
use super::conn::{PluginConn, Visitor};
use super::http::{
    error, http1_server, remove_hop_by_hop, status, Body, MAX_HEAD, READ_HEADER_TIMEOUT,
};
use crate::frp::error::Error;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONNECTION, HOST, UPGRADE};
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

type Upstream = Client<hyper_rustls::HttpsConnector<HttpConnector>, Incoming>;

const X_FORWARDED: [&str; 4] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
];

/// One of the four reverse-proxy plugins of one proxy.
pub(super) struct Reverse {
    inner: Arc<Inner>,
    /// The https2* plugins' TLS.
    tls: Option<TlsAcceptor>,
}

struct Inner {
    kind: PluginKind,
    /// `http` or `https`.
    scheme: &'static str,
    local_addr: String,
    host_rewrite: Option<HeaderValue>,
    headers: Vec<(HeaderName, HeaderValue)>,
    client: Upstream,
}

impl Reverse {
    pub(super) fn new(config: &PluginConfig) -> Result<Self, String> {
        let kind = config.kind;
        let scheme = match kind {
            PluginKind::Http2Https | PluginKind::Https2Https => "https",
            _ => "http",
        };
        // HTTP/1.1 only (the connector offers it by ALPN), as frpc's transport.
        let tls =
            crate::frp::transport::client_tls_config(&crate::frp::config::TlsConfig::default())
                .map_err(|e| e.to_string())?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let mut headers = Vec::new();
        for (name, value) in &config.request_headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| format!("request header {name:?}: {e}"))?;
            let value =
                HeaderValue::from_str(value).map_err(|e| format!("request header {name}: {e}"))?;
            headers.push((name, value));
        }
        let host_rewrite = if config.host_header_rewrite.is_empty() {
            None
        } else {
            Some(
                HeaderValue::from_str(&config.host_header_rewrite)
                    .map_err(|e| format!("hostHeaderRewrite: {e}"))?,
            )
        };
        let tls = if kind.serves_tls() {
            let alpn: &[&[u8]] = if config.enable_http2 {
                &[b"h2", b"http/1.1"]
            } else {
                &[b"http/1.1"]
            };
            Some(TlsAcceptor::from(
                super::tls::server_config(config, alpn)
                    .map_err(|e| format!("gen TLS config error: {e}"))?,
            ))
        } else {
            None
        };
        Ok(Reverse {
            inner: Arc::new(Inner {
                kind,
                scheme,
                local_addr: config.local_addr.clone(),
                host_rewrite,
                headers,
                client: Client::builder(TokioExecutor::new()).build(connector),
            }),
            tls,
        })
    }

    /// Serves one connection's requests (after the TLS handshake for https2*).
    pub(super) async fn handle(&self, conn: PluginConn, visitor: Visitor) -> Result<(), Error> {
        let client_ip = visitor.src.map(|a| a.ip());
        let upgraded = Upgrades::default();
        let Some(acceptor) = &self.tls else {
            let inner = self.inner.clone();
            let slot = upgraded.clone();
            let service = hyper::service::service_fn(move |req| {
                let inner = inner.clone();
                let slot = slot.clone();
                async move { inner.forward(req, None, client_ip, Some(&slot)).await }
            });
            http1_server(None)
                .serve_connection(TokioIo::new(conn), service)
                .with_upgrades()
                .await
                .map_err(|e| Error::Protocol(format!("{}: {e}", self.inner.kind.name())))?;
            return splice_upgrade(&upgraded).await;
        };
        let tls = match acceptor.accept(conn).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(proxy = %visitor.proxy, "{}: TLS handshake error: {e}", self.inner.kind.name());
                return Ok(());
            }
        };
        let session = tls.get_ref().1;
        let sni = session.server_name().map(str::to_owned);
        let h2 = session.alpn_protocol() == Some(b"h2");
        let inner = self.inner.clone();
        // HTTP/2 has no Upgrade: nothing to hand over there.
        let slot = (!h2).then(|| upgraded.clone());
        let service = hyper::service::service_fn(move |req| {
            let inner = inner.clone();
            let sni = sni.clone();
            let slot = slot.clone();
            async move {
                inner
                    .forward(req, sni.as_deref(), client_ip, slot.as_ref())
                    .await
            }
        });
        let io = TokioIo::new(tls);
        let result = if h2 {
            hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .max_header_list_size(MAX_HEAD as u32)
                .serve_connection(io, service)
                .await
        } else {
            http1_server(Some(READ_HEADER_TIMEOUT))
                .serve_connection(io, service)
                .with_upgrades()
                .await
        };
        result.map_err(|e| Error::Protocol(format!("{}: {e}", self.inner.kind.name())))?;
        splice_upgrade(&upgraded).await
    }
}

/// The two halves of a protocol switch (a WebSocket, say) agreed by the local service: the
/// visitor's connection and the local one, both handed over by hyper once the `101` is out.
type Switch = (hyper::upgrade::OnUpgrade, hyper::upgrade::OnUpgrade);

/// Where a connection's service leaves its protocol switch for the connection's task, which
/// splices it after hyper lets go of the connection (at most one per connection: an upgraded
/// connection serves no more requests).
type Upgrades = Arc<std::sync::Mutex<Option<Switch>>>;

/// Splices a protocol switch, if the connection's last request made one, as Go's reverse proxy
/// does after a `101`: bytes both ways until either side ends.
async fn splice_upgrade(upgraded: &Upgrades) -> Result<(), Error> {
    let taken = upgraded
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    let Some((visitor, local)) = taken else {
        return Ok(());
    };
    let (visitor, local) = match tokio::join!(visitor, local) {
        (Ok(v), Ok(l)) => (v, l),
        (Err(e), _) | (_, Err(e)) => return Err(Error::Protocol(format!("upgrade: {e}"))),
    };
    super::conn::join(TokioIo::new(visitor), TokioIo::new(local)).await?;
    Ok(())
}

/// The protocol a request asks to switch to: its `Upgrade` header when `Connection` names
/// `upgrade` (Go's `upgradeType`), HTTP/1.1 only.
fn upgrade_type<B>(req: &Request<B>) -> Option<HeaderValue> {
    if req.version() != Version::HTTP_11 {
        return None;
    }
    let asks = req
        .headers()
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    asks.then(|| req.headers().get(UPGRADE).cloned()).flatten()
}

/// Go's `CanonicalHost`: no port, lower case, no trailing dot.
fn canonical_host(host: &str) -> String {
    let h = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else if host.matches(':').count() == 1 {
        host.split(':').next().unwrap_or(host)
    } else {
        host
    };
    h.trim_end_matches('.').to_ascii_lowercase()
}

impl Inner {
    async fn forward(
        &self,
        mut req: Request<Incoming>,
        sni: Option<&str>,
        client_ip: Option<IpAddr>,
        upgrades: Option<&Upgrades>,
    ) -> Result<Response<Body>, Infallible> {
        let upgrade = upgrades.and(upgrade_type(&req));
        let in_host = req
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .or_else(|| req.uri().authority().map(|a| a.to_string()))
            .unwrap_or_default();
        if let Some(sni) = sni.filter(|s| !s.is_empty()) {
            if canonical_host(sni) != canonical_host(&in_host) {
                return Ok(status(StatusCode::MISDIRECTED_REQUEST));
            }
        }
        let path = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let Ok(uri) = format!("{}://{}{path}", self.scheme, self.local_addr).parse::<Uri>() else {
            return Ok(error(StatusCode::BAD_GATEWAY, "Bad Gateway"));
        };
        let headers = req.headers_mut();
        let incoming = [
            headers.get("x-forwarded-for").cloned(),
            headers.get("x-forwarded-host").cloned(),
            headers.get("x-forwarded-proto").cloned(),
        ];
        let prior_xff: Vec<String> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        remove_hop_by_hop(headers);
        for name in X_FORWARDED {
            headers.remove(name);
        }
        match self.kind {
            PluginKind::Http2Https => {
                for (name, value) in X_FORWARDED[1..].iter().zip(incoming) {
                    if let Some(v) = value {
                        headers.insert(*name, v);
                    }
                }
            }
            PluginKind::Https2Http | PluginKind::Https2Https => {
                // The visitor's X-Forwarded-For with its address appended. Without the address
                // (frps gave none) there is nothing to append and the header is dropped.
                if let Some(ip) = client_ip {
                    let mut chain = prior_xff.join(", ");
                    if !chain.is_empty() {
                        chain.push_str(", ");
                    }
                    chain.push_str(&ip.to_string());
                    if let Ok(v) = HeaderValue::from_str(&chain) {
                        headers.insert("x-forwarded-for", v);
                    }
                }
                if let Ok(v) = HeaderValue::from_str(&in_host) {
                    headers.insert("x-forwarded-host", v);
                }
                headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
            }
            _ => {}
        }
        match &self.host_rewrite {
            Some(h) => {
                headers.insert(HOST, h.clone());
            }
            None => {
                if let Ok(v) = HeaderValue::from_str(&in_host) {
                    headers.insert(HOST, v);
                }
            }
        }
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        if let Some(up) = &upgrade {
            // Hop-by-hop, but what a switch is made of: passed on, as Go's reverse proxy does.
            headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
            headers.insert(UPGRADE, up.clone());
        }
        let visitor_side = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
        *req.uri_mut() = uri;
        *req.version_mut() = Version::HTTP_11;
        match self.client.request(req).await {
            Ok(mut resp) if resp.status() == StatusCode::SWITCHING_PROTOCOLS => {
                let (Some(asked), Some(visitor_side), Some(slot)) =
                    (upgrade, visitor_side, upgrades)
                else {
                    tracing::warn!(
                        plugin = self.kind.name(),
                        "http: proxy error: backend switched protocols without being asked"
                    );
                    return Ok(status(StatusCode::BAD_GATEWAY));
                };
                let got = resp.headers().get(UPGRADE).cloned();
                let same = got
                    .as_ref()
                    .is_some_and(|g| g.as_bytes().eq_ignore_ascii_case(asked.as_bytes()));
                if !same {
                    tracing::warn!(
                        plugin = self.kind.name(),
                        "http: proxy error: backend tried to switch protocol {:?} when {:?} was requested",
                        got.as_ref().and_then(|g| g.to_str().ok()).unwrap_or(""),
                        asked.to_str().unwrap_or("")
                    );
                    return Ok(status(StatusCode::BAD_GATEWAY));
                }
                let local_side = hyper::upgrade::on(&mut resp);
                *slot
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some((visitor_side, local_side));
                // The local service's 101 as it is, headers and all.
                Ok(resp.map(|_| super::http::empty()))
            }
            Ok(mut resp) => {
                remove_hop_by_hop(resp.headers_mut());
                Ok(resp.map(|b| b.map_err(Into::into).boxed_unsync()))
            }
            Err(e) => {
                tracing::warn!(plugin = self.kind.name(), "http: proxy error: {e}");
                Ok(status(StatusCode::BAD_GATEWAY))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::canonical_host;

    #[test]
    fn hosts_compare_as_frpc_does() {
        assert_eq!(canonical_host("Example.COM:443"), "example.com");
        assert_eq!(canonical_host("example.com."), "example.com");
        assert_eq!(canonical_host("[::1]:8443"), "::1");
        assert_eq!(canonical_host("::1"), "::1");
    }
}
