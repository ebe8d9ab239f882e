//! The control session against a hand-scripted frps that misbehaves at the session level: a
//! run id no Login could carry back, and a server that stops reading while the client has a lot
//! to say. Plain TCP, no multiplexer, so every byte is under the test's control.

use bytes::BytesMut;
use expose::frp::{Client, ClientConfig, Event, HttpOptions, ProxyConfig, ProxyKind};
use expose::proto::frame::encode_to_vec;
use expose::proto::msg::{Login, LoginResp};
use expose::proto::{decode_frame, Message};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;

const TOKEN: &str = "liveness-token";

fn config(port: u16) -> ClientConfig {
    let mut cfg = ClientConfig::new("127.0.0.1", port, TOKEN);
    cfg.tls.enable = false;
    cfg.tcp_mux = false;
    cfg.user = "u".into();
    cfg.heartbeat_interval = None;
    cfg.reconnect.base = Duration::from_millis(20);
    cfg.reconnect.max = Duration::from_millis(100);
    cfg.reconnect.quick_restart = Duration::from_millis(20);
    cfg
}

/// Reads the plaintext Login at the start of a control connection.
async fn read_login(s: &mut TcpStream) -> Option<Login> {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    loop {
        match decode_frame(&mut buf) {
            Ok(Some(Message::Login(l))) => return Some(l),
            Ok(Some(_)) | Err(_) => return None,
            Ok(None) => {}
        }
        if s.read_buf(&mut buf).await.ok()? == 0 {
            return None;
        }
    }
}

async fn login_resp(s: &mut TcpStream, run_id: &str) {
    let resp = LoginResp {
        version: "0.66.0".into(),
        run_id: run_id.into(),
        error: String::new(),
    };
    let _ = s.write_all(&encode_to_vec(&resp.into()).unwrap()).await;
}

/// frps makes 16-hex-digit run ids; one of 10 200 characters would make every later Login
/// exceed frp's 10 240-byte frame limit. The client must refuse to keep it and keep logging in
/// with a Login it can send, never loop on an oversized one.
#[tokio::test]
async fn an_oversized_run_id_is_not_kept() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (logins_tx, mut logins) = mpsc::unbounded_channel::<Login>();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((mut s, _)) = listener.accept().await {
            n += 1;
            let tx = logins_tx.clone();
            let giant = n == 1;
            tokio::spawn(async move {
                let Some(login) = read_login(&mut s).await else {
                    return;
                };
                let _ = tx.send(login);
                let run_id = if giant {
                    "r".repeat(10_200)
                } else {
                    "0123456789abcdef".into()
                };
                login_resp(&mut s, &run_id).await;
                if giant {
                    // Drop the first session so the client has to log in again.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    return;
                }
                // Hold the connection until the client drops it.
                let mut sink = [0u8; 4096];
                while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
            });
        }
    });

    let mut cfg = config(port);
    cfg.login_fail_exit = false;
    let client = Client::start(cfg).unwrap();
    let mut events = client.events();
    let first = tokio::time::timeout(Duration::from_secs(10), logins.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.run_id, "");
    // The client must come back with a Login that fits a frame and does not carry the giant id.
    let second = tokio::time::timeout(Duration::from_secs(10), logins.recv())
        .await
        .expect("the client never logged in again")
        .unwrap();
    assert_eq!(second.run_id, "", "the unusable run id was kept");
    let logged_in = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.recv().await {
                Ok(Event::LoggedIn { run_id }) => return run_id,
                Ok(_) => {}
                Err(e) => panic!("events ended: {e}"),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(logged_in, "0123456789abcdef");
    client.shutdown().await.unwrap();
}

/// A proxy list big enough that registering it cannot fit the socket buffers of a server that
/// does not read: the client's writes block.
fn many_big_proxies(cfg: &mut ClientConfig) {
    for i in 0..1000 {
        let http = (0..300).fold(HttpOptions::default(), |h, d| {
            h.custom_domain(format!("d{d:03}-{i:04}.example.com"))
        });
        cfg.proxies.push(ProxyConfig::new(
            format!("p{i:04}"),
            8080,
            ProxyKind::Http(http),
        ));
    }
}

/// A server that accepts the login and then never reads again must not hold up a shutdown:
/// registration writes block, and the stop has to cut through them.
#[tokio::test]
async fn shutdown_is_prompt_when_the_server_stops_reading() {
    let socket = TcpSocket::new_v4().unwrap();
    // Accepted sockets inherit the small receive buffer, so the client's writes stall early.
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(16).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (held_tx, mut held) = mpsc::unbounded_channel::<TcpStream>();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = held_tx.clone();
            tokio::spawn(async move {
                if read_login(&mut s).await.is_some() {
                    login_resp(&mut s, "0123456789abcdef").await;
                    // Keep it open and unread for the rest of the test.
                    let _ = tx.send(s);
                }
            });
        }
    });

    let mut cfg = config(port);
    many_big_proxies(&mut cfg);
    let domain_bytes: usize = cfg
        .proxies
        .iter()
        .map(|p| match &p.kind {
            ProxyKind::Http(h) => h.custom_domains.iter().map(String::len).sum(),
            _ => 0,
        })
        .sum();
    let client = Client::start(cfg).unwrap();
    let mut conn = tokio::time::timeout(Duration::from_secs(10), held.recv())
        .await
        .unwrap()
        .unwrap();
    // Let the registration writes fill every buffer on the way.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let stopped = tokio::time::timeout(Duration::from_secs(6), client.shutdown()).await;
    assert!(
        stopped.is_ok(),
        "shutdown still waiting after {:?}",
        started.elapsed()
    );
    // Proof that the client really was stuck in a write: what reached the server is less than
    // the registrations it had to send.
    let mut received = 0usize;
    let mut chunk = vec![0u8; 256 * 1024];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut chunk)).await
    {
        if n == 0 {
            break;
        }
        received += n;
    }
    assert!(
        received < domain_bytes,
        "the client wrote everything ({received} bytes): the test did not block it"
    );
}
