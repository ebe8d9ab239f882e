//! frpc's transports end to end against the in-repo test server: the matrix of transport
//! (tcp, websocket, wss, quic) × TLS × tcpMux × wire v1/v2 where frp allows each (wss is always
//! TLS; quic is always TLS and has no yamux whatever tcpMux says), and `transport.proxyURL`
//! through in-repo HTTP CONNECT and SOCKS5 proxies. Every case logs in, moves a checksummed
//! transfer through a tcp proxy, survives a server restart (the client logs in again on its
//! own) and moves another.

mod common;

use common::*;
use expose::frp::{
    Client, ClientConfig, Error, ProxyConfig, ProxyUrl, ReconnectPolicy, TlsConfig,
    TransportConfig, TransportProtocol, WireProtocol,
};
use expose::testserver::{ProxyProtocol, ServerConfig, TestProxy, TestServer, TlsMode};
use std::net::SocketAddr;
use std::time::Duration;
use TransportProtocol::{Quic, Tcp, Websocket, Wss};
use WireProtocol::{V1, V2};

const TOKEN: &str = "transports-token";
const WAIT: Duration = Duration::from_secs(20);
const USER: &str = "alice";
const PASSWORD: &str = "s3cret:p@ss";
/// Small enough that the whole matrix stays fast, large enough to fill several QUIC and
/// yamux windows' worth of frames and TLS records.
const TRANSFER: u64 = 256 * 1024;

/// A loopback server with the frp port (TCP) and, when `quic` is given, a QUIC listener
/// there; port 0 picks one.
async fn server(bind: SocketAddr, quic: Option<SocketAddr>, mux: bool) -> TestServer {
    TestServer::start(ServerConfig {
        bind,
        quic_bind: quic,
        token: TOKEN.into(),
        tcp_mux: mux,
        tls: TlsMode::Optional,
        ..Default::default()
    })
    .await
    .unwrap()
}

fn config(srv: &TestServer, protocol: TransportProtocol, tls: bool, mux: bool) -> ClientConfig {
    let addr = match protocol {
        Quic => srv.quic_addr().expect("the server runs a QUIC listener"),
        _ => srv.bind_addr(),
    };
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

/// One cell of the matrix.
#[derive(Debug, Clone, Copy)]
struct Case {
    protocol: TransportProtocol,
    /// `tls.enable` (wss and quic use TLS whatever it says).
    tls: bool,
    /// `tcp_mux`, on the server too (quic ignores it, as frpc and frps do).
    mux: bool,
    wire: WireProtocol,
    via: Option<ProxyProtocol>,
}

impl Case {
    fn new(protocol: TransportProtocol, tls: bool, mux: bool, wire: WireProtocol) -> Self {
        Case {
            protocol,
            tls,
            mux,
            wire,
            via: None,
        }
    }

    fn via(self, kind: ProxyProtocol) -> Self {
        Case {
            via: Some(kind),
            ..self
        }
    }
}

/// The server's counters show the transport, TLS, multiplexing and wire the case asked for.
async fn check_counters(srv: &TestServer, case: Case) {
    if case.protocol == Websocket || case.protocol == Wss {
        // Every connection goes through the websocket; one just accepted (a pool refill) is
        // counted as upgraded a moment later.
        srv.wait_for(
            |s| s.counters.ws_connections == s.counters.connections,
            WAIT,
        )
        .await
        .unwrap_or_else(|e| panic!("{case:?}: a connection without the websocket: {e}"));
    }
    let c = srv.snapshot().counters;
    let what = format!("{case:?}: {c:?}");
    if case.protocol == Quic {
        assert!(c.quic_connections >= 1, "{what}");
        // Control and work connection at least, each its own stream; nothing over TCP.
        assert!(c.quic_streams >= 2, "{what}");
        assert_eq!(c.connections, 0, "{what}");
        assert_eq!(c.mux_streams, 0, "{what}");
    } else {
        assert_eq!(c.quic_connections, 0, "{what}");
        let ws = case.protocol != Tcp;
        assert_eq!(c.ws_connections > 0, ws, "{what}");
        assert_eq!(
            c.tls_connections > 0,
            case.tls || case.protocol == Wss,
            "{what}"
        );
        assert_eq!(c.mux_streams > 0, case.mux, "{what}");
    }
    assert_eq!(c.v2_connections > 0, case.wire == V2, "{what}");
}

/// Login, a checksummed echo through a tcp proxy, a server restart on the same ports, the
/// re-login and another checksummed echo; the server's counters show the transport used.
async fn round_trip(case: Case) {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let quic = (case.protocol == Quic).then_some(any);
    let srv = server(any, quic, case.mux).await;
    let (bind, quic) = (srv.bind_addr(), srv.quic_addr());
    let proxy = match case.via {
        Some(kind) => Some(
            TestProxy::start(kind, Some((USER, PASSWORD)))
                .await
                .unwrap(),
        ),
        None => None,
    };
    let echo = echo_server().await;
    let mut cfg = config(&srv, case.protocol, case.tls, case.mux).proxy(ProxyConfig::tcp(
        "echo",
        echo.port(),
        0,
    ));
    cfg.wire_protocol = case.wire;
    let dir = tempfile::tempdir().unwrap();
    if let Some(p) = &proxy {
        cfg.transport = cfg.transport.proxy_url(proxy_url(p));
        if case.via == Some(ProxyProtocol::HttpsConnect) {
            let ca = dir.path().join("proxy-ca.pem");
            std::fs::write(&ca, p.cert_pem()).unwrap();
            cfg.transport = cfg.transport.proxy_ca_file(ca);
        }
    }
    let client = Client::start(cfg).unwrap();
    let ready = tokio::time::timeout(WAIT, client.ready())
        .await
        .unwrap_or_else(|_| panic!("{case:?}: ready in time"))
        .unwrap_or_else(|e| panic!("{case:?}: ready: {e}"));
    let port = ready[0].remote_port.unwrap();
    assert_eq!(
        echo_roundtrip(SocketAddr::new(bind.ip(), port), TRANSFER, 1).await,
        TRANSFER,
        "{case:?}"
    );
    check_counters(&srv, case).await;
    if let Some(p) = &proxy {
        assert!(p.stats().tunnels >= 1, "{case:?}: {:?}", p.stats());
        assert_eq!(p.stats().auth_failures, 0, "{case:?}");
    }

    // The server goes away with every connection; the client comes back on its own.
    let tunnels_before = proxy.as_ref().map(|p| p.stats().tunnels);
    srv.kill_and_wait().await;
    drop(srv);
    let srv2 = server(bind, quic, case.mux).await;
    let state = srv2
        .wait_for(|s| s.proxies.contains_key("u1.echo"), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{case:?}: proxy re-registered after the restart: {e}"));
    let port2 = state.proxies["u1.echo"].remote_port.unwrap();
    assert_eq!(
        echo_roundtrip(SocketAddr::new(bind.ip(), port2), TRANSFER, 2).await,
        TRANSFER,
        "{case:?}"
    );
    check_counters(&srv2, case).await;
    if let (Some(p), Some(before)) = (&proxy, tunnels_before) {
        assert!(
            p.stats().tunnels > before,
            "{case:?}: the reconnect went through the proxy too"
        );
    }
    assert!(client.stats().reconnects >= 1, "{case:?}");
    client.shutdown().await.unwrap();
}

/// One test per cell, named after it, so a failure names the case.
macro_rules! matrix {
    ($($name:ident: $protocol:expr, tls $tls:expr, mux $mux:expr, $wire:expr;)*) => {$(
        #[tokio::test]
        async fn $name() {
            round_trip(Case::new($protocol, $tls, $mux, $wire)).await;
        }
    )*};
}

matrix! {
    tcp_plain_mux_v1: Tcp, tls false, mux true, V1;
    tcp_plain_mux_v2: Tcp, tls false, mux true, V2;
    tcp_plain_no_mux_v1: Tcp, tls false, mux false, V1;
    tcp_plain_no_mux_v2: Tcp, tls false, mux false, V2;
    tcp_tls_mux_v1: Tcp, tls true, mux true, V1;
    tcp_tls_mux_v2: Tcp, tls true, mux true, V2;
    tcp_tls_no_mux_v1: Tcp, tls true, mux false, V1;
    tcp_tls_no_mux_v2: Tcp, tls true, mux false, V2;
    websocket_plain_mux_v1: Websocket, tls false, mux true, V1;
    websocket_plain_mux_v2: Websocket, tls false, mux true, V2;
    websocket_plain_no_mux_v1: Websocket, tls false, mux false, V1;
    websocket_plain_no_mux_v2: Websocket, tls false, mux false, V2;
    websocket_tls_inside_mux_v1: Websocket, tls true, mux true, V1;
    websocket_tls_inside_mux_v2: Websocket, tls true, mux true, V2;
    websocket_tls_inside_no_mux_v1: Websocket, tls true, mux false, V1;
    websocket_tls_inside_no_mux_v2: Websocket, tls true, mux false, V2;
    // wss is TLS whatever `tls.enable` says: both values, once each.
    wss_mux_v1: Wss, tls false, mux true, V1;
    wss_mux_v2: Wss, tls true, mux true, V2;
    wss_no_mux_v1: Wss, tls true, mux false, V1;
    wss_no_mux_v2: Wss, tls false, mux false, V2;
    // quic is always TLS and never yamux: `tls.enable` only selects the CA files, tcpMux
    // changes nothing (the server side's yamux setting is not used either).
    quic_v1: Quic, tls true, mux true, V1;
    quic_v2: Quic, tls true, mux true, V2;
    quic_tls_disabled_no_mux_v1: Quic, tls false, mux false, V1;
    quic_tls_disabled_no_mux_v2: Quic, tls false, mux false, V2;
}

#[tokio::test]
async fn tcp_through_http_connect_with_basic_auth_mux() {
    round_trip(Case::new(Tcp, true, true, V1).via(ProxyProtocol::HttpConnect)).await;
}

#[tokio::test]
async fn tcp_through_http_connect_with_basic_auth_no_mux() {
    round_trip(Case::new(Tcp, false, false, V1).via(ProxyProtocol::HttpConnect)).await;
}

#[tokio::test]
async fn tcp_through_socks5_with_password_mux() {
    round_trip(Case::new(Tcp, false, true, V2).via(ProxyProtocol::Socks5)).await;
}

#[tokio::test]
async fn tcp_through_socks5_with_password_no_mux() {
    round_trip(Case::new(Tcp, true, false, V1).via(ProxyProtocol::Socks5)).await;
}

/// An `https://` proxy (frpc 0.69+): TLS to the proxy, verified against the given CA under
/// the proxy's name, then CONNECT inside it.
#[tokio::test]
async fn tcp_through_https_proxy_mux() {
    round_trip(Case::new(Tcp, true, true, V1).via(ProxyProtocol::HttpsConnect)).await;
}

#[tokio::test]
async fn wss_through_https_proxy_no_mux_v2() {
    round_trip(Case::new(Wss, true, false, V2).via(ProxyProtocol::HttpsConnect)).await;
}

/// An `https://` proxy whose certificate the client does not trust is a TLS error naming the
/// proxy, and nothing reaches frps.
#[tokio::test]
async fn untrusted_https_proxy_is_a_tls_error() {
    let srv = server(SocketAddr::from(([127, 0, 0, 1], 0)), None, true).await;
    let proxy = TestProxy::start(ProxyProtocol::HttpsConnect, None)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let other_ca = dir.path().join("other.pem");
    // Some other certificate: the proxy's own is not in it.
    std::fs::write(&other_ca, srv.cert_pem()).unwrap();
    let mut cfg = config(&srv, Tcp, true, true).proxy(ProxyConfig::tcp("echo", 9, 0));
    cfg.transport = cfg
        .transport
        .proxy_url(ProxyUrl::parse(&proxy.url()).unwrap())
        .proxy_ca_file(&other_ca);
    let client = Client::start(cfg).unwrap();
    let err = first_login_error(&client).await;
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("proxy https://"), "{err}");
    assert_eq!(proxy.stats().tunnels, 0);
    assert_eq!(srv.snapshot().counters.connections, 0);
}

#[tokio::test]
async fn websocket_through_http_connect() {
    round_trip(Case::new(Websocket, false, true, V2).via(ProxyProtocol::HttpConnect)).await;
}

#[tokio::test]
async fn wss_through_socks5_no_mux() {
    round_trip(Case::new(Wss, false, false, V1).via(ProxyProtocol::Socks5)).await;
}

/// A wrong proxy password fails the first login with an error that says so, and nothing
/// reaches frps.
async fn wrong_password(kind: ProxyProtocol, expect: &str) {
    let srv = server(SocketAddr::from(([127, 0, 0, 1], 0)), None, true).await;
    let proxy = TestProxy::start(kind, Some((USER, PASSWORD)))
        .await
        .unwrap();
    let url = ProxyUrl::parse(&proxy.url_with(USER, "wrong")).unwrap();
    let mut cfg = config(&srv, Tcp, true, true).proxy(ProxyConfig::tcp("echo", 9, 0));
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

/// A client on the quic transport with one tcp proxy to a fresh echo server.
async fn quic_client(srv: &TestServer, tls: TlsConfig) -> (Client, ClientConfig) {
    let echo = echo_server().await;
    let mut cfg = config(srv, Quic, true, true).proxy(ProxyConfig::tcp("echo", echo.port(), 0));
    cfg.tls = tls;
    (Client::start(cfg.clone()).unwrap(), cfg)
}

async fn quic_server() -> TestServer {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    server(any, Some(any), true).await
}

async fn first_login_error(client: &Client) -> Error {
    tokio::time::timeout(WAIT, client.ready())
        .await
        .expect("the first login ends in time")
        .expect_err("the first login fails")
}

/// As in frpc, QUIC checks the server against `trustedCaFile` under the server name when TLS
/// is enabled, accepts any certificate otherwise (the CA file is then ignored), and a pin
/// that does not match fails the handshake.
#[tokio::test]
async fn quic_server_verification() {
    let srv = quic_server().await;
    let other = quic_server().await;
    let dir = tempfile::tempdir().unwrap();
    let (ca, wrong_ca) = (dir.path().join("ca.pem"), dir.path().join("wrong.pem"));
    std::fs::write(&ca, srv.cert_pem()).unwrap();
    std::fs::write(&wrong_ca, other.cert_pem()).unwrap();

    let trusted = TlsConfig::default().ca_file(&ca).server_name("localhost");
    let (client, _) = quic_client(&srv, trusted).await;
    tokio::time::timeout(WAIT, client.ready())
        .await
        .unwrap()
        .expect("the server's own CA verifies it");
    client.shutdown().await.unwrap();

    let (client, _) = quic_client(&srv, TlsConfig::default().ca_file(&wrong_ca)).await;
    let err = first_login_error(&client).await;
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");

    let ignored = TlsConfig::default().enable(false).ca_file(&wrong_ca);
    let (client, _) = quic_client(&srv, ignored).await;
    tokio::time::timeout(WAIT, client.ready())
        .await
        .unwrap()
        .expect("without tls.enable the CA file is not used, as in frpc");
    client.shutdown().await.unwrap();

    let mut pinned = TlsConfig::default();
    pinned.pinned_sha256 = Some([0u8; 32]);
    let (client, _) = quic_client(&srv, pinned).await;
    let err = first_login_error(&client).await;
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
}

/// A QUIC server without frp's ALPN refuses the handshake; the client says it was TLS.
#[tokio::test]
async fn quic_without_frp_alpn_is_a_tls_error() {
    use quinn::crypto::rustls::QuicServerConfig;
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.key_pair.serialize_der().into());
    let mut tls = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![ck.cert.der().clone()], key)
    .unwrap();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    let crypto = QuicServerConfig::try_from(tls).unwrap();
    let config = quinn::ServerConfig::with_crypto(std::sync::Arc::new(crypto));
    let endpoint = quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let accept = tokio::spawn(async move {
        while let Some(incoming) = endpoint.accept().await {
            let _ = incoming.await;
        }
    });
    let mut cfg =
        ClientConfig::new("127.0.0.1", addr.port(), TOKEN).proxy(ProxyConfig::tcp("echo", 9, 0));
    cfg.transport = TransportConfig::default().protocol(Quic);
    let client = Client::start(cfg).unwrap();
    let err = first_login_error(&client).await;
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    accept.abort();
}

/// A shutdown's CloseProxy reaches frps over QUIC: the connection is closed only after frps
/// has acknowledged the control stream (closing a QUIC connection drops unacknowledged data).
#[tokio::test]
async fn quic_shutdown_delivers_close_proxy() {
    for _ in 0..3 {
        let srv = quic_server().await;
        let (client, _) = quic_client(&srv, TlsConfig::default()).await;
        tokio::time::timeout(WAIT, client.ready())
            .await
            .unwrap()
            .unwrap();
        client.shutdown().await.unwrap();
        srv.wait_for(|s| s.close_proxy_received("u1.echo"), WAIT)
            .await
            .expect("CloseProxy arrived before the connection closed");
    }
}

/// frps dropping our control (the session, not the server) ends the QUIC connection's use:
/// the client logs in again on a new QUIC connection and traffic works.
#[tokio::test]
async fn quic_relogin_after_the_server_closes_the_control() {
    let srv = quic_server().await;
    let (client, _) = quic_client(&srv, TlsConfig::default()).await;
    tokio::time::timeout(WAIT, client.ready())
        .await
        .unwrap()
        .unwrap();
    let run_id = srv.snapshot().controls.keys().next().unwrap().clone();
    assert!(srv.close_control(&run_id));
    let state = srv
        .wait_for(
            |s| s.counters.quic_connections >= 2 && s.proxies.contains_key("u1.echo"),
            WAIT,
        )
        .await
        .expect("logged in again on a new QUIC connection");
    let port = state.proxies["u1.echo"].remote_port.unwrap();
    let addr = SocketAddr::new(srv.bind_addr().ip(), port);
    assert_eq!(echo_roundtrip(addr, TRANSFER, 3).await, TRANSFER);
    client.shutdown().await.unwrap();
}
