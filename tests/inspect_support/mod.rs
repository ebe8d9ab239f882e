//! What the inspector tests share: the test frps, a local HTTP service that says what it
//! received, `expose http` as a child process, and plain HTTP calls.
#![allow(dead_code)]

use expose::testserver::{ServerConfig, TestServer};
use serde_json::Value;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

pub const TOKEN: &str = "inspect-token-41c";

/// The secret the tests send; it must never show in a masked answer.
pub const BEARER: &str = "Bearer s3cr3t-token-value";

pub async fn frps() -> TestServer {
    TestServer::start(ServerConfig {
        token: TOKEN.into(),
        ..Default::default()
    })
    .await
    .unwrap()
}

/// A local service answering each request with JSON naming its method, path, body, whether
/// the Authorization header was [`BEARER`], and a running count; it sets a cookie.
pub async fn echo_service() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut r = BufReader::new(s);
                loop {
                    let mut start = String::new();
                    if r.read_line(&mut start).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let mut len = 0usize;
                    let mut auth = String::new();
                    let mut close = false;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        let (n, v) = line.split_once(':').unwrap_or((line, ""));
                        let v = v.trim();
                        match n.to_ascii_lowercase().as_str() {
                            "content-length" => len = v.parse().unwrap_or(0),
                            "authorization" => auth = v.to_owned(),
                            "connection" => close = v.eq_ignore_ascii_case("close"),
                            _ => {}
                        }
                    }
                    let mut body = vec![0u8; len];
                    if r.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
                    let mut parts = start.split_whitespace();
                    let answer = serde_json::json!({
                        "method": parts.next(),
                        "path": parts.next(),
                        "body": String::from_utf8_lossy(&body),
                        "auth_ok": auth == BEARER,
                        "n": n,
                    })
                    .to_string();
                    let resp = format!(
                        "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nSet-Cookie: session=cookie-secret-9\r\nContent-Length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    if r.get_mut().write_all(resp.as_bytes()).await.is_err() || close {
                        return;
                    }
                }
            });
        }
    });
    (addr, count)
}

/// `expose http PORT --server … --subdomain SUB --json` plus `extra`.
pub fn expose_http(srv: &TestServer, port: u16, sub: &str, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_expose"))
        .args(["http", &port.to_string(), "--server"])
        .arg(srv.bind_addr().to_string())
        .args(["--subdomain", sub, "--name", sub, "--json"])
        .args(extra)
        .env("FRP_TOKEN", TOKEN)
        .env_remove("EXPOSE_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// The `ready` event from the child's stdout (30 s at most); the rest of stdout is drained in
/// the background so the child never blocks on it.
pub async fn ready(child: &mut Child) -> Value {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let v: Value = serde_json::from_str(&line).expect("JSON on stdout");
            if v["event"] == "ready" {
                return v;
            }
        }
        panic!("stdout ended before the ready event");
    })
    .await
    .expect("ready within 30 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    ready
}

/// One request through the tunnel; returns (status code, body).
pub async fn through_tunnel(
    srv: &TestServer,
    sub: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(srv.vhost_http_addr()).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {sub}.tunnel.test\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut resp))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&resp).to_string();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
    (code, body.unwrap_or_default())
}

/// A client for the inspector that ignores any proxy settings of the environment.
pub fn api() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}
