//! Throughput of the engine's data path, in two layers:
//!
//! - `yamux/one_stream`: two rust-yamux `Connection`s joined by `tokio::io::duplex`, one stream,
//!   16 MiB per iteration, for several `split_send_size` values (the engine uses 64 KiB). This is
//!   the multiplexer alone: no sockets, no TLS, no frp.
//! - `splice`: the real thing on loopback: an in-process [`TestServer`], an in-process
//!   [`Client`] and the bench's local service, 64 MiB per iteration through a tcp proxy, each way,
//!   with TLS + yamux (frp's default) and with plain TCP + yamux. Client, server and load share
//!   the machine's CPUs, so this is the whole path's cost, not the client's alone.
//!
//! Protocol codecs and ciphers are in `benches/proto.rs`. Run with
//! `cargo bench --bench engine`; results are recorded in `docs/benchmarks.md`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use expose::bench::load::{self, Budget, Direction};
use expose::bench::LocalService;
use expose::frp::{Client, ClientConfig, ProxyConfig, TlsConfig};
use expose::testserver::{ServerConfig, TestServer, TlsMode};
use futures::future::poll_fn;
use futures::{AsyncReadExt as _, AsyncWriteExt as _};
use std::net::SocketAddr;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio_util::compat::TokioAsyncReadCompatExt;

const YAMUX_BYTES: usize = 16 << 20;
const SPLICE_BYTES: u64 = 64 << 20;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Polls a yamux connection forever (it does all its I/O from `poll_next_inbound`), handing the
/// first inbound stream to `first`.
async fn drive<T>(
    mut conn: yamux::Connection<T>,
    mut first: Option<tokio::sync::oneshot::Sender<yamux::Stream>>,
) where
    T: futures::AsyncRead + futures::AsyncWrite + Unpin,
{
    poll_fn(|cx| loop {
        match conn.poll_next_inbound(cx) {
            Poll::Ready(Some(Ok(stream))) => {
                if let Some(tx) = first.take() {
                    let _ = tx.send(stream);
                }
            }
            Poll::Ready(Some(Err(_))) | Poll::Ready(None) => return Poll::Ready(()),
            Poll::Pending => return Poll::Pending,
        }
    })
    .await
}

/// A connected pair of yamux streams over an in-memory pipe.
async fn yamux_pair(split: usize) -> (yamux::Stream, yamux::Stream) {
    let (a, b) = tokio::io::duplex(1 << 20);
    let mut cfg = yamux::Config::default();
    cfg.set_split_send_size(split);
    let mut client = yamux::Connection::new(a.compat(), cfg.clone(), yamux::Mode::Client);
    let server = yamux::Connection::new(b.compat(), cfg, yamux::Mode::Server);
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(drive(server, Some(tx)));
    let mut out = poll_fn(|cx| client.poll_new_outbound(cx))
        .await
        .expect("open stream");
    tokio::spawn(drive(client, None));
    // yamux opens lazily: the SYN travels with the first bytes.
    out.write_all(&[0]).await.expect("first byte");
    out.flush().await.expect("flush");
    let mut inbound = rx.await.expect("inbound stream");
    let mut one = [0u8; 1];
    inbound.read_exact(&mut one).await.expect("first byte");
    (out, inbound)
}

fn yamux_throughput(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("yamux/one_stream");
    g.throughput(Throughput::Bytes(YAMUX_BYTES as u64));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(5));
    for split in [16 * 1024, 64 * 1024, 256 * 1024] {
        let (mut tx, mut rx) = rt.block_on(yamux_pair(split));
        g.bench_with_input(
            BenchmarkId::new("split_send_size", format!("{}KiB", split / 1024)),
            &split,
            |b, _| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let chunk = vec![7u8; 64 * 1024];
                        let mut buf = vec![0u8; 64 * 1024];
                        let start = Instant::now();
                        for _ in 0..iters {
                            let send = async {
                                let mut left = YAMUX_BYTES;
                                while left > 0 {
                                    let n = left.min(chunk.len());
                                    tx.write_all(&chunk[..n]).await.expect("write");
                                    left -= n;
                                }
                                tx.flush().await.expect("flush");
                            };
                            let recv = async {
                                let mut got = 0;
                                while got < YAMUX_BYTES {
                                    let n = rx.read(&mut buf).await.expect("read");
                                    assert!(n > 0, "stream ended");
                                    got += n;
                                }
                            };
                            futures::join!(send, recv);
                        }
                        start.elapsed()
                    })
                });
            },
        );
    }
    g.finish();
}

/// A server, a client with one tcp proxy to the bench service, and the proxy's public address.
struct Tunnel {
    _server: TestServer,
    _service: LocalService,
    client: Option<Client>,
    remote: SocketAddr,
}

async fn tunnel(tls: bool) -> Tunnel {
    let service = LocalService::loopback().await.expect("service");
    let server = TestServer::start(ServerConfig {
        token: "bench".into(),
        tls: TlsMode::Optional,
        ..Default::default()
    })
    .await
    .expect("test server");
    let addr = server.bind_addr();
    let mut cfg = ClientConfig::new(addr.ip().to_string(), addr.port(), "bench");
    cfg.tls = TlsConfig::default().enable(tls);
    cfg = cfg.proxy(ProxyConfig::tcp("bench", service.addr().port(), 0));
    let client = Client::start(cfg).expect("client");
    let ready = tokio::time::timeout(Duration::from_secs(20), client.ready())
        .await
        .expect("ready in time")
        .expect("ready");
    let port = ready[0].remote_port.expect("remote port");
    Tunnel {
        _server: server,
        _service: service,
        client: Some(client),
        remote: SocketAddr::new(addr.ip(), port),
    }
}

fn splice_throughput(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("splice");
    g.throughput(Throughput::Bytes(SPLICE_BYTES));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    for (label, tls) in [("tls_mux", true), ("plain_mux", false)] {
        let mut t = rt.block_on(tunnel(tls));
        for dir in [Direction::Download, Direction::Upload] {
            let name = match dir {
                Direction::Download => "download",
                Direction::Upload => "upload",
            };
            g.bench_function(BenchmarkId::new(label, name), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let budget = Budget {
                                max_bytes: Some(SPLICE_BYTES),
                                max_time: Duration::from_secs(120),
                            };
                            let r = load::transfer(t.remote, dir, 1, budget)
                                .await
                                .expect("transfer");
                            total += Duration::from_secs_f64(r.secs);
                        }
                        total
                    })
                });
            });
        }
        if let Some(client) = t.client.take() {
            let _ = rt.block_on(client.shutdown());
        }
    }
    g.finish();
}

criterion_group!(benches, yamux_throughput, splice_throughput);
criterion_main!(benches);
