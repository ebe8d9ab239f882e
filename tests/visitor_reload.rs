//! `Client::set_visitors` (the visitor half of frpc's reload) against the in-repo test frps:
//! the session stays up, an unchanged visitor keeps listening, a removed one stops, a changed
//! one listens again on the same port with its new settings, a new one starts, and
//! connections already open through removed or changed visitors keep running.

mod common;

use common::*;
use expose::frp::{
    Client, ClientConfig, Event, ProxyConfig, SecretOptions, TlsConfig, VisitorConfig, VisitorKind,
};
use expose::testserver::{ServerConfig, TestServer};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "visitor-reload-token-6e0";
const WAIT: Duration = Duration::from_secs(20);

fn config(srv: &TestServer, user: &str) -> ClientConfig {
    let addr = srv.bind_addr();
    let mut cfg = ClientConfig::new(addr.ip().to_string(), addr.port(), TOKEN);
    cfg.user = user.into();
    cfg.tls = TlsConfig::disabled();
    cfg
}

fn visitor(name: &str, server: &str, port: u16) -> VisitorConfig {
    VisitorConfig::new(name, VisitorKind::Stcp, server, "k", i32::from(port)).server_user("owner")
}

async fn echo_once(conn: &mut TcpStream, round: u8) {
    let data = [round; 64];
    conn.write_all(&data).await.unwrap();
    let mut back = [0u8; 64];
    tokio::time::timeout(WAIT, conn.read_exact(&mut back))
        .await
        .expect("echo in time")
        .expect("connection still open");
    assert_eq!(back, data);
}

/// A connection through the visitor at `port` that echoes (retried while it starts).
async fn echo_conn(port: u16) -> TcpStream {
    for _ in 0..100 {
        if let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)).await {
            let data = [7u8; 16];
            let mut back = [0u8; 16];
            if c.write_all(&data).await.is_ok()
                && matches!(
                    tokio::time::timeout(Duration::from_secs(2), c.read_exact(&mut back)).await,
                    Ok(Ok(_))
                )
                && back == data
            {
                return c;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no echo through the visitor on port {port}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_visitors_keeps_the_session_and_open_connections() {
    let srv = TestServer::start(ServerConfig {
        token: TOKEN.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let echo = echo_server().await;
    let web = http_server().await;
    let allow = |mut o: SecretOptions| {
        o.allow_users = vec!["guest".into()];
        o
    };
    let owner = Client::start(
        config(&srv, "owner")
            .proxy(ProxyConfig::new(
                "svc",
                echo.port(),
                expose::frp::ProxyKind::Stcp(allow(SecretOptions::new("k"))),
            ))
            .proxy(ProxyConfig::new(
                "web",
                web.port(),
                expose::frp::ProxyKind::Stcp(allow(SecretOptions::new("k"))),
            )),
    )
    .unwrap();
    tokio::time::timeout(WAIT, owner.ready())
        .await
        .unwrap()
        .unwrap();
    let (keep, gone, change, new) = (spare_port(), spare_port(), spare_port(), spare_port());
    let guest = Client::start(
        config(&srv, "guest")
            .visitor(visitor("keep", "svc", keep))
            .visitor(visitor("gone", "svc", gone))
            .visitor(visitor("change", "svc", change)),
    )
    .unwrap();
    let mut through_keep = echo_conn(keep).await;
    let mut through_gone = echo_conn(gone).await;
    let mut through_change = echo_conn(change).await;
    let run_id = guest.state().borrow().run_id.clone();
    assert!(run_id.is_some());
    let mut events = guest.events();

    let changes = guest
        .set_visitors(vec![
            visitor("new", "svc", new),
            visitor("change", "web", change),
            visitor("keep", "svc", keep),
        ])
        .await
        .unwrap();
    assert_eq!(changes.removed, ["gone", "change"]);
    assert_eq!(changes.added, ["new", "change"]);
    assert_eq!(
        guest
            .visitors()
            .iter()
            .map(|v| v.name.as_str())
            .collect::<Vec<_>>(),
        ["new", "change", "keep"]
    );

    // Open connections run on, whatever happened to their visitor.
    echo_once(&mut through_keep, 1).await;
    echo_once(&mut through_gone, 2).await;
    echo_once(&mut through_change, 3).await;
    // The unchanged and the new visitor listen; the removed one does not.
    drop(echo_conn(keep).await);
    drop(echo_conn(new).await);
    assert!(
        eventually(WAIT, || std::net::TcpStream::connect(("127.0.0.1", gone))
            .is_err())
        .await,
        "the removed visitor still listens"
    );
    // The changed one listens on its old port again, now for the other proxy.
    let addr: SocketAddr = ([127, 0, 0, 1], change).into();
    let mut served = false;
    for _ in 0..100 {
        let got = tokio::time::timeout(Duration::from_secs(2), http_get(addr, "x", "/")).await;
        if let Ok((head, _)) = got {
            if head.starts_with("HTTP/1.1 200") {
                served = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "the changed visitor does not reach its new proxy");

    // One session throughout: same run id, no reconnect.
    assert_eq!(guest.state().borrow().run_id, run_id);
    let mut updated = false;
    while let Ok(ev) = events.try_recv() {
        assert!(
            !matches!(ev, Event::Reconnecting { .. } | Event::LoggedIn { .. }),
            "{ev:?}"
        );
        updated |= matches!(ev, Event::VisitorsUpdated { .. });
    }
    assert!(updated);
    // The same set again changes nothing.
    assert!(guest
        .set_visitors(guest.visitors())
        .await
        .unwrap()
        .is_empty());
    // A bad set is refused whole.
    let bad = vec![visitor("a", "svc", new), visitor("a", "svc", keep)];
    assert!(guest.set_visitors(bad).await.is_err());
    assert_eq!(guest.visitors().len(), 3);
    guest.shutdown().await.unwrap();
    owner.shutdown().await.unwrap();
}
