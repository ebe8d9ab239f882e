//! The real `expose` binary as a process: what it does with its open-file limit and with a
//! console that stops reading. The tunnel goes through the in-repo test frps on loopback
//! (`expose tcp … --server`), so no API is involved.
#![cfg(unix)]

mod common;

use common::*;
use expose::testserver::{ServerConfig, TestServer};
use serde_json::Value;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::Semaphore;

const TOKEN: &str = "proc-token-7d1e";

async fn frps() -> TestServer {
    TestServer::start(ServerConfig {
        token: TOKEN.into(),
        // Hundreds of visitors at once wait in line for work connections.
        user_conn_timeout: Duration::from_secs(60),
        ..Default::default()
    })
    .await
    .unwrap()
}

/// `expose tcp <local_port> --server <srv> --json`, started by `sh` after `sh_setup` (shell
/// commands such as `ulimit -S -n 256`).
fn expose_tcp(srv: &TestServer, local_port: u16, sh_setup: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("{sh_setup}\nexec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_expose"))
        .args(["tcp", &local_port.to_string(), "--server"])
        .arg(srv.bind_addr().to_string())
        .args(["--name", "proc", "--json"])
        .args(extra)
        .env("FRP_TOKEN", TOKEN)
        .env_remove("EXPOSE_LOG")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// The public address from the `ready` line of the child's stdout.
async fn ready_addr(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) -> SocketAddr {
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let v: Value = serde_json::from_str(&line).expect("JSON on stdout");
            if v["event"] == "ready" {
                return v["url"].as_str().unwrap().parse().unwrap();
            }
        }
        panic!("stdout ended before the ready event");
    })
    .await
    .expect("ready in time")
}

fn signal(child: &Child, sig: &str) {
    let pid = child.id().unwrap().to_string();
    let ok = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// Opens a connection through the tunnel and echoes one byte; keeps it open on success.
async fn open_held(addr: SocketAddr, gate: Arc<Semaphore>) -> Option<TcpStream> {
    let _permit = gate.acquire_owned().await.unwrap();
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(b"x").await.ok()?;
    let mut b = [0u8; 1];
    match tokio::time::timeout(Duration::from_secs(20), s.read_exact(&mut b)).await {
        Ok(Ok(_)) if b == *b"x" => Some(s),
        _ => None,
    }
}

/// Started with a soft open-file limit of 256, the binary raises it to the hard limit and
/// holds 400 visitors at once (each one a connection to the local service in the client).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_soft_open_file_limit_is_raised_at_start() {
    const HELD: usize = 400;
    // This process holds each visitor three times over (visitor, server side, echo service).
    if let Err(why) = ensure_fd_limit(4 * HELD as u64 + 256) {
        eprintln!("skipped: {why}");
        return;
    }
    let srv = frps().await;
    let echo = echo_server().await;
    let mut child = expose_tcp(&srv, echo.port(), "ulimit -S -n 256 || exit 97", &[])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = ready_addr(&mut lines).await;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let gate = Arc::new(Semaphore::new(32));
    let tasks: Vec<_> = (0..HELD)
        .map(|_| tokio::spawn(open_held(addr, gate.clone())))
        .collect();
    let mut held = Vec::new();
    for t in tasks {
        if let Some(s) = t.await.unwrap() {
            held.push(s);
        }
    }
    assert_eq!(
        held.len(),
        HELD,
        "visitors held at once through a client started with a soft limit of 256"
    );
    drop(held);
    signal(&child, "-INT");
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// Sends `total` GET requests for `path` over one keep-alive connection, 32 in flight at a
/// time, and reads every response.
async fn many_requests(addr: SocketAddr, host: &str, path: &str, total: usize) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let end = format!("via {host}\n");
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut done = 0;
    while done < total {
        let batch = (total - done).min(32);
        s.write_all(req.repeat(batch).as_bytes()).await.unwrap();
        buf.clear();
        while String::from_utf8_lossy(&buf).matches(&end).count() < batch {
            let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut chunk))
                .await
                .expect("responses in time")
                .unwrap();
            assert!(n > 0, "the tunnel closed the connection");
            buf.extend_from_slice(&chunk[..n]);
        }
        done += batch;
    }
}

/// With stdout a pipe that nobody reads, Ctrl-C is still handled at once: the client leaves
/// the server while the pipe is full. Once the pipe is read, the `closed` event is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_that_does_not_read_never_stalls_ctrl_c() {
    let srv = frps().await;
    let web = http_server().await;
    // An http proxy, so that every request through it prints a `request` line.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_expose"));
    cmd.args(["http", &web.port().to_string(), "--server"])
        .arg(srv.bind_addr().to_string())
        .args(["--name", "con", "--subdomain", "con", "--json", "-q"])
        .env("FRP_TOKEN", TOKEN)
        .env_remove("EXPOSE_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    tokio::spawn(async move {
        let mut sink = Vec::new();
        let _ = stderr.read_to_end(&mut sink).await;
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        let n = tokio::time::timeout(Duration::from_secs(30), stdout.read_line(&mut line))
            .await
            .expect("ready in time")
            .unwrap();
        assert!(n > 0, "stdout ended before the ready event");
        if line.contains("\"ready\"") {
            break;
        }
    }

    // From here on nobody reads stdout. Each request makes a ~250-byte JSON line: 1 500 of them
    // are several times what a pipe holds.
    let host = "con.tunnel.test";
    let path = format!("/{}", "a".repeat(200));
    many_requests(srv.vhost_http_addr(), host, &path, 1500).await;

    // Ctrl-C: the client shuts its session down and leaves the server, all while stdout is
    // still full.
    signal(&child, "-INT");
    let left_server = eventually(Duration::from_secs(10), || {
        srv.snapshot().controls.is_empty()
    })
    .await;
    assert!(
        left_server,
        "Ctrl-C was not handled while the console was not reading"
    );

    // Now read: everything still queued comes out, the `closed` event last.
    let mut rest = String::new();
    tokio::time::timeout(Duration::from_secs(20), stdout.read_to_string(&mut rest))
        .await
        .expect("stdout ends once drained")
        .unwrap();
    let last = rest.lines().last().expect("lines after the fill");
    let closed: Value = serde_json::from_str(last).expect("JSON");
    assert_eq!(closed["event"], "closed", "{last}");
    assert_eq!(closed["ok"], true);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits once the console is read")
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// 300 visitors while nothing listens locally: one warning and one JSON event as it starts,
/// then summaries, never a line per visitor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_flood_to_a_dead_local_service_is_summed_up() {
    const VISITORS: usize = 300;
    let srv = frps().await;
    let port = dead_port().await;
    let mut child = expose_tcp(&srv, port, "", &["-v"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = ready_addr(&mut lines).await;
    let visits = (0..VISITORS).map(|_| async move {
        if let Ok(mut s) = TcpStream::connect(addr).await {
            let _ = s.write_all(b"x").await;
            let mut buf = [0u8; 16];
            let _ = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await;
        }
    });
    futures::future::join_all(visits).await;
    signal(&child, "-INT");
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exited")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let mut stdout = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        stdout.push(line);
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    let events: Vec<Value> = stdout
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "local_unreachable")
        .collect();
    assert!(!events.is_empty(), "no local_unreachable event: {stdout:?}");
    assert_eq!(events[0]["suppressed"], 0);
    // The flood lasts well under one 10 s window: the first report, at most one summary.
    assert!(events.len() <= 2, "{} events: {events:?}", events.len());
    let warnings = stderr
        .lines()
        .filter(|l| l.contains("local service"))
        .count();
    assert!(
        (1..=2).contains(&warnings),
        "{warnings} warning lines on stderr:\n{stderr}"
    );
}
