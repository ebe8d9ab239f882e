//! A scripted "evil frps": after a valid Login it answers with broken input, once, and behaves
//! on the next connection. In every case the client must drop the bad session, log in again,
//! never panic, and end up with its proxy ready.
//!
//! The server is written here from raw tokio TCP, `frp_proto` framing and cipher, and a small
//! hand-written yamux server (12-byte frame headers), so it can send what no correct
//! implementation would: oversize and unknown frames, bad JSON, a wrong IV, garbage
//! ciphertext, yamux GoAway, yamux frames of a wrong version or beyond the window, streams
//! opened towards the client.

mod common;

use bytes::BytesMut;
use common::eventually;
use expose::frp::{Client, ClientConfig, Event, ProxyConfig, ReconnectPolicy};
use expose::proto::crypto::{Decryptor, Encryptor, Key};
use expose::proto::frame::encode_to_vec;
use expose::proto::msg::{LoginResp, NewProxyResp, Pong};
use expose::proto::{decode_frame, Message};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TOKEN: &str = "evil-token-9b1f";
const RUN_ID: &str = "evilrun000000001";
const REMOTE_PORT: u16 = 42424;
/// ReqWorkConns in [`Evil::ReqWorkConnFlood`].
const FLOOD: usize = 20_000;

// ---------------------------------------------------------------------------------------------
// The misbehaviours

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Evil {
    /// In place of LoginResp: a header announcing 10 241 bytes (frp's limit is 10 240).
    OversizeLoginResp,
    /// In place of LoginResp: a length of i64::MAX.
    HugeLengthLoginResp,
    /// In place of LoginResp: a negative length.
    NegativeLengthLoginResp,
    /// In place of LoginResp: type byte `Z`.
    UnknownTypeLoginResp,
    /// In place of LoginResp: type `1` with a body that is not JSON.
    InvalidJsonLoginResp,
    /// In place of LoginResp: a Pong.
    WrongMessageInsteadOfLoginResp,
    /// In place of LoginResp: a header promising 100 bytes, 10 of them, then close.
    TruncatedLoginResp,
    /// After LoginResp (encrypted): a frame announcing 10 241 bytes.
    OversizeFrame,
    /// After LoginResp: type byte `Z`.
    UnknownType,
    /// After LoginResp: NewProxyResp whose body is not JSON.
    InvalidJson,
    /// After LoginResp: NewProxyResp whose fields have the wrong JSON types.
    WrongShapeJson,
    /// After LoginResp: an IV on the wire that is not the one the ciphertext was made with.
    WrongIv,
    /// After LoginResp: an IV and random bytes.
    GarbageCiphertext,
    /// After LoginResp: `Pong{error}` (a failed heartbeat authentication).
    PongWithError,
    /// yamux: GoAway while the socket stays open.
    GoAway,
    /// yamux: a frame with version byte 1.
    YamuxBadVersion,
    /// yamux: a data frame on the control stream larger than its 256 KiB window.
    YamuxBeyondWindow,
    /// yamux: a frame header claiming a 4 GiB body.
    YamuxHugeFrame,
    /// yamux: the server opens 1 000 streams towards the client and writes into them.
    ServerOpensStreams,
    /// 20 000 ReqWorkConn at once: the client opens work streams up to its own limit
    /// (`MAX_MUX_STREAMS`) and refuses the rest, instead of letting yamux kill the session.
    ReqWorkConnFlood,
}

impl Evil {
    /// Misbehaviours sent in place of LoginResp (plaintext).
    fn at_login(self) -> bool {
        matches!(
            self,
            Evil::OversizeLoginResp
                | Evil::HugeLengthLoginResp
                | Evil::NegativeLengthLoginResp
                | Evil::UnknownTypeLoginResp
                | Evil::InvalidJsonLoginResp
                | Evil::WrongMessageInsteadOfLoginResp
                | Evil::TruncatedLoginResp
        )
    }

    /// The session survives: the client refuses the streams and keeps going (as Go frpc's
    /// yamux session does with streams nobody accepts).
    fn tolerated(self) -> bool {
        matches!(self, Evil::ServerOpensStreams | Evil::ReqWorkConnFlood)
    }

    /// The server hangs up itself after misbehaving, so "the client closed it" is not asked.
    fn server_closes(self) -> bool {
        self == Evil::TruncatedLoginResp
    }

    /// Text expected in the `Reconnecting` cause, when the outcome is deterministic.
    fn expected_cause(self) -> Option<&'static str> {
        Some(match self {
            Evil::OversizeLoginResp | Evil::OversizeFrame => "exceeds the 10240-byte limit",
            Evil::HugeLengthLoginResp => "exceeds the 10240-byte limit",
            Evil::NegativeLengthLoginResp => "negative message length",
            Evil::UnknownTypeLoginResp | Evil::UnknownType => "unknown message type byte 0x5a",
            Evil::InvalidJsonLoginResp => "invalid LoginResp body",
            Evil::WrongMessageInsteadOfLoginResp => "expected LoginResp, got",
            Evil::TruncatedLoginResp => "closed",
            Evil::InvalidJson | Evil::WrongShapeJson => "invalid NewProxyResp body",
            Evil::PongWithError => "Pong error",
            Evil::YamuxBadVersion => "unknown version: 1",
            Evil::YamuxHugeFrame => "frame body is too large",
            Evil::GoAway | Evil::YamuxBeyondWindow => "multiplexer error",
            // The cipher cases end in whatever the garbage decodes to.
            Evil::WrongIv
            | Evil::GarbageCiphertext
            | Evil::ServerOpensStreams
            | Evil::ReqWorkConnFlood => return None,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// A minimal yamux server

const YAMUX_DATA: u8 = 0;
const YAMUX_WINDOW_UPDATE: u8 = 1;
const YAMUX_PING: u8 = 2;
const YAMUX_GO_AWAY: u8 = 3;
const SYN: u16 = 1;
const ACK: u16 = 2;
const FIN: u16 = 4;
const RST: u16 = 8;

fn yamux_header(version: u8, ty: u8, flags: u16, stream: u32, len: u32) -> [u8; 12] {
    let mut h = [0u8; 12];
    h[0] = version;
    h[1] = ty;
    h[2..4].copy_from_slice(&flags.to_be_bytes());
    h[4..8].copy_from_slice(&stream.to_be_bytes());
    h[8..12].copy_from_slice(&len.to_be_bytes());
    h
}

/// The client's side of a connection: either the raw TCP stream (no tcpMux) or the client's
/// first yamux stream on it.
struct Wire {
    sock: TcpStream,
    mux: bool,
    /// yamux: the control stream's id (the first one the client opens) and whether it was
    /// acknowledged.
    ctl: Option<u32>,
    acked: bool,
    /// yamux: RST frames the client sent for streams we opened.
    resets: Arc<AtomicUsize>,
    /// yamux: streams the client opened besides the control stream (work connections).
    client_streams: Arc<AtomicUsize>,
}

impl Wire {
    /// Next bytes of the control stream; empty on EOF (or the stream's FIN/RST, or GoAway).
    async fn read(&mut self) -> io::Result<Vec<u8>> {
        if !self.mux {
            let mut buf = vec![0u8; 16 * 1024];
            let n = self.sock.read(&mut buf).await?;
            buf.truncate(n);
            return Ok(buf);
        }
        loop {
            let mut h = [0u8; 12];
            match self.sock.read_exact(&mut h).await {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Vec::new()),
                Err(e) => return Err(e),
            }
            let ty = h[1];
            let flags = u16::from_be_bytes([h[2], h[3]]);
            let id = u32::from_be_bytes(h[4..8].try_into().unwrap());
            let len = u32::from_be_bytes(h[8..12].try_into().unwrap());
            match ty {
                YAMUX_DATA => {
                    let mut body = vec![0u8; len as usize];
                    self.sock.read_exact(&mut body).await?;
                    if flags & SYN != 0 && self.ctl.is_none() {
                        self.ctl = Some(id);
                    } else if flags & SYN != 0 {
                        // A work stream: accept it (ACK), then ignore what it says.
                        self.client_streams.fetch_add(1, Ordering::SeqCst);
                        let ack = yamux_header(0, YAMUX_WINDOW_UPDATE, ACK, id, 0);
                        self.sock.write_all(&ack).await?;
                    }
                    if Some(id) != self.ctl {
                        if flags & RST != 0 {
                            self.resets.fetch_add(1, Ordering::SeqCst);
                        }
                        continue;
                    }
                    if flags & (RST | FIN) != 0 && body.is_empty() {
                        return Ok(Vec::new());
                    }
                    if !body.is_empty() {
                        return Ok(body);
                    }
                }
                YAMUX_WINDOW_UPDATE => {
                    if flags & SYN != 0 && self.ctl.is_none() {
                        self.ctl = Some(id);
                    } else if flags & SYN != 0 {
                        self.client_streams.fetch_add(1, Ordering::SeqCst);
                        let ack = yamux_header(0, YAMUX_WINDOW_UPDATE, ACK, id, 0);
                        self.sock.write_all(&ack).await?;
                    }
                    if Some(id) != self.ctl && flags & RST != 0 {
                        self.resets.fetch_add(1, Ordering::SeqCst);
                    }
                    if Some(id) == self.ctl && flags & (RST | FIN) != 0 {
                        return Ok(Vec::new());
                    }
                }
                YAMUX_PING => {
                    if flags & SYN != 0 {
                        let pong = yamux_header(0, YAMUX_PING, ACK, 0, len);
                        self.sock.write_all(&pong).await?;
                    }
                }
                YAMUX_GO_AWAY => return Ok(Vec::new()),
                _ => return Err(io::Error::other("bad yamux frame from the client")),
            }
        }
    }

    /// Writes bytes on the control stream.
    async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if !self.mux {
            return self.sock.write_all(data).await;
        }
        let id = self.ctl.expect("the client opened its control stream");
        let flags = if self.acked { 0 } else { ACK };
        self.acked = true;
        let mut frame = yamux_header(0, YAMUX_DATA, flags, id, data.len() as u32).to_vec();
        frame.extend_from_slice(data);
        self.sock.write_all(&frame).await
    }

    /// Writes raw bytes on the socket, below yamux.
    async fn raw(&mut self, data: &[u8]) -> io::Result<()> {
        self.sock.write_all(data).await
    }
}

/// frp messages over a [`Wire`], with the control cipher.
struct Frp {
    wire: Wire,
    buf: BytesMut,
    dec: Option<Decryptor>,
    enc: Option<Encryptor>,
}

impl Frp {
    async fn read(&mut self) -> io::Result<Option<Message>> {
        loop {
            if let Some(m) = decode_frame(&mut self.buf).map_err(io::Error::other)? {
                return Ok(Some(m));
            }
            let mut bytes = self.wire.read().await?;
            if bytes.is_empty() {
                return Ok(None);
            }
            let plain: &[u8] = match self.dec.as_mut() {
                Some(d) => d.decrypt(&mut bytes),
                None => &bytes,
            };
            self.buf.extend_from_slice(plain);
        }
    }

    /// Sends frame bytes, encrypted once the cipher is on.
    async fn send_bytes(&mut self, mut bytes: Vec<u8>) -> io::Result<()> {
        if let Some(enc) = self.enc.as_mut() {
            let mut out = enc.take_iv().map(|iv| iv.to_vec()).unwrap_or_default();
            enc.encrypt(&mut bytes);
            out.extend_from_slice(&bytes);
            bytes = out;
        }
        self.wire.write(&bytes).await
    }

    async fn send(&mut self, msg: Message) -> io::Result<()> {
        self.send_bytes(encode_to_vec(&msg).unwrap()).await
    }
}

/// A frame header and body, as raw bytes (any type byte, any claimed length).
fn raw_frame(ty: u8, len: i64, body: &[u8]) -> Vec<u8> {
    let mut v = vec![ty];
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(body);
    v
}

// ---------------------------------------------------------------------------------------------
// The server

struct EvilServer {
    addr: SocketAddr,
    /// TCP connections accepted (each one a session with tcpMux; each a control without, as
    /// this server never asks for work connections).
    connections: Arc<AtomicUsize>,
    /// Logins read.
    logins: Arc<AtomicUsize>,
    /// The client closed the first (evil) connection.
    first_closed_by_client: Arc<AtomicBool>,
    resets: Arc<AtomicUsize>,
    client_streams: Arc<AtomicUsize>,
    /// Nothing is accepted before this fires, so the test can subscribe to the client's
    /// events before anything can happen.
    go: Arc<tokio::sync::Notify>,
}

impl EvilServer {
    async fn start(evil: Evil, mux: bool) -> EvilServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let s = EvilServer {
            addr: listener.local_addr().unwrap(),
            connections: Arc::default(),
            logins: Arc::default(),
            first_closed_by_client: Arc::default(),
            resets: Arc::default(),
            client_streams: Arc::default(),
            go: Arc::default(),
        };
        let (connections, logins, closed, resets, client_streams) = (
            s.connections.clone(),
            s.logins.clone(),
            s.first_closed_by_client.clone(),
            s.resets.clone(),
            s.client_streams.clone(),
        );
        let go = s.go.clone();
        tokio::spawn(async move {
            go.notified().await;
            while let Ok((sock, _)) = listener.accept().await {
                let n = connections.fetch_add(1, Ordering::SeqCst);
                let wire = Wire {
                    sock,
                    mux,
                    ctl: None,
                    acked: false,
                    resets: resets.clone(),
                    client_streams: client_streams.clone(),
                };
                let (logins, closed) = (logins.clone(), closed.clone());
                tokio::spawn(async move {
                    let bad = (n == 0).then_some(evil);
                    let r = serve(wire, bad, &logins).await;
                    if n == 0 && matches!(r, Ok(Ending::ClientClosed)) {
                        closed.store(true, Ordering::SeqCst);
                    }
                });
            }
        });
        s
    }
}

enum Ending {
    /// EOF (or an error) from the client.
    ClientClosed,
    /// We hung up.
    WeClosed,
}

/// Reads until the client goes away.
async fn drain(frp: &mut Frp) -> io::Result<Ending> {
    loop {
        match frp.wire.read().await {
            Ok(b) if b.is_empty() => return Ok(Ending::ClientClosed),
            Ok(_) => {}
            Err(_) => return Ok(Ending::ClientClosed),
        }
    }
}

/// One connection: a good frps, except for `evil`.
async fn serve(wire: Wire, evil: Option<Evil>, logins: &AtomicUsize) -> io::Result<Ending> {
    let key = Key::derive(TOKEN);
    let mut frp = Frp {
        wire,
        buf: BytesMut::new(),
        dec: None,
        enc: None,
    };
    let Some(Message::Login(_)) = frp.read().await? else {
        return Ok(Ending::ClientClosed);
    };
    logins.fetch_add(1, Ordering::SeqCst);

    if let Some(e) = evil.filter(|e| e.at_login()) {
        let bytes = match e {
            Evil::OversizeLoginResp => raw_frame(b'1', 10_241, &[b' '; 10_241]),
            Evil::HugeLengthLoginResp => raw_frame(b'1', i64::MAX, b"{}"),
            Evil::NegativeLengthLoginResp => raw_frame(b'1', -2, b"{}"),
            Evil::UnknownTypeLoginResp => raw_frame(b'Z', 2, b"{}"),
            Evil::InvalidJsonLoginResp => raw_frame(b'1', 9, b"{not json"),
            Evil::WrongMessageInsteadOfLoginResp => encode_to_vec(&Pong::default().into()).unwrap(),
            Evil::TruncatedLoginResp => raw_frame(b'1', 100, b"{\"version\""),
            _ => unreachable!(),
        };
        frp.send_bytes(bytes).await?;
        if e == Evil::TruncatedLoginResp {
            return Ok(Ending::WeClosed);
        }
        return drain(&mut frp).await;
    }

    let resp = LoginResp {
        version: "0.66.0".into(),
        run_id: RUN_ID.into(),
        error: String::new(),
    };
    frp.send(resp.into()).await?;
    frp.dec = Some(Decryptor::new(&key));
    frp.enc = Some(Encryptor::new(&key, rand::random()));

    // The client registers its proxy first thing.
    let proxy_name = loop {
        match frp.read().await? {
            Some(Message::NewProxy(np)) => break np.proxy_name,
            Some(_) => {}
            None => return Ok(Ending::ClientClosed),
        }
    };
    let good_resp = NewProxyResp {
        proxy_name: proxy_name.clone(),
        remote_addr: format!(":{REMOTE_PORT}"),
        error: String::new(),
    };

    if let Some(e) = evil {
        match e {
            Evil::OversizeFrame => {
                frp.send_bytes(raw_frame(b'2', 10_241, &[b' '; 10_241]))
                    .await?
            }
            Evil::UnknownType => frp.send_bytes(raw_frame(b'Z', 2, b"{}")).await?,
            Evil::InvalidJson => frp.send_bytes(raw_frame(b'2', 9, b"{not json")).await?,
            Evil::WrongShapeJson => {
                let body = br#"{"proxy_name":5,"remote_addr":["x"],"error":{}}"#;
                frp.send_bytes(raw_frame(b'2', body.len() as i64, body))
                    .await?
            }
            Evil::WrongIv => {
                // The ciphertext is made with one IV, another goes on the wire.
                let mut enc = Encryptor::new(&key, [0x11; 16]);
                let _ = enc.take_iv();
                let mut bytes = encode_to_vec(&good_resp.clone().into()).unwrap();
                enc.encrypt(&mut bytes);
                let mut out = vec![0x22; 16];
                out.extend_from_slice(&bytes);
                frp.wire.write(&out).await?;
            }
            Evil::GarbageCiphertext => {
                let mut garbage = vec![0u8; 16 + 64];
                common::Pattern::new(0xbad).fill(&mut garbage);
                frp.wire.write(&garbage).await?;
            }
            Evil::PongWithError => {
                frp.send(
                    Pong {
                        error: "heartbeat authentication failed".into(),
                    }
                    .into(),
                )
                .await?
            }
            Evil::GoAway => {
                frp.wire
                    .raw(&yamux_header(0, YAMUX_GO_AWAY, 0, 0, 0))
                    .await?
            }
            Evil::YamuxBadVersion => {
                frp.wire
                    .raw(&yamux_header(1, YAMUX_DATA, 0, frp.wire.ctl.unwrap(), 0))
                    .await?
            }
            Evil::YamuxBeyondWindow => {
                let big = 300 * 1024;
                let mut frame =
                    yamux_header(0, YAMUX_DATA, 0, frp.wire.ctl.unwrap(), big as u32).to_vec();
                frame.resize(12 + big, 0);
                frp.wire.raw(&frame).await?
            }
            Evil::YamuxHugeFrame => {
                frp.wire
                    .raw(&yamux_header(
                        0,
                        YAMUX_DATA,
                        0,
                        frp.wire.ctl.unwrap(),
                        u32::MAX,
                    ))
                    .await?
            }
            Evil::ServerOpensStreams => {
                frp.send(good_resp.clone().into()).await?;
                let mut burst = Vec::new();
                for i in 0..1000u32 {
                    let id = 2 + 2 * i;
                    burst.extend_from_slice(&yamux_header(0, YAMUX_WINDOW_UPDATE, SYN, id, 0));
                    burst.extend_from_slice(&yamux_header(0, YAMUX_DATA, 0, id, 100));
                    burst.extend_from_slice(&[0xee; 100]);
                }
                frp.wire.raw(&burst).await?;
                return good_loop(&mut frp, &proxy_name).await;
            }
            Evil::ReqWorkConnFlood => {
                frp.send(good_resp.clone().into()).await?;
                let one = encode_to_vec(&expose::proto::msg::ReqWorkConn {}.into()).unwrap();
                frp.send_bytes(one.repeat(FLOOD)).await?;
                return good_loop(&mut frp, &proxy_name).await;
            }
            _ => unreachable!(),
        }
        return drain(&mut frp).await;
    }

    frp.send(good_resp.into()).await?;
    good_loop(&mut frp, &proxy_name).await
}

/// A good frps after registration: Pong for every Ping until the client leaves.
async fn good_loop(frp: &mut Frp, _proxy: &str) -> io::Result<Ending> {
    loop {
        match frp.read().await {
            Ok(Some(Message::Ping(_))) => frp.send(Pong::default().into()).await?,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return Ok(Ending::ClientClosed),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The client side

fn config(addr: SocketAddr, mux: bool) -> ClientConfig {
    let mut cfg = ClientConfig::new(addr.ip().to_string(), addr.port(), TOKEN);
    cfg.tls.enable = false;
    cfg.tcp_mux = mux;
    cfg.user = "u".into();
    cfg.login_fail_exit = false;
    cfg.login_timeout = Duration::from_secs(2);
    cfg.heartbeat_interval = Some(Duration::from_millis(200));
    cfg.heartbeat_timeout = Duration::from_millis(1500);
    cfg.reconnect = ReconnectPolicy::new(
        Duration::from_millis(20),
        Duration::from_millis(100),
        Duration::from_millis(20),
    );
    cfg.proxy(ProxyConfig::tcp("p", 9, REMOTE_PORT))
}

async fn run_case(evil: Evil, mux: bool) {
    common::count_panics();
    let srv = EvilServer::start(evil, mux).await;
    let client = Client::start(config(srv.addr, mux)).unwrap();
    let mut events = client.events();
    srv.go.notify_one();
    let ready = tokio::time::timeout(Duration::from_secs(15), client.ready())
        .await
        .unwrap_or_else(|_| panic!("{evil:?}: the client never became ready"))
        .unwrap_or_else(|e| panic!("{evil:?}: the client gave up: {e}"));
    assert_eq!(ready[0].remote_port, Some(REMOTE_PORT));
    let mut causes = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let Event::Reconnecting { cause, .. } = e {
            causes.push(cause);
        }
    }

    eprintln!("{evil:?} (tcp_mux {mux}): {causes:?}");
    if evil == Evil::ReqWorkConnFlood {
        assert!(causes.is_empty(), "{evil:?}: session dropped: {causes:?}");
        assert_eq!(srv.connections.load(Ordering::SeqCst), 1);
        // Streams are opened up to the client's own limit; the rest are refused before yamux
        // (which would end the whole session past its `max_num_streams`).
        // The control stream holds one of the slots.
        let max = expose::frp::MAX_MUX_STREAMS - 1;
        assert!(
            eventually(Duration::from_secs(20), || srv
                .client_streams
                .load(Ordering::SeqCst)
                >= max)
            .await,
            "{evil:?}: the client opened {} streams",
            srv.client_streams.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        let opened = srv.client_streams.load(Ordering::SeqCst);
        assert_eq!(opened, max, "{evil:?}: streams beyond the limit");
        let tasks = common::alive_tasks();
        assert!(tasks <= max + 100, "{evil:?}: {tasks} tasks alive");
    } else if evil.tolerated() {
        assert!(causes.is_empty(), "{evil:?}: session dropped: {causes:?}");
        assert_eq!(srv.connections.load(Ordering::SeqCst), 1);
        assert!(
            eventually(Duration::from_secs(10), || srv
                .resets
                .load(Ordering::SeqCst)
                == 1000)
            .await,
            "{evil:?}: the client reset {} of 1000 streams",
            srv.resets.load(Ordering::SeqCst)
        );
    } else {
        assert!(!causes.is_empty(), "{evil:?}: no Reconnecting event");
        if let Some(want) = evil.expected_cause() {
            assert!(causes[0].contains(want), "{evil:?}: cause {:?}", causes[0]);
        }
        assert!(
            srv.logins.load(Ordering::SeqCst) >= 2,
            "{evil:?}: no second login"
        );
        assert!(srv.connections.load(Ordering::SeqCst) >= 2);
        if !evil.server_closes() {
            assert!(
                eventually(Duration::from_secs(5), || srv
                    .first_closed_by_client
                    .load(Ordering::SeqCst))
                .await,
                "{evil:?}: the client kept the bad connection open"
            );
        }
    }
    // Stays usable: the good session keeps running (Pings answered, no further loss).
    let before = client.stats().reconnects;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        client.stats().reconnects,
        before,
        "{evil:?}: unstable afterwards"
    );
    assert!(matches!(
        client.state().borrow().phase,
        expose::frp::Phase::Online
    ));
    client.shutdown().await.unwrap();
    assert_eq!(common::worker_panics(), 0, "a panic happened");
}

macro_rules! cases {
    ($($name:ident: $evil:ident, $mux:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            run_case(Evil::$evil, $mux).await;
        }
    )*};
}

cases! {
    oversize_login_resp_mux: OversizeLoginResp, true;
    oversize_login_resp_no_mux: OversizeLoginResp, false;
    huge_length_login_resp_mux: HugeLengthLoginResp, true;
    huge_length_login_resp_no_mux: HugeLengthLoginResp, false;
    negative_length_login_resp_no_mux: NegativeLengthLoginResp, false;
    unknown_type_login_resp_mux: UnknownTypeLoginResp, true;
    unknown_type_login_resp_no_mux: UnknownTypeLoginResp, false;
    invalid_json_login_resp_mux: InvalidJsonLoginResp, true;
    invalid_json_login_resp_no_mux: InvalidJsonLoginResp, false;
    wrong_message_instead_of_login_resp_no_mux: WrongMessageInsteadOfLoginResp, false;
    truncated_login_resp_mux: TruncatedLoginResp, true;
    truncated_login_resp_no_mux: TruncatedLoginResp, false;
    oversize_frame_mux: OversizeFrame, true;
    oversize_frame_no_mux: OversizeFrame, false;
    unknown_type_mux: UnknownType, true;
    unknown_type_no_mux: UnknownType, false;
    invalid_json_mux: InvalidJson, true;
    invalid_json_no_mux: InvalidJson, false;
    wrong_shape_json_no_mux: WrongShapeJson, false;
    wrong_iv_mux: WrongIv, true;
    wrong_iv_no_mux: WrongIv, false;
    garbage_ciphertext_mux: GarbageCiphertext, true;
    garbage_ciphertext_no_mux: GarbageCiphertext, false;
    pong_with_error_no_mux: PongWithError, false;
    yamux_go_away: GoAway, true;
    yamux_bad_version: YamuxBadVersion, true;
    yamux_frame_beyond_window: YamuxBeyondWindow, true;
    yamux_huge_frame: YamuxHugeFrame, true;
    server_opens_streams_towards_the_client: ServerOpensStreams, true;
    req_work_conn_flood_is_bounded_by_the_stream_limit: ReqWorkConnFlood, true;
}
