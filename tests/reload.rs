//! `Client::set_proxies` (frpc's reload in the library) against the in-repo test server: the
//! session stays up, unchanged proxies and their live connections are untouched, removed and
//! changed proxies are closed before new and changed ones are registered, and a bad set
//! changes nothing.

mod common;

use common::*;
use expose::frp::{Client, ClientConfig, Error, Event, ProxyConfig, ProxyStatus, TlsConfig};
use expose::proto::msg::{Message, MessageType};
use expose::testserver::{ServerConfig, TestServer};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "reload-token-41d";
const WAIT: Duration = Duration::from_secs(20);

async fn echo_once(conn: &mut tokio::net::TcpStream, round: u8) {
    let data = [round; 64];
    conn.write_all(&data).await.unwrap();
    let mut back = [0u8; 64];
    tokio::time::timeout(WAIT, conn.read_exact(&mut back))
        .await
        .expect("echo in time")
        .expect("connection still open");
    assert_eq!(back, data);
}

/// Control messages after the first `skip`, as (type, proxy name).
fn registrations(srv: &TestServer, skip: usize) -> Vec<(&'static str, String)> {
    srv.snapshot()
        .control_messages
        .iter()
        .skip(skip)
        .filter_map(|m| match &m.message {
            Message::NewProxy(np) => Some(("new", np.proxy_name.clone())),
            Message::CloseProxy(c) => Some(("close", c.proxy_name.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_proxies_keeps_the_session_and_unchanged_connections() {
    let srv = TestServer::start(ServerConfig {
        token: TOKEN.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let echo = echo_server().await;
    let addr = srv.bind_addr();
    let mut cfg = ClientConfig::new(addr.ip().to_string(), addr.port(), TOKEN);
    cfg.user = "u".into();
    cfg.tls = TlsConfig::disabled();
    let keep = ProxyConfig::tcp("keep", echo.port(), 0);
    let cfg = cfg
        .proxy(keep.clone())
        .proxy(ProxyConfig::tcp("gone", echo.port(), 0))
        .proxy(ProxyConfig::tcp("change", echo.port(), 0));
    let client = Client::start(cfg).unwrap();
    let ready = tokio::time::timeout(WAIT, client.ready())
        .await
        .unwrap()
        .unwrap();
    let keep_port = ready
        .iter()
        .find(|p| p.name == "keep")
        .unwrap()
        .remote_port
        .unwrap();
    let mut conn = tokio::net::TcpStream::connect((addr.ip(), keep_port))
        .await
        .unwrap();
    echo_once(&mut conn, 1).await;
    // Connections through proxies that are about to be removed or changed: frpc leaves them
    // running (only new visitors are refused or get the new settings).
    let gone_port = ready
        .iter()
        .find(|p| p.name == "gone")
        .unwrap()
        .remote_port
        .unwrap();
    let mut through_gone = tokio::net::TcpStream::connect((addr.ip(), gone_port))
        .await
        .unwrap();
    echo_once(&mut through_gone, 1).await;
    let mut events = client.events();
    let before = srv.snapshot().control_messages.len();

    // A set the engine refuses changes nothing.
    let dup = vec![keep.clone(), keep.clone()];
    let err = client.set_proxies(dup).await.unwrap_err();
    assert!(
        matches!(err, Error::Config(ref m) if m.contains("duplicate")),
        "{err}"
    );

    let new_set = vec![
        ProxyConfig::tcp("added", echo.port(), 0).annotation("example.com/a", "1"),
        keep.clone(),
        ProxyConfig::tcp("change", echo.port(), 0).use_compression(true),
    ];
    let changes = client.set_proxies(new_set).await.unwrap();
    assert_eq!(changes.removed, ["gone", "change"]);
    assert_eq!(changes.added, ["added", "change"]);
    let ev = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(ev @ Event::ProxiesUpdated { .. }) = events.recv().await {
                return ev;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(
        ev,
        Event::ProxiesUpdated {
            removed: vec!["gone".into(), "change".into()],
            added: vec!["added".into(), "change".into()],
        }
    );
    let all = tokio::time::timeout(WAIT, client.ready())
        .await
        .unwrap()
        .unwrap();
    let names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["added", "change", "keep"]);

    // Closes first, then registrations, in the sets' orders; keep is never touched.
    assert_eq!(
        registrations(&srv, before),
        [
            ("close", "u.gone".to_owned()),
            ("close", "u.change".to_owned()),
            ("new", "u.added".to_owned()),
            ("new", "u.change".to_owned()),
        ]
    );
    let snap = srv.snapshot();
    assert_eq!(snap.accepted_logins().count(), 1);
    assert!(snap.proxies["u.change"].use_compression);
    assert!(!snap.proxies.contains_key("u.gone"));
    let added = snap
        .messages_of(MessageType::NewProxy)
        .find_map(|m| match &m.message {
            Message::NewProxy(np) if np.proxy_name == "u.added" => Some(np.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(added.annotations["example.com/a"], "1");
    assert_eq!(client.proxies().len(), 3);
    assert!(!client.state().borrow().proxies.contains_key("gone"));

    // The connections opened before the change still work, and new ones reach the new set.
    echo_once(&mut conn, 2).await;
    echo_once(&mut through_gone, 2).await;
    let change_port = snap.proxies["u.change"].remote_port.unwrap();
    let got = echo_roundtrip((addr.ip(), change_port).into(), 10_000, 3).await;
    assert_eq!(got, 10_000);

    // The same set again is no change at all.
    let again = client.proxies();
    assert!(client.set_proxies(again).await.unwrap().is_empty());
    let n = srv.snapshot().control_messages.len();
    echo_once(&mut conn, 3).await;
    assert_eq!(registrations(&srv, n), []);
    assert!(matches!(
        client.state().borrow().proxies.get("keep"),
        Some(ProxyStatus::Ready(_))
    ));
    client.shutdown().await.unwrap();
}
