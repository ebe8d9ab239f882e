//! frpc's transports end to end against the in-repo test server: websocket and wss on the bind
//! port, and `transport.proxyURL` through in-repo HTTP CONNECT and SOCKS5 proxies, each with a
//! login, a checksummed transfer through a tcp proxy, and a reconnect after the server
//! restarts, with tcpMux on and off.

mod common;

use common::*;
use expose::frp::{
    Client, ClientConfig, Error, ProxyConfig, ProxyUrl, ReconnectPolicy, TlsConfig,
    TransportConfig, TransportProtocol,
};
use expose::testserver::{ProxyProtocol, ServerConfig, TestProxy, TestServer, TlsMode};
use std::net::SocketAddr;
use std::time::Duration;

const TOKEN: &str = "transports-token";
const WAIT: Duration = Duration::from_secs(20);
const USER: &str = "alice";
const PASSWORD: &str = "s3cret:p@ss";

async fn server(bind: SocketAddr, mux: bool) -> TestServer {
    TestServer::start(ServerConfig {
        bind,
        token: TOKEN.into(),
        tcp_mux: mux,
        tls: TlsMode::Optional,
        ..Default::default()
    })
    .await
    .unwrap()
}

fn config(srv: &TestServer, protocol: TransportProtocol, tls: bool, mux: bool) -> ClientConfig {
    let addr = srv.bind_addr();
    let mut cfg = ClientConfig::new(addr.ip().to_string(), addr.port(), TOKEN);
    cfg.transport = TransportConfig::default().protocol(protocol);
    cfg.user = "u1".into();
    cfg.tcp_mux = mux;
    cfg.tls = TlsConfig::default().enable(tls);
    cfg.pool_count = 1;
    cfg.reconnect = ReconnectPolicy::new(
        Duration::from_millis(100),
        Duration::from_millis(500),
        Duration::from_millis(50),
    );
    cfg
}

/// The proxy URL with the right credentials, percent-encoded as a URL needs them.
fn proxy_url(p: &TestProxy) -> ProxyUrl {
    let url = p.url_with(USER, &PASSWORD.replace(':', "%3A").replace('@', "%40"));
    ProxyUrl::parse(&url).unwrap()
}

/// Login, a checksummed 1 MiB echo through a tcp proxy, a server restart on the same port,
/// the re-login and another checksummed echo; the server's counters show the transport used.
async fn round_trip(protocol: TransportProtocol, tls: bool, mux: bool, via: Option<ProxyProtocol>) {
    let srv = server(SocketAddr::from(([127, 0, 0, 1], 0)), mux).await;
    let bind = srv.bind_addr();
    let proxy = match via {
        Some(kind) => Some(
            TestProxy::start(kind, Some((USER, PASSWORD)))
                .await
                .unwrap(),
        ),
        None => None,
    };
    let echo = echo_server().await;
    let mut cfg = config(&srv, protocol, tls, mux).proxy(ProxyConfig::tcp("echo", echo.port(), 0));
    if let Some(p) = &proxy {
        cfg.transport = cfg.transport.proxy_url(proxy_url(p));
    }
    let client = Client::start(cfg).unwrap();
    let ready = tokio::time::timeout(WAIT, client.ready())
        .await
        .expect("ready in time")
        .expect("ready");
    let port = ready[0].remote_port.unwrap();
    let total = 1 << 20;
    assert_eq!(
        echo_roundtrip(SocketAddr::new(bind.ip(), port), total, 1).await,
        total
    );
    let check = |srv: &TestServer| {
        let c = srv.snapshot().counters;
        let ws = protocol != TransportProtocol::Tcp;
        assert_eq!(c.ws_connections > 0, ws, "{c:?}");
        assert_eq!(
            c.tls_connections > 0,
            tls || protocol == TransportProtocol::Wss,
            "{c:?}"
        );
        if ws {
            // Every connection went through the websocket.
            assert_eq!(c.ws_connections, c.connections, "{c:?}");
        }
    };
    check(&srv);
    if let Some(p) = &proxy {
        assert!(p.stats().tunnels >= 1, "{:?}", p.stats());
        assert_eq!(p.stats().auth_failures, 0);
    }

    // The server goes away with every connection; the client comes back on its own.
    let tunnels_before = proxy.as_ref().map(|p| p.stats().tunnels);
    srv.kill_and_wait().await;
    drop(srv);
    let srv2 = server(bind, mux).await;
    let state = srv2
        .wait_for(|s| s.proxies.contains_key("u1.echo"), WAIT)
        .await
        .expect("proxy re-registered after the restart");
    let port2 = state.proxies["u1.echo"].remote_port.unwrap();
    assert_eq!(
        echo_roundtrip(SocketAddr::new(bind.ip(), port2), total, 2).await,
        total
    );
    check(&srv2);
    if let (Some(p), Some(before)) = (&proxy, tunnels_before) {
        assert!(
            p.stats().tunnels > before,
            "the reconnect went through the proxy too"
        );
    }
    assert!(client.stats().reconnects >= 1);
    client.shutdown().await.unwrap();
}

#[tokio::test]
async fn websocket_plain_mux() {
    round_trip(TransportProtocol::Websocket, false, true, None).await;
}

#[tokio::test]
async fn websocket_plain_no_mux() {
    round_trip(TransportProtocol::Websocket, false, false, None).await;
}

#[tokio::test]
async fn websocket_with_tls_inside_mux() {
    round_trip(TransportProtocol::Websocket, true, true, None).await;
}

#[tokio::test]
async fn websocket_with_tls_inside_no_mux() {
    round_trip(TransportProtocol::Websocket, true, false, None).await;
}

/// wss is TLS whatever `tls.enable` says.
#[tokio::test]
async fn wss_mux() {
    round_trip(TransportProtocol::Wss, false, true, None).await;
}

#[tokio::test]
async fn wss_no_mux() {
    round_trip(TransportProtocol::Wss, true, false, None).await;
}

#[tokio::test]
async fn tcp_through_http_connect_with_basic_auth_mux() {
    round_trip(
        TransportProtocol::Tcp,
        true,
        true,
        Some(ProxyProtocol::HttpConnect),
    )
    .await;
}

#[tokio::test]
async fn tcp_through_http_connect_with_basic_auth_no_mux() {
    round_trip(
        TransportProtocol::Tcp,
        false,
        false,
        Some(ProxyProtocol::HttpConnect),
    )
    .await;
}

#[tokio::test]
async fn tcp_through_socks5_with_password_mux() {
    round_trip(
        TransportProtocol::Tcp,
        false,
        true,
        Some(ProxyProtocol::Socks5),
    )
    .await;
}

#[tokio::test]
async fn tcp_through_socks5_with_password_no_mux() {
    round_trip(
        TransportProtocol::Tcp,
        true,
        false,
        Some(ProxyProtocol::Socks5),
    )
    .await;
}

#[tokio::test]
async fn websocket_through_http_connect() {
    round_trip(
        TransportProtocol::Websocket,
        false,
        true,
        Some(ProxyProtocol::HttpConnect),
    )
    .await;
}

#[tokio::test]
async fn wss_through_socks5_no_mux() {
    round_trip(
        TransportProtocol::Wss,
        false,
        false,
        Some(ProxyProtocol::Socks5),
    )
    .await;
}

/// A wrong proxy password fails the first login with an error that says so, and nothing
/// reaches frps.
async fn wrong_password(kind: ProxyProtocol, expect: &str) {
    let srv = server(SocketAddr::from(([127, 0, 0, 1], 0)), true).await;
    let proxy = TestProxy::start(kind, Some((USER, PASSWORD)))
        .await
        .unwrap();
    let url = ProxyUrl::parse(&proxy.url_with(USER, "wrong")).unwrap();
    let mut cfg =
        config(&srv, TransportProtocol::Tcp, true, true).proxy(ProxyConfig::tcp("echo", 9, 0));
    cfg.transport = cfg.transport.proxy_url(url);
    let client = Client::start(cfg).unwrap();
    let err = tokio::time::timeout(WAIT, client.ready())
        .await
        .expect("the first login fails in time")
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(expect), "{text}");
    assert!(text.contains("wrong user or password"), "{text}");
    assert!(!text.contains("wrong:"), "no password in the error: {text}");
    assert!(proxy.stats().auth_failures >= 1);
    assert_eq!(proxy.stats().tunnels, 0);
    assert_eq!(srv.snapshot().counters.connections, 0);
}

#[tokio::test]
async fn wrong_http_proxy_password_is_a_clear_error() {
    wrong_password(ProxyProtocol::HttpConnect, "407").await;
}

#[tokio::test]
async fn wrong_socks5_password_is_a_clear_error() {
    wrong_password(ProxyProtocol::Socks5, "authentication failed").await;
}

/// A websocket client against a server that does not upgrade fails with the HTTP status.
#[tokio::test]
async fn websocket_to_a_plain_http_server_names_the_status() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                .await;
        }
    });
    let mut cfg =
        ClientConfig::new("127.0.0.1", addr.port(), TOKEN).proxy(ProxyConfig::tcp("echo", 9, 0));
    cfg.transport = TransportConfig::default().protocol(TransportProtocol::Websocket);
    cfg.tls = TlsConfig::disabled();
    let client = Client::start(cfg).unwrap();
    let err = tokio::time::timeout(WAIT, client.ready())
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
}
