//! Two `expose frpc -c` processes against the in-repo test frps: one serves an stcp proxy and a
//! udp proxy, the other runs an stcp visitor; a checksummed transfer goes through the visitor's
//! port, and a datagram through the udp proxy.
#![cfg(unix)]

mod common;

use common::*;
use expose::testserver::{ServerConfig, TestServer};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, UdpSocket};
use tokio::process::{Child, Command};

const TOKEN: &str = "frpc-visitors-token-3d1";

fn frpc(file: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_expose"))
        .args(["frpc", "-c", file.to_str().unwrap()])
        .env_remove("EXPOSE_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Reads stdout until a line contains `needle`.
async fn wait_line(child: &mut Child, needle: &str) -> Vec<String> {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let hit = line.contains(needle);
            seen.push(line);
            if hit {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(found, "wanted {needle:?}, got:\n{}", seen.join("\n"));
    // Keep draining so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stcp_visitor_process_reaches_stcp_proxy_process() {
    let srv = TestServer::start(ServerConfig {
        token: TOKEN.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let echo = echo_server().await;
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let udp_port = udp.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, from)) = udp.recv_from(&mut buf).await {
            let _ = udp.send_to(&buf[..n], from).await;
        }
    });
    let bind_port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let port = srv.bind_addr().port();
    let dir = tempfile::tempdir().unwrap();
    let owner_file = dir.path().join("owner.toml");
    std::fs::write(
        &owner_file,
        format!(
            r#"
serverAddr = "127.0.0.1"
serverPort = {port}
user = "owner"
auth.token = "{TOKEN}"

[[proxies]]
name = "ssh"
type = "stcp"
localPort = {echo}
secretKey = "sk-42"
allowUsers = ["guest"]
transport.useEncryption = true

[[proxies]]
name = "dns"
type = "udp"
localPort = {udp_port}
"#,
            echo = echo.port()
        ),
    )
    .unwrap();
    let guest_file = dir.path().join("guest.toml");
    std::fs::write(
        &guest_file,
        format!(
            r#"
serverAddr = "127.0.0.1"
serverPort = {port}
user = "guest"
auth.token = "{TOKEN}"

[[visitors]]
name = "ssh-visitor"
type = "stcp"
serverName = "ssh"
serverUser = "owner"
secretKey = "sk-42"
bindPort = {bind_port}
transport.useEncryption = true
transport.useCompression = true
"#
        ),
    )
    .unwrap();

    let mut owner = frpc(&owner_file);
    wait_line(&mut owner, "[owner.dns] start proxy success").await;
    let mut guest = frpc(&guest_file);
    wait_line(&mut guest, "start visitor success").await;

    let addr: SocketAddr = ([127, 0, 0, 1], bind_port).into();
    let total = 2 * 1024 * 1024;
    let mut last = String::new();
    let mut ok = false;
    for _ in 0..50 {
        match echo_roundtrip_checked(addr, total, 9, Arc::new(AtomicU64::new(0))).await {
            Ok(n) => {
                assert_eq!(n, total);
                ok = true;
                break;
            }
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "no transfer through the visitor: {last}");

    let remote = srv.snapshot().proxies["owner.dns"].remote_port.unwrap();
    let user = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = [0u8; 64];
    let mut echoed = false;
    for _ in 0..50 {
        user.send_to(b"ping", ("127.0.0.1", remote)).await.unwrap();
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_millis(300), user.recv_from(&mut buf)).await
        {
            echoed = &buf[..n] == b"ping";
            break;
        }
    }
    assert!(echoed, "no udp echo");
    drop(guest);
    drop(owner);
}

fn quick(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_expose"))
        .arg("frpc")
        .args(args)
        .env_remove("EXPOSE_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_stcp_proxy_and_visitor_commands() {
    let srv = TestServer::start(ServerConfig {
        token: TOKEN.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let echo = echo_server().await;
    let bind_port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let port = srv.bind_addr().port().to_string();
    let local = echo.port().to_string();
    let bind = bind_port.to_string();
    let common = ["-s", "127.0.0.1", "-P", &port, "-t", TOKEN];
    let mut args = vec!["stcp"];
    args.extend(common);
    args.extend(["-u", "owner", "-n", "ssh", "-l", &local, "--sk", "k9"]);
    args.extend(["--allow_users", "guest", "--ue"]);
    let mut owner = quick(&args);
    let seen = wait_line(&mut owner, "start proxy success").await;
    assert!(
        seen.iter()
            .any(|l| l.contains("[owner.ssh] start proxy success")),
        "{seen:?}"
    );
    // The client-level flags after `visitor`, as frpc's persistent flags allow.
    let mut args = vec!["stcp", "visitor"];
    args.extend(common);
    args.extend(["-u", "guest", "-n", "v", "--server_name", "ssh"]);
    args.extend([
        "--server-user",
        "owner",
        "--sk",
        "k9",
        "--ue",
        "--bind_port",
        &bind,
    ]);
    let mut guest = quick(&args);
    let seen = wait_line(&mut guest, "start visitor success").await;
    let text = seen.join("\n");
    assert!(!text.contains("proxy added"), "{text}");
    assert!(text.contains("visitor added: [guest.v]"), "{text}");
    let addr: SocketAddr = ([127, 0, 0, 1], bind_port).into();
    let mut ok = false;
    for _ in 0..50 {
        if echo_roundtrip_checked(addr, 256 * 1024, 3, Arc::new(AtomicU64::new(0)))
            .await
            .is_ok()
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "no transfer through the quick visitor");

    // frpc's validation message, unprefixed, exit 1.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_expose"))
        .args(["frpc", "sudp", "visitor", "-n", "v", "--server_name", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "bind port is required\n"
    );
    drop(guest);
    drop(owner);
}
