//! frpc's client plugins end to end: a tcp proxy with a plugin registered at the in-repo test
//! frps, a visitor on the remote port speaking the plugin's protocol (SOCKS5, HTTP proxy, HTTP,
//! TLS), the local service behind it.

mod common;

use base64::Engine;
use common::*;
use expose::frp::{Client, ClientConfig, PluginConfig, PluginKind, ProxyConfig, TlsConfig};
use expose::testserver::{ServerConfig, TestServer, TlsMode};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TOKEN: &str = "plugins-token-5d1";
const WAIT: Duration = Duration::from_secs(20);

/// A test frps and one client with `proxy`; returns the proxy's public address.
async fn expose(proxy: ProxyConfig) -> (TestServer, Client, SocketAddr) {
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
    let ready = tokio::time::timeout(WAIT, client.ready())
        .await
        .expect("ready in time")
        .expect("ready");
    let port: u16 = ready[0]
        .remote_addr
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (srv, client, SocketAddr::new(addr.ip(), port))
}

fn tcp_with(name: &str, plugin: PluginConfig) -> ProxyConfig {
    ProxyConfig::tcp(name, 0, 0).plugin(plugin)
}

async fn read_to_end<S: AsyncRead + Unpin>(s: &mut S) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

async fn echo_check<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, msg: &[u8]) {
    s.write_all(msg).await.unwrap();
    s.flush().await.unwrap();
    let mut got = vec![0u8; msg.len()];
    tokio::time::timeout(WAIT, s.read_exact(&mut got))
        .await
        .expect("echo in time")
        .unwrap();
    assert_eq!(got, msg);
}

fn basic(user: &str, pass: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
}

/// A SOCKS5 CONNECT to `target`, with `auth` when given; returns the reply code (or the auth
/// failure as 0xff00 + status).
async fn socks5_connect(
    public: SocketAddr,
    auth: Option<(&str, &str)>,
    target: SocketAddr,
) -> (TcpStream, u16) {
    let mut s = TcpStream::connect(public).await.unwrap();
    let method = if auth.is_some() { 2 } else { 0 };
    s.write_all(&[5, 1, method]).await.unwrap();
    let mut r = [0u8; 2];
    s.read_exact(&mut r).await.unwrap();
    if r[1] != method {
        return (s, 0xff00 | u16::from(r[1]));
    }
    if let Some((u, p)) = auth {
        let mut m = vec![1, u.len() as u8];
        m.extend_from_slice(u.as_bytes());
        m.push(p.len() as u8);
        m.extend_from_slice(p.as_bytes());
        s.write_all(&m).await.unwrap();
        s.read_exact(&mut r).await.unwrap();
        if r[1] != 0 {
            return (s, 0xff00 | u16::from(r[1]));
        }
    }
    let SocketAddr::V4(t) = target else {
        unreachable!()
    };
    let mut req = vec![5, 1, 0, 1];
    req.extend_from_slice(&t.ip().octets());
    req.extend_from_slice(&t.port().to_be_bytes());
    s.write_all(&req).await.unwrap();
    let mut reply = [0u8; 10];
    s.read_exact(&mut reply).await.unwrap();
    (s, u16::from(reply[1]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks5_connects_with_and_without_auth() {
    let echo = echo_server().await;
    let (_srv, client, public) = expose(tcp_with("s5", PluginConfig::socks5())).await;
    let (mut s, code) = socks5_connect(public, None, echo).await;
    assert_eq!(code, 0);
    echo_check(&mut s, b"through socks5").await;
    // A refused target is "connection refused".
    let (_, code) = socks5_connect(
        public,
        None,
        SocketAddr::from(([127, 0, 0, 1], dead_port().await)),
    )
    .await;
    assert_eq!(code, 5);
    client.shutdown().await.unwrap();

    let plugin = PluginConfig::socks5().auth("alice", "s3cret");
    let (_srv, client, public) = expose(tcp_with("s5a", plugin)).await;
    let (mut s, code) = socks5_connect(public, Some(("alice", "s3cret")), echo).await;
    assert_eq!(code, 0);
    echo_check(&mut s, b"authenticated").await;
    let (_, code) = socks5_connect(public, Some(("alice", "wrong")), echo).await;
    assert_eq!(code, 0xff01, "wrong password refused");
    let (_, code) = socks5_connect(public, None, echo).await;
    assert_eq!(code, 0xffff, "no acceptable method without credentials");
    client.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_proxy_tunnels_and_forwards_with_auth() {
    let echo = echo_server().await;
    let web = http_server().await;
    let plugin = PluginConfig::http_proxy().auth("bob", "pw");
    let (_srv, client, public) = expose(tcp_with("hp", plugin)).await;
    let auth = basic("bob", "pw");

    let mut s = TcpStream::connect(public).await.unwrap();
    let head = format!(
        "CONNECT {echo} HTTP/1.1\r\nHost: {echo}\r\nProxy-Authorization: Basic {auth}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut ok = [0u8; 19];
    s.read_exact(&mut ok).await.unwrap();
    assert_eq!(&ok, b"HTTP/1.1 200 OK\r\n\r\n");
    echo_check(&mut s, b"tunnelled").await;

    let mut s = TcpStream::connect(public).await.unwrap();
    s.write_all(format!("CONNECT {echo} HTTP/1.1\r\nHost: {echo}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    assert_eq!(
        read_to_end(&mut s).await,
        "HTTP/1.1 407 Not authorized\r\nContent-Length: 0\r\nConnection: close\r\nProxy-Authenticate: Basic\r\n\r\n"
    );

    let mut s = TcpStream::connect(public).await.unwrap();
    let head = format!("GET http://{web}/page HTTP/1.1\r\nHost: {web}\r\nProxy-Authorization: Basic {auth}\r\nConnection: close\r\n\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    let resp = read_to_end(&mut s).await;
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    assert!(resp.contains("\r\n\r\nhello /page via "), "{resp}");

    let mut s = TcpStream::connect(public).await.unwrap();
    let head =
        format!("GET http://{web}/page HTTP/1.1\r\nHost: {web}\r\nConnection: close\r\n\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    let resp = read_to_end(&mut s).await;
    assert!(resp.starts_with("HTTP/1.1 407 "), "{resp}");
    assert!(
        resp.to_ascii_lowercase()
            .contains("proxy-authenticate: basic"),
        "{resp}"
    );
    client.shutdown().await.unwrap();
}

async fn get(public: SocketAddr, path: &str, extra: &str) -> String {
    let mut s = TcpStream::connect(public).await.unwrap();
    let head =
        format!("GET {path} HTTP/1.1\r\nHost: files.test\r\n{extra}Connection: close\r\n\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    read_to_end(&mut s).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_file_serves_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "hello file\n").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub").join("a b.txt"), "x").unwrap();

    let (_srv, client, public) =
        expose(tcp_with("sf", PluginConfig::static_file(dir.path()))).await;
    let r = get(public, "/hello.txt", "").await;
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(
        r.contains("content-type: text/plain; charset=utf-8\r\n"),
        "{r}"
    );
    assert!(r.contains("last-modified: "), "{r}");
    assert!(r.ends_with("\r\n\r\nhello file\n"), "{r}");
    let r = get(public, "/hello.txt", "Range: bytes=0-4\r\n").await;
    assert!(r.starts_with("HTTP/1.1 206 Partial Content\r\n"), "{r}");
    assert!(r.ends_with("\r\n\r\nhello"), "{r}");
    let r = get(public, "/missing", "").await;
    assert!(r.starts_with("HTTP/1.1 404 Not Found\r\n"), "{r}");
    assert!(r.ends_with("404 page not found\n"), "{r}");
    let r = get(public, "/sub", "").await;
    assert!(r.starts_with("HTTP/1.1 301 Moved Permanently\r\n"), "{r}");
    assert!(r.contains("location: sub/\r\n"), "{r}");
    let r = get(public, "/sub/", "").await;
    assert!(r.contains("<a href=\"a%20b.txt\">a b.txt</a>"), "{r}");
    let r = get(public, "/../../etc/passwd", "").await;
    assert!(r.starts_with("HTTP/1.1 301 "), "{r}");
    client.shutdown().await.unwrap();

    let plugin = PluginConfig::static_file(dir.path())
        .strip_prefix("static")
        .auth("u", "p");
    let (_srv, client, public) = expose(tcp_with("sfa", plugin)).await;
    let auth = format!("Authorization: Basic {}\r\n", basic("u", "p"));
    let r = get(public, "/static/hello.txt", &auth).await;
    assert!(r.ends_with("hello file\n"), "{r}");
    let r = get(public, "/hello.txt", &auth).await;
    assert!(r.starts_with("HTTP/1.1 404 "), "{r}");
    let r = get(public, "/static/hello.txt", "").await;
    assert!(r.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{r}");
    assert!(
        r.contains("www-authenticate: Basic realm=\"Restricted\"\r\n"),
        "{r}"
    );
    let wrong = format!("Authorization: Basic {}\r\n", basic("u", "x"));
    let r = get(public, "/static/hello.txt", &wrong).await;
    assert!(r.starts_with("HTTP/1.1 401 "), "{r}");
    client.shutdown().await.unwrap();
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_domain_socket_echoes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("echo.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let (_srv, client, public) =
        expose(tcp_with("uds", PluginConfig::unix_domain_socket(&path))).await;
    let mut s = TcpStream::connect(public).await.unwrap();
    echo_check(&mut s, b"over a unix socket").await;
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    echo_check(&mut s, &data).await;
    client.shutdown().await.unwrap();
}

/// An HTTP/1.1 service answering each request with its own head as the body.
async fn head_echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let end = loop {
                    if let Some(i) = find(&buf, b"\r\n\r\n") {
                        break i + 4;
                    }
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let body = String::from_utf8_lossy(&buf[..end]).to_string();
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2http_rewrites_host_and_sets_headers() {
    let local = head_echo_server().await;
    let plugin = PluginConfig::forward(PluginKind::Http2Http, local.to_string())
        .host_header_rewrite("app.internal")
        .request_header("X-From-Where", "frp");
    let (_srv, client, public) = expose(tcp_with("h2h", plugin)).await;
    let mut s = TcpStream::connect(public).await.unwrap();
    s.write_all(b"GET /p?q=1 HTTP/1.1\r\nHost: public.test\r\nX-Forwarded-For: 1.2.3.4\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let r = read_to_end(&mut s).await;
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    let body = r.split_once("\r\n\r\n").unwrap().1.to_ascii_lowercase();
    assert!(body.starts_with("get /p?q=1 http/1.1\r\n"), "{body}");
    assert!(body.contains("host: app.internal\r\n"), "{body}");
    assert!(body.contains("x-from-where: frp\r\n"), "{body}");
    assert!(
        !body.contains("x-forwarded-for"),
        "http2http drops it: {body}"
    );
    client.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https2http_terminates_tls_and_forwards_plain_http() {
    let local = head_echo_server().await;
    let plugin = PluginConfig::forward(PluginKind::Https2Http, local.to_string())
        .request_header("X-Plugin", "https2http");
    let (_srv, client, public) = expose(tcp_with("s2h", plugin)).await;
    let mut tls = tls_connect_any(public, "site.test", &[b"http/1.1"]).await;
    tls.write_all(b"GET /secure HTTP/1.1\r\nHost: site.test\r\nX-Forwarded-For: 10.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let r = read_to_end(&mut tls).await;
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    let body = r.split_once("\r\n\r\n").unwrap().1.to_ascii_lowercase();
    assert!(body.starts_with("get /secure http/1.1\r\n"), "{body}");
    assert!(body.contains("host: site.test\r\n"), "{body}");
    assert!(body.contains("x-plugin: https2http\r\n"), "{body}");
    assert!(body.contains("x-forwarded-proto: https\r\n"), "{body}");
    assert!(body.contains("x-forwarded-host: site.test\r\n"), "{body}");
    assert!(
        body.contains("x-forwarded-for: 10.0.0.1, 127.0.0.1\r\n"),
        "{body}"
    );

    // A Host other than the TLS server name: 421.
    let mut tls = tls_connect_any(public, "site.test", &[b"http/1.1"]).await;
    tls.write_all(b"GET / HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let r = read_to_end(&mut tls).await;
    assert!(r.starts_with("HTTP/1.1 421 Misdirected Request\r\n"), "{r}");

    // HTTP/2 is offered by ALPN by default.
    let tls = tls_connect_any(public, "site.test", &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    client.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls2raw_hands_the_plain_bytes_to_the_local_service() {
    let echo = echo_server().await;
    let plugin = PluginConfig::forward(PluginKind::Tls2Raw, echo.to_string());
    let (_srv, client, public) = expose(tcp_with("raw", plugin)).await;
    let mut tls = tls_connect_any(public, "raw.test", &[]).await;
    echo_check(&mut tls, b"decrypted by the plugin").await;
    client.shutdown().await.unwrap();
}

/// Reads one response with a Content-Length body off a kept connection.
async fn read_response<S: AsyncRead + Unpin>(s: &mut S) -> (String, String) {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(WAIT, s.read(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert!(
            n == 1,
            "EOF inside a head: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let len = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())
                .flatten()
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    (head, String::from_utf8_lossy(&body).into_owned())
}

/// frpc's HTTP server takes a CONNECT that follows plain requests on one keep-alive
/// connection: `200`, then the tunnel. A CONNECT whose target is down closes the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_proxy_connect_after_plain_requests_on_one_connection() {
    let echo = echo_server().await;
    let web = http_server().await;
    let plugin = PluginConfig::http_proxy().auth("bob", "pw");
    let (_srv, client, public) = expose(tcp_with("hp2", plugin)).await;
    let auth = format!("Proxy-Authorization: Basic {}\r\n", basic("bob", "pw"));

    let mut s = TcpStream::connect(public).await.unwrap();
    for i in 0..2 {
        let head = format!("GET http://{web}/p{i} HTTP/1.1\r\nHost: {web}\r\n{auth}\r\n");
        s.write_all(head.as_bytes()).await.unwrap();
        let (head, body) = read_response(&mut s).await;
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(body.starts_with(&format!("hello /p{i} via")), "{body}");
    }
    let head = format!("CONNECT {echo} HTTP/1.1\r\nHost: {echo}\r\n{auth}\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    let (head, _) = read_response(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    echo_check(&mut s, b"tunnelled after two requests").await;
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 241) as u8).collect();
    echo_check(&mut s, &data).await;

    // Without credentials after a request: 407, as for the first request.
    let mut s = TcpStream::connect(public).await.unwrap();
    let head = format!("GET http://{web}/a HTTP/1.1\r\nHost: {web}\r\n{auth}\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    read_response(&mut s).await;
    let head = format!("CONNECT {echo} HTTP/1.1\r\nHost: {echo}\r\n\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    let (head, _) = read_response(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 407 "), "{head}");

    // A target that is down: the connection is closed without an answer.
    let dead = dead_port().await;
    let mut s = TcpStream::connect(public).await.unwrap();
    let head = format!("GET http://{web}/b HTTP/1.1\r\nHost: {web}\r\n{auth}\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    read_response(&mut s).await;
    let head = format!("CONNECT 127.0.0.1:{dead} HTTP/1.1\r\nHost: x\r\n{auth}\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    assert_eq!(read_to_end(&mut s).await, "");
    client.shutdown().await.unwrap();
}

/// A plugin proxy with a client-side bandwidth limit is throttled like a spliced one, and its
/// bytes count in the client's stats.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_proxy_is_limited_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("echo.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let limit = expose::frp::BandwidthLimit::parse("64KB").unwrap();
    let proxy =
        tcp_with("slow-uds", PluginConfig::unix_domain_socket(&path)).bandwidth_limit(limit);
    let (_srv, client, public) = expose(proxy).await;
    let before = client.stats();
    // 96 KiB each way share one 64 KiB/s bucket that starts full: 192 KiB take about two
    // seconds; under 1.2 s means the limit was not applied.
    let data: Vec<u8> = (0..96 * 1024u32).map(|i| (i % 253) as u8).collect();
    let started = tokio::time::Instant::now();
    let mut s = TcpStream::connect(public).await.unwrap();
    echo_check(&mut s, &data).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1200), "took {took:?}");
    assert!(took < WAIT, "took {took:?}");
    let after = client.stats();
    assert!(
        after.bytes_to_local - before.bytes_to_local >= data.len() as u64,
        "{after:?}"
    );
    assert!(
        after.bytes_from_local - before.bytes_from_local >= data.len() as u64,
        "{after:?}"
    );
    client.shutdown().await.unwrap();
}

/// A plugin that cannot start puts its proxy in "start error" with the plugin's error (as
/// frpc's Go text), closes it on the server, and leaves the client's other proxies alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_cannot_start_fails_its_proxy_only() {
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
    let dir = tempfile::tempdir().unwrap();
    let crt = dir.path().join("none.crt");
    let bad = PluginConfig::forward(PluginKind::Tls2Raw, "127.0.0.1:1")
        .certificate(&crt, dir.path().join("none.key"));
    let socks = tcp_with("fine", PluginConfig::socks5());
    let client = Client::start(cfg.proxy(tcp_with("broken", bad)).proxy(socks)).unwrap();
    let err = tokio::time::timeout(WAIT, client.ready())
        .await
        .expect("an answer in time")
        .unwrap_err();
    let want = format!("open {}: no such file or directory", crt.display());
    assert!(err.to_string().contains(&want), "{err}");
    let state = client.state().borrow().clone();
    assert_eq!(
        state.proxies.get("broken"),
        Some(&expose::frp::ProxyStatus::Failed(want))
    );
    srv.wait_for(
        |s| s.close_proxies.iter().any(|c| c == "broken") && s.proxies.contains_key("fine"),
        WAIT,
    )
    .await
    .expect("broken closed on the server, fine registered");
    assert!(!srv.snapshot().proxies.contains_key("broken"));
    client.shutdown().await.unwrap();
}
