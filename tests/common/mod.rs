//! Helpers shared by the end-to-end tests: local services to expose and clients that visit them.
#![allow(dead_code)]

mod engine;
#[allow(unused_imports)]
pub use engine::*;
mod tls;
#[allow(unused_imports)]
pub use tls::*;

#[cfg(all(feature = "cli", feature = "testserver"))]
mod prime;
#[cfg(all(feature = "cli", feature = "testserver"))]
#[allow(unused_imports)]
pub use prime::*;

#[cfg(unix)]
mod process;
#[cfg(unix)]
#[allow(unused_imports)]
pub use process::*;

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

/// A port on 127.0.0.1 that is free for TCP and UDP now, for a listener the code under test
/// binds itself (a visitor). Chosen at random below the kernel's ephemeral range
/// (32768–60999 here), so the `bind(0)` of a test running in parallel cannot take it between
/// this call and the bind.
pub fn spare_port() -> u16 {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    loop {
        let port = rng.gen_range(20_000..32_000);
        let tcp = std::net::TcpListener::bind(("127.0.0.1", port));
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers for the fault, load, evil-server and security tests (appended).

/// Resident set size of this process in bytes (`VmRSS` in /proc/self/status); `None` where
/// there is no such file.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Tasks alive in the current tokio runtime.
pub fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Polls `f` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub async fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod fd_limit {
    /// `struct rlimit` of glibc/musl on 64-bit Linux (`rlim_t` is `unsigned long`).
    #[repr(C)]
    struct RLimit {
        cur: std::ffi::c_ulong,
        max: std::ffi::c_ulong,
    }

    /// `RLIMIT_NOFILE` on x86_64 and aarch64 Linux.
    const RLIMIT_NOFILE: std::ffi::c_int = 7;

    extern "C" {
        fn getrlimit(resource: std::ffi::c_int, rlim: *mut RLimit) -> std::ffi::c_int;
        fn setrlimit(resource: std::ffi::c_int, rlim: *const RLimit) -> std::ffi::c_int;
    }

    // `c_ulong` is `u64` here, but not by definition.
    #[allow(clippy::unnecessary_cast)]
    pub(super) fn get() -> Option<(u64, u64)> {
        let mut r = RLimit { cur: 0, max: 0 };
        // SAFETY: `r` is a valid, writable `struct rlimit`; getrlimit only writes into it.
        let rc = unsafe { getrlimit(RLIMIT_NOFILE, &mut r) };
        (rc == 0).then_some((r.cur as u64, r.max as u64))
    }

    #[allow(clippy::unnecessary_cast)]
    pub(super) fn set(cur: u64, max: u64) -> bool {
        let r = RLimit {
            cur: cur as std::ffi::c_ulong,
            max: max as std::ffi::c_ulong,
        };
        // SAFETY: `r` is a valid `struct rlimit`; setrlimit only reads it.
        unsafe { setrlimit(RLIMIT_NOFILE, &r) == 0 }
    }
}

/// Makes sure this process may hold `need` open file descriptors: raises the soft limit up to
/// the hard limit, and the hard limit too when the process may (root). Returns the soft limit
/// now in force, or why it stays too low (the caller then skips, saying so).
pub fn ensure_fd_limit(need: u64) -> Result<u64, String> {
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    {
        let (cur, max) =
            fd_limit::get().ok_or_else(|| "getrlimit(RLIMIT_NOFILE) failed".to_string())?;
        if cur >= need {
            return Ok(cur);
        }
        if max >= need {
            if fd_limit::set(need, max) {
                return Ok(need);
            }
        } else if fd_limit::set(need, need) {
            return Ok(need);
        }
        Err(format!(
            "the open-file limit is {cur} (hard {max}) and cannot be raised to {need}; \
             run `ulimit -n {need}` (as root if the hard limit is lower) and try again"
        ))
    }
    #[cfg(not(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )))]
    {
        let _ = need;
        Err("checking the open-file limit is only implemented for 64-bit Linux".into())
    }
}

/// A request/response service for many short requests: each connection sends an 8-byte seed
/// and `req_len` pattern bytes of that seed; the service checks every byte, answers
/// `resp_len` pattern bytes of `seed + 1` and closes first (as an HTTP server with
/// `Connection: close` does, so TIME_WAIT stays on the service's side and the visitors'
/// ephemeral ports are free again at once). A corrupt request is counted and closed unanswered.
pub async fn reqresp_server(
    req_len: usize,
    resp_len: usize,
) -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::sync::atomic::Ordering;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let bad = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let bad2 = bad.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            };
            let bad = bad2.clone();
            tokio::spawn(async move {
                let _ = s.set_nodelay(true);
                let mut req = vec![0u8; 8 + req_len];
                if s.read_exact(&mut req).await.is_err() {
                    bad.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                let seed = u64::from_le_bytes(req[..8].try_into().unwrap());
                let mut want = vec![0u8; req_len];
                Pattern::new(seed).fill(&mut want);
                if want != req[8..] {
                    bad.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                let mut resp = vec![0u8; resp_len];
                Pattern::new(seed.wrapping_add(1)).fill(&mut resp);
                if s.write_all(&resp).await.is_err() {
                    bad.fetch_add(1, Ordering::Relaxed);
                }
                let _ = s.shutdown().await;
            });
        }
    });
    (addr, bad)
}

/// One request to a [`reqresp_server`] through `addr`; checks every byte of the answer and that
/// the connection then ends.
pub async fn reqresp_call(
    addr: SocketAddr,
    seed: u64,
    req_len: usize,
    resp_len: usize,
) -> Result<(), String> {
    let mut s = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = s.set_nodelay(true);
    let mut req = vec![0u8; 8 + req_len];
    req[..8].copy_from_slice(&seed.to_le_bytes());
    Pattern::new(seed).fill(&mut req[8..]);
    s.write_all(&req).await.map_err(|e| format!("write: {e}"))?;
    let mut resp = Vec::with_capacity(resp_len);
    s.read_to_end(&mut resp)
        .await
        .map_err(|e| format!("read: {e}"))?;
    if resp.len() != resp_len {
        return Err(format!("got {} of {resp_len} bytes", resp.len()));
    }
    let mut want = vec![0u8; resp_len];
    Pattern::new(seed.wrapping_add(1)).fill(&mut want);
    if want != resp {
        return Err("corrupt answer".into());
    }
    Ok(())
}

/// Like [`echo_roundtrip`], but reports progress (bytes verified so far) and returns an error
/// instead of panicking when the connection breaks or the data is wrong, for transfers a test
/// expects to be cut.
pub async fn echo_roundtrip_checked(
    addr: SocketAddr,
    total: u64,
    seed: u64,
    progress: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> Result<u64, String> {
    use std::sync::atomic::Ordering;
    let s = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = s.set_nodelay(true);
    let (mut r, mut w) = s.into_split();
    let writer = async move {
        let mut p = Pattern::new(seed);
        let mut buf = vec![0u8; 64 * 1024];
        let mut sent = 0u64;
        while sent < total {
            let n = ((total - sent) as usize).min(buf.len());
            p.fill(&mut buf[..n]);
            if w.write_all(&buf[..n]).await.is_err() {
                return;
            }
            sent += n as u64;
        }
        // Keep the write side open until the reader is done (frp has no half-close).
        std::future::pending::<()>().await;
    };
    let reader = async move {
        let mut expect = Pattern::new(seed);
        let mut got = vec![0u8; 64 * 1024];
        let mut want = vec![0u8; 64 * 1024];
        let mut received = 0u64;
        while received < total {
            // Read at most up to the next 64 KiB boundary so the pattern stays aligned.
            let room =
                (64 * 1024 - (received % (64 * 1024)) as usize).min((total - received) as usize);
            let n = match r.read(&mut got[..room]).await {
                Ok(0) => return Err(format!("stream ended after {received} of {total} bytes")),
                Err(e) => return Err(format!("read after {received} bytes: {e}")),
                Ok(n) => n,
            };
            let off = (received % (64 * 1024)) as usize;
            if off == 0 {
                let m = ((total - received) as usize).min(want.len());
                expect.fill(&mut want[..m]);
            }
            if got[..n] != want[off..off + n] {
                return Err(format!("corrupt data at byte {received}"));
            }
            received += n as u64;
            progress.store(received, Ordering::Relaxed);
        }
        Ok(received)
    };
    tokio::select! {
        r = reader => r,
        _ = writer => Err("write failed".into()),
    }
}

static WORKER_PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Counts panics in runtime worker threads (where the engine's tasks run; a test's own
/// assertions run on the test's thread), which tokio would otherwise swallow. Call once per
/// test before starting the client; read the count with [`worker_panics`].
pub fn count_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            if thread
                .name()
                .is_some_and(|n| n.starts_with("tokio-runtime-worker"))
            {
                WORKER_PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            default(info);
        }));
    });
}

/// Panics seen in runtime worker threads since [`count_panics`] was first called.
pub fn worker_panics() -> usize {
    WORKER_PANICS.load(std::sync::atomic::Ordering::SeqCst)
}
