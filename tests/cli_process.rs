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
