//! Wire protocol v2 end to end against the in-repo test server: login with the hello and the
//! AEAD control streams, http and tcp traffic checksummed, reconnects, with and without tcpMux
//! and TLS; `auto` against servers with and without v2.

mod common;

use common::*;
use expose::frp::{
    Client, ClientConfig, Event, ProxyConfig, ProxyKind, ReconnectPolicy, SecretOptions, TlsConfig,
    VisitorConfig, VisitorKind, WireProtocol,
};
use expose::testserver::{ServerConfig, TestServer, TlsMode};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

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

/// Datagrams of several users, each checked, through `to`.
async fn udp_users(to: SocketAddr) {
    let mut users = Vec::new();
    for _ in 0..3 {
        users.push(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    }
    for round in 0..3u8 {
        for (i, u) in users.iter().enumerate() {
            let msg: Vec<u8> = (0..(100 + i * 450 + round as usize))
                .map(|b| (b as u8).wrapping_mul(7) ^ (i as u8) ^ round)
                .collect();
            udp_ask(u, to, &msg).await;
        }
    }
}

/// A udp proxy over wire v2: its work connection opens with the magic and carries UDPPacket
/// messages as v2 frames, with and without tcpMux, plain and wrapped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_udp_proxy_relays_datagrams() {
    for (mux, wrap) in [(true, false), (false, true)] {
        let srv = server(false, mux, true).await;
        let echo = udp_echo().await;
        let proxy = ProxyConfig::udp("dns", echo.port(), 0)
            .use_encryption(wrap)
            .use_compression(wrap);
        let client =
            Client::start(config(&srv, false, mux, WireProtocol::V2).proxy(proxy)).unwrap();
        let port = ready(&client).await[0].remote_port.expect("udp port");
        udp_users(SocketAddr::new(srv.bind_addr().ip(), port)).await;
        let state = srv.snapshot();
        assert!(
            state.counters.work_conns_received >= 1,
            "{:?}",
            state.counters
        );
        assert_eq!(
            state.counters.v2_connections,
            state.counters.work_conns_received + 1,
            "every connection spoke v2: {:?}",
            state.counters
        );
        assert!(client.stats().bytes_to_local > 0);
        client.shutdown().await.unwrap();
    }
}

/// An sudp proxy and its visitor (a second client), both over wire v2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_sudp_proxy_and_visitor_relay_datagrams() {
    for (mux, wrap) in [(true, false), (false, true)] {
        let srv = server(false, mux, true).await;
        let echo = udp_echo().await;
        let mut options = SecretOptions::new("udp-key");
        options.allow_users = vec!["*".into()];
        let proxy = ProxyConfig::new("game", echo.port(), ProxyKind::Sudp(options))
            .use_encryption(wrap)
            .use_compression(wrap);
        let owner = Client::start(config(&srv, false, mux, WireProtocol::V2).proxy(proxy)).unwrap();
        ready(&owner).await;
        let visitor = VisitorConfig::new("game-visitor", VisitorKind::Sudp, "game", "udp-key", 0)
            .server_user("u")
            .use_encryption(wrap)
            .use_compression(wrap);
        let mut vcfg = config(&srv, false, mux, WireProtocol::V2).visitor(visitor);
        vcfg.user = "guest".into();
        vcfg.visitors[0].bind_port = i32::from(spare_port());
        let guest = Client::start(vcfg).unwrap();
        let mut events = guest.events();
        let addr = tokio::time::timeout(WAIT, async {
            loop {
                match events.recv().await {
                    Ok(Event::VisitorStarted {
                        bind_addr: Some(a), ..
                    }) => return a,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(e) => panic!("{e}"),
                }
            }
        })
        .await
        .expect("visitor started");
        udp_users(addr).await;
        let state = srv.snapshot();
        // Two controls, the proxy's work connection and the visitor's connection.
        assert!(state.counters.v2_connections >= 3, "{:?}", state.counters);
        guest.shutdown().await.unwrap();
        owner.shutdown().await.unwrap();
    }
}
