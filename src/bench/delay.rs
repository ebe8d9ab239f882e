//! Emulated round-trip time for `expose bench --rtt`: a TCP relay on loopback that holds every
//! chunk for a fixed one-way delay before passing it on, in both directions.
//!
//! It is a delay line, not a bandwidth limit: chunks are read as fast as they come, stamped,
//! and written once their time is due, so a window-limited protocol above it (yamux's
//! per-stream window, waiting for window updates) sees the full round trip, while a sender
//! with enough window keeps the pipe full. TCP's own congestion control still sees loopback,
//! so this models the application-level effects of latency, not packet loss or slow start.
//! It needs no privileges and no kernel support (the usual tool, `tc netem`, is missing from
//! many VM kernels, including the one the figures in `docs/benchmarks.md` come from).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Largest chunk read at once.
const CHUNK: usize = 64 * 1024;
/// Chunks in flight per direction: bounds the relay's memory to 64 MiB per direction, more
/// than a gigabit per second times 100 ms needs.
const IN_FLIGHT: usize = 1024;

/// A running delay relay; dropping it closes the listener and every relayed connection.
#[derive(Debug)]
pub struct DelayRelay {
    addr: SocketAddr,
    stop: CancellationToken,
}

impl DelayRelay {
    /// Listens on a free loopback port and relays each connection to `upstream`, delaying
    /// every chunk by half of `rtt` in each direction.
    pub async fn start(upstream: SocketAddr, rtt: Duration) -> io::Result<DelayRelay> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let one_way = rtt / 2;
        let token = stop.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = token.cancelled() => return,
                };
                let Ok((down, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                let token = token.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = relay(down, upstream, one_way) => {}
                        _ = token.cancelled() => {}
                    }
                });
            }
        });
        Ok(DelayRelay { addr, stop })
    }

    /// Where to connect instead of the upstream.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DelayRelay {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn relay(down: TcpStream, upstream: SocketAddr, one_way: Duration) -> io::Result<()> {
    let up = TcpStream::connect(upstream).await?;
    let _ = down.set_nodelay(true);
    let _ = up.set_nodelay(true);
    let (dr, dw) = down.into_split();
    let (ur, uw) = up.into_split();
    // Either direction ending ends the connection, as the tunnel itself does.
    tokio::select! {
        r = pipe(dr, uw, one_way) => r,
        r = pipe(ur, dw, one_way) => r,
    }
}

/// Copies `from` to `to`, each chunk `delay` after it was read.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) -> io::Result<()> {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
    let reader = async move {
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = from.read(&mut buf).await?;
            if n == 0 {
                return Ok::<(), io::Error>(());
            }
            buf.truncate(n);
            if tx.send((Instant::now() + delay, buf)).await.is_err() {
                return Ok(());
            }
        }
    };
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            to.write_all(&chunk).await?;
        }
        to.shutdown().await
    };
    let (r, w) = tokio::join!(reader, writer);
    r.and(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{load, LocalService};

    #[tokio::test]
    async fn adds_the_round_trip_time() {
        let svc = LocalService::loopback().await.unwrap();
        let relay = DelayRelay::start(svc.addr(), Duration::from_millis(20))
            .await
            .unwrap();
        let p = load::round_trips(relay.addr(), 64, 2, 10).await.unwrap();
        assert!(p.p50_us >= 19_000.0, "{p:?}");
        assert!(p.p50_us < 200_000.0, "{p:?}");
    }
}
