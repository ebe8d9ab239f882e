//! A hand-written frps (plain TCP, no tcpMux, so every work connection is its own socket) that
//! sends bad input on work connections: `StartWorkConn` with `error` set, `StartWorkConn` for
//! a proxy the client does not have, a payload with a corrupt snappy chunk, a payload behind a
//! wrong IV, and work connections that never get `StartWorkConn`.
//!
//! Each must end only that connection: no panic, the client stays online on the same session,
//! and a visitor right after it is served.

mod common;

use bytes::BytesMut;
use expose::frp::{Client, ClientConfig, Phase, ProxyConfig, ReconnectPolicy};
use expose::proto::crypto::{Decryptor, Encryptor, Key, BLOCK_LEN};
use expose::proto::frame::{frame_len, HEADER_LEN};
use expose::proto::msg::{LoginResp, NewProxyResp, Pong, ReqWorkConn, StartWorkConn};
use expose::proto::pipeline::{Opener, Pipe, Sealer};
use expose::proto::{decode_frame, encode_frame, Message};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const TOKEN: &str = "evil-work-token-3d7e";
const RUN_ID: &str = "evilwork00000001";
/// The client's proxy, as frps names it: `user.name`.
const PROXY: &str = "u.p";
const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// The fake frps

/// Reads exactly one plaintext frame, nothing after it.
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Message> {
    let mut buf = BytesMut::zeroed(HEADER_LEN);
    r.read_exact(&mut buf).await?;
    let len = frame_len(&buf)
        .map_err(io::Error::other)?
        .ok_or_else(|| io::Error::other("short header"))?;
    buf.resize(len, 0);
    r.read_exact(&mut buf[HEADER_LEN..]).await?;
    decode_frame(&mut buf)
        .map_err(io::Error::other)?
        .ok_or_else(|| io::Error::other("short frame"))
}

fn frame(msg: impl Into<Message>) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode_frame(&msg.into(), &mut buf).unwrap();
    buf.to_vec()
}

struct FakeFrps {
    addr: SocketAddr,
    /// Work connections, each read up to and including its NewWorkConn.
    work: mpsc::UnboundedReceiver<TcpStream>,
    /// Each message sends one ReqWorkConn on the control connection.
    req: mpsc::UnboundedSender<()>,
    /// Logins seen (a second one would mean the client lost its session).
    logins: Arc<AtomicUsize>,
}

impl FakeFrps {
    async fn start() -> FakeFrps {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (work_tx, work) = mpsc::unbounded_channel();
        let (req, req_rx) = mpsc::unbounded_channel();
        let logins = Arc::new(AtomicUsize::new(0));
        let seen = logins.clone();
        tokio::spawn(async move {
            let mut req_rx = Some(req_rx);
            while let Ok((mut sock, _)) = listener.accept().await {
                match read_frame(&mut sock).await {
                    Ok(Message::Login(_)) => {
                        seen.fetch_add(1, Ordering::SeqCst);
                        // Only the first session is served; a re-login fails the test anyway.
                        if let Some(rx) = req_rx.take() {
                            tokio::spawn(control(sock, rx));
                        }
                    }
                    Ok(Message::NewWorkConn(nwc)) => {
                        assert_eq!(nwc.run_id, RUN_ID);
                        let _ = work_tx.send(sock);
                    }
                    _ => {}
                }
            }
        });
        FakeFrps {
            addr,
            work,
            req,
            logins,
        }
    }

    /// Asks the client for a work connection and returns it once its NewWorkConn is read.
    async fn work_conn(&mut self) -> TcpStream {
        self.req.send(()).unwrap();
        tokio::time::timeout(WAIT, self.work.recv())
            .await
            .expect("a work connection in time")
            .expect("the fake server is running")
    }
}

/// A well-behaved control connection: LoginResp, then the proxy registered, Pong for Ping,
/// and a ReqWorkConn whenever the test asks.
async fn control(mut sock: TcpStream, mut req: mpsc::UnboundedReceiver<()>) {
    let resp = LoginResp {
        version: "0.66.0".into(),
        run_id: RUN_ID.into(),
        error: String::new(),
    };
    if sock.write_all(&frame(resp)).await.is_err() {
        return;
    }
    let key = Key::derive(TOKEN);
    let mut dec = Decryptor::new(&key);
    let mut enc = Encryptor::new(&key, rand::random());
    let mut buf = BytesMut::new();
    let mut out = BytesMut::new();
    loop {
        out.clear();
        buf.reserve(4096);
        let start = buf.len();
        tokio::select! {
            r = sock.read_buf(&mut buf) => {
                if !matches!(r, Ok(n) if n > 0) {
                    return;
                }
                let n = dec.open(&mut buf[start..]);
                buf.truncate(start + n);
                while let Ok(Some(msg)) = decode_frame(&mut buf) {
                    let answer: Message = match msg {
                        Message::NewProxy(np) => NewProxyResp {
                            proxy_name: np.proxy_name,
                            remote_addr: ":4242".into(),
                            error: String::new(),
                        }
                        .into(),
                        Message::Ping(_) => Pong::default().into(),
                        _ => continue,
                    };
                    enc.seal_appended(&mut out, |o| encode_frame(&answer, o)).unwrap();
                }
            }
            r = req.recv() => {
                if r.is_none() {
                    return;
                }
                let msg = ReqWorkConn {}.into();
                enc.seal_appended(&mut out, |o| encode_frame(&msg, o)).unwrap();
            }
        }
        if sock.write_all(&out).await.is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The local service and the visitors

/// An echo service that counts the bytes it received.
async fn counting_echo() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let count = received.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            count.fetch_add(n as u64, Ordering::SeqCst);
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, received)
}

fn start_for(proxy: &str) -> StartWorkConn {
    StartWorkConn {
        proxy_name: proxy.into(),
        src_addr: "203.0.113.7".into(),
        src_port: 40000,
        dst_addr: "127.0.0.1".into(),
        dst_port: 4242,
        error: String::new(),
    }
}

/// The wire bytes of `payload` on the proxy (encrypted and compressed).
fn sealed(payload: &[u8]) -> Vec<u8> {
    let key = Key::derive(TOKEN);
    let mut sealer = Sealer::new(Some((&key, rand::random())), true);
    assert_eq!(sealer.push(payload).unwrap(), payload.len());
    sealer.ready().to_vec()
}

/// One visitor the way frps serves it: StartWorkConn, a payload through the proxy's wrapping,
/// and the echo back through it.
async fn visit(fake: &mut FakeFrps, payload: &[u8]) {
    let mut conn = fake.work_conn().await;
    let mut bytes = frame(start_for(PROXY));
    bytes.extend_from_slice(&sealed(payload));
    conn.write_all(&bytes).await.unwrap();
    let key = Key::derive(TOKEN);
    let mut opener = Opener::new(Some(&key), true);
    let mut echoed = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    while echoed.len() < payload.len() {
        let n = tokio::time::timeout(WAIT, conn.read(&mut buf))
            .await
            .expect("the echo in time")
            .expect("read");
        assert!(n > 0, "work connection closed after {echoed:?}");
        let mut piece = &buf[..n];
        while !piece.is_empty() {
            let taken = opener.push(piece).expect("valid wrapping from the client");
            piece = &piece[taken..];
            echoed.extend_from_slice(opener.ready());
            let ready = opener.ready().len();
            opener.consume(ready).unwrap();
        }
    }
    assert_eq!(echoed, payload);
}

/// Waits for the client to close `conn` (EOF or reset); anything it sends is read and dropped.
async fn expect_closed(mut conn: TcpStream, case: &str) {
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "{case}: the client kept the connection open"
    );
}

struct Setup {
    fake: FakeFrps,
    client: Client,
    received: Arc<AtomicU64>,
}

async fn setup() -> Setup {
    common::count_panics();
    let fake = FakeFrps::start().await;
    let (local, received) = counting_echo().await;
    let mut cfg = ClientConfig::new(fake.addr.ip().to_string(), fake.addr.port(), TOKEN);
    cfg.user = "u".into();
    cfg.tls.enable = false;
    cfg.tcp_mux = false;
    cfg.pool_count = 0;
    cfg.heartbeat_interval = Some(Duration::from_millis(200));
    cfg.reconnect = ReconnectPolicy::new(
        Duration::from_millis(20),
        Duration::from_millis(100),
        Duration::from_millis(20),
    );
    let mut proxy = ProxyConfig::tcp("p", local.port(), 4242);
    proxy.use_encryption = true;
    proxy.use_compression = true;
    let client = Client::start(cfg.proxy(proxy)).unwrap();
    tokio::time::timeout(WAIT, client.ready())
        .await
        .expect("ready in time")
        .expect("ready");
    Setup {
        fake,
        client,
        received,
    }
}

impl Setup {
    /// The client is still on its first session, online, and serves the next visitor.
    async fn still_serving(&mut self, case: &str) {
        visit(&mut self.fake, format!("after {case}").as_bytes()).await;
        assert_eq!(self.client.stats().reconnects, 0, "{case}: session lost");
        assert_eq!(self.fake.logins.load(Ordering::SeqCst), 1, "{case}");
        assert!(
            matches!(self.client.state().borrow().phase, Phase::Online),
            "{case}: client not online"
        );
        assert!(
            common::eventually(WAIT, || self.client.stats().active_work_conns == 0).await,
            "{case}: work connections left active: {:?}",
            self.client.stats()
        );
    }

    async fn finish(self) {
        self.client.shutdown().await.unwrap();
        assert_eq!(common::worker_panics(), 0, "a panic happened");
    }
}

// ---------------------------------------------------------------------------------------------
// The cases

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_work_conn_with_an_error_ends_only_that_connection() {
    let mut s = setup().await;
    visit(&mut s.fake, b"before").await;
    let mut conn = s.fake.work_conn().await;
    let start = StartWorkConn {
        error: "no such visitor any more".into(),
        ..start_for(PROXY)
    };
    conn.write_all(&frame(start)).await.unwrap();
    expect_closed(conn, "StartWorkConn error").await;
    s.still_serving("StartWorkConn error").await;
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_work_conn_for_an_unknown_proxy_ends_only_that_connection() {
    let mut s = setup().await;
    let before = s.received.load(Ordering::SeqCst);
    let mut conn = s.fake.work_conn().await;
    let mut bytes = frame(start_for("u.nope"));
    bytes.extend_from_slice(&sealed(b"for nobody"));
    conn.write_all(&bytes).await.unwrap();
    expect_closed(conn, "unknown proxy").await;
    assert_eq!(
        s.received.load(Ordering::SeqCst),
        before,
        "bytes reached a service"
    );
    s.still_serving("unknown proxy").await;
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_snappy_chunk_ends_only_that_connection() {
    let mut s = setup().await;
    let mut conn = s.fake.work_conn().await;
    let mut wire = sealed(&b"a payload that compresses, compresses, compresses".repeat(20));
    // IV, stream identifier, chunk header, CRC: flip a byte of the snappy data behind them.
    // CFB turns one flipped ciphertext bit into one flipped plaintext bit (and garbles the
    // next block), so the chunk no longer matches its checksum.
    let at = BLOCK_LEN + 10 + 8 + 2;
    wire[at] ^= 0x40;
    let mut bytes = frame(start_for(PROXY));
    bytes.extend_from_slice(&wire);
    conn.write_all(&bytes).await.unwrap();
    expect_closed(conn, "corrupt snappy").await;
    assert_eq!(
        s.received.load(Ordering::SeqCst),
        0,
        "bytes that failed the checksum reached the local service"
    );
    s.still_serving("corrupt snappy").await;
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_iv_ends_only_that_connection() {
    let mut s = setup().await;
    let mut conn = s.fake.work_conn().await;
    let mut wire = sealed(b"behind the wrong IV");
    // Another IV on the wire than the one the ciphertext was made with: the first block (the
    // snappy stream identifier) decrypts to garbage.
    for b in &mut wire[..BLOCK_LEN] {
        *b = !*b;
    }
    let mut bytes = frame(start_for(PROXY));
    bytes.extend_from_slice(&wire);
    conn.write_all(&bytes).await.unwrap();
    expect_closed(conn, "wrong IV").await;
    assert_eq!(s.received.load(Ordering::SeqCst), 0);
    s.still_serving("wrong IV").await;
    s.finish().await;
}

/// Without tcpMux a pooled work connection is a socket of its own that may wait for a visitor
/// forever (Go frpc has no timeout either). One that never gets StartWorkConn must not hold
/// up anything else; one closed without it is a normal end; and a client shutting down
/// releases the ones still waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_connections_without_start_work_conn_hold_up_nothing() {
    let mut s = setup().await;
    let idle = s.fake.work_conn().await;
    let closed = s.fake.work_conn().await;
    drop(closed);
    s.still_serving("idle and closed work connections").await;
    visit(&mut s.fake, b"and another one").await;
    assert_eq!(s.client.stats().total_work_conns, 2);
    s.client.shutdown().await.unwrap();
    expect_closed(idle, "shutdown").await;
    assert_eq!(common::worker_panics(), 0, "a panic happened");
}
