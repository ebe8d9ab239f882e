//! Driving the `expose` binary as a child process: Ctrl-C, reading its output lines, calling
//! its admin API.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

/// Sends SIGINT (Ctrl-C) to the child.
pub fn interrupt(child: &Child) {
    let pid = child.id().expect("child still running").to_string();
    let ok = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// Reads stdout lines until `count` lines contain `needle` (30 s at most); returns every line
/// read.
pub async fn read_until(
    lines: &mut Lines<BufReader<ChildStdout>>,
    needle: &str,
    count: usize,
) -> Vec<String> {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        let mut n = 0;
        while let Ok(Some(line)) = lines.next_line().await {
            n += usize::from(line.contains(needle));
            seen.push(line);
            if n == count {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(
        found,
        "wanted {count}× {needle:?}, got:\n{}",
        seen.join("\n")
    );
    seen
}

/// One HTTP/1.1 request to an admin API (basic credentials already encoded, if any); returns
/// (status code, body).
pub async fn admin_call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = auth
        .map(|a| format!("Authorization: Basic {a}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut resp))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&resp).to_string();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}
