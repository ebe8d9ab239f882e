//! Helpers shared by the end-to-end tests: local services to expose and clients that visit them.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An echo service on 127.0.0.1: every connection gets its bytes back.
pub async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// An HTTP/1.1 service answering every request with `200` and a body naming the path; keeps
/// connections alive so several requests can share one.
pub async fn http_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let head_end = loop {
                        if let Some(i) = find(&buf, b"\r\n\r\n") {
                            break i + 4;
                        }
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    buf.drain(..head_end);
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let host = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Host: "))
                        .unwrap_or("")
                        .to_owned();
                    let body = format!("hello {path} via {host}\n");
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if s.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                    if head.to_ascii_lowercase().contains("\r\nconnection: close") {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Index of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One HTTP GET through `addr` with the given Host header; returns (status line, body).
pub async fn http_get(addr: SocketAddr, host: &str, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut resp)).await;
    let text = String::from_utf8_lossy(&resp).to_string();
    let status = text.lines().next().unwrap_or("").to_owned();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A deterministic byte pattern (xorshift), so both ends can checksum without storing data.
pub struct Pattern(u64);

impl Pattern {
    pub fn new(seed: u64) -> Self {
        Pattern(seed | 1)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let bytes = self.0.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// Sends `total` pattern bytes to an echo service through `addr` and checks every byte that
/// comes back, both directions at once. Returns the bytes verified.
pub async fn echo_roundtrip(addr: SocketAddr, total: u64, seed: u64) -> u64 {
    let s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let (mut r, mut w) = s.into_split();
    let writer = tokio::spawn(async move {
        let mut p = Pattern::new(seed);
        let mut buf = vec![0u8; 256 * 1024];
        let mut sent = 0u64;
        while sent < total {
            let n = ((total - sent) as usize).min(buf.len()) & !7;
            let n = if n == 0 { (total - sent) as usize } else { n };
            p.fill(&mut buf[..n]);
            w.write_all(&buf[..n]).await.unwrap();
            sent += n as u64;
        }
        w
    });
    let mut expect = Pattern::new(seed);
    let mut want = vec![0u8; 256 * 1024];
    let mut got = vec![0u8; 256 * 1024];
    let mut pending = 0usize; // valid bytes at the start of `want` not yet matched
    let mut offset = 0usize;
    let mut received = 0u64;
    while received < total {
        let n = r.read(&mut got).await.unwrap();
        assert!(n > 0, "stream ended after {received} of {total} bytes");
        let mut i = 0;
        while i < n {
            if offset == pending {
                let m = ((total - received - i as u64) as usize).min(want.len()) & !7;
                let m = if m == 0 {
                    (total - received - i as u64) as usize
                } else {
                    m
                };
                expect.fill(&mut want[..m]);
                pending = m;
                offset = 0;
            }
            let take = (pending - offset).min(n - i);
            assert_eq!(
                &got[i..i + take],
                &want[offset..offset + take],
                "corrupt data at byte {}",
                received + i as u64
            );
            offset += take;
            i += take;
        }
        received += n as u64;
    }
    let _w = writer.await.unwrap();
    received
}

/// A port on 127.0.0.1 with nothing listening (bound, then released).
pub async fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}
