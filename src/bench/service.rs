//! The local service a bench exposes: one listener, three behaviours chosen by the first byte a
//! connection sends.
//!
//! | first byte | then the visitor sends | the service |
//! | --- | --- | --- |
//! | [`MODE_ECHO`] | anything | echoes every byte, the mode byte included (so connect + 1 byte echo + close is one full round trip) |
//! | [`MODE_SINK`] | a big-endian `u64` length (`u64::MAX`: unbounded), then data | answers [`ACK`], then reads, and every [`REPORT_EVERY`] bytes (and when the length is reached) writes the running total as a big-endian `u64` |
//! | [`MODE_SOURCE`] | a big-endian `u64` length | answers [`ACK`], then writes that many bytes (unbounded: until the visitor goes away) |
//!
//! frp has no half-close (a tunnel closes both directions as soon as one ends), so completion
//! is never signalled with a FIN: the sink reports its count in-band, and the visitor of a
//! source counts what it read. That keeps every measurement on the visitor side, so the same
//! code measures through the tunnel, directly, or across a process or namespace boundary.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// First byte of an echo connection.
pub const MODE_ECHO: u8 = 0x01;
/// First byte of an upload (visitor → service) connection.
pub const MODE_SINK: u8 = 0x02;
/// First byte of a download (service → visitor) connection.
pub const MODE_SOURCE: u8 = 0x03;
/// The byte a sink or source answers its header with, once the path is established.
pub const ACK: u8 = 0xAA;
/// A sink reports its running total at least this often (in bytes received). Small enough
/// that a time-bounded upload loses little at the deadline, large enough to cost nothing.
pub const REPORT_EVERY: u64 = 256 * 1024;
/// Length meaning "no bound" in a sink or source header.
pub const UNBOUNDED: u64 = u64::MAX;

/// Read and write chunk of the service. Large chunks keep the direct baseline as fast as
/// loopback allows, so the ratio shows what the tunnel costs rather than what the service does.
const CHUNK: usize = 256 * 1024;

/// A running local service; dropping it closes the listeners and every connection.
#[derive(Debug)]
pub struct LocalService {
    addrs: Vec<SocketAddr>,
    stop: CancellationToken,
    connections: Arc<AtomicU64>,
}

impl LocalService {
    /// Serves on each of `binds` (use port 0 for a free port). More than one address lets a
    /// bench give the tunnel and the direct baseline different ports, e.g. to delay only one
    /// of them.
    pub async fn start(binds: &[SocketAddr]) -> io::Result<LocalService> {
        if binds.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the bench service needs at least one address",
            ));
        }
        let stop = CancellationToken::new();
        let connections = Arc::new(AtomicU64::new(0));
        let mut addrs = Vec::with_capacity(binds.len());
        for bind in binds {
            let listener = TcpListener::bind(bind).await?;
            addrs.push(listener.local_addr()?);
            tokio::spawn(accept_loop(listener, stop.clone(), connections.clone()));
        }
        Ok(LocalService {
            addrs,
            stop,
            connections,
        })
    }

    /// One service on a free loopback port.
    pub async fn loopback() -> io::Result<LocalService> {
        Self::start(&[SocketAddr::from(([127, 0, 0, 1], 0))]).await
    }

    /// The first listening address (what the tunnel forwards to); `start` guarantees one.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// Every listening address, in the order given to [`LocalService::start`].
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Connections accepted so far (a cheap check that traffic really reached the service).
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for LocalService {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn accept_loop(listener: TcpListener, stop: CancellationToken, count: Arc<AtomicU64>) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.cancelled() => return,
        };
        let Ok((stream, _)) = accepted else {
            // EMFILE and friends: back off briefly instead of spinning.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            continue;
        };
        count.fetch_add(1, Ordering::Relaxed);
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = serve(stream) => {}
                _ = stop.cancelled() => {}
            }
        });
    }
}

/// One connection; any error just ends it (the visitor sees the close).
async fn serve(mut s: TcpStream) -> io::Result<()> {
    let _ = s.set_nodelay(true);
    let mode = s.read_u8().await?;
    match mode {
        MODE_ECHO => echo(s, mode).await,
        MODE_SINK => {
            let len = s.read_u64().await?;
            s.write_all(&[ACK]).await?;
            sink(s, len).await
        }
        MODE_SOURCE => {
            let len = s.read_u64().await?;
            s.write_all(&[ACK]).await?;
            source(s, len).await
        }
        _ => Ok(()),
    }
}

async fn echo(mut s: TcpStream, first: u8) -> io::Result<()> {
    s.write_all(&[first]).await?;
    // Echo connections are small and many (latency, connection rate, idle holds): a small
    // buffer, allocated only once the first byte after the mode arrives.
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        s.write_all(&buf[..n]).await?;
    }
}

async fn sink(mut s: TcpStream, len: u64) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut total: u64 = 0;
    let mut reported: u64 = 0;
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        total += n as u64;
        if total - reported >= REPORT_EVERY || (total >= len && reported < len) {
            s.write_all(&total.to_be_bytes()).await?;
            reported = total;
        }
    }
}

async fn source(mut s: TcpStream, len: u64) -> io::Result<()> {
    let buf = vec![0x5Au8; CHUNK];
    let mut left = len;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        s.write_all(&buf[..n]).await?;
        if len != UNBOUNDED {
            left -= n as u64;
        }
    }
    // Keep the connection open until the visitor closes it: closing first would race the
    // visitor's last reads through a tunnel without half-close.
    let mut scratch = [0u8; 64];
    while s.read(&mut scratch).await? > 0 {}
    Ok(())
}
