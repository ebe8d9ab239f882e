//! The HTTP plugins end to end through the test frps's vhosts: http2https behind the http
//! vhost, https2http and https2https behind the https vhost (routed by the TLS server name,
//! HTTP/1.1 and HTTP/2 to the plugin), the local service plain or HTTPS (a self-signed
//! certificate made here); request and response bodies checked; WebSocket upgrades through
//! all four HTTP plugins.

mod common;

use base64::Engine;
use common::tls_connect_any;
use expose::frp::{
    Client, ClientConfig, PluginConfig, PluginKind, ProxyConfig, ProxyKind, TlsConfig,
};
use expose::testserver::{ServerConfig, TestServer, TlsMode};
use http_body_util::{BodyExt, Full};
use sha1::Digest;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TOKEN: &str = "plugins-http-token-3e7";
const WAIT: Duration = Duration::from_secs(20);
/// RFC 6455's example key and the answer it must get.
const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const WS_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A test frps and one client with `proxy`, ready.
async fn expose(proxy: ProxyConfig) -> (TestServer, Client) {
    let srv = TestServer::start(ServerConfig {
        token: TOKEN.into(),
        tls: TlsMode::Optional,
        ..Default::default()
    })
    .await
    .unwrap();
    let addr = srv.bind_addr();
    let mut cfg = ClientConfig::new(addr.ip().to_string(), addr.port(), TOKEN);
    cfg.tls = TlsConfig::default();
    let client = Client::start(cfg.proxy(proxy)).unwrap();
    tokio::time::timeout(WAIT, client.ready())
        .await
        .expect("ready in time")
        .expect("ready");
    (srv, client)
}

fn https_proxy(name: &str, plugin: PluginConfig) -> ProxyConfig {
    ProxyConfig::new(
        name,
        0,
        ProxyKind::Https {
            subdomain: Some(name.into()),
            custom_domains: Vec::new(),
        },
    )
    .plugin(plugin)
}

/// Reads up to and including the blank line after a head, a byte at a time (nothing past it).
async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).await.unwrap_or(0) == 0 {
            break;
        }
        head.push(b[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())
                .flatten()
        })
        .unwrap_or(0)
}

/// The local service: answers each request with its head followed by its body (bodies by
/// Content-Length), keeps the connection, and echoes WebSocket frames after an upgrade.
async fn local_service<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) {
    loop {
        let head = read_head(&mut s).await;
        if !head.ends_with("\r\n\r\n") {
            return;
        }
        let lower = head.to_ascii_lowercase();
        if lower.contains("\r\nupgrade: websocket\r\n") {
            let key = head
                .lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.eq_ignore_ascii_case("sec-websocket-key")
                        .then(|| v.trim().to_owned())
                })
                .unwrap_or_default();
            let mut sha = sha1::Sha1::new();
            sha.update(key.as_bytes());
            sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
            let accept = base64::engine::general_purpose::STANDARD.encode(sha.finalize());
            let resp = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            );
            if s.write_all(resp.as_bytes()).await.is_err() {
                return;
            }
            while let Some((opcode, payload)) = ws_read(&mut s).await {
                let _ = s.write_all(&ws_frame(opcode, &payload, None)).await;
                if opcode == 8 {
                    return;
                }
            }
            return;
        }
        let mut body = vec![0u8; content_length(&head)];
        if s.read_exact(&mut body).await.is_err() {
            return;
        }
        let mut answer = head.clone().into_bytes();
        answer.extend_from_slice(&body);
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            answer.len()
        );
        if s.write_all(resp.as_bytes()).await.is_err() || s.write_all(&answer).await.is_err() {
            return;
        }
        if lower.contains("\r\nconnection: close\r\n") {
            let _ = s.shutdown().await;
            return;
        }
    }
}

/// Starts the local service, over TLS with a self-signed certificate when `tls`.
async fn local(tls: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tls.then(|| {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
            rustls::pki_types::PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()),
        );
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
    });
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    Some(a) => {
                        if let Ok(t) = a.accept(s).await {
                            local_service(t).await;
                        }
                    }
                    None => local_service(s).await,
                }
            });
        }
    });
    addr
}

/// A WebSocket frame (FIN set) with `opcode`, masked with `mask` (a client's) or not.
fn ws_frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    let m = if mask.is_some() { 0x80 } else { 0 };
    let n = payload.len();
    if n < 126 {
        f.push(m | n as u8);
    } else if n < 65536 {
        f.push(m | 126);
        f.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        f.push(m | 127);
        f.extend_from_slice(&(n as u64).to_be_bytes());
    }
    match mask {
        Some(k) => {
            f.extend_from_slice(&k);
            f.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => f.extend_from_slice(payload),
    }
    f
}

/// One frame: its opcode and unmasked payload; `None` at EOF.
async fn ws_read<S: AsyncRead + Unpin>(s: &mut S) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).await.ok()?;
    let mut len = u64::from(h[1] & 0x7f);
    if len == 126 {
        let mut b = [0u8; 2];
        s.read_exact(&mut b).await.ok()?;
        len = u64::from(u16::from_be_bytes(b));
    } else if len == 127 {
        let mut b = [0u8; 8];
        s.read_exact(&mut b).await.ok()?;
        len = u64::from_be_bytes(b);
    }
    let mut mask = [0u8; 4];
    if h[1] & 0x80 != 0 {
        s.read_exact(&mut mask).await.ok()?;
    }
    let mut payload = vec![0u8; usize::try_from(len).ok()?];
    s.read_exact(&mut payload).await.ok()?;
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
    Some((h[0] & 0x0f, payload))
}

/// A WebSocket handshake for `host` on `s`, then frames of several sizes echoed back.
async fn websocket_echo<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, host: &str) {
    let req = format!(
        "GET /chat HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let head = tokio::time::timeout(WAIT, read_head(s)).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("\r\nupgrade: websocket\r\n"), "{head}");
    assert!(
        lower.contains(&format!(
            "\r\nsec-websocket-accept: {}\r\n",
            WS_ACCEPT.to_ascii_lowercase()
        )),
        "{head}"
    );
    for (i, size) in [5usize, 300, 70_000].into_iter().enumerate() {
        let payload: Vec<u8> = (0..size).map(|b| (b * 7 + i) as u8).collect();
        s.write_all(&ws_frame(2, &payload, Some([1, 2, 3, i as u8])))
            .await
            .unwrap();
        let (opcode, back) = tokio::time::timeout(WAIT, ws_read(s))
            .await
            .unwrap()
            .expect("an echoed frame");
        assert_eq!(opcode, 2);
        assert_eq!(back, payload, "frame of {size} bytes");
    }
    s.write_all(&ws_frame(8, &[3, 232], Some([9, 9, 9, 9])))
        .await
        .unwrap();
    let (opcode, _) = tokio::time::timeout(WAIT, ws_read(s))
        .await
        .unwrap()
        .expect("close answered");
    assert_eq!(opcode, 8);
}

/// One HTTP/1.1 request on a kept connection; returns the response head and body.
async fn request<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    method: &str,
    host: &str,
    path: &str,
    body: &[u8],
) -> (String, Vec<u8>) {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nX-Forwarded-For: 10.9.8.7\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let head = tokio::time::timeout(WAIT, read_head(s)).await.unwrap();
    let mut body = vec![0u8; content_length(&head)];
    s.read_exact(&mut body).await.unwrap();
    (head, body)
}

/// A GET and a POST on one connection; each answer is the local service's view of the
/// request, checked for what the plugin must have sent.
async fn two_requests<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, host: &str, https: bool) {
    let (head, body) = request(s, "GET", host, "/first?x=1", b"").await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let seen = String::from_utf8_lossy(&body).to_ascii_lowercase();
    assert!(seen.starts_with("get /first?x=1 http/1.1\r\n"), "{seen}");
    assert!(seen.contains(&format!("\r\nhost: {host}\r\n")), "{seen}");
    assert!(seen.contains("\r\nx-plugin: yes\r\n"), "{seen}");
    if https {
        assert!(seen.contains("\r\nx-forwarded-proto: https\r\n"), "{seen}");
    }
    let payload: Vec<u8> = (0..50_000u32).map(|i| (i % 239) as u8).collect();
    let (head, body) = request(s, "POST", host, "/upload", &payload).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(body.starts_with(b"POST /upload HTTP/1.1\r\n"));
    assert!(
        body.ends_with(&payload),
        "the request body reached the service"
    );
}

/// HTTP/2 to the plugin (offered by ALPN): a GET and a POST with a body on one connection.
async fn over_h2(addr: SocketAddr, host: &str) {
    let tls = tls_connect_any(addr, host, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let get = hyper::Request::get(format!("https://{host}/h2/get"))
        .body(Full::new(bytes::Bytes::new()))
        .unwrap();
    let resp = send.send_request(get).await.unwrap();
    assert_eq!(resp.status(), 200);
    let seen = resp.into_body().collect().await.unwrap().to_bytes();
    let seen = String::from_utf8_lossy(&seen).to_ascii_lowercase();
    assert!(seen.starts_with("get /h2/get http/1.1\r\n"), "{seen}");
    assert!(seen.contains(&format!("\r\nhost: {host}\r\n")), "{seen}");
    assert!(seen.contains("\r\nx-forwarded-proto: https\r\n"), "{seen}");
    let payload: Vec<u8> = (0..40_000u32).map(|i| (i % 233) as u8).collect();
    let post = hyper::Request::post(format!("https://{host}/h2/post"))
        .header("content-length", payload.len())
        .body(Full::new(bytes::Bytes::from(payload.clone())))
        .unwrap();
    let resp = send.send_request(post).await.unwrap();
    assert_eq!(resp.status(), 200);
    let seen = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(seen.starts_with(b"POST /h2/post HTTP/1.1\r\n"));
    assert!(
        seen.ends_with(&payload),
        "the request body reached the service"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2https_behind_the_http_vhost() {
    let service = local(true).await;
    let plugin = PluginConfig::forward(PluginKind::Http2Https, service.to_string())
        .request_header("X-Plugin", "yes");
    let (srv, client) = expose(ProxyConfig::http("h2s", 0, "h2s").plugin(plugin)).await;
    let host = "h2s.tunnel.test";
    let mut s = TcpStream::connect(srv.vhost_http_addr()).await.unwrap();
    two_requests(&mut s, host, false).await;
    let mut s = TcpStream::connect(srv.vhost_http_addr()).await.unwrap();
    websocket_echo(&mut s, host).await;
    client.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https2https_behind_the_https_vhost_over_http1_and_h2() {
    behind_the_https_vhost(PluginKind::Https2Https, true, "s2s").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https2http_behind_the_https_vhost_over_http1_and_h2() {
    behind_the_https_vhost(PluginKind::Https2Http, false, "s2h").await;
}

/// An https2* plugin behind the https vhost (routed by the TLS server name `NAME.tunnel.test`)
/// in front of a plain or HTTPS local service: two HTTP/1.1 requests, HTTP/2, a WebSocket.
async fn behind_the_https_vhost(kind: PluginKind, service_tls: bool, name: &str) {
    let service = local(service_tls).await;
    let plugin = PluginConfig::forward(kind, service.to_string()).request_header("X-Plugin", "yes");
    let (srv, client) = expose(https_proxy(name, plugin)).await;
    let host = format!("{name}.tunnel.test");
    let host = host.as_str();
    let mut tls = tls_connect_any(srv.vhost_https_addr(), host, &[b"http/1.1"]).await;
    two_requests(&mut tls, host, true).await;
    over_h2(srv.vhost_https_addr(), host).await;
    let mut tls = tls_connect_any(srv.vhost_https_addr(), host, &[b"http/1.1"]).await;
    websocket_echo(&mut tls, host).await;
    client.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2http_passes_websocket_upgrades() {
    let service = local(false).await;
    let plugin = PluginConfig::forward(PluginKind::Http2Http, service.to_string())
        .request_header("X-Plugin", "yes");
    let (srv, client) = expose(ProxyConfig::http("h2h", 0, "h2h").plugin(plugin)).await;
    let host = "h2h.tunnel.test";
    let mut s = TcpStream::connect(srv.vhost_http_addr()).await.unwrap();
    two_requests(&mut s, host, false).await;
    let mut s = TcpStream::connect(srv.vhost_http_addr()).await.unwrap();
    websocket_echo(&mut s, host).await;
    client.shutdown().await.unwrap();
}

/// A protocol switch the local service refuses is an ordinary answer: the connection carries
/// on with HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_the_service_refuses_is_a_plain_answer() {
    let service = local(false).await;
    let plugin = PluginConfig::forward(PluginKind::Http2Http, service.to_string())
        .request_header("X-Plugin", "yes");
    let (srv, client) = expose(ProxyConfig::http("noup", 0, "noup").plugin(plugin)).await;
    let host = "noup.tunnel.test";
    let mut s = TcpStream::connect(srv.vhost_http_addr()).await.unwrap();
    let req = format!(
        "GET /h2c HTTP/1.1\r\nHost: {host}\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nContent-Length: 0\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let head = tokio::time::timeout(WAIT, read_head(&mut s)).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let mut body = vec![0u8; content_length(&head)];
    s.read_exact(&mut body).await.unwrap();
    let seen = String::from_utf8_lossy(&body).to_ascii_lowercase();
    assert!(seen.contains("\r\nupgrade: h2c\r\n"), "passed on: {seen}");
    two_requests(&mut s, host, false).await;
    client.shutdown().await.unwrap();
}
