//! Load through one tunnel (TLS + tcpMux, Prime's settings): 5 000 connections open at the same
//! time, and many short request/response exchanges in a row. Every byte is checked.
//!
//! The 100 000-request run is `#[ignore]`d to keep the default suite short; run it with
//! `cargo test --test load -- --ignored --nocapture` (its result is in docs/reliability.md).

mod common;

use common::*;
use expose::frp::{Client, ClientConfig, Event, ProxyConfig, ReconnectPolicy, TlsConfig};
use expose::testserver::{ServerConfig, TestServer};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Barrier, Mutex, Semaphore};

const TOKEN: &str = "load-token-0c3e";
const WAIT: Duration = Duration::from_secs(30);

/// The tests here each use the whole machine; they run one after the other.
static SERIAL: Mutex<()> = Mutex::const_new(());

async fn server() -> TestServer {
    TestServer::start(ServerConfig {
        token: TOKEN.into(),
        // A burst of thousands of visitors waits in line for work connections.
        user_conn_timeout: Duration::from_secs(60),
        ..Default::default()
    })
    .await
    .unwrap()
}

fn config(srv: &TestServer, local_port: u16) -> ClientConfig {
    let addr = srv.bind_addr();
    let mut cfg = ClientConfig::new(addr.ip().to_string(), addr.port(), TOKEN);
    cfg.user = "load".into();
    cfg.tls = TlsConfig::default();
    cfg.pool_count = 5;
    cfg.reconnect = ReconnectPolicy::new(
        Duration::from_millis(100),
        Duration::from_millis(500),
        Duration::from_millis(50),
    );
    cfg.proxy(ProxyConfig::tcp("svc", local_port, 0))
}

async fn start(srv: &TestServer, local_port: u16) -> (Client, SocketAddr) {
    let client = Client::start(config(srv, local_port)).unwrap();
    let ready = tokio::time::timeout(WAIT, client.ready())
        .await
        .expect("ready in time")
        .expect("ready");
    let addr = SocketAddr::new(srv.bind_addr().ip(), ready[0].remote_port.unwrap());
    (client, addr)
}

/// Connects, echoes `len` pattern bytes and checks them, then keeps the connection open until
/// everyone has done the same.
async fn echo_and_hold(
    addr: SocketAddr,
    seed: u64,
    len: usize,
    connecting: Arc<Semaphore>,
    done: Arc<AtomicUsize>,
    all_open: Arc<Barrier>,
) -> Result<(), String> {
    let permit = connecting.acquire_owned().await.unwrap();
    let echoed = async {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let mut data = vec![0u8; len];
        Pattern::new(seed).fill(&mut data);
        let (mut r, mut w) = s.split();
        let mut back = vec![0u8; len];
        let (wrote, read) = tokio::join!(w.write_all(&data), r.read_exact(&mut back));
        wrote.map_err(|e| format!("write: {e}"))?;
        read.map_err(|e| format!("read: {e}"))?;
        if back != data {
            return Err("corrupt echo".to_string());
        }
        Ok(s)
    };
    let r = tokio::time::timeout(Duration::from_secs(60), echoed)
        .await
        .unwrap_or_else(|_| Err("timed out".into()));
    drop(permit);
    done.fetch_add(1, Ordering::Relaxed);
    // Hold the connection (or the failure) until every visitor got this far.
    all_open.wait().await;
    r.map(drop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_concurrent_connections_through_one_tunnel() {
    const N: usize = 5000;
    const LEN: usize = 16 * 1024;
    let _serial = SERIAL.lock().await;
    // Three sockets per connection live in this process: the visitor, the server's side of
    // it, and the client's dial to the local service. The service's side lives in a child
    // process (see `echo_helper_process`), so the whole test fits under a 20 000-file limit.
    let need = (N * 3 + 1024) as u64;
    if let Err(why) = ensure_fd_limit(need) {
        eprintln!("SKIPPED five_thousand_concurrent_connections_through_one_tunnel: {why}");
        return;
    }
    let (_helper, echo_port) = spawn_echo_helper().await;
    let srv = server().await;
    let (client, addr) = start(&srv, echo_port).await;
    // Why a visitor lost its connection, should one: the client reports failed local dials.
    let dial_failures = collect_local_unreachable(&client);
    let rss_idle = rss_bytes();

    let started = Instant::now();
    // Connections are made at most 500 at a time (a listen backlog holds 1 024), and each
    // stays open after its echo until all 5 000 are open together.
    let connecting = Arc::new(Semaphore::new(500));
    let done = Arc::new(AtomicUsize::new(0));
    let all_open = Arc::new(Barrier::new(N + 1));
    let mut tasks = Vec::with_capacity(N);
    for i in 0..N {
        tasks.push(tokio::spawn(echo_and_hold(
            addr,
            i as u64 + 1,
            LEN,
            connecting.clone(),
            done.clone(),
            all_open.clone(),
        )));
    }
    // Once every visitor is done with its echo (and holds its connection), check the tunnel
    // carries them all at once before releasing them.
    assert!(
        eventually(Duration::from_secs(90), || done.load(Ordering::Relaxed)
            == N)
        .await,
        "only {} of {N} visitors finished their echo",
        done.load(Ordering::Relaxed)
    );
    let open_for = started.elapsed();
    let spliced = eventually(Duration::from_secs(5), || {
        client.stats().active_work_conns as usize == N
    })
    .await;
    let stats = client.stats();
    let rss_peak = rss_bytes();
    all_open.wait().await;
    let mut errors = Vec::new();
    for t in tasks {
        if let Err(e) = t.await.unwrap() {
            errors.push(e);
        }
    }
    eprintln!(
        "{N} concurrent connections open and verified after {open_for:?}; RSS idle {:?} MiB, \
         with {N} open {:?} MiB",
        rss_idle.map(|b| b >> 20),
        rss_peak.map(|b| b >> 20)
    );
    assert!(
        errors.is_empty(),
        "{} errors, first: {}; local dial failures: {:?}; server counters: {:?}",
        errors.len(),
        errors[0],
        dial_failures.lock().unwrap(),
        srv.snapshot().counters
    );
    assert!(
        spliced,
        "{N} visitors open, but the client splices {stats:?}"
    );
    assert!(
        eventually(Duration::from_secs(30), || client.stats().active_work_conns
            == 0)
        .await,
        "{:?}",
        client.stats()
    );
    let stats = client.stats();
    assert_eq!(stats.reconnects, 0, "the session never dropped: {stats:?}");
    assert!(stats.bytes_to_local >= (N * LEN) as u64, "{stats:?}");
    client.shutdown().await.unwrap();
}

/// Records the client's `LocalUnreachable` events (each with its dial error) from now on.
fn collect_local_unreachable(client: &Client) -> Arc<std::sync::Mutex<Vec<String>>> {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut events = client.events();
    let record = seen.clone();
    tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match events.recv().await {
                Ok(Event::LocalUnreachable {
                    error, suppressed, ..
                }) => record
                    .lock()
                    .unwrap()
                    .push(format!("{error} (+{suppressed} more)")),
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => {
                    record.lock().unwrap().push(format!("{n} events lost"))
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
    seen
}

/// Environment variable that turns [`echo_helper_process`] from a no-op into the echo service.
const HELPER_ENV: &str = "EXPOSE_LOAD_ECHO_HELPER";

/// Not a test: the echo service of `five_thousand_concurrent_connections_through_one_tunnel`,
/// run in a child process (this same test binary), so the service's 5 000 sockets count
/// against the child's open-file limit. Without [`HELPER_ENV`] it returns at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper process of five_thousand_concurrent_connections_through_one_tunnel"]
async fn echo_helper_process() {
    if std::env::var_os(HELPER_ENV).is_none() {
        return;
    }
    if let Err(why) = ensure_fd_limit(6000) {
        eprintln!("echo helper: {why}");
    }
    let addr = echo_server().await;
    println!("ECHO_PORT {}", addr.port());
    // Serve until the parent closes our stdin (or kills us).
    let _ = tokio::io::stdin().read(&mut [0u8; 1]).await;
}

/// Starts [`echo_helper_process`] in a child process; returns it (killed on drop) and its port.
async fn spawn_echo_helper() -> (tokio::process::Child, u16) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "echo_helper_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(HELPER_ENV, "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the echo helper process");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let port = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            // libtest may have written "test echo_helper_process ... " on the same line.
            if let Some((_, p)) = line.split_once("ECHO_PORT ") {
                return p.trim().parse::<u16>().unwrap();
            }
        }
        panic!("the echo helper exited without a port");
    })
    .await
    .expect("echo helper started");
    (child, port)
}

/// `total` request/response exchanges, `concurrency` at a time, each on its own connection.
async fn short_requests(total: usize, concurrency: usize) {
    const REQ: usize = 256;
    const RESP: usize = 1024;
    let _serial = SERIAL.lock().await;
    let srv = server().await;
    let (svc, bad) = reqresp_server(REQ, RESP).await;
    let (client, addr) = start(&srv, svc.port()).await;
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (next, failed, first_error) = (next.clone(), failed.clone(), first_error.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return;
                }
                let call = reqresp_call(addr, i as u64 * 2 + 1, REQ, RESP);
                let r = match tokio::time::timeout(Duration::from_secs(10), call).await {
                    Ok(r) => r,
                    Err(_) => Err("timed out".into()),
                };
                if let Err(e) = r {
                    failed.fetch_add(1, Ordering::Relaxed);
                    first_error
                        .lock()
                        .unwrap()
                        .get_or_insert(format!("request {i}: {e}"));
                }
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let took = started.elapsed();
    eprintln!(
        "{total} short requests ({concurrency} at a time) in {took:?}: {:.0}/s",
        total as f64 / took.as_secs_f64()
    );
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "{:?}",
        first_error.lock().unwrap()
    );
    assert_eq!(
        bad.load(Ordering::Relaxed),
        0,
        "corrupt requests reached the service"
    );
    let stats = client.stats();
    assert_eq!(stats.total_work_conns, total as u64, "{stats:?}");
    assert_eq!(stats.reconnects, 0, "{stats:?}");
    assert!(
        eventually(Duration::from_secs(10), || client.stats().active_work_conns
            == 0)
        .await,
        "{:?}",
        client.stats()
    );
    client.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_short_requests_in_a_row() {
    short_requests(10_000, 16).await;
}

/// The full run: `cargo test --test load -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "takes about a minute; run with --ignored (result in docs/reliability.md)"]
async fn hundred_thousand_short_requests_in_a_row() {
    short_requests(100_000, 16).await;
}

/// Many idle streams on the one multiplexed connection while short connections come and go:
/// the churn must not disturb the idle ones (each still echoes afterwards), nothing may leak
/// (the gauge returns to exactly the idle count, then to zero), and the session never drops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_streams_survive_connection_churn() {
    const IDLE: usize = 1500;
    const CHURN: usize = 3000;
    let _serial = SERIAL.lock().await;
    // Four sockets per idle connection live in this process: visitor, server side, the
    // client's local dial, and the echo service's side.
    if let Err(why) = ensure_fd_limit((IDLE * 4 + 2048) as u64) {
        eprintln!("SKIPPED idle_streams_survive_connection_churn: {why}");
        return;
    }
    let srv = server().await;
    let echo = echo_server().await;
    let (client, addr) = start(&srv, echo.port()).await;

    let gate = Arc::new(Semaphore::new(200));
    let mut idle = Vec::with_capacity(IDLE);
    let mut opening = Vec::with_capacity(IDLE);
    for i in 0..IDLE {
        let gate = gate.clone();
        opening.push(tokio::spawn(async move {
            let _p = gate.acquire_owned().await.unwrap();
            let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
            let b = [(i % 251) as u8];
            s.write_all(&b).await.map_err(|e| e.to_string())?;
            let mut back = [0u8; 1];
            s.read_exact(&mut back).await.map_err(|e| e.to_string())?;
            if back != b {
                return Err(format!("idle {i}: wrong echo"));
            }
            Ok::<_, String>(s)
        }));
    }
    for t in opening {
        idle.push(t.await.unwrap().expect("idle connection"));
    }
    assert!(
        eventually(Duration::from_secs(10), || client.stats().active_work_conns
            as usize
            == IDLE)
        .await,
        "{:?}",
        client.stats()
    );

    // Churn: short connections, 32 at a time, each echoing a few KiB and closing.
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..32 {
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= CHURN {
                    return Ok::<_, String>(());
                }
                let got = echo_roundtrip(addr, 4096, i as u64 + 7);
                let got = tokio::time::timeout(Duration::from_secs(10), got)
                    .await
                    .map_err(|_| format!("churn {i}: timed out"))?;
                if got != 4096 {
                    return Err(format!("churn {i}: {got} of 4096 bytes back"));
                }
            }
        }));
    }
    for w in workers {
        w.await.unwrap().expect("churn");
    }
    assert!(
        eventually(Duration::from_secs(10), || client.stats().active_work_conns
            as usize
            == IDLE)
        .await,
        "after the churn: {:?}",
        client.stats()
    );
    // Every idle connection still carries bytes both ways.
    for (i, s) in idle.iter_mut().enumerate() {
        let b = [((i * 7) % 251) as u8];
        s.write_all(&b).await.unwrap();
        let mut back = [0u8; 1];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut back))
            .await
            .unwrap_or_else(|_| panic!("idle {i} went silent"))
            .unwrap();
        assert_eq!(back, b, "idle {i}");
    }
    drop(idle);
    assert!(
        eventually(Duration::from_secs(30), || client.stats().active_work_conns
            == 0)
        .await,
        "{:?}",
        client.stats()
    );
    let stats = client.stats();
    assert_eq!(stats.reconnects, 0, "{stats:?}");
    assert_eq!(stats.total_work_conns, (IDLE + CHURN) as u64, "{stats:?}");
    client.shutdown().await.unwrap();
}
