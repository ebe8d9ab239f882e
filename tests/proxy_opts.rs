//! Per-proxy runtime options end to end through the test server: the PROXY protocol header the
//! local service receives, the client-side bandwidth limit, and health checks that take a proxy
//! down at frps and bring it back.

mod common;

use common::*;
use expose::frp::{
    BandwidthLimit, BandwidthLimitMode, Client, ClientConfig, Event, HealthCheck, ProxyConfig,
    ProxyProtocolVersion, ProxyStatus, ReconnectPolicy, TlsConfig,
};
use expose::testserver::{ServerConfig, TestServer, TlsMode};
use frp_proto::msg::NewProxy;
use frp_proto::Message;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;

const TOKEN: &str = "opts-token-51c2";
const WAIT: Duration = Duration::from_secs(20);

async fn server() -> TestServer {
    TestServer::start(ServerConfig {
        token: TOKEN.into(),
        tls: TlsMode::Off,
        ..Default::default()
    })
    .await
    .unwrap()
}

fn config(srv: &TestServer) -> ClientConfig {
    let addr = srv.bind_addr();
    let mut cfg = ClientConfig::new(addr.ip().to_string(), addr.port(), TOKEN);
    cfg.user = "u".into();
    cfg.tls = TlsConfig::disabled();
    cfg.reconnect = ReconnectPolicy::new(
        Duration::from_millis(100),
        Duration::from_millis(500),
        Duration::from_millis(50),
    );
    cfg
}

/// A local service that reports what each connection sent up to and including `marker`,
/// then echoes (the marker first).
async fn recording_server(marker: &'static [u8]) -> (SocketAddr, mpsc::UnboundedReceiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(marker) {
                    match s.read(&mut byte).await {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let _ = tx.send(head);
                // The marker is echoed too, so the visitor sees its payload come back.
                if s.write_all(marker).await.is_err() {
                    return;
                }
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    (addr, rx)
}

/// The header a tcp visitor's connection brings to the local service, byte for byte.
async fn header_through_tcp(version: ProxyProtocolVersion, expected: fn(u16, u16) -> Vec<u8>) {
    let srv = server().await;
    let (local, mut heads) = recording_server(b"hello").await;
    let client = Client::start(
        config(&srv).proxy(ProxyConfig::tcp("pp", local.port(), 0).proxy_protocol(version)),
    )
    .unwrap();
    let remote = ready(&client).await[0].remote_port.unwrap();
    let mut visitor = TcpStream::connect(("127.0.0.1", remote)).await.unwrap();
    let sport = visitor.local_addr().unwrap().port();
    visitor.write_all(b"hello").await.unwrap();
    let head = tokio::time::timeout(WAIT, heads.recv())
        .await
        .unwrap()
        .unwrap();
    let mut want = expected(sport, remote);
    want.extend_from_slice(b"hello");
    assert_eq!(head, want, "{:?}", String::from_utf8_lossy(&head));
    // The payload still flows both ways after the header.
    let mut echo = [0u8; 5];
    visitor.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"hello");
    client.shutdown().await.unwrap();
}

#[tokio::test]
async fn proxy_protocol_v1_header_reaches_the_local_service() {
    header_through_tcp(ProxyProtocolVersion::V1, |sport, rport| {
        format!("PROXY TCP4 127.0.0.1 127.0.0.1 {sport} {rport}\r\n").into_bytes()
    })
    .await;
}

#[tokio::test]
async fn proxy_protocol_v2_header_reaches_the_local_service() {
    header_through_tcp(ProxyProtocolVersion::V2, |sport, rport| {
        let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
        h.extend_from_slice(&[0x21, 0x11, 0, 12, 127, 0, 0, 1, 127, 0, 0, 1]);
        h.extend_from_slice(&sport.to_be_bytes());
        h.extend_from_slice(&rport.to_be_bytes());
        h
    })
    .await;
}

#[tokio::test]
async fn proxy_protocol_over_http_names_the_visitor_and_127_0_0_1() {
    let srv = server().await;
    let (local, mut heads) = recording_server(b"HTTP/1.1\r\n").await;
    let client = Client::start(config(&srv).proxy(
        ProxyConfig::http("web", local.port(), "pp").proxy_protocol(ProxyProtocolVersion::V2),
    ))
    .unwrap();
    ready(&client).await;
    let mut s = TcpStream::connect(srv.vhost_http_addr()).await.unwrap();
    let sport = s.local_addr().unwrap().port();
    s.write_all(b"GET / HTTP/1.1\r\nHost: pp.tunnel.test\r\n\r\n")
        .await
        .unwrap();
    let head = tokio::time::timeout(WAIT, heads.recv())
        .await
        .unwrap()
        .unwrap();
    // frps names no listener for http: frpc puts 127.0.0.1 and port 0 there.
    let mut want = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    want.extend_from_slice(&[0x21, 0x11, 0, 12, 127, 0, 0, 1, 127, 0, 0, 1]);
    want.extend_from_slice(&sport.to_be_bytes());
    want.extend_from_slice(&[0, 0]);
    assert_eq!(&head[..28], &want[..]);
    assert_eq!(&head[28..], b"GET / HTTP/1.1\r\n");
    client.shutdown().await.unwrap();
}

/// What the local UDP service of a udp proxy with `proxyProtocolVersion` receives for one
/// user datagram, and that its answer reaches the user bare. frps takes the proxy's work
/// connection a moment after registration, so the user sends until the service hears it.
async fn datagram_through_udp(version: ProxyProtocolVersion) -> (Vec<u8>, u16, u16) {
    let srv = server().await;
    let svc = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let svc_port = svc.local_addr().unwrap().port();
    let client = Client::start(
        config(&srv).proxy(ProxyConfig::udp("ppu", svc_port, 0).proxy_protocol(version)),
    )
    .unwrap();
    let port = ready(&client).await[0].remote_port.unwrap();
    let public = SocketAddr::new(srv.bind_addr().ip(), port);
    let user = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let user_port = user.local_addr().unwrap().port();
    let mut buf = vec![0u8; 2048];
    let deadline = Instant::now() + WAIT;
    let (got, from) = loop {
        assert!(Instant::now() < deadline, "the local service heard nothing");
        user.send_to(b"ping", public).await.unwrap();
        let wait = Duration::from_millis(300);
        if let Ok(r) = tokio::time::timeout(wait, svc.recv_from(&mut buf)).await {
            let (n, from) = r.unwrap();
            break (buf[..n].to_vec(), from);
        }
    };
    svc.send_to(b"pong", from).await.unwrap();
    let n = tokio::time::timeout(WAIT, user.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"pong");
    client.shutdown().await.unwrap();
    (got, user_port, svc_port)
}

#[tokio::test]
async fn proxy_protocol_v2_dgram_header_precedes_each_udp_datagram() {
    let (got, user_port, svc_port) = datagram_through_udp(ProxyProtocolVersion::V2).await;
    let mut want = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    want.extend_from_slice(&[0x21, 0x12, 0, 12, 127, 0, 0, 1, 127, 0, 0, 1]);
    want.extend_from_slice(&user_port.to_be_bytes());
    want.extend_from_slice(&svc_port.to_be_bytes());
    want.extend_from_slice(b"ping");
    assert_eq!(got, want);
}

#[tokio::test]
async fn proxy_protocol_v1_on_udp_is_the_unknown_line() {
    let (got, _, _) = datagram_through_udp(ProxyProtocolVersion::V1).await;
    assert_eq!(got, b"PROXY UNKNOWN\r\nping");
}

fn new_proxy_of(srv: &TestServer, name: &str) -> NewProxy {
    srv.snapshot()
        .control_messages
        .iter()
        .find_map(|m| match &m.message {
            Message::NewProxy(np) if np.proxy_name == name => Some(np.clone()),
            _ => None,
        })
        .expect("NewProxy recorded")
}

#[tokio::test]
async fn client_bandwidth_limit_slows_a_transfer_and_is_announced() {
    let srv = server().await;
    let echo = echo_server().await;
    let limit = BandwidthLimit::parse("256KB").unwrap();
    let client = Client::start(
        config(&srv).proxy(ProxyConfig::tcp("slow", echo.port(), 0).bandwidth_limit(limit)),
    )
    .unwrap();
    let remote = ready(&client).await[0].remote_port.unwrap();
    let np = new_proxy_of(&srv, "u.slow");
    assert_eq!(
        (
            np.bandwidth_limit.as_str(),
            np.bandwidth_limit_mode.as_str()
        ),
        ("256KB", "")
    );
    // 256 KiB each way share one 256 KiB/s bucket that starts full: 512 KiB take about a
    // second; anything under 0.7 s means the limit was not applied.
    let started = Instant::now();
    let total = 256 * 1024;
    let got = echo_roundtrip(SocketAddr::from(([127, 0, 0, 1], remote)), total, 7).await;
    let took = started.elapsed();
    assert_eq!(got, total);
    assert!(took >= Duration::from_millis(700), "took {took:?}");
    assert!(took < WAIT, "took {took:?}");
    client.shutdown().await.unwrap();
}

#[tokio::test]
async fn server_bandwidth_limit_is_only_sent() {
    let srv = server().await;
    let echo = echo_server().await;
    let limit = BandwidthLimit::parse("1KB")
        .unwrap()
        .mode(BandwidthLimitMode::Server);
    let client = Client::start(
        config(&srv).proxy(ProxyConfig::tcp("fast", echo.port(), 0).bandwidth_limit(limit)),
    )
    .unwrap();
    let remote = ready(&client).await[0].remote_port.unwrap();
    let np = new_proxy_of(&srv, "u.fast");
    assert_eq!(
        (
            np.bandwidth_limit.as_str(),
            np.bandwidth_limit_mode.as_str()
        ),
        ("1KB", "server")
    );
    // 64 KiB at 1 KiB/s would take a minute: the client must not limit.
    let total = 64 * 1024;
    let got = tokio::time::timeout(
        Duration::from_secs(10),
        echo_roundtrip(SocketAddr::from(([127, 0, 0, 1], remote)), total, 9),
    )
    .await
    .expect("not limited by the client");
    assert_eq!(got, total);
    client.shutdown().await.unwrap();
}

/// An echo service on a fixed port that can be stopped and started again.
fn start_echo_on(port: u16) -> tokio::task::JoinHandle<()> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .unwrap();
    let listener = socket.listen(64).unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    })
}

fn status(client: &Client, name: &str) -> Option<ProxyStatus> {
    client.state().borrow().proxies.get(name).cloned()
}

#[tokio::test]
async fn health_check_takes_the_proxy_down_and_brings_it_back() {
    let srv = server().await;
    let port = dead_port().await;
    let check = HealthCheck::tcp()
        .interval(Duration::from_millis(100))
        .timeout(Duration::from_millis(500))
        .max_failed(2);
    let client = Client::start(
        config(&srv)
            .proxy(ProxyConfig::tcp("hc", port, 0).health_check(check))
            .proxy(ProxyConfig::tcp("plain", port, 0)),
    )
    .unwrap();
    let mut events = client.events();
    // The service is down at start: the plain proxy registers, the checked one waits.
    srv.wait_for(|s| s.proxies.contains_key("u.plain"), WAIT)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!srv.snapshot().proxies.contains_key("u.hc"));
    assert_eq!(status(&client, "hc"), Some(ProxyStatus::AwaitingHealth));

    // Up: registered after the next probe, and traffic flows.
    let service = start_echo_on(port);
    let remote = ready(&client)
        .await
        .into_iter()
        .find(|r| r.name == "hc")
        .unwrap()
        .remote_port
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], remote));
    assert_eq!(echo_roundtrip(addr, 4096, 1).await, 4096);

    // Down: closed at the server after two failed probes; the other proxy is untouched.
    service.abort();
    let _ = service.await;
    let state = srv
        .wait_for(
            |s| s.close_proxy_received("u.hc") && !s.proxies.contains_key("u.hc"),
            WAIT,
        )
        .await
        .expect("CloseProxy after the failed checks");
    assert!(state.proxies.contains_key("u.plain"));
    assert!(
        eventually(WAIT, || status(&client, "hc")
            == Some(ProxyStatus::CheckFailed))
        .await
    );
    let mut failures = 0;
    let mut went_down = false;
    while let Ok(Ok(ev)) = tokio::time::timeout(Duration::from_millis(50), events.recv()).await {
        match ev {
            Event::HealthCheckFailed { name, .. } if name == "hc" => failures += 1,
            Event::HealthChanged { name, healthy } if name == "hc" => went_down = !healthy,
            _ => {}
        }
    }
    assert!(went_down);
    assert!(failures >= 2, "{failures}");

    // Up again: registered again on the next success, traffic flows again.
    let _service = start_echo_on(port);
    let ready = ready(&client).await;
    let remote = ready
        .iter()
        .find(|r| r.name == "hc")
        .unwrap()
        .remote_port
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], remote));
    assert_eq!(echo_roundtrip(addr, 4096, 2).await, 4096);
    assert!(srv.snapshot().proxies.contains_key("u.hc"));
    client.shutdown().await.unwrap();
}

#[tokio::test]
async fn http_health_check_needs_a_2xx_answer() {
    let srv = server().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, mut requests) = mpsc::unbounded_channel::<String>();
    // Answers 503 until told otherwise, recording each probe's request head.
    let healthy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = healthy.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = vec![0u8; 4096];
            let mut len = 0;
            while find(&buf[..len], b"\r\n\r\n").is_none() {
                match s.read(&mut buf[len..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => len += n,
                }
            }
            let _ = tx.send(String::from_utf8_lossy(&buf[..len]).into_owned());
            let answer: &[u8] = if flag.load(std::sync::atomic::Ordering::SeqCst) {
                b"HTTP/1.1 204 No Content\r\n\r\n"
            } else {
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
            };
            let _ = s.write_all(answer).await;
        }
    });
    let check = HealthCheck::http("healthz")
        .header("x-probe", "yes")
        .interval(Duration::from_millis(100));
    let client =
        Client::start(config(&srv).proxy(ProxyConfig::tcp("h", port, 0).health_check(check)))
            .unwrap();
    let mut events = client.events();
    let head = tokio::time::timeout(WAIT, requests.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(head.starts_with("GET /healthz HTTP/1.1\r\n"), "{head}");
    assert!(
        head.contains(&format!("\r\nHost: 127.0.0.1:{port}\r\n")),
        "{head}"
    );
    assert!(head.contains("\r\nX-Probe: yes\r\n"), "{head}");
    let error = loop {
        match tokio::time::timeout(WAIT, events.recv())
            .await
            .unwrap()
            .unwrap()
        {
            Event::HealthCheckFailed { error, .. } => break error,
            _ => continue,
        }
    };
    assert_eq!(error, "do http health check, StatusCode is [503] not 2xx");
    assert!(!srv.snapshot().proxies.contains_key("u.h"));
    healthy.store(true, std::sync::atomic::Ordering::SeqCst);
    ready(&client).await;
    assert!(srv.snapshot().proxies.contains_key("u.h"));
    client.shutdown().await.unwrap();
}

/// A reload that adds a health-checked proxy registers it only once its check passes, and one
/// that removes a health-checked proxy stops its check: the proxy never comes back.
#[tokio::test]
async fn reload_starts_and_stops_health_checks() {
    let srv = server().await;
    let port = dead_port().await;
    let check = HealthCheck::tcp()
        .interval(Duration::from_millis(100))
        .timeout(Duration::from_millis(500));
    let plain = ProxyConfig::tcp("plain", port, 0);
    let client = Client::start(config(&srv).proxy(plain.clone())).unwrap();
    srv.wait_for(|s| s.proxies.contains_key("u.plain"), WAIT)
        .await
        .unwrap();

    // Added by a reload while its service is down: waits, unregistered.
    let checked = ProxyConfig::tcp("hc", port, 0).health_check(check);
    client
        .set_proxies(vec![plain.clone(), checked.clone()])
        .await
        .unwrap();
    assert_eq!(status(&client, "hc"), Some(ProxyStatus::AwaitingHealth));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!srv.snapshot().proxies.contains_key("u.hc"));

    // The service comes up: the check registers it.
    let _service = start_echo_on(port);
    srv.wait_for(|s| s.proxies.contains_key("u.hc"), WAIT)
        .await
        .expect("registered once healthy");

    // Removed by a reload: closed, and its still-passing check does not bring it back.
    client.set_proxies(vec![plain]).await.unwrap();
    srv.wait_for(|s| !s.proxies.contains_key("u.hc"), WAIT)
        .await
        .expect("closed by the reload");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!srv.snapshot().proxies.contains_key("u.hc"));
    assert_eq!(status(&client, "hc"), None);
    client.shutdown().await.unwrap();
}
