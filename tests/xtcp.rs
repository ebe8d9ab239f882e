//! xtcp proxies and visitors end to end on loopback: the proxy in one client, the visitor in a
//! second client, frps's hole-punching controller and a STUN responder in the test server.
//!
//! On loopback the "punch" is between two local UDP sockets, so this verifies the protocol
//! (discovery, the NatHole exchange and its error texts, the encrypted punch datagrams, QUIC
//! over the punched socket, the stream wrapping, fallback and keepTunnelOpen), not the
//! traversal of real NATs.

mod common;

use common::*;
use expose::frp::{
    Client, ClientConfig, Event, ProxyConfig, ProxyKind, ReconnectPolicy, SecretOptions, TlsConfig,
    VisitorConfig, VisitorKind,
};
use expose::testserver::{ServerConfig, TestServer, TlsMode};
use frp_proto::Message;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::broadcast;

const TOKEN: &str = "xtcp-token-5d1";
const WAIT: Duration = Duration::from_secs(20);

async fn server(mux: bool, candidates: Option<Vec<String>>) -> TestServer {
    TestServer::start(ServerConfig {
        token: TOKEN.into(),
        tcp_mux: mux,
        tls: TlsMode::Optional,
        nathole_candidates: candidates,
        ..Default::default()
    })
    .await
    .unwrap()
}

fn config(srv: &TestServer, user: &str, mux: bool) -> ClientConfig {
    let addr = srv.bind_addr();
    let mut cfg = ClientConfig::new(addr.ip().to_string(), addr.port(), TOKEN);
    cfg.user = user.into();
    cfg.tcp_mux = mux;
    cfg.tls = TlsConfig::default();
    cfg.nat_hole_stun_server = srv.stun_addr().to_string();
    cfg.reconnect = ReconnectPolicy::new(
        Duration::from_millis(100),
        Duration::from_millis(500),
        Duration::from_millis(50),
    );
    cfg
}

async fn ready(client: &Client) {
    tokio::time::timeout(WAIT, client.ready())
        .await
        .expect("proxies ready in time")
        .expect("proxies ready");
}

fn xtcp_proxy(name: &str, port: u16, key: &str, allow: &str) -> ProxyConfig {
    let mut o = SecretOptions::new(key);
    o.allow_users = vec![allow.into()];
    ProxyConfig::new(name, port, ProxyKind::Xtcp(o))
}

fn xtcp_visitor(name: &str, server: &str, key: &str) -> VisitorConfig {
    let mut v = VisitorConfig::new(name, VisitorKind::Xtcp, server, key, 0).server_user("u1");
    v.bind_port = i32::from(spare_port());
    v
}

fn bind_of(cfg: &ClientConfig, name: &str) -> SocketAddr {
    let v = cfg.visitors.iter().find(|v| v.name == name).unwrap();
    SocketAddr::from(([127, 0, 0, 1], v.bind_port as u16))
}

async fn visitors_started(events: &mut broadcast::Receiver<Event>, n: usize) {
    for _ in 0..n {
        tokio::time::timeout(WAIT, async {
            loop {
                match events.recv().await {
                    Ok(Event::VisitorStarted { .. }) => return,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(e) => panic!("{e}"),
                }
            }
        })
        .await
        .expect("visitor started");
    }
}

async fn failure_of(events: &mut broadcast::Receiver<Event>, visitor: &str) -> String {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(Event::VisitorFailed { name, error }) if name == visitor => return error,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
    .expect("visitor failure reported")
}

/// The NatHoleReports the server received: `(sid, success)`.
fn reports(srv: &TestServer) -> Vec<(String, bool)> {
    srv.snapshot()
        .control_messages
        .iter()
        .filter_map(|m| match &m.message {
            Message::NatHoleReport(r) => Some((r.sid.clone(), r.success)),
            _ => None,
        })
        .collect()
}

/// A checksummed transfer both ways through the xtcp visitor, one large and several at once,
/// all over one punched QUIC connection: frps sees the punch, never the payload.
async fn round_trip(mux: bool, wrap: bool) {
    let srv = server(mux, None).await;
    let echo = echo_server().await;
    let proxy = xtcp_proxy("db", echo.port(), "s3cret", "u2")
        .use_encryption(wrap)
        .use_compression(wrap);
    let owner = Client::start(config(&srv, "u1", mux).proxy(proxy)).unwrap();
    ready(&owner).await;
    let visitor = xtcp_visitor("db-x", "db", "s3cret")
        .use_encryption(wrap)
        .use_compression(wrap);
    let cfg = config(&srv, "u2", mux).visitor(visitor);
    let addr = bind_of(&cfg, "db-x");
    let guest = Client::start(cfg).unwrap();
    visitors_started(&mut guest.events(), 1).await;
    assert_eq!(
        echo_roundtrip(addr, 3 * 1024 * 1024, 21).await,
        3 * 1024 * 1024
    );
    let mut jobs = Vec::new();
    for seed in 0..4 {
        jobs.push(tokio::spawn(echo_roundtrip(addr, 300_000, seed)));
    }
    for j in jobs {
        assert_eq!(j.await.unwrap(), 300_000);
    }
    let reports = reports(&srv);
    assert_eq!(
        reports.len(),
        1,
        "one punch for all connections: {reports:?}"
    );
    assert!(reports[0].1, "the proxy reported success");
    let snap = srv.snapshot();
    assert_eq!(snap.counters.visitor_conns, 0, "no byte went through frps");
    assert_eq!(
        snap.counters.work_conns_used, 1,
        "one work connection: the sid's"
    );
    guest.shutdown().await.unwrap();
    owner.shutdown().await.unwrap();
}

#[tokio::test]
async fn xtcp_visitor_in_a_second_client_mux() {
    round_trip(true, false).await;
}

#[tokio::test]
async fn xtcp_wrapped_without_mux() {
    round_trip(false, true).await;
}

/// A wrong secret key, a missing proxy and a user not allowed: each refused with frps's text
/// (through frpc's), and a good xtcp visitor beside them works.
#[tokio::test]
async fn xtcp_refusals_are_clear_and_isolated() {
    let srv = server(true, None).await;
    let echo = echo_server().await;
    let owner = Client::start(
        config(&srv, "u1", true)
            .proxy(xtcp_proxy("open", echo.port(), "right", "*"))
            .proxy(xtcp_proxy("mine", echo.port(), "right", "u1")),
    )
    .unwrap();
    ready(&owner).await;
    let mut cfg = config(&srv, "u2", true);
    for v in [
        xtcp_visitor("good", "open", "right"),
        xtcp_visitor("wrong-key", "open", "wrong"),
        xtcp_visitor("missing", "nope", "right"),
        xtcp_visitor("not-allowed", "mine", "right"),
    ] {
        cfg.visitors.push(v);
    }
    let addrs: Vec<SocketAddr> = ["good", "wrong-key", "missing", "not-allowed"]
        .iter()
        .map(|n| bind_of(&cfg, n))
        .collect();
    let guest = Client::start(cfg).unwrap();
    let mut events = guest.events();
    visitors_started(&mut events, 4).await;
    for (addr, name, want) in [
        (
            addrs[1],
            "wrong-key",
            "nathole exchange info error: natHoleRespMsg get error info: xtcp connection of \
             [u1.open] auth failed",
        ),
        (
            addrs[2],
            "missing",
            "nathole precheck error: xtcp server for [u1.nope] doesn't exist",
        ),
        (
            addrs[3],
            "not-allowed",
            "nathole precheck error: xtcp visitor user [u2] not allowed for [u1.mine]",
        ),
    ] {
        // A user connection asks for the tunnel; the punch is refused.
        let _user = TcpStream::connect(addr).await.unwrap();
        assert_eq!(failure_of(&mut events, name).await, want);
    }
    assert_eq!(echo_roundtrip(addrs[0], 200_000, 5).await, 200_000);
    assert_eq!(
        srv.snapshot().controls.len(),
        2,
        "both clients still online"
    );
    guest.shutdown().await.unwrap();
    owner.shutdown().await.unwrap();
}

/// frps hands out an address nobody answers on, so the punch cannot finish: after
/// `fallbackTimeoutMs` the user connection goes to the stcp visitor (`bindPort = -1`) and
/// through frps; the proxy reports the failed punch.
#[tokio::test]
async fn xtcp_falls_back_to_stcp_when_the_punch_cannot_finish() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let nowhere = silent.local_addr().unwrap().to_string();
    let srv = server(true, Some(vec![nowhere])).await;
    let echo = echo_server().await;
    let mut stcp = SecretOptions::new("k");
    stcp.allow_users = vec!["u2".into()];
    let owner = Client::start(
        config(&srv, "u1", true)
            .proxy(xtcp_proxy("db", echo.port(), "k", "u2"))
            .proxy(ProxyConfig::new("db-s", echo.port(), ProxyKind::Stcp(stcp))),
    )
    .unwrap();
    ready(&owner).await;
    let fallback =
        VisitorConfig::new("db-s-v", VisitorKind::Stcp, "db-s", "k", -1).server_user("u1");
    let x = xtcp_visitor("db-x", "db", "k").fallback("db-s-v", Duration::from_millis(300));
    let cfg = config(&srv, "u2", true).visitor(fallback).visitor(x);
    let addr = bind_of(&cfg, "db-x");
    let guest = Client::start(cfg).unwrap();
    visitors_started(&mut guest.events(), 2).await;
    assert_eq!(echo_roundtrip(addr, 500_000, 9).await, 500_000);
    assert_eq!(
        srv.snapshot().counters.visitor_conns,
        1,
        "through the stcp visitor"
    );
    // The punch itself failed (the proxy's side reports it after its read timeout).
    assert!(
        eventually(WAIT, || reports(&srv).iter().any(|(_, ok)| !ok)).await,
        "failed punch reported: {:?}",
        reports(&srv)
    );
    assert!(reports(&srv).iter().all(|(_, ok)| !ok));
    drop(silent);
    guest.shutdown().await.unwrap();
    owner.shutdown().await.unwrap();
}

/// `keepTunnelOpen`: the tunnel is punched at start, before any user connection.
#[tokio::test]
async fn xtcp_keep_tunnel_open_punches_at_start() {
    let srv = server(true, None).await;
    let echo = echo_server().await;
    let owner =
        Client::start(config(&srv, "u1", true).proxy(xtcp_proxy("db", echo.port(), "k", "u2")))
            .unwrap();
    ready(&owner).await;
    let cfg =
        config(&srv, "u2", true).visitor(xtcp_visitor("db-x", "db", "k").keep_tunnel_open(true));
    let addr = bind_of(&cfg, "db-x");
    let guest = Client::start(cfg).unwrap();
    assert!(
        eventually(WAIT, || reports(&srv).iter().any(|(_, ok)| *ok)).await,
        "punched without a user connection"
    );
    assert_eq!(echo_roundtrip(addr, 100_000, 4).await, 100_000);
    assert_eq!(reports(&srv).len(), 1, "the kept tunnel carried it");
    guest.shutdown().await.unwrap();
    owner.shutdown().await.unwrap();
}
