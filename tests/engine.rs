//! End-to-end tests of the frp client engine against the in-repo frps-compatible test server,
//! on loopback, with ports chosen at runtime.

mod common;

use common::*;
use expose::frp::{Client, ClientConfig, Error, Event, ProxyConfig, ReconnectPolicy, TlsConfig};
use expose::testserver::{ServerConfig, TestServer, TlsMode};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "e2e-token-7f3a";
const WAIT: Duration = Duration::from_secs(20);

async fn server(tls: bool, mux: bool) -> TestServer {
    TestServer::start(ServerConfig {
        token: TOKEN.into(),
        tcp_mux: mux,
        tls: if tls { TlsMode::Optional } else { TlsMode::Off },
        ..Default::default()
    })
    .await
    .unwrap()
}

fn config(srv: &TestServer, tls: bool, mux: bool) -> ClientConfig {
    let addr = srv.bind_addr();
    let mut cfg = ClientConfig::new(addr.ip().to_string(), addr.port(), TOKEN);
    cfg.user = "u1".into();
    cfg.tcp_mux = mux;
    cfg.tls = TlsConfig::default().enable(tls);
    cfg.pool_count = 2;
    cfg.reconnect = ReconnectPolicy::new(
        Duration::from_millis(100),
        Duration::from_millis(500),
        Duration::from_millis(50),
    );
    cfg
}

fn tcp_addr(srv: &TestServer, port: u16) -> SocketAddr {
    SocketAddr::new(srv.bind_addr().ip(), port)
}

/// http through the vhost and a large checksummed echo through a tcp proxy, in one mode.
async fn full_path(tls: bool, mux: bool, bytes: u64) {
    let srv = server(tls, mux).await;
    let web = http_server().await;
    let echo = echo_server().await;
    let cfg = config(&srv, tls, mux)
        .proxy(ProxyConfig::http("web", web.port(), "web"))
        .proxy(ProxyConfig::tcp("echo", echo.port(), 0));
    let client = Client::start(cfg).unwrap();
    let ready = ready(&client).await;
    let echo_ready = ready.iter().find(|p| p.name == "echo").unwrap();
    let web_ready = ready.iter().find(|p| p.name == "web").unwrap();
    assert!(
        web_ready
            .url
            .as_deref()
            .unwrap()
            .starts_with("http://web.tunnel.test:"),
        "{web_ready:?}"
    );

    let (status, body) = http_get(srv.vhost_http_addr(), "web.tunnel.test", "/hi").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(body, "hello /hi via web.tunnel.test\n");

    let port = echo_ready.remote_port.unwrap();
    let got = echo_roundtrip(tcp_addr(&srv, port), bytes, 42).await;
    assert_eq!(got, bytes);
    // The splice counts a chunk once its write returned, which can be a moment after the
    // visitor already read it.
    let counted = eventually(Duration::from_secs(5), || {
        let stats = client.stats();
        stats.bytes_to_local >= bytes && stats.bytes_from_local >= bytes
    })
    .await;
    assert!(counted, "{:?}", client.stats());
    client.shutdown().await.unwrap();
}

const GIB: u64 = 1 << 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_mux_http_and_one_gib_each_way() {
    full_path(true, true, GIB).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_no_mux_http_and_one_gib_each_way() {
    full_path(true, false, GIB).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_mux_http_and_one_gib_each_way() {
    full_path(false, true, GIB).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_no_mux_http_and_one_gib_each_way() {
    full_path(false, false, GIB).await;
}

async fn concurrent(tls: bool, mux: bool, n: usize) {
    let srv = server(tls, mux).await;
    let echo = echo_server().await;
    let client =
        Client::start(config(&srv, tls, mux).proxy(ProxyConfig::tcp("echo", echo.port(), 0)))
            .unwrap();
    let port = ready(&client).await[0].remote_port.unwrap();
    let addr = tcp_addr(&srv, port);
    let mut tasks = Vec::new();
    for i in 0..n {
        tasks.push(tokio::spawn(async move {
            echo_roundtrip(addr, 64 * 1024, i as u64 + 1).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 64 * 1024);
    }
    client.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_connections_over_mux() {
    concurrent(true, true, 500).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_connections_without_mux() {
    concurrent(false, false, 500).await;
}

#[tokio::test]
async fn wrong_token_is_fatal_with_the_servers_text() {
    let srv = server(true, true).await;
    let mut cfg = config(&srv, true, true).proxy(ProxyConfig::tcp("t", 9, 0));
    cfg.token = "wrong".into();
    cfg.login_fail_exit = false; // even when told to keep trying, a bad token is final
    let client = Client::start(cfg).unwrap();
    let err = tokio::time::timeout(WAIT, client.ready())
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::LoginRejected(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("token in login doesn't match token from configuration"),
        "{err}"
    );
    assert!(err.is_fatal());
    assert_eq!(
        srv.snapshot().logins.len(),
        1,
        "no retry after a fatal rejection"
    );
}

#[tokio::test]
async fn plugin_rejection_is_fatal_with_the_reason() {
    let srv = server(true, true).await;
    srv.set_login_hook(Some(Arc::new(
        |login: &expose::proto::msg::Login| match login
            .metas
            .get("binding_secret")
            .map(String::as_str)
        {
            Some("right") => Ok(()),
            _ => Err("invalid binding secret".to_owned()),
        },
    )));
    let mut cfg = config(&srv, true, true).proxy(ProxyConfig::tcp("t", 9, 0));
    cfg.metas.insert("binding_secret".into(), "wrong".into());
    cfg.login_fail_exit = false;
    let client = Client::start(cfg).unwrap();
    let err = tokio::time::timeout(WAIT, client.ready())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "login rejected by the server: invalid binding secret"
    );
    assert!(err.is_fatal());
}

#[tokio::test]
async fn binding_secret_travels_in_login_metas() {
    let srv = server(true, true).await;
    let echo = echo_server().await;
    let mut cfg = config(&srv, true, true).proxy(ProxyConfig::tcp("t", echo.port(), 0));
    cfg.metas.insert("binding_secret".into(), "bs-1".into());
    let client = Client::start(cfg).unwrap();
    ready(&client).await;
    let snap = srv.snapshot();
    let login = &snap.logins[0].login;
    assert_eq!(
        login.metas.get("binding_secret").map(String::as_str),
        Some("bs-1")
    );
    assert_eq!(login.user, "u1");
    assert_eq!(login.version, "0.66.0");
    assert_eq!(login.pool_count, 2);
    assert!(
        snap.proxies.contains_key("u1.t"),
        "{:?}",
        snap.proxies.keys()
    );
    client.shutdown().await.unwrap();
}

async fn restart_on_same_port(mux: bool) {
    let srv = server(true, mux).await;
    let bind = srv.bind_addr();
    let echo = echo_server().await;
    let client =
        Client::start(config(&srv, true, mux).proxy(ProxyConfig::tcp("echo", echo.port(), 0)))
            .unwrap();
    let first = ready(&client).await[0].clone();
    let run_id = srv.snapshot().logins[0].run_id.clone();
    let port = first.remote_port.unwrap();
    assert_eq!(
        echo_roundtrip(tcp_addr(&srv, port), 1 << 20, 7).await,
        1 << 20
    );

    // An in-flight connection when the server dies must not stop the client.
    let inflight = tokio::net::TcpStream::connect(tcp_addr(&srv, port))
        .await
        .unwrap();
    let mut events = client.events();
    srv.kill_and_wait().await;
    drop(srv);
    drop(inflight);

    let srv2 = TestServer::start(ServerConfig {
        bind,
        token: TOKEN.into(),
        tcp_mux: mux,
        ..Default::default()
    })
    .await
    .unwrap();
    let state = srv2
        .wait_for(|s| s.proxies.contains_key("u1.echo"), WAIT)
        .await
        .expect("proxy re-registered after restart");
    assert_eq!(state.logins[0].run_id, run_id, "re-login reuses the run id");
    assert_eq!(state.logins[0].login.run_id, run_id);
    let mut saw_reconnecting = false;
    while let Ok(e) = events.try_recv() {
        saw_reconnecting |= matches!(e, Event::Reconnecting { .. });
    }
    assert!(saw_reconnecting);
    let port2 = state.proxies["u1.echo"].remote_port.unwrap();
    assert_eq!(
        echo_roundtrip(tcp_addr(&srv2, port2), 1 << 20, 8).await,
        1 << 20
    );
    assert!(client.stats().reconnects >= 1);
    client.shutdown().await.unwrap();
}

#[tokio::test]
async fn server_restart_relogins_with_the_same_run_id_over_mux() {
    restart_on_same_port(true).await;
}

#[tokio::test]
async fn server_restart_relogins_with_the_same_run_id_without_mux() {
    restart_on_same_port(false).await;
}

#[tokio::test]
async fn frozen_server_is_detected_within_the_heartbeat_timeout() {
    let srv = server(true, true).await;
    let echo = echo_server().await;
    let mut cfg = config(&srv, true, true).proxy(ProxyConfig::tcp("echo", echo.port(), 0));
    cfg.heartbeat_interval = Some(Duration::from_millis(200));
    cfg.heartbeat_timeout = Duration::from_millis(1500);
    let client = Client::start(cfg).unwrap();
    ready(&client).await;
    let mut events = client.events();
    let frozen_at = std::time::Instant::now();
    srv.freeze();
    let cause = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(Event::Reconnecting { cause, .. }) = events.recv().await {
                return cause;
            }
        }
    })
    .await
    .expect("loss detected");
    let took = frozen_at.elapsed();
    assert!(cause.contains("Pong"), "{cause}");
    assert!(
        took >= Duration::from_millis(1300),
        "detected too early: {took:?}"
    );
    srv.thaw();
    // The thawed server replaced the dead control; the client is back.
    srv.wait_for(
        |s| s.logins.len() >= 2 && s.proxies.contains_key("u1.echo"),
        WAIT,
    )
    .await
    .expect("re-registered");
    client.shutdown().await.unwrap();
}

#[tokio::test]
async fn local_service_down_gives_502_and_the_client_stays_healthy() {
    let srv = server(true, true).await;
    let port = dead_port().await;
    let client =
        Client::start(config(&srv, true, true).proxy(ProxyConfig::http("web", port, "down")))
            .unwrap();
    ready(&client).await;
    let mut events = client.events();
    let (status, body) = http_get(srv.vhost_http_addr(), "down.tunnel.test", "/").await;
    assert_eq!(status, "HTTP/1.1 502 Bad Gateway");
    assert!(body.contains(&format!("127.0.0.1:{port}")), "{body}");
    assert!(matches!(
        events.recv().await.unwrap(),
        Event::LocalUnreachable { .. }
    ));
    // Still serving: bring the service up on that port and the next request works.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf).await;
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            .await
            .unwrap();
    });
    let (status, body) = http_get(srv.vhost_http_addr(), "down.tunnel.test", "/").await;
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", "ok"));
    client.shutdown().await.unwrap();
}

#[tokio::test]
async fn local_service_down_closes_tcp_visitors_promptly() {
    let srv = server(false, true).await;
    let port = dead_port().await;
    let client =
        Client::start(config(&srv, false, true).proxy(ProxyConfig::tcp("t", port, 0))).unwrap();
    let remote = ready(&client).await[0].remote_port.unwrap();
    let mut s = tokio::net::TcpStream::connect(tcp_addr(&srv, remote))
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("closed promptly")
        .unwrap_or(0);
    assert_eq!(n, 0);
    client.shutdown().await.unwrap();
}

#[tokio::test]
async fn graceful_shutdown_sends_close_proxy_for_each_proxy() {
    let srv = server(true, true).await;
    let echo = echo_server().await;
    let web = http_server().await;
    let client = Client::start(
        config(&srv, true, true)
            .proxy(ProxyConfig::tcp("a", echo.port(), 0))
            .proxy(ProxyConfig::http("b", web.port(), "bee")),
    )
    .unwrap();
    ready(&client).await;
    client.shutdown().await.unwrap();
    let state = srv
        .wait_for(
            |s| s.close_proxy_received("u1.a") && s.close_proxy_received("u1.b"),
            WAIT,
        )
        .await
        .expect("CloseProxy for both");
    assert_eq!(state.close_proxies.len(), 2);
}

#[tokio::test]
async fn encrypted_and_compressed_work_connections() {
    let srv = server(true, true).await;
    let echo = echo_server().await;
    let mut p = ProxyConfig::tcp("sealed", echo.port(), 0);
    p.use_encryption = true;
    p.use_compression = true;
    let client = Client::start(config(&srv, true, true).proxy(p)).unwrap();
    let port = ready(&client).await[0].remote_port.unwrap();
    let info = srv.snapshot().proxies["u1.sealed"].clone();
    assert!(info.use_encryption && info.use_compression);
    assert_eq!(
        echo_roundtrip(tcp_addr(&srv, port), 8 << 20, 3).await,
        8 << 20
    );
    client.shutdown().await.unwrap();
}

#[tokio::test]
async fn tls_verification_against_the_server_certificate() {
    let srv = server(true, true).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, srv.cert_pem()).unwrap();
    let echo = echo_server().await;
    let mut cfg = config(&srv, true, true).proxy(ProxyConfig::tcp("v", echo.port(), 0));
    cfg.server_host = "localhost".into();
    cfg.tls.ca_file = Some(ca);
    let client = Client::start(cfg).unwrap();
    ready(&client).await;
    client.shutdown().await.unwrap();

    // A pin that does not match fails the handshake.
    let mut cfg = config(&srv, true, true).proxy(ProxyConfig::tcp("w", echo.port(), 0));
    cfg.tls.pinned_sha256 = Some([0u8; 32]);
    let client = Client::start(cfg).unwrap();
    let err = tokio::time::timeout(WAIT, client.ready())
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
}

#[tokio::test]
async fn custom_first_byte_is_accepted() {
    let srv = server(true, true).await;
    let echo = echo_server().await;
    let mut cfg = config(&srv, true, true).proxy(ProxyConfig::tcp("x", echo.port(), 0));
    cfg.tls.custom_first_byte = true;
    let client = Client::start(cfg).unwrap();
    ready(&client).await;
    assert!(srv.snapshot().counters.tls_connections >= 1);
    client.shutdown().await.unwrap();
}

#[tokio::test]
async fn request_log_reports_each_http_exchange() {
    let srv = server(true, true).await;
    let web = http_server().await;
    let mut p = ProxyConfig::http("web", web.port(), "logged");
    p.request_log = true;
    let client = Client::start(config(&srv, true, true).proxy(p)).unwrap();
    ready(&client).await;
    let mut events = client.events();

    // Two requests on one keep-alive connection, then one more on a new connection.
    let mut s = tokio::net::TcpStream::connect(srv.vhost_http_addr())
        .await
        .unwrap();
    for path in ["/one", "/two?secret=1"] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: logged.tunnel.test\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        while !got.ends_with(b"via logged.tunnel.test\n") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
    }
    drop(s);
    let (status, _) = http_get(srv.vhost_http_addr(), "logged.tunnel.test", "/three").await;
    assert_eq!(status, "HTTP/1.1 200 OK");

    let mut seen = Vec::new();
    tokio::time::timeout(WAIT, async {
        while seen.len() < 3 {
            if let Ok(Event::HttpRequest(r)) = events.recv().await {
                seen.push(r);
            }
        }
    })
    .await
    .expect("three request events");
    let paths: Vec<&str> = seen.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/one", "/two?secret=1", "/three"]);
    for r in &seen {
        assert_eq!(
            (r.method.as_str(), r.status, r.proxy.as_str()),
            ("GET", 200, "web")
        );
        assert!(r.response_bytes > 0);
    }
    client.shutdown().await.unwrap();
}

/// frpc's `dnsServer` and `transport.connectServerLocalIP`: the server name is resolved only
/// by the given DNS server (the system resolver does not know it), and the connection leaves
/// from the given local address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_server_and_local_ip_are_used_to_reach_frps() {
    let srv = server(true, true).await;
    let dns =
        expose::testserver::dns_server("frps.only-in-this-dns.test", vec![srv.bind_addr().ip()])
            .await
            .unwrap();
    let echo = echo_server().await;
    let mut cfg = config(&srv, true, true);
    cfg.server_host = "frps.only-in-this-dns.test".into();
    cfg.dns_server = Some(dns);
    cfg.local_ip = Some("127.0.0.1".parse().unwrap());
    let client = Client::start(cfg.proxy(ProxyConfig::tcp("dns", echo.port(), 0))).unwrap();
    let r = ready(&client).await;
    let port = r[0]
        .remote_addr
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(echo_roundtrip(tcp_addr(&srv, port), 4096, 1).await, 4096);
    client.shutdown().await.unwrap();

    // A name the DNS server does not know fails with its answer, not with the system's.
    let mut cfg = config(&srv, true, true);
    cfg.server_host = "unknown.only-in-this-dns.test".into();
    cfg.dns_server = Some(dns);
    cfg.login_fail_exit = true;
    let client = Client::start(cfg.proxy(ProxyConfig::tcp("dns", echo.port(), 0))).unwrap();
    let e = tokio::time::timeout(WAIT, client.ready())
        .await
        .expect("fails in time")
        .unwrap_err();
    assert!(e.to_string().contains("no such host"), "{e}");
}
