//! Load generators: each drives a [`LocalService`](super::LocalService) at some address (the
//! tunnel's public end, or the service itself for the baseline) and measures on the visitor
//! side only.

use super::service::{ACK, MODE_ECHO, MODE_SINK, MODE_SOURCE, UNBOUNDED};
use super::summary::Percentiles;
use serde::Serialize;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// Longest wait for a connection to be set up (TCP connect plus the service's first answer).
/// Through a tunnel this includes frps asking the client for a work connection.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Write chunk of the upload generator.
const CHUNK: usize = 256 * 1024;

/// Which way the bytes flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Visitor → local service (request bodies, uploads).
    Upload,
    /// Local service → visitor (responses, downloads).
    Download,
}

/// When a transfer stops: at `max_bytes` in total (if set) or after `max_time`, whichever
/// comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Total bytes over all streams, or `None` for time only.
    pub max_bytes: Option<u64>,
    /// Wall-clock cap.
    pub max_time: Duration,
}

/// The result of one transfer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Transfer {
    /// Direction of the payload.
    pub direction: Direction,
    /// Parallel connections.
    pub streams: usize,
    /// Payload bytes that reached the receiver within the measured time.
    pub bytes: u64,
    /// Measured time, seconds (from the moment every stream was set up).
    pub secs: f64,
}

impl Transfer {
    /// Payload bytes per second.
    pub fn bytes_per_sec(&self) -> f64 {
        if self.secs > 0.0 {
            self.bytes as f64 / self.secs
        } else {
            0.0
        }
    }
}

fn timeout_err(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("timed out {what}"))
}

/// Connects and sets `TCP_NODELAY`, bounded by [`SETUP_TIMEOUT`].
async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = tokio::time::timeout(SETUP_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| timeout_err("connecting"))??;
    let _ = s.set_nodelay(true);
    Ok(s)
}

/// Opens a sink or source connection and waits for the service's [`ACK`], so the path (and
/// through a tunnel, the work connection) exists before the clock starts.
async fn open_transfer(addr: SocketAddr, mode: u8, len: u64) -> io::Result<TcpStream> {
    let mut s = connect(addr).await?;
    let mut header = [0u8; 9];
    header[0] = mode;
    header[1..].copy_from_slice(&len.to_be_bytes());
    let setup = async {
        s.write_all(&header).await?;
        let ack = s.read_u8().await?;
        if ack != ACK {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected answer {ack:#04x} from the bench service"),
            ));
        }
        Ok(())
    };
    tokio::time::timeout(SETUP_TIMEOUT, setup)
        .await
        .map_err(|_| timeout_err("waiting for the bench service to answer"))??;
    Ok(s)
}

/// Moves bytes one way over `streams` parallel connections to a bench service at `addr`.
///
/// The clock starts once every connection is set up and stops when every stream has moved its
/// share of `max_bytes` (then the time is that of the last one) or at `max_time` (then the
/// bytes are those received by then). Downloads are counted as read by the visitor; uploads as
/// reported back by the service's sink, so both count bytes that arrived, not bytes buffered.
pub async fn transfer(
    addr: SocketAddr,
    direction: Direction,
    streams: usize,
    budget: Budget,
) -> io::Result<Transfer> {
    let streams = streams.max(1);
    let per_stream = budget
        .max_bytes
        .map(|b| (b / streams as u64).max(1))
        .unwrap_or(UNBOUNDED);
    let mode = match direction {
        Direction::Upload => MODE_SINK,
        Direction::Download => MODE_SOURCE,
    };
    let mut opening = JoinSet::new();
    for _ in 0..streams {
        opening.spawn(open_transfer(addr, mode, per_stream));
    }
    let mut conns = Vec::with_capacity(streams);
    while let Some(r) = opening.join_next().await {
        conns.push(r.map_err(io::Error::other)??);
    }

    let total = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let deadline = tokio::time::Instant::from_std(t0 + budget.max_time);
    let mut running = JoinSet::new();
    for conn in conns {
        let total = total.clone();
        match direction {
            Direction::Download => {
                running.spawn(download_stream(conn, per_stream, deadline, total))
            }
            Direction::Upload => running.spawn(upload_stream(conn, per_stream, deadline, total)),
        };
    }
    let mut last_done: Option<Instant> = None;
    let mut all_done = true;
    while let Some(r) = running.join_next().await {
        match r.map_err(io::Error::other)?? {
            Some(t) => last_done = Some(last_done.map_or(t, |l| l.max(t))),
            None => all_done = false,
        }
    }
    let end = match (all_done, last_done) {
        (true, Some(t)) => t,
        _ => deadline.into_std(),
    };
    Ok(Transfer {
        direction,
        streams,
        bytes: total.load(Ordering::Relaxed),
        secs: end.saturating_duration_since(t0).as_secs_f64(),
    })
}

/// Reads until `len` bytes arrived (`Some(finish time)`) or the deadline (`None`).
async fn download_stream(
    mut s: TcpStream,
    len: u64,
    deadline: tokio::time::Instant,
    total: Arc<AtomicU64>,
) -> io::Result<Option<Instant>> {
    let mut buf = vec![0u8; CHUNK];
    let mut got: u64 = 0;
    let stop = tokio::time::sleep_until(deadline);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => return Ok(None),
            r = s.read(&mut buf) => {
                let n = r?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                got += n as u64;
                total.fetch_add(n as u64, Ordering::Relaxed);
                if got >= len {
                    return Ok(Some(Instant::now()));
                }
            }
        }
    }
}

/// Writes until `len` bytes are sent or the deadline, while following the sink's reports;
/// finishes when the sink reports `len` (`Some(time)`) or at the deadline (`None`).
async fn upload_stream(
    s: TcpStream,
    len: u64,
    deadline: tokio::time::Instant,
    total: Arc<AtomicU64>,
) -> io::Result<Option<Instant>> {
    let (mut rd, mut wr) = s.into_split();
    let writer = async move {
        let buf = vec![0xA5u8; CHUNK];
        let mut left = len;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            wr.write_all(&buf[..n]).await?;
            if len != UNBOUNDED {
                left -= n as u64;
            }
        }
        // All sent: keep the write half open (a FIN would close the tunnel) and wait.
        std::future::pending::<()>().await;
        Ok::<(), io::Error>(())
    };
    let reports = async move {
        let mut seen: u64 = 0;
        loop {
            let reported = rd.read_u64().await?;
            total.fetch_add(reported.saturating_sub(seen), Ordering::Relaxed);
            seen = seen.max(reported);
            if seen >= len {
                return Ok::<Instant, io::Error>(Instant::now());
            }
        }
    };
    tokio::select! {
        _ = tokio::time::sleep_until(deadline) => Ok(None),
        r = writer => r.map(|_| None),
        r = reports => r.map(Some),
    }
}

/// Request/response latency: `rounds` round trips of `size`-byte messages on one echo
/// connection, after `warmup` unrecorded ones.
pub async fn round_trips(
    addr: SocketAddr,
    size: usize,
    warmup: usize,
    rounds: usize,
) -> io::Result<Percentiles> {
    let mut s = open_echo(addr).await?;
    let msg = vec![0x42u8; size.max(1)];
    let mut back = vec![0u8; msg.len()];
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..warmup + rounds {
        let t = Instant::now();
        let trip = async {
            s.write_all(&msg).await?;
            s.read_exact(&mut back).await
        };
        tokio::time::timeout(SETUP_TIMEOUT, trip)
            .await
            .map_err(|_| timeout_err("waiting for an echo"))??;
        if i >= warmup {
            samples.push(t.elapsed());
        }
    }
    Ok(Percentiles::of(&samples))
}

/// Connects, sends [`MODE_ECHO`] and waits for it to come back: the connection is then spliced
/// end to end.
pub async fn open_echo(addr: SocketAddr) -> io::Result<TcpStream> {
    let mut s = connect(addr).await?;
    let trip = async {
        s.write_all(&[MODE_ECHO]).await?;
        let b = s.read_u8().await?;
        if b != MODE_ECHO {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "echo service answered with the wrong byte",
            ));
        }
        Ok(())
    };
    tokio::time::timeout(SETUP_TIMEOUT, trip)
        .await
        .map_err(|_| timeout_err("waiting for the first echo"))??;
    Ok(s)
}

/// New-connection rate: one connection after another, each a full connect + 1-byte echo +
/// close, until `max_conns` or `max_time`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ConnectRate {
    /// Connections completed.
    pub connections: u64,
    /// Elapsed seconds.
    pub secs: f64,
    /// Time for one connect + echo, per connection.
    pub latency: Percentiles,
}

impl ConnectRate {
    /// Connections per second.
    pub fn per_sec(&self) -> f64 {
        if self.secs > 0.0 {
            self.connections as f64 / self.secs
        } else {
            0.0
        }
    }
}

/// Measures [`ConnectRate`] against `addr`.
pub async fn connect_rate(
    addr: SocketAddr,
    max_conns: u64,
    max_time: Duration,
) -> io::Result<ConnectRate> {
    let t0 = Instant::now();
    let mut samples = Vec::new();
    while (samples.len() as u64) < max_conns && t0.elapsed() < max_time {
        let t = Instant::now();
        let s = open_echo(addr).await?;
        samples.push(t.elapsed());
        drop(s);
    }
    Ok(ConnectRate {
        connections: samples.len() as u64,
        secs: t0.elapsed().as_secs_f64(),
        latency: Percentiles::of(&samples),
    })
}

/// Opens `n` echo connections (each confirmed by one echoed byte, so each is spliced end to
/// end) and returns them open and idle; at most `parallel` are being set up at a time.
pub async fn hold_idle(addr: SocketAddr, n: usize, parallel: usize) -> io::Result<Vec<TcpStream>> {
    let gate = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
    let mut set = JoinSet::new();
    for _ in 0..n {
        let gate = gate.clone();
        set.spawn(async move {
            let _permit = gate.acquire_owned().await.map_err(io::Error::other)?;
            open_echo(addr).await
        });
    }
    let mut held = Vec::with_capacity(n);
    while let Some(r) = set.join_next().await {
        held.push(r.map_err(io::Error::other)??);
    }
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::LocalService;

    #[tokio::test]
    async fn direct_phases_work() {
        let svc = LocalService::loopback().await.unwrap();
        let budget = Budget {
            max_bytes: Some(8 << 20),
            max_time: Duration::from_secs(20),
        };
        for dir in [Direction::Upload, Direction::Download] {
            let t = transfer(svc.addr(), dir, 2, budget).await.unwrap();
            assert!(t.bytes >= 8 << 20, "{dir:?}: {t:?}");
            assert!(t.secs > 0.0);
        }
        let timed = Budget {
            max_bytes: None,
            max_time: Duration::from_millis(200),
        };
        let t = transfer(svc.addr(), Direction::Upload, 1, timed)
            .await
            .unwrap();
        assert!(t.bytes > 0 && (t.secs - 0.2).abs() < 0.1, "{t:?}");
        let rtt = round_trips(svc.addr(), 64, 10, 100).await.unwrap();
        assert_eq!(rtt.count, 100);
        let rate = connect_rate(svc.addr(), 20, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(rate.connections, 20);
        let held = hold_idle(svc.addr(), 10, 4).await.unwrap();
        assert_eq!(held.len(), 10);
    }
}
