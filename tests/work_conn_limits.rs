//! Bounds on what one work connection costs, end to end through the client and the test
//! server: memory held when a local service stops reading compressed data, and log lines when
//! the local service is down for a crowd of visitors.

mod common;

use common::{eventually, http_get};
use expose::frp::{Client, ClientConfig, Event, ProxyConfig, Stats};
use expose::proto::pipeline::MAX_BUFFERED;
use expose::testserver::{ServerConfig, TestServer};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

const TOKEN: &str = "limits-token-51c2";

async fn server() -> TestServer {
    TestServer::start(ServerConfig {
        token: TOKEN.into(),
        ..Default::default()
    })
    .await
    .unwrap()
}

fn config(srv: &TestServer) -> ClientConfig {
    let addr = srv.bind_addr();
    let mut cfg = ClientConfig::new(addr.ip().to_string(), addr.port(), TOKEN);
    cfg.user = "lim".into();
    cfg.tls.enable = false;
    cfg
}

/// A local service that accepts connections and never reads from them, with a small receive
/// buffer so the client's writes to it stall early.
async fn deaf_service() -> SocketAddr {
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = sock.listen(64).unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    addr
}

/// Waits until `bytes_to_local` has not moved for a second: every visitor's stream is stalled
/// on the deaf local service, and whatever the client buffers, it buffers now.
async fn wait_until_stalled(client: &Client) -> Stats {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = client.stats();
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = client.stats();
        if now.bytes_to_local != last.bytes_to_local || now.bytes_to_local == 0 {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= Duration::from_secs(1) {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "the transfer never stalled: {now:?}"
        );
    }
}

/// Visitors push zeros (about 21:1 under snappy) through a compressed (and, second case,
/// also encrypted) tcp proxy to a local service that never reads. Before the fix one 64 KiB
/// read of compressed wire data was decompressed at once, about 1.3 MiB held per connection
/// before the local service took a byte; now each direction holds at most `MAX_BUFFERED`.
async fn compressed_zeros_to_a_deaf_service(encryption: bool) {
    const VISITORS: usize = 4;
    const PER_VISITOR: usize = 64 << 20;
    let srv = server().await;
    let local = deaf_service().await;
    let mut proxy = ProxyConfig::tcp("zeros", local.port(), 0);
    proxy.use_compression = true;
    proxy.use_encryption = encryption;
    let client = Client::start(config(&srv).proxy(proxy)).unwrap();
    let ready = tokio::time::timeout(Duration::from_secs(20), client.ready())
        .await
        .expect("ready in time")
        .expect("ready");
    let port = ready[0].remote_port.expect("tcp port");
    let remote = SocketAddr::new(srv.bind_addr().ip(), port);

    let mut visitors = Vec::new();
    for _ in 0..VISITORS {
        let mut s = TcpStream::connect(remote).await.unwrap();
        visitors.push(tokio::spawn(async move {
            let zeros = vec![0u8; 64 * 1024];
            let mut sent = 0;
            while sent < PER_VISITOR {
                if s.write_all(&zeros).await.is_err() {
                    break;
                }
                sent += zeros.len();
            }
            sent
        }));
    }
    assert!(
        eventually(Duration::from_secs(20), || client.stats().active_work_conns
            == VISITORS as u64)
        .await,
        "{:?}",
        client.stats()
    );
    let stats = wait_until_stalled(&client).await;
    eprintln!("encryption {encryption}: {stats:?}");
    // Something really was held back: the data is far from all delivered.
    assert!(stats.bytes_to_local < (VISITORS * PER_VISITOR) as u64 / 2);
    assert!(
        stats.peak_buffered_bytes <= MAX_BUFFERED as u64,
        "one connection held {} bytes (bound {MAX_BUFFERED})",
        stats.peak_buffered_bytes
    );
    assert!(
        stats.buffered_bytes <= (VISITORS * 2 * MAX_BUFFERED) as u64,
        "{stats:?}"
    );
    for v in &visitors {
        assert!(!v.is_finished(), "a visitor got all its data through");
    }
    for v in visitors {
        v.abort();
    }
    client.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_data_to_a_deaf_local_service_holds_a_bounded_amount() {
    compressed_zeros_to_a_deaf_service(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_encrypted_data_to_a_deaf_local_service_holds_a_bounded_amount() {
    compressed_zeros_to_a_deaf_service(true).await;
}

/// 100 visitors while the local service is down: every one gets its 502, but the caller hears
/// about it once (it was one event and one WARN line per visitor). A summary of the others
/// follows only at the end of the 10 s window, after this test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_of_visitors_to_a_dead_local_service_is_reported_once() {
    const VISITORS: usize = 100;
    let srv = server().await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = Client::start(config(&srv).proxy(ProxyConfig::http("web", dead, "down"))).unwrap();
    tokio::time::timeout(Duration::from_secs(20), client.ready())
        .await
        .expect("ready in time")
        .expect("ready");
    let mut events = client.events();
    let vhost = srv.vhost_http_addr();
    let mut visitors = Vec::new();
    for _ in 0..VISITORS {
        visitors.push(tokio::spawn(async move {
            http_get(vhost, "down.tunnel.test", "/").await.0
        }));
    }
    for v in visitors {
        assert_eq!(v.await.unwrap(), "HTTP/1.1 502 Bad Gateway");
    }
    let mut reports = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let Event::LocalUnreachable { suppressed, .. } = e {
            reports.push(suppressed);
        }
    }
    assert_eq!(reports.first(), Some(&0), "{reports:?}");
    // A summary can only come once the window is over (a very slow run).
    assert!(
        reports.len() == 1 || (reports.len() == 2 && reports[1] == VISITORS as u64 - 1),
        "{} reports for {VISITORS} visitors: {reports:?}",
        reports.len()
    );
    client.shutdown().await.unwrap();
}
