//! Self-test of `expose::testserver`, driven by a minimal hand-written frp client (raw tokio
//! sockets + frp-proto), so the server is checked independently of the real client engine.
//! Everything binds 127.0.0.1 port 0 and every wait has a short timeout.

mod common;

use bytes::BytesMut;
use common::AcceptAnyCert;
use expose::proto::auth::privilege_key;
use expose::proto::compress::{Compressor, Decompressor};
use expose::proto::crypto::{Decryptor, Encryptor, Key};
use expose::proto::msg::*;
use expose::proto::{decode_frame, encode_frame, Message};
use expose::testserver::{ServerConfig, ServerState, TestServer, TlsMode};
use std::collections::HashMap;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;
use tokio_util::compat::{FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

const TOKEN: &str = "test-token";
const WAIT: Duration = Duration::from_secs(5);

trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}
type Boxed = Box<dyn Stream>;

// ---------------------------------------------------------------------------------------------
// A minimal frp client.

/// Reads frames, optionally through the CFB stream.
struct FrpReader {
    rd: ReadHalf<Boxed>,
    dec: Option<Decryptor>,
    buf: BytesMut,
}

impl FrpReader {
    /// Next message, or None on EOF / error.
    async fn recv(&mut self) -> Option<Message> {
        let mut tmp = [0u8; 4096];
        loop {
            if let Some(m) = decode_frame(&mut self.buf).unwrap() {
                return Some(m);
            }
            let n = self.rd.read(&mut tmp).await.ok()?;
            if n == 0 {
                return None;
            }
            match &mut self.dec {
                Some(d) => {
                    let plain = d.decrypt(&mut tmp[..n]);
                    self.buf.extend_from_slice(plain);
                }
                None => self.buf.extend_from_slice(&tmp[..n]),
            }
        }
    }

    /// Switches to decryption; bytes already buffered are the start of the cipher stream.
    fn start_decrypting(&mut self, key: &Key) {
        let mut d = Decryptor::new(key);
        let mut rest = self.buf.split();
        let plain = d.decrypt(&mut rest);
        self.buf.extend_from_slice(plain);
        self.dec = Some(d);
    }
}

/// Writes frames, optionally through the CFB stream.
struct FrpWriter {
    wr: WriteHalf<Boxed>,
    enc: Option<Encryptor>,
}

impl FrpWriter {
    async fn send(&mut self, msg: impl Into<Message>) -> std::io::Result<()> {
        let mut buf = BytesMut::new();
        let mut start = 0;
        if let Some(iv) = self.enc.as_mut().and_then(|e| e.take_iv()) {
            buf.extend_from_slice(&iv);
            start = iv.len();
        }
        encode_frame(&msg.into(), &mut buf).unwrap();
        if let Some(e) = &mut self.enc {
            e.encrypt(&mut buf[start..]);
        }
        self.wr.write_all(&buf).await?;
        self.wr.flush().await
    }
}

fn split(io: Boxed) -> (FrpReader, FrpWriter) {
    let (rd, wr) = tokio::io::split(io);
    (
        FrpReader {
            rd,
            dec: None,
            buf: BytesMut::new(),
        },
        FrpWriter { wr, enc: None },
    )
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn login_msg(token: &str, run_id: &str, pool_count: i64) -> Login {
    let ts = now();
    let mut metas = StringMap::new();
    metas.insert("binding_secret".into(), "bs-test".into());
    Login {
        version: "0.66.0".into(),
        os: "linux".into(),
        arch: "amd64".into(),
        user: "u".into(),
        privilege_key: privilege_key(token, ts),
        timestamp: ts,
        run_id: run_id.into(),
        metas,
        pool_count,
        ..Default::default()
    }
}

/// Opens frp connections: one TCP connection each, or one yamux stream each.
#[derive(Clone)]
enum Dialer {
    Plain(SocketAddr),
    Mux(mpsc::Sender<oneshot::Sender<yamux::Stream>>),
}

impl Dialer {
    async fn open(&self) -> Boxed {
        match self {
            Dialer::Plain(addr) => {
                let s = TcpStream::connect(addr).await.unwrap();
                s.set_nodelay(true).unwrap();
                Box::new(s)
            }
            Dialer::Mux(tx) => {
                let (otx, orx) = oneshot::channel();
                tx.send(otx).await.unwrap();
                Box::new(orx.await.unwrap().compat())
            }
        }
    }

    /// A yamux client session over `io`, driven by its own task.
    fn mux<T: futures::AsyncRead + futures::AsyncWrite + Send + Unpin + 'static>(io: T) -> Dialer {
        let (tx, mut rx) = mpsc::channel::<oneshot::Sender<yamux::Stream>>(64);
        tokio::spawn(async move {
            let mut conn =
                yamux::Connection::new(io, yamux::Config::default(), yamux::Mode::Client);
            let mut waiting: Vec<oneshot::Sender<yamux::Stream>> = Vec::new();
            poll_fn(|cx| loop {
                while let Poll::Ready(Some(req)) = rx.poll_recv(cx) {
                    waiting.push(req);
                }
                let mut progressed = false;
                while !waiting.is_empty() {
                    match conn.poll_new_outbound(cx) {
                        Poll::Ready(Ok(s)) => {
                            let _ = waiting.remove(0).send(s);
                            progressed = true;
                        }
                        Poll::Ready(Err(_)) => return Poll::Ready(()),
                        Poll::Pending => break,
                    }
                }
                match conn.poll_next_inbound(cx) {
                    Poll::Ready(Some(Ok(_))) => progressed = true,
                    Poll::Ready(_) => return Poll::Ready(()),
                    Poll::Pending => {}
                }
                if !progressed {
                    return Poll::Pending;
                }
            })
            .await;
        });
        Dialer::Mux(tx)
    }
}

/// Where and how the client serves a proxy's work connections.
#[derive(Clone)]
struct Target {
    local: SocketAddr,
    encryption: bool,
    compression: bool,
}

/// A logged-in control plus a background task that answers ReqWorkConn like frpc.
struct MiniClient {
    run_id: String,
    writer: FrpWriter,
    /// Control messages other than ReqWorkConn; None after the control ended.
    inbox: mpsc::UnboundedReceiver<Option<Message>>,
    /// Every StartWorkConn received on a work connection.
    starts: mpsc::UnboundedReceiver<StartWorkConn>,
    targets: Arc<std::sync::Mutex<HashMap<String, Target>>>,
}

impl MiniClient {
    /// Logs in; Err(LoginResp) when refused.
    async fn login(dialer: Dialer, login: Login) -> Result<MiniClient, LoginResp> {
        let key = Key::derive(TOKEN);
        let (mut reader, mut writer) = split(dialer.open().await);
        writer.send(login).await.unwrap();
        let resp = match timeout(WAIT, reader.recv()).await.unwrap() {
            Some(Message::LoginResp(r)) => r,
            other => panic!("expected LoginResp, got {other:?}"),
        };
        if !resp.error.is_empty() {
            return Err(resp);
        }
        reader.start_decrypting(&key);
        writer.enc = Some(Encryptor::new(&key, rand::random()));
        let (in_tx, inbox) = mpsc::unbounded_channel();
        let (start_tx, starts) = mpsc::unbounded_channel();
        let targets: Arc<std::sync::Mutex<HashMap<String, Target>>> = Arc::default();
        let run_id = resp.run_id.clone();
        {
            let (run_id, targets) = (run_id.clone(), targets.clone());
            tokio::spawn(async move {
                while let Some(msg) = reader.recv().await {
                    if let Message::ReqWorkConn(_) = msg {
                        let _ = in_tx.send(Some(msg));
                        tokio::spawn(work_conn(
                            dialer.clone(),
                            run_id.clone(),
                            targets.clone(),
                            start_tx.clone(),
                        ));
                    } else {
                        let _ = in_tx.send(Some(msg));
                    }
                }
                let _ = in_tx.send(None);
            });
        }
        Ok(MiniClient {
            run_id,
            writer,
            inbox,
            starts,
            targets,
        })
    }

    fn serve(&self, proxy: &str, target: Target) {
        self.targets.lock().unwrap().insert(proxy.into(), target);
    }

    /// Next control message that is not a ReqWorkConn.
    async fn next_non_req(&mut self) -> Option<Message> {
        loop {
            match timeout(WAIT, self.inbox.recv())
                .await
                .expect("control message")
            {
                Some(Some(Message::ReqWorkConn(_))) => continue,
                Some(m) => return m,
                None => return None,
            }
        }
    }

    async fn new_proxy(&mut self, np: NewProxy) -> NewProxyResp {
        self.writer.send(np).await.unwrap();
        match self.next_non_req().await {
            Some(Message::NewProxyResp(r)) => r,
            other => panic!("expected NewProxyResp, got {other:?}"),
        }
    }

    /// Waits until the control connection is closed by the server.
    async fn closed(&mut self) {
        while self.next_non_req().await.is_some() {}
    }
}

/// One work connection, as frpc handles it.
async fn work_conn(
    dialer: Dialer,
    run_id: String,
    targets: Arc<std::sync::Mutex<HashMap<String, Target>>>,
    starts: mpsc::UnboundedSender<StartWorkConn>,
) {
    let (mut reader, mut writer) = split(dialer.open().await);
    if writer
        .send(NewWorkConn {
            run_id,
            ..Default::default()
        })
        .await
        .is_err()
    {
        return;
    }
    let Some(Message::StartWorkConn(sw)) = reader.recv().await else {
        return;
    };
    let _ = starts.send(sw.clone());
    let target = targets.lock().unwrap().get(&sw.proxy_name).cloned();
    let Some(target) = target else { return };
    if !sw.error.is_empty() {
        return;
    }
    let Ok(local) = TcpStream::connect(target.local).await else {
        return;
    };
    let leftover = reader.buf.split();
    let work = reader.rd.unsplit(writer.wr);
    client_splice(work, leftover, local, &target).await;
}

/// The client side of a work connection's payload: unwrap what frps sends, wrap what goes back.
async fn client_splice(work: Boxed, leftover: BytesMut, local: TcpStream, t: &Target) {
    let key = Key::derive(TOKEN);
    let (mut wrd, mut wwr) = tokio::io::split(work);
    let (mut lrd, mut lwr) = local.into_split();
    let down = async {
        let mut dec = t.encryption.then(|| Decryptor::new(&key));
        let mut decomp = t.compression.then(Decompressor::new);
        let mut chunk = leftover.to_vec();
        let mut tmp = vec![0u8; 65536];
        loop {
            let plain: &mut [u8] = match &mut dec {
                Some(d) => d.decrypt(&mut chunk),
                None => &mut chunk,
            };
            let mut out = BytesMut::new();
            match &mut decomp {
                Some(z) => z.decompress(plain, &mut out).unwrap(),
                None => out.extend_from_slice(plain),
            }
            if lwr.write_all(&out).await.is_err() {
                return;
            }
            let n = match wrd.read(&mut tmp).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            chunk = tmp[..n].to_vec();
        }
    };
    let up = async {
        let mut enc = t.encryption.then(|| Encryptor::new(&key, rand::random()));
        let mut comp = t.compression.then(Compressor::new);
        let mut tmp = vec![0u8; 65536];
        loop {
            let n = match lrd.read(&mut tmp).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let mut out = BytesMut::new();
            match &mut comp {
                Some(c) => c.compress(&tmp[..n], &mut out),
                None => out.extend_from_slice(&tmp[..n]),
            }
            let mut wire = BytesMut::new();
            if let Some(e) = &mut enc {
                if let Some(iv) = e.take_iv() {
                    wire.extend_from_slice(&iv);
                }
                e.encrypt(&mut out);
            }
            wire.extend_from_slice(&out);
            if wwr.write_all(&wire).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = down => {}
        _ = up => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Local services behind the proxies.

/// Echoes every connection until EOF.
async fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// Answers one request per connection with 200 and the request head it saw as the body.
async fn http_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut tmp = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut tmp).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&tmp[..n]),
                    }
                }
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    head.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.write_all(&head).await;
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// Sends one HTTP request to `addr` and returns the whole response.
async fn http_get(addr: SocketAddr, host: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    timeout(WAIT, s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn no_mux() -> ServerConfig {
    ServerConfig {
        token: TOKEN.into(),
        tcp_mux: false,
        ..Default::default()
    }
}

async fn wait(server: &TestServer, f: impl Fn(&ServerState) -> bool) -> ServerState {
    server.wait_for(f, WAIT).await.unwrap()
}

fn tcp_proxy(name: &str, port: i64) -> NewProxy {
    NewProxy {
        proxy_name: name.into(),
        proxy_type: "tcp".into(),
        remote_port: port,
        ..Default::default()
    }
}

fn http_proxy(name: &str, subdomain: &str) -> NewProxy {
    NewProxy {
        proxy_name: name.into(),
        proxy_type: "http".into(),
        subdomain: subdomain.into(),
        ..Default::default()
    }
}

async fn echo_through(port: u16, payload: &[u8]) -> Vec<u8> {
    let mut user = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    user.write_all(payload).await.unwrap();
    let mut back = vec![0u8; payload.len()];
    timeout(WAIT, user.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    back
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[tokio::test]
async fn login_gets_run_id_and_pool_requests() {
    let server = TestServer::start(no_mux()).await.unwrap();
    let dialer = Dialer::Plain(server.bind_addr());
    let mut c = MiniClient::login(dialer, login_msg(TOKEN, "", 3))
        .await
        .unwrap();
    assert_eq!(c.run_id.len(), 16);
    assert!(c.run_id.bytes().all(|b| b.is_ascii_hexdigit()));
    // Three ReqWorkConn, encrypted, right after login.
    for _ in 0..3 {
        let m = timeout(WAIT, c.inbox.recv()).await.unwrap().unwrap();
        assert!(matches!(m, Some(Message::ReqWorkConn(_))), "{m:?}");
    }
    let state = wait(&server, |s| s.work_conns_pooled() == 3).await;
    assert_eq!(state.logins.len(), 1);
    assert_eq!(state.logins[0].run_id, c.run_id);
    assert_eq!(state.logins[0].login.metas["binding_secret"], "bs-test");
    assert_eq!(state.controls[&c.run_id].pool_count, 3);
    assert_eq!(state.counters.req_work_conns_sent, 3);

    // Ping is always answered.
    c.writer.send(Ping::default()).await.unwrap();
    assert!(matches!(c.next_non_req().await, Some(Message::Pong(p)) if p.error.is_empty()));
    wait(&server, |s| s.messages_of(MessageType::Ping).count() == 1).await;
}

#[tokio::test]
async fn pool_count_is_capped_at_max_pool_count() {
    let server = TestServer::start(no_mux()).await.unwrap();
    let _c = MiniClient::login(Dialer::Plain(server.bind_addr()), login_msg(TOKEN, "", 50))
        .await
        .unwrap();
    let s = wait(&server, |s| s.work_conns_pooled() == 5).await;
    assert_eq!(s.counters.req_work_conns_sent, 5);
}

#[tokio::test]
async fn bad_token_is_rejected_with_frps_text() {
    let server = TestServer::start(no_mux()).await.unwrap();
    let err = MiniClient::login(Dialer::Plain(server.bind_addr()), login_msg("wrong", "", 1))
        .await
        .err()
        .unwrap();
    assert_eq!(
        err.error,
        "token in login doesn't match token from configuration"
    );
    assert!(err.run_id.is_empty());
    let s = server.snapshot();
    assert_eq!(s.logins.len(), 1);
    assert_eq!(s.logins[0].error.as_deref(), Some(err.error.as_str()));
    assert!(s.controls.is_empty());
}

#[tokio::test]
async fn login_hook_rejects_before_the_token_check() {
    let cfg = ServerConfig {
        login_hook: Some(Arc::new(|l: &Login| {
            if l.metas.get("binding_secret").map(String::as_str) == Some("bs-test") {
                Ok(())
            } else {
                Err("invalid binding secret".into())
            }
        })),
        ..no_mux()
    };
    let server = TestServer::start(cfg).await.unwrap();
    let dialer = Dialer::Plain(server.bind_addr());
    // Wrong token *and* wrong secret: the hook's reason wins, as with an frps plugin.
    let mut login = login_msg("wrong", "", 1);
    login.metas.clear();
    let err = MiniClient::login(dialer.clone(), login)
        .await
        .err()
        .unwrap();
    assert_eq!(err.error, "invalid binding secret");
    assert!(MiniClient::login(dialer.clone(), login_msg(TOKEN, "", 1))
        .await
        .is_ok());
    // Rejecting every new login at runtime.
    server.set_login_hook(Some(Arc::new(|_: &Login| Err("server draining".into()))));
    let err = MiniClient::login(dialer, login_msg(TOKEN, "", 1))
        .await
        .err()
        .unwrap();
    assert_eq!(err.error, "server draining");
}

#[tokio::test]
async fn new_proxy_remote_addrs_and_errors() {
    let server = TestServer::start(no_mux()).await.unwrap();
    let vport = server.vhost_http_addr().port();
    let dialer = Dialer::Plain(server.bind_addr());
    let mut c = MiniClient::login(dialer.clone(), login_msg(TOKEN, "", 0))
        .await
        .unwrap();

    let r = c.new_proxy(tcp_proxy("u.tcp", 0)).await;
    assert!(r.error.is_empty(), "{r:?}");
    let port: u16 = r.remote_addr.strip_prefix(':').unwrap().parse().unwrap();
    assert_ne!(port, 0);

    let r = c.new_proxy(http_proxy("u.web", "app")).await;
    assert_eq!(r.remote_addr, format!("app.tunnel.test:{vport}"));

    let mut np = http_proxy("u.multi", "multi");
    np.custom_domains = vec!["Example.org".into()];
    let r = c.new_proxy(np).await;
    assert_eq!(
        r.remote_addr,
        format!("Example.org:{vport},multi.tunnel.test:{vport}")
    );

    // The same subdomain again: the route is taken.
    let r = c.new_proxy(http_proxy("u.web2", "app")).await;
    assert_eq!(r.error, "router config conflict");
    let r = c.new_proxy(http_proxy("u.bad", "a.b")).await;
    assert_eq!(r.error, "'.' and '*' are not supported in subdomain");

    let r = c.new_proxy(tcp_proxy("u.tcp2", port as i64)).await;
    assert_eq!(r.error, "port already used");
    // xtcp: registered without an address (hole punching only).
    let mut np = tcp_proxy("u.s", 0);
    np.proxy_type = "xtcp".into();
    np.sk = "k".into();
    let r = c.new_proxy(np).await;
    assert_eq!((r.error.as_str(), r.remote_addr.as_str()), ("", ""));
    // https: routed by the TLS server name on the HTTPS vhost.
    let mut np = tcp_proxy("u.tls", 0);
    np.proxy_type = "https".into();
    np.subdomain = "tls".into();
    let r = c.new_proxy(np).await;
    assert_eq!(r.error, "");
    assert_eq!(
        r.remote_addr,
        format!("tls.tunnel.test:{}", server.vhost_https_addr().port())
    );
    let mut np = tcp_proxy("u.x", 0);
    np.proxy_type = "nonsense".into();
    assert_eq!(c.new_proxy(np).await.error, "unknown proxy type: nonsense");

    // Proxy names are global across controls.
    let mut other = MiniClient::login(dialer, login_msg(TOKEN, "", 0))
        .await
        .unwrap();
    let r = other.new_proxy(tcp_proxy("u.tcp", 0)).await;
    assert_eq!(r.error, "proxy [u.tcp] already exists");

    let s = server.snapshot();
    assert_eq!(s.remote_addr("u.tcp"), Some(format!(":{port}").as_str()));
    // tcp, http, multi, the xtcp one and https.
    assert_eq!(s.proxies.len(), 5);
    assert_eq!(s.proxies["u.tcp"].run_id, c.run_id);
}

#[tokio::test]
async fn new_proxy_hook_rejects() {
    let cfg = ServerConfig {
        new_proxy_hook: Some(Arc::new(|np: &NewProxy| {
            if np.subdomain == "forbidden" {
                Err("subdomain not allowed for this tunnel".into())
            } else {
                Ok(())
            }
        })),
        ..no_mux()
    };
    let server = TestServer::start(cfg).await.unwrap();
    let mut c = MiniClient::login(Dialer::Plain(server.bind_addr()), login_msg(TOKEN, "", 0))
        .await
        .unwrap();
    let r = c.new_proxy(http_proxy("u.f", "forbidden")).await;
    assert_eq!(r.error, "subdomain not allowed for this tunnel");
    assert!(c.new_proxy(http_proxy("u.ok", "ok")).await.error.is_empty());
}

#[tokio::test]
async fn tcp_user_connection_goes_through_a_work_connection() {
    let server = TestServer::start(no_mux()).await.unwrap();
    let echo = echo_server().await;
    let mut c = MiniClient::login(Dialer::Plain(server.bind_addr()), login_msg(TOKEN, "", 1))
        .await
        .unwrap();
    c.serve(
        "u.echo",
        Target {
            local: echo,
            encryption: false,
            compression: false,
        },
    );
    let r = c.new_proxy(tcp_proxy("u.echo", 0)).await;
    let port: u16 = r.remote_addr[1..].parse().unwrap();
    wait(&server, |s| s.work_conns_pooled() == 1).await;

    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    assert_eq!(echo_through(port, &payload).await, payload);

    let sw = timeout(WAIT, c.starts.recv()).await.unwrap().unwrap();
    assert_eq!(sw.proxy_name, "u.echo");
    assert_eq!(sw.src_addr, "127.0.0.1");
    assert_ne!(sw.src_port, 0);
    assert_eq!(sw.dst_addr, "127.0.0.1");
    assert_eq!(sw.dst_port, port);
    // The pooled connection was used and refilled by one more ReqWorkConn.
    let s = wait(&server, |s| {
        s.counters.work_conns_used == 1 && s.work_conns_pooled() == 1
    })
    .await;
    assert_eq!(s.counters.req_work_conns_sent, 2);
}

#[tokio::test]
async fn encrypted_and_compressed_payload() {
    let server = TestServer::start(no_mux()).await.unwrap();
    let echo = echo_server().await;
    let mut c = MiniClient::login(Dialer::Plain(server.bind_addr()), login_msg(TOKEN, "", 1))
        .await
        .unwrap();
    for (name, encryption, compression) in [
        ("u.e", true, false),
        ("u.z", false, true),
        ("u.ez", true, true),
    ] {
        c.serve(
            name,
            Target {
                local: echo,
                encryption,
                compression,
            },
        );
        let mut np = tcp_proxy(name, 0);
        np.use_encryption = encryption;
        np.use_compression = compression;
        let r = c.new_proxy(np).await;
        let port: u16 = r.remote_addr[1..].parse().unwrap();
        let payload = b"compressible compressible compressible ".repeat(5000);
        assert_eq!(echo_through(port, &payload).await, payload, "{name}");
    }
}

#[tokio::test]
async fn http_request_routed_by_host() {
    let server = TestServer::start(no_mux()).await.unwrap();
    let web = http_server().await;
    let mut c = MiniClient::login(Dialer::Plain(server.bind_addr()), login_msg(TOKEN, "", 1))
        .await
        .unwrap();
    c.serve(
        "u.web",
        Target {
            local: web,
            encryption: false,
            compression: false,
        },
    );
    let r = c.new_proxy(http_proxy("u.web", "app")).await;
    assert!(r.error.is_empty());
    let vhost = server.vhost_http_addr();

    // Host routing is case-insensitive and ignores the port.
    let resp = http_get(vhost, "APP.tunnel.test:1234", "/x?y=1").await;
    assert!(resp.starts_with("HTTP/1.1 200 OK"), "{resp}");
    assert!(resp.contains("GET /x?y=1 HTTP/1.1"), "{resp}");
    assert!(resp.contains("X-Forwarded-For: 127.0.0.1"), "{resp}");
    assert!(
        resp.contains("X-Forwarded-Host: APP.tunnel.test:1234"),
        "{resp}"
    );
    assert!(resp.contains("X-Forwarded-Proto: http"), "{resp}");
    let sw = timeout(WAIT, c.starts.recv()).await.unwrap().unwrap();
    assert_eq!(sw.proxy_name, "u.web");
    assert_eq!(sw.src_addr, "127.0.0.1");
    assert!(sw.dst_addr.is_empty() && sw.dst_port == 0);

    let resp = http_get(vhost, "nobody.tunnel.test", "/").await;
    assert!(resp.starts_with("HTTP/1.1 404 Not Found"), "{resp}");
}

#[tokio::test]
async fn http_without_work_connection_is_502() {
    let cfg = ServerConfig {
        user_conn_timeout: Duration::from_millis(200),
        ..no_mux()
    };
    let server = TestServer::start(cfg).await.unwrap();
    // A client that logs in and registers, but never opens work connections.
    let (mut reader, mut writer) = split(Dialer::Plain(server.bind_addr()).open().await);
    writer.send(login_msg(TOKEN, "", 0)).await.unwrap();
    assert!(matches!(reader.recv().await, Some(Message::LoginResp(r)) if r.error.is_empty()));
    let key = Key::derive(TOKEN);
    reader.start_decrypting(&key);
    writer.enc = Some(Encryptor::new(&key, rand::random()));
    writer.send(http_proxy("u.idle", "idle")).await.unwrap();
    assert!(matches!(
        reader.recv().await,
        Some(Message::NewProxyResp(_))
    ));
    let resp = http_get(server.vhost_http_addr(), "idle.tunnel.test", "/").await;
    assert!(resp.starts_with("HTTP/1.1 502 Bad Gateway"), "{resp}");
    // It asked for one: the user connection sent a ReqWorkConn.
    assert!(matches!(reader.recv().await, Some(Message::ReqWorkConn(_))));
    assert_eq!(server.snapshot().counters.user_conn_timeouts, 1);
}

#[tokio::test]
async fn close_proxy_is_recorded_and_frees_the_port() {
    let server = TestServer::start(no_mux()).await.unwrap();
    let mut c = MiniClient::login(Dialer::Plain(server.bind_addr()), login_msg(TOKEN, "", 0))
        .await
        .unwrap();
    let r = c.new_proxy(tcp_proxy("u.t", 0)).await;
    let port: u16 = r.remote_addr[1..].parse().unwrap();
    c.writer
        .send(CloseProxy {
            proxy_name: "u.t".into(),
        })
        .await
        .unwrap();
    let s = wait(&server, |s| s.close_proxy_received("u.t")).await;
    assert!(!s.proxies.contains_key("u.t"));
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
    // The name is free again and gets the same port back.
    let r = c.new_proxy(tcp_proxy("u.t", 0)).await;
    assert_eq!(r.remote_addr, format!(":{port}"));
}

#[tokio::test]
async fn relogin_with_run_id_replaces_the_old_control() {
    let server = TestServer::start(no_mux()).await.unwrap();
    let dialer = Dialer::Plain(server.bind_addr());
    let mut first = MiniClient::login(dialer.clone(), login_msg(TOKEN, "", 1))
        .await
        .unwrap();
    let r = first.new_proxy(tcp_proxy("u.t", 0)).await;
    wait(&server, |s| s.work_conns_pooled() == 1).await;

    let mut second = MiniClient::login(dialer, login_msg(TOKEN, &first.run_id, 1))
        .await
        .unwrap();
    assert_eq!(second.run_id, first.run_id);
    timeout(WAIT, first.closed()).await.unwrap();
    // The old proxy is gone, so the name is free, and the port comes back.
    let r2 = second.new_proxy(tcp_proxy("u.t", 0)).await;
    assert_eq!(r2.remote_addr, r.remote_addr);
    let s = wait(&server, |s| {
        s.controls.len() == 1 && s.work_conns_pooled() == 1
    })
    .await;
    assert!(s.logins[1].replaced_existing);
    assert_eq!(s.counters.controls_replaced, 1);
}

#[tokio::test]
async fn heartbeat_timeout_without_mux() {
    let cfg = ServerConfig {
        heartbeat_timeout: Some(Duration::from_millis(300)),
        ..no_mux()
    };
    let server = TestServer::start(cfg).await.unwrap();
    let mut c = MiniClient::login(Dialer::Plain(server.bind_addr()), login_msg(TOKEN, "", 0))
        .await
        .unwrap();
    c.new_proxy(tcp_proxy("u.t", 0)).await;
    timeout(WAIT, c.closed()).await.unwrap();
    let s = wait(&server, |s| s.controls.is_empty() && s.proxies.is_empty()).await;
    assert_eq!(s.counters.heartbeat_timeouts, 1);
}

#[tokio::test]
async fn work_conn_pool_overflow_and_unknown_run_id() {
    let server = TestServer::start(no_mux()).await.unwrap();
    let dialer = Dialer::Plain(server.bind_addr());
    let c = MiniClient::login(dialer.clone(), login_msg(TOKEN, "", 0))
        .await
        .unwrap();
    // pool_count 0 → room for 10; the 11th and 12th are closed without a word.
    let mut conns = Vec::new();
    for _ in 0..12 {
        let (r, mut w) = split(dialer.open().await);
        w.send(NewWorkConn {
            run_id: c.run_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
        conns.push((r, w));
    }
    let s = wait(&server, |s| s.counters.work_conns_discarded == 2).await;
    assert_eq!(s.work_conns_pooled(), 10);
    let mut eofs = 0;
    for (r, _) in &mut conns[10..] {
        assert!(timeout(WAIT, r.recv()).await.unwrap().is_none());
        eofs += 1;
    }
    assert_eq!(eofs, 2);

    let (mut r, mut w) = split(dialer.open().await);
    w.send(NewWorkConn {
        run_id: "nope".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    match timeout(WAIT, r.recv()).await.unwrap() {
        Some(Message::StartWorkConn(sw)) => {
            assert_eq!(sw.error, "no client control found for run id [nope]")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn kill_drops_everything_and_the_port_can_be_reused() {
    let server = TestServer::start(no_mux()).await.unwrap();
    let addr = server.bind_addr();
    let mut c = MiniClient::login(Dialer::Plain(addr), login_msg(TOKEN, "", 1))
        .await
        .unwrap();
    c.new_proxy(tcp_proxy("u.t", 0)).await;
    server.kill_and_wait().await;
    timeout(WAIT, c.closed()).await.unwrap();
    assert!(TcpStream::connect(addr).await.is_err());

    let again = TestServer::start(ServerConfig {
        bind: addr,
        ..no_mux()
    })
    .await
    .unwrap();
    assert_eq!(again.bind_addr(), addr);
    let c2 = MiniClient::login(Dialer::Plain(addr), login_msg(TOKEN, &c.run_id, 1))
        .await
        .unwrap();
    assert_eq!(c2.run_id, c.run_id);
}

#[tokio::test]
async fn freeze_stops_answers_and_thaw_resumes() {
    let server = TestServer::start(no_mux()).await.unwrap();
    let mut c = MiniClient::login(Dialer::Plain(server.bind_addr()), login_msg(TOKEN, "", 0))
        .await
        .unwrap();
    server.freeze();
    c.writer.send(Ping::default()).await.unwrap();
    assert!(timeout(Duration::from_millis(300), c.inbox.recv())
        .await
        .is_err());
    assert!(server
        .snapshot()
        .messages_of(MessageType::Ping)
        .next()
        .is_none());
    server.thaw();
    assert!(matches!(c.next_non_req().await, Some(Message::Pong(_))));
}

#[tokio::test]
async fn plain_is_refused_when_tls_is_forced() {
    let server = TestServer::start(ServerConfig {
        tls: TlsMode::Force,
        ..no_mux()
    })
    .await
    .unwrap();
    let (mut r, mut w) = split(Dialer::Plain(server.bind_addr()).open().await);
    let _ = w.send(login_msg(TOKEN, "", 0)).await;
    assert!(timeout(WAIT, r.recv()).await.unwrap().is_none());
}

// ---------------------------------------------------------------------------------------------
// TLS and yamux.

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

async fn tls_connect(
    addr: SocketAddr,
    config: rustls::ClientConfig,
    name: &str,
    prefix_byte: bool,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    if prefix_byte {
        tcp.write_all(&[0x17]).await.unwrap();
    }
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
    timeout(WAIT, connector.connect(name, tcp))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn tls_and_mux_end_to_end() {
    let server = TestServer::start(ServerConfig {
        token: TOKEN.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let echo = echo_server().await;
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(AcceptAnyCert::ring())
        .with_no_client_auth();
    // IP server name: no SNI, as Go frpc with an IP serverAddr.
    let tls = tls_connect(server.bind_addr(), config, "127.0.0.1", false).await;
    let dialer = Dialer::mux(tls.compat());
    let mut c = MiniClient::login(dialer, login_msg(TOKEN, "", 2))
        .await
        .unwrap();
    c.serve(
        "u.echo",
        Target {
            local: echo,
            encryption: false,
            compression: false,
        },
    );
    let r = c.new_proxy(tcp_proxy("u.echo", 0)).await;
    let port: u16 = r.remote_addr[1..].parse().unwrap();
    wait(&server, |s| s.work_conns_pooled() == 2).await;
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 247) as u8).collect();
    assert_eq!(echo_through(port, &payload).await, payload);
    let s = server.snapshot();
    assert_eq!(s.counters.connections, 1);
    assert_eq!(s.counters.tls_connections, 1);
    assert!(s.counters.mux_streams >= 3);
}

#[tokio::test]
async fn tls_certificate_verifies_against_cert_der_with_prefix_byte() {
    let server = TestServer::start(no_mux()).await.unwrap();
    assert!(server.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(
            server.cert_der().to_vec(),
        ))
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    for (name, prefix) in [("localhost", true), ("127.0.0.1", false)] {
        let tls = tls_connect(server.bind_addr(), config.clone(), name, prefix).await;
        let (mut r, mut w) = split(Box::new(tls));
        w.send(login_msg(TOKEN, "", 0)).await.unwrap();
        assert!(
            matches!(timeout(WAIT, r.recv()).await.unwrap(), Some(Message::LoginResp(l)) if l.error.is_empty())
        );
    }
    assert_eq!(server.snapshot().counters.tls_connections, 2);
}

#[tokio::test]
async fn freeze_with_mux_stops_the_session() {
    let server = TestServer::start(ServerConfig {
        token: TOKEN.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let tcp = TcpStream::connect(server.bind_addr()).await.unwrap();
    let dialer = Dialer::mux(tcp.compat());
    let mut c = MiniClient::login(dialer.clone(), login_msg(TOKEN, "", 0))
        .await
        .unwrap();
    server.freeze();
    c.writer.send(Ping::default()).await.unwrap();
    // New streams are not accepted either while frozen.
    let late = tokio::spawn({
        let dialer = dialer.clone();
        async move {
            MiniClient::login(dialer, login_msg(TOKEN, "", 0))
                .await
                .is_ok()
        }
    });
    assert!(timeout(Duration::from_millis(300), c.inbox.recv())
        .await
        .is_err());
    assert_eq!(server.snapshot().logins.len(), 1);
    server.thaw();
    assert!(matches!(c.next_non_req().await, Some(Message::Pong(_))));
    assert!(timeout(WAIT, late).await.unwrap().unwrap());
}

#[tokio::test]
async fn close_control_drops_one_client() {
    let server = TestServer::start(no_mux()).await.unwrap();
    let mut c = MiniClient::login(Dialer::Plain(server.bind_addr()), login_msg(TOKEN, "", 1))
        .await
        .unwrap();
    c.new_proxy(http_proxy("u.web", "app")).await;
    wait(&server, |s| s.work_conns_pooled() == 1).await;
    assert!(server.close_control(&c.run_id));
    assert!(!server.close_control("unknown"));
    timeout(WAIT, c.closed()).await.unwrap();
    let s = wait(&server, |s| s.controls.is_empty() && s.proxies.is_empty()).await;
    // The route is gone with it.
    let resp = http_get(server.vhost_http_addr(), "app.tunnel.test", "/").await;
    assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");
    assert_eq!(s.counters.controls_replaced, 0);
}

#[tokio::test]
async fn http_locations_auth_and_header_rewrite() {
    let server = TestServer::start(ServerConfig {
        vhost_http_public_port: Some(80),
        ..no_mux()
    })
    .await
    .unwrap();
    let web = http_server().await;
    let mut c = MiniClient::login(Dialer::Plain(server.bind_addr()), login_msg(TOKEN, "", 1))
        .await
        .unwrap();
    let target = Target {
        local: web,
        encryption: false,
        compression: false,
    };
    c.serve("u.api", target.clone());
    c.serve("u.root", target);
    let mut np = http_proxy("u.api", "");
    np.custom_domains = vec!["site.example".into()];
    np.locations = vec!["/api".into()];
    np.http_user = "u".into();
    np.http_pwd = "pw".into();
    np.host_header_rewrite = "internal.local".into();
    np.headers.insert("X-Extra".into(), "1".into());
    // Port 80 is left out of remote_addr, as frps does.
    assert_eq!(c.new_proxy(np).await.remote_addr, "site.example");
    let mut np = http_proxy("u.root", "");
    np.custom_domains = vec!["site.example".into()];
    assert!(c.new_proxy(np).await.error.is_empty());

    let vhost = server.vhost_http_addr();
    let resp = http_get(vhost, "site.example", "/api/x").await;
    assert!(resp.starts_with("HTTP/1.1 401 Unauthorized"), "{resp}");

    let mut s = TcpStream::connect(vhost).await.unwrap();
    s.write_all(
        b"GET /api/x HTTP/1.1\r\nHost: site.example\r\nAuthorization: Basic dTpwdw==\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut out = String::new();
    timeout(WAIT, s.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    assert!(out.contains("Host: internal.local"), "{out}");
    assert!(out.contains("X-Extra: 1"), "{out}");
    assert!(out.contains("X-Forwarded-Host: site.example"), "{out}");
    let sw = timeout(WAIT, c.starts.recv()).await.unwrap().unwrap();
    assert_eq!(sw.proxy_name, "u.api");

    // Other paths fall through to the proxy without a location, which needs no auth.
    let resp = http_get(vhost, "site.example", "/other").await;
    assert!(resp.starts_with("HTTP/1.1 200 OK"), "{resp}");
    let sw = timeout(WAIT, c.starts.recv()).await.unwrap().unwrap();
    assert_eq!(sw.proxy_name, "u.root");
}
