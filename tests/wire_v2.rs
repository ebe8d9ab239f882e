//! Wire protocol v2 end to end against the in-repo test server: login with the hello and the
//! AEAD control streams, http and tcp traffic checksummed, reconnects, with and without tcpMux
//! and TLS; `auto` against servers with and without v2.

mod common;

use common::*;
use expose::frp::{Client, ClientConfig, ProxyConfig, ReconnectPolicy, TlsConfig, WireProtocol};
use expose::testserver::{ServerConfig, TestServer, TlsMode};
use std::net::SocketAddr;
use std::time::Duration;

const TOKEN: &str = "wire-v2-token";
const WAIT: Duration = Duration::from_secs(20);

async fn server_at(bind: SocketAddr, tls: bool, mux: bool, v2: bool) -> TestServer {
    TestServer::start(ServerConfig {
        bind,
        token: TOKEN.into(),
        tcp_mux: mux,
        tls: if tls { TlsMode::Optional } else { TlsMode::Off },
        wire_v2: v2,
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn server(tls: bool, mux: bool, v2: bool) -> TestServer {
    server_at(SocketAddr::from(([127, 0, 0, 1], 0)), tls, mux, v2).await
}

fn config(srv: &TestServer, tls: bool, mux: bool, wire: WireProtocol) -> ClientConfig {
    let addr = srv.bind_addr();
    let mut cfg = ClientConfig::new(addr.ip().to_string(), addr.port(), TOKEN);
    cfg.user = "u".into();
    cfg.tcp_mux = mux;
    cfg.tls = TlsConfig::default().enable(tls);
    cfg.pool_count = 1;
    cfg.wire_protocol = wire;
    cfg.reconnect = ReconnectPolicy::new(
        Duration::from_millis(100),
        Duration::from_millis(500),
        Duration::from_millis(50),
    );
    cfg
}

async fn ready(client: &Client) -> Vec<expose::frp::ProxyReady> {
    tokio::time::timeout(WAIT, client.ready())
        .await
        .expect("proxies ready in time")
        .expect("proxies ready")
}

/// http through the vhost and a checksummed echo through a tcp proxy.
async fn traffic(srv: &TestServer, client: &Client, seed: u64) {
    let state = srv
        .wait_for(
            |s| s.proxies.contains_key("u.echo") && s.proxies.contains_key("u.web"),
            WAIT,
        )
        .await
        .expect("both proxies registered");
    let (status, body) = http_get(srv.vhost_http_addr(), "web.tunnel.test", "/v2").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(body, "hello /v2 via web.tunnel.test\n");
    let port = state.proxies["u.echo"].remote_port.unwrap();
    let addr = SocketAddr::new(srv.bind_addr().ip(), port);
    let bytes = 8 << 20;
    assert_eq!(echo_roundtrip(addr, bytes, seed).await, bytes);
    assert!(client.stats().bytes_to_local > 0);
}

/// Login, traffic, a server restart on the same port (re-login with the run id), traffic.
async fn v2_session(tls: bool, mux: bool) {
    let srv = server(tls, mux, true).await;
    let bind = srv.bind_addr();
    let web = http_server().await;
    let echo = echo_server().await;
    let cfg = config(&srv, tls, mux, WireProtocol::V2)
        .proxy(ProxyConfig::http("web", web.port(), "web"))
        .proxy(ProxyConfig::tcp("echo", echo.port(), 0));
    let client = Client::start(cfg).unwrap();
    ready(&client).await;
    traffic(&srv, &client, 1).await;
    let state = srv.snapshot();
    // The control connection and every work connection spoke v2.
    assert!(state.counters.v2_connections >= 3, "{:?}", state.counters);
    assert_eq!(
        state.counters.v2_connections,
        state.counters.work_conns_received + 1
    );
    // The control stream carried NewProxy and (without tcpMux at least) Ping through the AEAD.
    assert!(state.control_messages.len() >= 2);
    let run_id = state.logins[0].run_id.clone();

    srv.kill_and_wait().await;
    drop(srv);
    let srv2 = server_at(bind, tls, mux, true).await;
    let state = srv2
        .wait_for(|s| s.proxies.contains_key("u.echo"), WAIT)
        .await
        .expect("re-registered after the restart");
    assert_eq!(
        state.logins[0].login.run_id, run_id,
        "re-login with the run id"
    );
    traffic(&srv2, &client, 2).await;
    assert!(srv2.snapshot().counters.v2_connections >= 3);
    client.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_plain_mux() {
    v2_session(false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_plain_no_mux() {
    v2_session(false, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_tls_mux() {
    v2_session(true, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_tls_no_mux() {
    v2_session(true, false).await;
}

#[tokio::test]
async fn v2_wrong_token_is_fatal_with_the_servers_text() {
    let srv = server(false, true, true).await;
    let mut cfg = config(&srv, false, true, WireProtocol::V2);
    cfg.token = "not-the-token".into();
    let echo = echo_server().await;
    let mut client = Client::start(cfg.proxy(ProxyConfig::tcp("echo", echo.port(), 0))).unwrap();
    let err = tokio::time::timeout(WAIT, client.wait())
        .await
        .expect("ends in time")
        .unwrap_err();
    assert!(
        err.to_string().contains("token in login doesn't match"),
        "{err}"
    );
}

/// A configured v2 never falls back: a server without v2 is a failed login.
#[tokio::test]
async fn v2_against_a_v1_only_server_fails_without_falling_back() {
    let srv = server(false, true, false).await;
    let echo = echo_server().await;
    let cfg = config(&srv, false, true, WireProtocol::V2);
    let mut client = Client::start(cfg.proxy(ProxyConfig::tcp("echo", echo.port(), 0))).unwrap();
    let err = tokio::time::timeout(WAIT, client.wait())
        .await
        .expect("ends in time")
        .unwrap_err();
    assert!(srv.snapshot().logins.is_empty(), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_uses_v2_when_the_server_speaks_it() {
    let srv = server(false, false, true).await;
    let web = http_server().await;
    let echo = echo_server().await;
    let cfg = config(&srv, false, false, WireProtocol::Auto)
        .proxy(ProxyConfig::http("web", web.port(), "web"))
        .proxy(ProxyConfig::tcp("echo", echo.port(), 0));
    let client = Client::start(cfg).unwrap();
    ready(&client).await;
    traffic(&srv, &client, 3).await;
    let state = srv.snapshot();
    assert_eq!(state.logins.len(), 1);
    assert!(state.counters.v2_connections >= 3, "{:?}", state.counters);
    client.shutdown().await.unwrap();
}

/// Against a frps before 0.69: the hello is refused by a close, no Login went out on that
/// connection, the client logs in with v1 on the next one and stays with v1 across a restart
/// (one connection, no second probe).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_falls_back_to_v1_once_and_remembers() {
    for mux in [true, false] {
        let srv = server(false, mux, false).await;
        let bind = srv.bind_addr();
        let web = http_server().await;
        let echo = echo_server().await;
        let cfg = config(&srv, false, mux, WireProtocol::Auto)
            .proxy(ProxyConfig::http("web", web.port(), "web"))
            .proxy(ProxyConfig::tcp("echo", echo.port(), 0));
        let client = Client::start(cfg).unwrap();
        ready(&client).await;
        traffic(&srv, &client, 4).await;
        let state = srv.snapshot();
        assert_eq!(state.logins.len(), 1, "no Login before the fallback");
        assert_eq!(state.counters.v2_connections, 0);

        srv.kill_and_wait().await;
        drop(srv);
        let srv2 = server_at(bind, false, mux, false).await;
        srv2.wait_for(|s| s.proxies.contains_key("u.echo"), WAIT)
            .await
            .expect("re-registered after the restart");
        traffic(&srv2, &client, 5).await;
        if mux {
            assert_eq!(
                srv2.snapshot().counters.connections,
                1,
                "reconnected in v1 directly"
            );
        }
        client.shutdown().await.unwrap();
    }
}
