//! udp, stcp and sudp proxies and stcp/sudp visitors, end to end through the in-repo test frps
//! on loopback: the proxy in one client, the visitor in a second client of the same process.

mod common;

use common::*;
use expose::frp::{
    Client, ClientConfig, Event, ProxyConfig, ProxyKind, ReconnectPolicy, SecretOptions, TlsConfig,
    VisitorConfig, VisitorKind,
};
use expose::testserver::{ServerConfig, TestServer, TlsMode};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::broadcast;

const TOKEN: &str = "proxy-types-token-91c";
const WAIT: Duration = Duration::from_secs(20);

async fn server(mux: bool) -> TestServer {
    TestServer::start(ServerConfig {
        token: TOKEN.into(),
        tcp_mux: mux,
        tls: TlsMode::Optional,
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
    cfg.reconnect = ReconnectPolicy::new(
        Duration::from_millis(100),
        Duration::from_millis(500),
        Duration::from_millis(50),
    );
    cfg
}

/// Waits for the visitor's listener and returns its address.
async fn visitor_started(events: &mut broadcast::Receiver<Event>) -> SocketAddr {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(Event::VisitorStarted {
                    bind_addr: Some(a), ..
                }) => return a,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
    .expect("visitor started")
}

async fn visitor_failure(events: &mut broadcast::Receiver<Event>) -> String {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(Event::VisitorFailed { error, .. }) => return error,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
    .expect("visitor failure reported")
}

async fn udp_echo_through(mux: bool, encryption: bool, compression: bool) {
    let srv = server(mux).await;
    let echo = udp_echo().await;
    let proxy = ProxyConfig::udp("dns", echo.port(), 0)
        .use_encryption(encryption)
        .use_compression(compression);
    let client = Client::start(config(&srv, "u1", mux).proxy(proxy)).unwrap();
    let r = ready(&client).await;
    let port = r[0].remote_port.expect("udp remote port");
    assert_eq!(r[0].remote_addr, format!(":{port}"));
    let public = SocketAddr::new(srv.bind_addr().ip(), port);
    // Several users (source addresses), each with its own answers, interleaved.
    let mut users = Vec::new();
    for _ in 0..4 {
        users.push(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    }
    for round in 0..3u8 {
        for (i, u) in users.iter().enumerate() {
            let msg: Vec<u8> = (0..(200 + i * 300 + round as usize))
                .map(|b| (b as u8) ^ (i as u8) ^ round)
                .collect();
            udp_ask(u, public, &msg).await;
        }
    }
    // The largest datagram udpPacketSize allows goes through.
    udp_ask(&users[0], public, &[7u8; 1500]).await;
    client.shutdown().await.unwrap();
}

#[tokio::test]
async fn udp_echo_with_several_users_mux() {
    udp_echo_through(true, false, false).await;
}

#[tokio::test]
async fn udp_echo_encrypted_compressed_without_mux() {
    udp_echo_through(false, true, true).await;
}

/// A datagram from the local service larger than udpPacketSize is dropped (with a warning);
/// smaller ones before and after still go through.
#[tokio::test]
async fn udp_oversized_answers_are_dropped_not_fatal() {
    let srv = server(true).await;
    // A local service that answers every datagram with one 3000 bytes long, except short
    // "ping" datagrams, which it echoes.
    let svc = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let svc_addr = svc.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = svc.recv_from(&mut buf).await {
            if &buf[..n] == b"big" {
                let _ = svc.send_to(&[1u8; 3000], from).await;
            } else {
                let _ = svc.send_to(&buf[..n], from).await;
            }
        }
    });
    let client =
        Client::start(config(&srv, "u1", true).proxy(ProxyConfig::udp("u", svc_addr.port(), 0)))
            .unwrap();
    let port = ready(&client).await[0].remote_port.unwrap();
    let public = SocketAddr::new(srv.bind_addr().ip(), port);
    let user = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp_ask(&user, public, b"before").await;
    user.send_to(b"big", public).await.unwrap();
    // Late echoes of "before" (it was retried) may still come; the big answer must not.
    let mut buf = vec![0u8; 65536];
    while let Ok(got) =
        tokio::time::timeout(Duration::from_millis(500), user.recv_from(&mut buf)).await
    {
        let (n, _) = got.unwrap();
        assert_eq!(&buf[..n], b"before", "an oversized answer must not arrive");
    }
    udp_ask(&user, public, b"after").await;
    client.shutdown().await.unwrap();
}

/// The stcp proxy in one client, the visitor in another (user `u2`, allowed by name), a
/// checksummed transfer both ways through the visitor's port, with and without the visitor's
/// payload encryption and compression (secret-key wrapping) and the proxy's own.
async fn stcp_round_trip(mux: bool, wrap: bool) {
    let srv = server(mux).await;
    let echo = echo_server().await;
    let mut options = SecretOptions::new("s3cret");
    options.allow_users = vec!["u2".into()];
    let proxy = ProxyConfig::new("db", echo.port(), ProxyKind::Stcp(options))
        .use_encryption(wrap)
        .use_compression(wrap);
    let owner = Client::start(config(&srv, "u1", mux).proxy(proxy)).unwrap();
    let r = ready(&owner).await;
    assert_eq!(r[0].remote_addr, "");
    let visitor = VisitorConfig::new("db-visitor", VisitorKind::Stcp, "db", "s3cret", 0)
        .server_user("u1")
        .use_encryption(wrap)
        .use_compression(wrap);
    let mut vcfg = config(&srv, "u2", mux).visitor(visitor);
    vcfg.visitors[0].bind_port = i32::from(spare_port());
    let guest = Client::start(vcfg).unwrap();
    let mut events = guest.events();
    let addr = visitor_started(&mut events).await;
    let verified = echo_roundtrip(addr, 3 * 1024 * 1024, 11).await;
    assert_eq!(verified, 3 * 1024 * 1024);
    // Several at once.
    let mut jobs = Vec::new();
    for seed in 0..4 {
        jobs.push(tokio::spawn(echo_roundtrip(addr, 200_000, seed)));
    }
    for j in jobs {
        assert_eq!(j.await.unwrap(), 200_000);
    }
    assert!(srv.snapshot().counters.visitor_conns >= 5);
    guest.shutdown().await.unwrap();
    owner.shutdown().await.unwrap();
}

#[tokio::test]
async fn stcp_visitor_in_a_second_client_mux() {
    stcp_round_trip(true, false).await;
}

#[tokio::test]
async fn stcp_visitor_wrapped_without_mux() {
    stcp_round_trip(false, true).await;
}

/// Wrong secret key, a proxy that does not exist, and a user not in allowUsers: each refused
/// with frps's text, the user connection closed, and the right visitor beside them unaffected.
#[tokio::test]
async fn stcp_refusals_are_clear_and_isolated() {
    let srv = server(true).await;
    let echo = echo_server().await;
    // Default allowUsers: only the owner's user.
    let owner = Client::start(
        config(&srv, "u1", true)
            .proxy(ProxyConfig::stcp("mine", echo.port(), "right"))
            .proxy(ProxyConfig::stcp("open", echo.port(), "right").tap_allow_all()),
    )
    .unwrap();
    ready(&owner).await;
    let port = |p: u16| i32::from(p);
    let visitors = [
        VisitorConfig::new("good", VisitorKind::Stcp, "open", "right", 0).server_user("u1"),
        VisitorConfig::new("wrong-key", VisitorKind::Stcp, "open", "wrong", 0).server_user("u1"),
        VisitorConfig::new("missing", VisitorKind::Stcp, "nope", "right", 0).server_user("u1"),
        VisitorConfig::new("not-allowed", VisitorKind::Stcp, "mine", "right", 0).server_user("u1"),
    ];
    let mut cfg = config(&srv, "u2", true);
    for mut v in visitors {
        v.bind_port = port(spare_port());
        cfg.visitors.push(v);
    }
    let bind = |name: &str| {
        let v = cfg.visitors.iter().find(|v| v.name == name).unwrap();
        SocketAddr::from(([127, 0, 0, 1], v.bind_port as u16))
    };
    let (good, wrong_key, missing, not_allowed) = (
        bind("good"),
        bind("wrong-key"),
        bind("missing"),
        bind("not-allowed"),
    );
    let guest = Client::start(cfg).unwrap();
    let mut events = guest.events();
    for _ in 0..4 {
        visitor_started(&mut events).await;
    }
    for (addr, want) in [
        (wrong_key, "visitor connection of [u1.open] auth failed"),
        (missing, "custom listener for [u1.nope] doesn't exist"),
        (
            not_allowed,
            "visitor connection of [u1.mine] user [u2] not allowed",
        ),
    ] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let error = visitor_failure(&mut events).await;
        assert_eq!(error, want);
        // The user connection is closed without data.
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(WAIT, tokio::io::AsyncReadExt::read(&mut s, &mut buf))
            .await
            .expect("closed in time")
            .unwrap_or(0);
        assert_eq!(n, 0);
        // The good visitor still works.
        assert_eq!(echo_roundtrip(good, 100_000, 3).await, 100_000);
    }
    assert_eq!(srv.snapshot().counters.visitor_conns_refused, 3);
    // Both clients are still online.
    assert!(srv.snapshot().controls.len() == 2);
    guest.shutdown().await.unwrap();
    owner.shutdown().await.unwrap();
}

trait AllowAll {
    fn tap_allow_all(self) -> Self;
}

impl AllowAll for ProxyConfig {
    fn tap_allow_all(mut self) -> Self {
        if let ProxyKind::Stcp(o) = &mut self.kind {
            o.allow_users = vec!["*".into()];
        }
        self
    }
}

/// Our own user's proxy by default (no serverUser), allowed without an allow list.
#[tokio::test]
async fn stcp_same_user_needs_no_allow_list() {
    let srv = server(true).await;
    let echo = echo_server().await;
    let owner =
        Client::start(config(&srv, "me", true).proxy(ProxyConfig::stcp("svc", echo.port(), "k")))
            .unwrap();
    ready(&owner).await;
    let mut cfg = config(&srv, "me", true).visitor(VisitorConfig::new(
        "svc-visitor",
        VisitorKind::Stcp,
        "svc",
        "k",
        0,
    ));
    cfg.visitors[0].bind_port = i32::from(spare_port());
    let guest = Client::start(cfg).unwrap();
    let mut events = guest.events();
    let addr = visitor_started(&mut events).await;
    assert_eq!(echo_roundtrip(addr, 500_000, 5).await, 500_000);
    guest.shutdown().await.unwrap();
    owner.shutdown().await.unwrap();
}

async fn sudp_round_trip(mux: bool, wrap: bool) {
    let srv = server(mux).await;
    let echo = udp_echo().await;
    let mut options = SecretOptions::new("udp-key");
    options.allow_users = vec!["*".into()];
    let proxy = ProxyConfig::new("game", echo.port(), ProxyKind::Sudp(options))
        .use_encryption(wrap)
        .use_compression(wrap);
    let owner = Client::start(config(&srv, "u1", mux).proxy(proxy)).unwrap();
    ready(&owner).await;
    let visitor = VisitorConfig::new("game-visitor", VisitorKind::Sudp, "game", "udp-key", 0)
        .server_user("u1")
        .use_encryption(wrap)
        .use_compression(wrap);
    let mut vcfg = config(&srv, "u2", mux).visitor(visitor);
    vcfg.visitors[0].bind_port = i32::from(spare_port());
    let guest = Client::start(vcfg).unwrap();
    let mut events = guest.events();
    let addr = visitor_started(&mut events).await;
    let mut users = Vec::new();
    for _ in 0..3 {
        users.push(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    }
    for round in 0..3u8 {
        for (i, u) in users.iter().enumerate() {
            let msg: Vec<u8> = (0..(100 + i * 400 + round as usize))
                .map(|b| (b as u8).wrapping_mul(3) ^ (i as u8) ^ round)
                .collect();
            udp_ask(u, addr, &msg).await;
        }
    }
    guest.shutdown().await.unwrap();
    owner.shutdown().await.unwrap();
}

#[tokio::test]
async fn sudp_round_trip_mux() {
    sudp_round_trip(true, false).await;
}

#[tokio::test]
async fn sudp_round_trip_wrapped_without_mux() {
    sudp_round_trip(false, true).await;
}

/// A visitor with `bindPort = -1` listens nowhere and says so; validation refuses what cannot
/// work.
#[tokio::test]
async fn visitor_without_listener_and_bad_settings() {
    let srv = server(true).await;
    let cfg = config(&srv, "u", true).visitor(VisitorConfig::new(
        "hidden",
        VisitorKind::Stcp,
        "x",
        "k",
        -1,
    ));
    let client = Client::start(cfg).unwrap();
    let mut events = client.events();
    let started = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(Event::VisitorStarted { bind_addr, .. }) = events.recv().await {
                return bind_addr;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(started, None);
    client.shutdown().await.unwrap();

    for (v, want) in [
        (
            VisitorConfig::new("a", VisitorKind::Sudp, "x", "k", -1),
            "bindPort = -1 is for stcp only",
        ),
        (
            VisitorConfig::new("a", VisitorKind::Stcp, "", "k", 1),
            "server name is required",
        ),
        (
            VisitorConfig::new("a", VisitorKind::Stcp, "x", "k", 0),
            "bind port is required",
        ),
    ] {
        let err = Client::start(config(&srv, "u", true).visitor(v))
            .err()
            .expect("refused");
        assert!(err.to_string().contains(want), "{err}");
    }
    let mut cfg = config(&srv, "u", true);
    cfg.udp_packet_size = 100_000;
    let err = Client::start(cfg).err().expect("refused");
    assert!(err.to_string().contains("udpPacketSize"), "{err}");
}
