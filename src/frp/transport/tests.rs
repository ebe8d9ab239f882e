//! Multiplexer measurements against an in-memory yamux server.

use super::mux::MuxSession;
use super::stream::BoxStream;
use futures::future::poll_fn;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::compat::{FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

/// A yamux server on the other end of an in-memory pipe that acknowledges every stream the
/// client opens (by writing one byte on it) and keeps it open.
fn pipe_to_server() -> BoxStream {
    let (client, server) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        let mut cfg = yamux::Config::default();
        cfg.set_max_connection_receive_window(None);
        cfg.set_max_num_streams(1 << 16);
        let mut conn = yamux::Connection::new(server.compat(), cfg, yamux::Mode::Server);
        while let Some(Ok(stream)) = poll_fn(|cx| conn.poll_next_inbound(cx)).await {
            tokio::spawn(async move {
                let mut s = stream.compat();
                if s.write_all(b"k").await.is_ok() && s.flush().await.is_ok() {
                    // Held until the client closes it.
                    let mut b = [0u8; 64];
                    while let Ok(1..) = s.read(&mut b).await {}
                }
            });
        }
    });
    Box::new(client)
}

/// Opens `n` streams, each with one byte written and the server's byte read back.
async fn open_n(session: &MuxSession, n: usize) -> Vec<BoxStream> {
    let opener = session.opener();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s: BoxStream = Box::new(opener.open().await.unwrap());
        s.write_all(b"c").await.unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        out.push(s);
    }
    out
}

/// Stream opens per second with 0, 4 000 and 8 000 idle streams on the session. Run with
/// `cargo test --release --lib open_rate -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; prints figures"]
async fn open_rate_by_idle_streams() {
    const BATCH: usize = 2000;
    let session = MuxSession::start(pipe_to_server());
    let mut idle = Vec::new();
    for target in [0usize, 4000, 8000] {
        let more = target - idle.len();
        idle.extend(open_n(&session, more).await);
        let mut rates = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            for _ in 0..BATCH {
                drop(open_n(&session, 1).await);
            }
            rates.push(BATCH as f64 / t.elapsed().as_secs_f64());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!("idle {target:>5}: opens/s {rates:.0?}");
    }
}
