//! Fault injection against the engine on loopback: a server that dies mid-transfer and comes
//! back (50 times, watching tasks and memory), a server that goes silent (with and without
//! tcpMux, idle and mid-transfer), visitors and local services that stop reading, and local
//! services that refuse or reset connections.
//!
//! Every test here takes [`SERIAL`] first: two of them measure the process's resident memory,
//! which only means something while nothing else in this binary runs.

mod common;

use common::*;
use expose::frp::{Client, ClientConfig, Event, ProxyConfig, ReconnectPolicy, TlsConfig};
use expose::testserver::{ServerConfig, TestServer};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

const TOKEN: &str = "faults-token-5d21";
const WAIT: Duration = Duration::from_secs(20);
const MIB: u64 = 1 << 20;

/// One test at a time in this binary (see the module docs).
static SERIAL: Mutex<()> = Mutex::const_new(());

async fn server_at(bind: SocketAddr, vhost: Option<SocketAddr>, mux: bool) -> TestServer {
    TestServer::start(ServerConfig {
        bind,
        token: TOKEN.into(),
        tcp_mux: mux,
        vhost_http_bind: vhost,
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn server(mux: bool) -> TestServer {
    server_at(SocketAddr::from(([127, 0, 0, 1], 0)), None, mux).await
}

/// TLS on, short reconnect steps, short login timeout (a frozen server holds the handshake).
fn config(srv: &TestServer, mux: bool) -> ClientConfig {
    let addr = srv.bind_addr();
    let mut cfg = ClientConfig::new(addr.ip().to_string(), addr.port(), TOKEN);
    cfg.user = "u1".into();
    cfg.tcp_mux = mux;
    cfg.tls = TlsConfig::default();
    cfg.pool_count = 2;
    cfg.login_timeout = Duration::from_secs(2);
    cfg.reconnect = ReconnectPolicy::new(
        Duration::from_millis(10),
        Duration::from_millis(100),
        Duration::from_millis(10),
    );
    cfg
}

fn at(srv: &TestServer, port: u16) -> SocketAddr {
    SocketAddr::new(srv.bind_addr().ip(), port)
}

fn remote_port(ready: &[expose::frp::ProxyReady], name: &str) -> u16 {
    ready
        .iter()
        .find(|p| p.name == name)
        .and_then(|p| p.remote_port)
        .unwrap()
}

/// A transfer through an echo that runs until the connection breaks; counts bytes echoed back.
/// Never panics (it is meant to be cut).
fn endless_transfer(addr: SocketAddr, echoed: Arc<AtomicU64>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(s) = TcpStream::connect(addr).await else {
            return;
        };
        let (mut r, mut w) = s.into_split();
        let writer = async move {
            let buf = vec![0x5au8; 64 * 1024];
            while w.write_all(&buf).await.is_ok() {}
        };
        let reader = async move {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = r.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                echoed.fetch_add(n as u64, Ordering::Relaxed);
            }
        };
        tokio::select! {
            _ = writer => {}
            _ = reader => {}
        }
    })
}

/// The first `Reconnecting` event's cause, waiting at most `within`.
async fn next_reconnecting(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    within: Duration,
) -> Option<String> {
    tokio::time::timeout(within, async {
        loop {
            match events.recv().await {
                Ok(Event::Reconnecting { cause, .. }) => return cause,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => std::future::pending::<()>().await,
            }
        }
    })
    .await
    .ok()
}

// ---------------------------------------------------------------------------------------------
// Server dies mid-transfer and comes back

/// One kill/restart cycle with a transfer in flight; returns the restarted server.
async fn kill_mid_transfer_and_restart(
    srv: TestServer,
    client: &Client,
    mux: bool,
    echo_port: u16,
    url: &str,
) -> TestServer {
    let bind = srv.bind_addr();
    let vhost = srv.vhost_http_addr();
    let echoed = Arc::new(AtomicU64::new(0));
    let transfer = endless_transfer(at(&srv, echo_port), echoed.clone());
    assert!(
        eventually(WAIT, || echoed.load(Ordering::Relaxed) >= 256 * 1024).await,
        "transfer did not start"
    );
    if tokio::time::timeout(WAIT, srv.kill_and_wait())
        .await
        .is_err()
    {
        panic!(
            "the test server did not stop: {:#?}",
            srv.snapshot().controls
        );
    }
    drop(srv);
    // The visitor's connection is cut with the server; it must not hang.
    tokio::time::timeout(Duration::from_secs(10), transfer)
        .await
        .expect("in-flight transfer ended when the server died")
        .unwrap();

    let srv = server_at(bind, Some(vhost), mux).await;
    srv.wait_for(
        |s| s.proxies.contains_key("u1.echo") && s.proxies.contains_key("u1.web"),
        WAIT,
    )
    .await
    .expect("proxies re-registered on the restarted server");
    let again = ready(client).await;
    // Same public endpoints as before the restart.
    assert_eq!(remote_port(&again, "echo"), echo_port);
    let web = again.iter().find(|p| p.name == "web").unwrap();
    assert_eq!(web.url.as_deref(), Some(url));
    assert_eq!(
        echo_roundtrip(at(&srv, echo_port), 256 * 1024, 99).await,
        256 * 1024
    );
    let (status, body) = http_get(srv.vhost_http_addr(), "web.tunnel.test", "/again").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(body, "hello /again via web.tunnel.test\n");
    srv
}

/// Waits until no work connection is splicing and the dust has settled.
async fn settle(client: &Client) {
    assert!(
        eventually(Duration::from_secs(10), || client.stats().active_work_conns
            == 0)
        .await,
        "work connections still active: {:?}",
        client.stats()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
}

async fn restart_cycles(mux: bool, cycles: usize) {
    let _serial = SERIAL.lock().await;
    let echo = echo_server().await;
    let web = http_server().await;
    let mut srv = server(mux).await;
    // Fixed public port for the tcp proxy, so "the same remote port works again" is checked.
    let echo_port = dead_port().await;
    let client = Client::start(
        config(&srv, mux)
            .proxy(ProxyConfig::tcp("echo", echo.port(), echo_port))
            .proxy(ProxyConfig::http("web", web.port(), "web")),
    )
    .unwrap();
    let first = ready(&client).await;
    let url = first
        .iter()
        .find(|p| p.name == "web")
        .unwrap()
        .url
        .clone()
        .unwrap();

    // Warm up (allocator arenas, lazily built state), then take the baseline.
    const WARMUP: usize = 3;
    for _ in 0..WARMUP {
        srv = kill_mid_transfer_and_restart(srv, &client, mux, echo_port, &url).await;
    }
    settle(&client).await;
    let tasks_before = alive_tasks();
    let rss_before = rss_bytes();

    let started = Instant::now();
    for _ in 0..cycles {
        srv = kill_mid_transfer_and_restart(srv, &client, mux, echo_port, &url).await;
    }
    let took = started.elapsed();
    settle(&client).await;
    let tasks_after = alive_tasks();
    let rss_after = rss_bytes();

    let stats = client.stats();
    assert!(
        stats.reconnects >= (WARMUP + cycles) as u64,
        "one re-login per restart: {stats:?}"
    );
    eprintln!(
        "{cycles} restart cycles (mux={mux}) in {took:?}; tasks {tasks_before} -> {tasks_after}; \
         RSS {:?} -> {:?} KiB",
        rss_before.map(|b| b / 1024),
        rss_after.map(|b| b / 1024)
    );
    // A leak of one task per cycle would show as +cycles; pooled work connections and the
    // server's own tasks vary by a few between two quiet moments.
    assert!(
        tasks_after <= tasks_before + 20,
        "tasks grew from {tasks_before} to {tasks_after} over {cycles} reconnects"
    );
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        // Each cycle moves a few MiB and rebuilds a TLS session, a yamux session, a server
        // and its certificate; leaking any of those per cycle would exceed this.
        assert!(
            after <= before + 16 * MIB,
            "RSS grew by {} KiB over {cycles} reconnects",
            (after - before) / 1024
        );
    }
    client.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_mid_transfer_50_times_over_mux_no_task_or_memory_leak() {
    restart_cycles(true, 50).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_mid_transfer_20_times_without_mux_no_task_or_memory_leak() {
    restart_cycles(false, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_backs_off_while_the_server_is_down() {
    let _serial = SERIAL.lock().await;
    let echo = echo_server().await;
    let srv = server(true).await;
    let bind = srv.bind_addr();
    let mut cfg = config(&srv, true).proxy(ProxyConfig::tcp("echo", echo.port(), 0));
    cfg.reconnect = ReconnectPolicy::new(
        Duration::from_millis(50),
        Duration::from_millis(400),
        Duration::from_millis(20),
    );
    let client = Client::start(cfg).unwrap();
    ready(&client).await;
    let mut events = client.events();
    srv.kill_and_wait().await;
    drop(srv);
    let down = Duration::from_millis(2500);
    tokio::time::sleep(down).await;
    let mut delays = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let Event::Reconnecting { delay, .. } = e {
            delays.push(delay);
        }
    }
    // First the quick restart after the session died, then failed logins backing off
    // exponentially from `base` up to `max` (plus at most 10 % jitter).
    assert!(delays.len() >= 4, "{delays:?}");
    assert!(
        delays.len() <= 15,
        "too many attempts in {down:?}: {delays:?}"
    );
    assert!(delays[0] <= Duration::from_millis(22), "{delays:?}");
    let failed = &delays[1..];
    assert!(failed[0] >= Duration::from_millis(50), "{delays:?}");
    for w in failed.windows(2) {
        assert!(
            w[1] >= w[0].min(Duration::from_millis(400)) - Duration::from_millis(40),
            "backoff shrank: {delays:?}"
        );
    }
    assert!(
        failed.iter().all(|d| *d <= Duration::from_millis(440)),
        "{delays:?}"
    );
    assert!(
        failed.iter().any(|d| *d >= Duration::from_millis(400)),
        "{delays:?}"
    );

    let srv = server_at(bind, None, true).await;
    srv.wait_for(|s| s.proxies.contains_key("u1.echo"), WAIT)
        .await
        .expect("back after the server returned");
    client.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Half-open server

const HB_INTERVAL: Duration = Duration::from_millis(200);
const HB_TIMEOUT: Duration = Duration::from_millis(1500);

fn heartbeat_config(srv: &TestServer, mux: bool) -> ClientConfig {
    let mut cfg = config(srv, mux);
    cfg.heartbeat_interval = Some(HB_INTERVAL);
    cfg.heartbeat_timeout = HB_TIMEOUT;
    cfg
}

/// Waits for the loss after a freeze and checks it came from the heartbeat, in time.
async fn expect_heartbeat_loss(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    frozen_at: Instant,
) {
    let cause = next_reconnecting(events, Duration::from_secs(10))
        .await
        .expect("the frozen server was noticed");
    let took = frozen_at.elapsed();
    assert!(cause.contains("Pong"), "{cause}");
    // The last Pong came at most one interval before the freeze.
    assert!(
        took >= HB_TIMEOUT - HB_INTERVAL,
        "detected too early: {took:?}"
    );
    assert!(
        took <= HB_TIMEOUT + Duration::from_millis(800),
        "detected after {took:?}, heartbeat timeout {HB_TIMEOUT:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_server_without_mux_is_detected_within_the_heartbeat_timeout() {
    let _serial = SERIAL.lock().await;
    let srv = server(false).await;
    let echo = echo_server().await;
    let client = Client::start(heartbeat_config(&srv, false).proxy(ProxyConfig::tcp(
        "echo",
        echo.port(),
        0,
    )))
    .unwrap();
    let port = remote_port(&ready(&client).await, "echo");
    let mut events = client.events();
    let frozen_at = Instant::now();
    srv.freeze();
    expect_heartbeat_loss(&mut events, frozen_at).await;
    srv.thaw();
    srv.wait_for(
        |s| s.accepted_logins().count() >= 2 && s.proxies.contains_key("u1.echo"),
        WAIT,
    )
    .await
    .expect("re-registered after the thaw");
    ready(&client).await;
    assert_eq!(echo_roundtrip(at(&srv, port), MIB, 5).await, MIB);
    client.shutdown().await.unwrap();
}

async fn freeze_mid_transfer(mux: bool) {
    let _serial = SERIAL.lock().await;
    let srv = server(mux).await;
    let echo = echo_server().await;
    let client =
        Client::start(heartbeat_config(&srv, mux).proxy(ProxyConfig::tcp("echo", echo.port(), 0)))
            .unwrap();
    let port = remote_port(&ready(&client).await, "echo");
    // Long enough to be in flight at the freeze; without tcpMux it completes after the thaw.
    let total = 128 * MIB;
    let progress = Arc::new(AtomicU64::new(0));
    let transfer = tokio::spawn(echo_roundtrip_checked(
        at(&srv, port),
        total,
        11,
        progress.clone(),
    ));
    assert!(
        eventually(WAIT, || progress.load(Ordering::Relaxed) >= 4 * MIB).await,
        "transfer did not start"
    );
    let mut events = client.events();
    let frozen_at = Instant::now();
    srv.freeze();
    let at_freeze = progress.load(Ordering::Relaxed);
    expect_heartbeat_loss(&mut events, frozen_at).await;
    if mux {
        // Losing the session closes the yamux connection and every stream on it.
        assert!(
            eventually(Duration::from_secs(5), || client.stats().active_work_conns
                == 0)
            .await,
            "splice still active after the session was dropped: {:?}",
            client.stats()
        );
    }
    // Nothing moved while the server was silent (a little may have been in flight).
    assert!(progress.load(Ordering::Relaxed) <= at_freeze + 16 * MIB);
    srv.thaw();
    let outcome = tokio::time::timeout(Duration::from_secs(30), transfer)
        .await
        .expect("the in-flight transfer ended after the thaw")
        .unwrap();
    if mux {
        // Its stream died with the session: cut, but never corrupt.
        let err = outcome.expect_err("the stream cannot survive its session");
        assert!(!err.contains("corrupt"), "{err}");
    } else {
        // Without tcpMux a work connection is its own TCP connection, independent of the
        // control: it resumes after the thaw and every byte arrives intact (as with Go frpc).
        assert_eq!(outcome, Ok(total));
    }
    srv.wait_for(
        |s| s.accepted_logins().count() >= 2 && s.proxies.contains_key("u1.echo"),
        WAIT,
    )
    .await
    .expect("re-registered after the thaw");
    ready(&client).await;
    assert_eq!(echo_roundtrip(at(&srv, port), 8 * MIB, 12).await, 8 * MIB);
    client.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_frozen_mid_transfer_over_mux_is_detected_and_the_stream_cut() {
    freeze_mid_transfer(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_frozen_mid_transfer_without_mux_is_detected_and_the_transfer_resumes() {
    freeze_mid_transfer(false).await;
}

// ---------------------------------------------------------------------------------------------
// Back-pressure

/// A local service that writes `total` pattern bytes to each connection, counting what the
/// kernel took.
async fn flood_server(total: u64, seed: u64, written: Arc<AtomicU64>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let written = written.clone();
            tokio::spawn(async move {
                let mut p = Pattern::new(seed);
                let mut buf = vec![0u8; 64 * 1024];
                let mut sent = 0u64;
                while sent < total {
                    let n = ((total - sent) as usize).min(buf.len());
                    p.fill(&mut buf[..n]);
                    if s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                    sent += n as u64;
                    written.store(sent, Ordering::Relaxed);
                }
                let _ = s.shutdown().await;
                // Stay until the peer is done (frp has no half-close).
                let mut sink = [0u8; 1];
                let _ = s.read(&mut sink).await;
            });
        }
    });
    addr
}

/// A local service that reads and checks `total` pattern bytes, counting them, but stops after
/// the first `head` bytes until `go` is set.
async fn lazy_sink_server(
    total: u64,
    head: u64,
    seed: u64,
    go: Arc<tokio::sync::Notify>,
    verified: Arc<AtomicU64>,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let mut p = Pattern::new(seed);
        let mut got = vec![0u8; 64 * 1024];
        let mut want = vec![0u8; 64 * 1024];
        let mut n_ok = 0u64;
        let mut paused = false;
        while n_ok < total {
            if !paused && n_ok >= head {
                paused = true;
                go.notified().await;
            }
            let room = (64 * 1024 - (n_ok % (64 * 1024)) as usize).min((total - n_ok) as usize);
            let n = match s.read(&mut got[..room]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let off = (n_ok % (64 * 1024)) as usize;
            if off == 0 {
                let m = ((total - n_ok) as usize).min(want.len());
                p.fill(&mut want[..m]);
            }
            if got[..n] != want[off..off + n] {
                return;
            }
            n_ok += n as u64;
            verified.store(n_ok, Ordering::Relaxed);
        }
    });
    addr
}

/// Waits until `counter` has not moved for `quiet`, at most `limit`; returns its value.
async fn until_stalled(counter: &AtomicU64, quiet: Duration, limit: Duration) -> u64 {
    let deadline = Instant::now() + limit;
    let mut last = counter.load(Ordering::Relaxed);
    let mut since = Instant::now();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = counter.load(Ordering::Relaxed);
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            break;
        }
    }
    last
}

/// Checks that other visitors of the same client keep flowing while one connection is stuck.
async fn others_keep_flowing(srv: &TestServer, echo_port: u16) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..8u64 {
        let addr = at(srv, echo_port);
        tasks.push(tokio::spawn(async move {
            echo_roundtrip(addr, 4 * MIB, 100 + i).await
        }));
    }
    for t in tasks {
        let r = tokio::time::timeout(Duration::from_secs(20), t)
            .await
            .expect("other connections kept flowing")
            .unwrap();
        assert_eq!(r, 4 * MIB);
    }
    eprintln!(
        "8 x 4 MiB echo beside the stuck connection took {:?}",
        started.elapsed()
    );
}

const GIB: u64 = 1 << 30;
/// What one stuck connection may add to RSS: its buffers are fixed (64 KiB splice buffers and
/// a 256 KiB yamux window on each side), so tens of MiB already means unbounded buffering.
const STUCK_RSS_BOUND: u64 = 32 * MIB;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visitor_that_stops_reading_holds_memory_bounded_and_others_flow() {
    let _serial = SERIAL.lock().await;
    let srv = server(true).await;
    let echo = echo_server().await;
    let written = Arc::new(AtomicU64::new(0));
    let flood = flood_server(GIB, 77, written.clone()).await;
    let client = Client::start(
        config(&srv, true)
            .proxy(ProxyConfig::tcp("flood", flood.port(), 0))
            .proxy(ProxyConfig::tcp("echo", echo.port(), 0)),
    )
    .unwrap();
    let ready = ready(&client).await;
    let (flood_port, echo_port) = (remote_port(&ready, "flood"), remote_port(&ready, "echo"));
    // Warm the data path, then take the baseline.
    others_keep_flowing(&srv, echo_port).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_before = rss_bytes();

    // The visitor connects and never reads while the service writes 1 GiB.
    let visitor = TcpStream::connect(at(&srv, flood_port)).await.unwrap();
    let stalled = until_stalled(&written, Duration::from_millis(700), WAIT).await;
    assert!(
        stalled < 64 * MIB,
        "{} MiB left the local service towards a visitor that reads nothing",
        stalled / MIB
    );
    others_keep_flowing(&srv, echo_port).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_stuck = rss_bytes();
    let still = written.load(Ordering::Relaxed);
    assert!(
        still < stalled + 4 * MIB,
        "service kept writing: {stalled} -> {still}"
    );
    eprintln!(
        "stuck visitor: {} KiB in flight; RSS {:?} -> {:?} KiB",
        still / 1024,
        rss_before.map(|b| b / 1024),
        rss_stuck.map(|b| b / 1024)
    );
    if let (Some(before), Some(stuck)) = (rss_before, rss_stuck) {
        assert!(
            stuck <= before + STUCK_RSS_BOUND,
            "RSS grew by {} KiB while one visitor was not reading",
            stuck.saturating_sub(before) / 1024
        );
    }

    // Now the visitor reads: the whole GiB arrives, in order, intact.
    let mut visitor = visitor;
    let mut p = Pattern::new(77);
    let mut got = vec![0u8; 64 * 1024];
    let mut want = vec![0u8; 64 * 1024];
    let mut n_ok = 0u64;
    let read_all = async {
        while n_ok < GIB {
            let room = 64 * 1024 - (n_ok % (64 * 1024)) as usize;
            let n = visitor.read(&mut got[..room]).await.unwrap();
            assert!(n > 0, "ended after {n_ok} bytes");
            let off = (n_ok % (64 * 1024)) as usize;
            if off == 0 {
                p.fill(&mut want);
            }
            assert!(got[..n] == want[off..off + n], "corrupt at byte {n_ok}");
            n_ok += n as u64;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read_all)
        .await
        .expect("1 GiB read after the stall");
    client.shutdown().await.unwrap();
}

/// What the visitor of a stalled local service sends (the stall is what is tested; the
/// visitor-side test already moves a whole GiB after its stall).
const SINK_TOTAL: u64 = 256 * MIB;

/// The engine's shared yamux window growth budget (`MUX_WINDOW_GROWTH` in
/// src/frp/transport/mux.rs): what busy streams of one session may buffer beyond 256 KiB each.
const WINDOW_GROWTH: u64 = 64 * MIB;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_service_that_stops_reading_holds_memory_bounded_and_others_flow() {
    stalled_local_service(0, 64 * MIB, STUCK_RSS_BOUND).await;
}

/// The service first reads fast (so the stream's yamux window grows), then stops: what the
/// client buffers is bounded by the session's window growth budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_service_that_stalls_after_a_fast_start_holds_memory_bounded() {
    stalled_local_service(
        128 * MIB,
        WINDOW_GROWTH + 32 * MIB,
        WINDOW_GROWTH + STUCK_RSS_BOUND,
    )
    .await;
}

/// A visitor writes [`SINK_TOTAL`] bytes to a local service that stops reading after `head`
/// bytes: at most `in_flight` bytes leave the visitor meanwhile and RSS grows by at most
/// `rss_bound`; other visitors keep flowing; once the service reads again, everything arrives.
async fn stalled_local_service(head: u64, in_flight: u64, rss_bound: u64) {
    let _serial = SERIAL.lock().await;
    let srv = server(true).await;
    let echo = echo_server().await;
    let go = Arc::new(tokio::sync::Notify::new());
    let verified = Arc::new(AtomicU64::new(0));
    let sink = lazy_sink_server(SINK_TOTAL, head, 78, go.clone(), verified.clone()).await;
    let client = Client::start(
        config(&srv, true)
            .proxy(ProxyConfig::tcp("sink", sink.port(), 0))
            .proxy(ProxyConfig::tcp("echo", echo.port(), 0)),
    )
    .unwrap();
    let ready = ready(&client).await;
    let (sink_port, echo_port) = (remote_port(&ready, "sink"), remote_port(&ready, "echo"));
    others_keep_flowing(&srv, echo_port).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_before = rss_bytes();

    // The visitor writes 256 MiB; the local service reads `head` of them, then nothing.
    let sent = Arc::new(AtomicU64::new(0));
    let sent2 = sent.clone();
    let visitor = TcpStream::connect(at(&srv, sink_port)).await.unwrap();
    let (vr, mut vw) = visitor.into_split();
    let writer = tokio::spawn(async move {
        let mut p = Pattern::new(78);
        let mut buf = vec![0u8; 64 * 1024];
        let mut n_sent = 0u64;
        while n_sent < SINK_TOTAL {
            p.fill(&mut buf);
            vw.write_all(&buf).await.unwrap();
            n_sent += buf.len() as u64;
            sent2.store(n_sent, Ordering::Relaxed);
        }
        vw
    });
    let stalled = until_stalled(&sent, Duration::from_millis(700), WAIT).await;
    let buffered = stalled - verified.load(Ordering::Relaxed);
    assert!(
        buffered < in_flight,
        "{} MiB in flight towards a local service that stopped reading",
        buffered / MIB
    );
    others_keep_flowing(&srv, echo_port).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_stuck = rss_bytes();
    eprintln!(
        "local service stuck after {} MiB: {} KiB in flight; RSS {:?} -> {:?} KiB",
        head / MIB,
        (sent.load(Ordering::Relaxed) - verified.load(Ordering::Relaxed)) / 1024,
        rss_before.map(|b| b / 1024),
        rss_stuck.map(|b| b / 1024)
    );
    if let (Some(before), Some(stuck)) = (rss_before, rss_stuck) {
        assert!(
            stuck <= before + rss_bound,
            "RSS grew by {} KiB while the local service was not reading",
            stuck.saturating_sub(before) / 1024
        );
    }
    // The service starts reading: everything arrives intact.
    go.notify_one();
    let _vw = tokio::time::timeout(Duration::from_secs(60), writer)
        .await
        .expect("the visitor finished writing")
        .unwrap();
    assert!(
        eventually(Duration::from_secs(30), || verified.load(Ordering::Relaxed)
            == SINK_TOTAL)
        .await,
        "service verified {} of {SINK_TOTAL} bytes",
        verified.load(Ordering::Relaxed)
    );
    drop(vr);
    client.shutdown().await.unwrap();
}

/// An echo that reads 16 KiB at a time and waits 5 ms before echoing each chunk.
async fn slow_echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    if s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_local_service_gets_every_byte_and_does_not_slow_the_others() {
    let _serial = SERIAL.lock().await;
    let srv = server(true).await;
    let echo = echo_server().await;
    let slow = slow_echo_server().await;
    let client = Client::start(
        config(&srv, true)
            .proxy(ProxyConfig::tcp("slow", slow.port(), 0))
            .proxy(ProxyConfig::tcp("echo", echo.port(), 0)),
    )
    .unwrap();
    let ready = ready(&client).await;
    let (slow_port, echo_port) = (remote_port(&ready, "slow"), remote_port(&ready, "echo"));
    let slow_addr = at(&srv, slow_port);
    let slow_task = tokio::spawn(async move {
        let started = Instant::now();
        let n = echo_roundtrip(slow_addr, 2 * MIB, 31).await;
        (n, started.elapsed())
    });
    others_keep_flowing(&srv, echo_port).await;
    let (n, took) = tokio::time::timeout(Duration::from_secs(30), slow_task)
        .await
        .expect("slow transfer finished")
        .unwrap();
    assert_eq!(n, 2 * MIB);
    // At most 16 KiB per 5 ms: the service really was slow, and it still got everything.
    assert!(took >= Duration::from_millis(500), "{took:?}");
    client.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Local service refuses or resets

/// Sets SO_LINGER 0 and drops the socket, so the kernel sends RST instead of FIN.
fn reset(s: TcpStream) {
    let sock = socket2::SockRef::from(&s);
    sock.set_linger(Some(Duration::ZERO)).unwrap();
    drop(s);
}

/// An HTTP service: `/reset-mid` sends half of a declared body then resets, `/reset-now`
/// resets before answering, anything else gets a normal `200`.
async fn resetting_http_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut chunk = [0u8; 1024];
                while find(&head, b"\r\n\r\n").is_none() {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&chunk[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head).to_string();
                let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                match path.as_str() {
                    "/reset-now" => reset(s),
                    "/reset-mid" => {
                        let _ = s
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                            .await;
                        let _ = s.write_all(&[b'x'; 50_000]).await;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        reset(s);
                    }
                    _ => {
                        let _ = s
                            .write_all(
                                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                            )
                            .await;
                    }
                }
            });
        }
    });
    addr
}

/// Raw GET through the vhost: (bytes received, whether the connection ended by itself).
async fn raw_get(vhost: SocketAddr, host: &str, path: &str) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(vhost).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (got, ended)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_resets_give_visitors_a_prompt_close_and_the_client_stays_healthy() {
    let _serial = SERIAL.lock().await;
    let srv = server(true).await;
    let web = resetting_http_server().await;
    let client =
        Client::start(config(&srv, true).proxy(ProxyConfig::http("web", web.port(), "rst")))
            .unwrap();
    ready(&client).await;
    let host = "rst.tunnel.test";
    for round in 0..20 {
        // Reset before any byte: the visitor sees the connection close (no bytes, or a 502).
        let (got, ended) = raw_get(srv.vhost_http_addr(), host, "/reset-now").await;
        assert!(ended, "round {round}: visitor left hanging after a reset");
        let text = String::from_utf8_lossy(&got);
        assert!(
            got.is_empty() || text.starts_with("HTTP/1.1 502"),
            "round {round}: {text:?}"
        );
        // Reset mid-response: a truncated body, then the connection closes.
        let (got, ended) = raw_get(srv.vhost_http_addr(), host, "/reset-mid").await;
        assert!(ended, "round {round}: visitor left hanging after a reset");
        assert!(got.len() < 100_000, "round {round}: {} bytes", got.len());
        assert!(
            got.is_empty() || got.starts_with(b"HTTP/1.1 200 OK"),
            "round {round}"
        );
        // And the next request works.
        let (status, body) = http_get(srv.vhost_http_addr(), host, "/fine").await;
        assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", "ok"));
    }
    assert!(
        eventually(Duration::from_secs(5), || client.stats().active_work_conns
            == 0)
        .await,
        "{:?}",
        client.stats()
    );
    assert_eq!(
        client.stats().reconnects,
        0,
        "resets never cost the session"
    );
    client.shutdown().await.unwrap();
}

/// An echo that resets each connection after echoing `after` bytes.
async fn resetting_echo_server(after: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let mut done = 0;
                while done < after {
                    let n = match s.read(&mut buf[..(after - done).min(16 * 1024)]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                    done += n;
                }
                reset(s);
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_refusals_and_resets_on_tcp_end_only_that_connection() {
    let _serial = SERIAL.lock().await;
    let srv = server(true).await;
    let echo = echo_server().await;
    let resetting = resetting_echo_server(256 * 1024).await;
    let refused = dead_port().await;
    let client = Client::start(
        config(&srv, true)
            .proxy(ProxyConfig::tcp("rst", resetting.port(), 0))
            .proxy(ProxyConfig::tcp("refused", refused, 0))
            .proxy(ProxyConfig::http("web502", refused, "down"))
            .proxy(ProxyConfig::tcp("echo", echo.port(), 0)),
    )
    .unwrap();
    let ready = ready(&client).await;
    let rst_port = remote_port(&ready, "rst");
    let refused_port = remote_port(&ready, "refused");
    let echo_port = remote_port(&ready, "echo");
    // A healthy transfer runs through the same session the whole time.
    let healthy = tokio::spawn(echo_roundtrip_checked(
        at(&srv, echo_port),
        64 * MIB,
        3,
        Arc::new(AtomicU64::new(0)),
    ));
    for round in 0..10u64 {
        let progress = Arc::new(AtomicU64::new(0));
        let r = tokio::time::timeout(
            Duration::from_secs(10),
            echo_roundtrip_checked(at(&srv, rst_port), 4 * MIB, round, progress.clone()),
        )
        .await
        .expect("visitor of a resetting service left hanging");
        let err = r.expect_err("the service resets after 256 KiB");
        assert!(!err.contains("corrupt"), "round {round}: {err}");
        assert!(progress.load(Ordering::Relaxed) <= 256 * 1024);

        let mut s = TcpStream::connect(at(&srv, refused_port)).await.unwrap();
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("visitor of a refusing service left hanging")
            .unwrap_or(0);
        assert_eq!(
            n, 0,
            "round {round}: tcp visitors of a refusing service get a close"
        );

        let (status, _) = http_get(srv.vhost_http_addr(), "down.tunnel.test", "/").await;
        assert_eq!(status, "HTTP/1.1 502 Bad Gateway", "round {round}");
    }
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(60), healthy)
            .await
            .expect("healthy transfer finished")
            .unwrap(),
        Ok(64 * MIB)
    );
    assert!(
        eventually(Duration::from_secs(5), || client.stats().active_work_conns
            == 0)
        .await,
        "{:?}",
        client.stats()
    );
    assert_eq!(client.stats().reconnects, 0);
    client.shutdown().await.unwrap();
}
