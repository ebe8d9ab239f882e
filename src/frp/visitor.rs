//! stcp, sudp and xtcp visitors: local listeners whose connections (stcp, xtcp) or datagrams
//! (sudp) reach a secret proxy of this or another client, through frps or (xtcp) over a UDP
//! path punched between the two clients (`xtcp::tunnel`), with `fallbackTo` an stcp visitor.
//!
//! As in Go frpc, the visitors live with one login: they start when it succeeds (they need its
//! run id) and their listeners close when the session ends; a reload stops and starts single
//! visitors of the running login. For every user connection (stcp),
//! or for a burst of datagrams (sudp), a visitor opens a new connection to frps (a yamux stream
//! with tcpMux), sends `NewVisitorConn` signed with md5(secret key ‖ timestamp), waits up to
//! 10 s for `NewVisitorConnResp`, and then carries the payload, encrypted with the *secret
//! key* and compressed when asked. frps pairs it with a work connection of the proxy.

use super::codec::{MsgReader, MsgWriter};
use super::config::{ClientConfig, VisitorConfig, VisitorKind};
use super::error::Error;
use super::events::{Counters, Event};
use super::splice::{Held, Pump, Splice};
use super::transport::{BoxStream, Opener};
use super::wire::unix_now;
use super::wrapped::Wrapped;
use super::xtcp::tunnel::{OnError, Tunnel};
use super::xtcp::Link;
use bytes::BytesMut;
use frp_proto::crypto::Key;
use frp_proto::msg::NewVisitorConn;
use frp_proto::pipeline::{self, Sealer};
use frp_proto::udp::{self as proto_udp, WORK_CONN_READ_TIMEOUT};
use frp_proto::Message;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// frpc waits this long for NewVisitorConnResp.
const RESP_TIMEOUT: Duration = Duration::from_secs(10);

/// frpc's visitor manager retries a visitor that failed to start this often.
const RESTART_INTERVAL: Duration = Duration::from_secs(10);

/// Refuses visitor settings frpc would refuse, and what cannot work.
pub(crate) fn validate(cfg: &ClientConfig) -> Result<(), Error> {
    if cfg.udp_packet_size == 0 || cfg.udp_packet_size > proto_udp::MAX_UDP_PACKET_SIZE {
        return Err(Error::Config(format!(
            "udpPacketSize {} is out of range (1 to {}: a larger datagram does not fit an frp \
             message)",
            cfg.udp_packet_size,
            proto_udp::MAX_UDP_PACKET_SIZE
        )));
    }
    let mut names = HashSet::new();
    for v in &cfg.visitors {
        let fail = |m: &str| Err(Error::Config(format!("visitor {:?}: {m}", v.name)));
        if v.name.is_empty() {
            return Err(Error::Config("visitor with an empty name".into()));
        }
        if !names.insert(v.name.as_str()) {
            return Err(Error::Config(format!(
                "duplicate visitor name {:?}",
                v.name
            )));
        }
        if v.server_name.is_empty() {
            return fail("server name is required");
        }
        if v.bind_port == 0 {
            return fail("bind port is required");
        }
        if v.bind_port > i32::from(u16::MAX) {
            return fail("bind port is out of range");
        }
        if v.kind == VisitorKind::Sudp && v.bind_port < 0 {
            return fail("sudp visitors need a bind port (bindPort = -1 is for stcp only)");
        }
        if v.kind == VisitorKind::Xtcp && v.xtcp.protocol != "quic" {
            return fail(&format!(
                "xtcp protocol {:?} is not supported (only quic: no kept Rust crate speaks \
                 kcp-go's KCP with frp's settings)",
                v.xtcp.protocol
            ));
        }
    }
    Ok(())
}

/// What every visitor of one login shares.
pub(crate) struct VisitorContext {
    pub run_id: String,
    /// Opens connections to frps on this login's session.
    pub opener: Opener,
    pub counters: Arc<Counters>,
    pub events: broadcast::Sender<Event>,
    pub udp_packet_size: usize,
    /// Cancelled when the login's session ends.
    pub stop: CancellationToken,
    /// The login speaks wire v2: visitor connections open with the magic and v2 frames.
    pub wire_v2: bool,
    /// The control connection as xtcp visitors use it.
    pub xtcp: Option<Arc<Link>>,
}

/// The running visitors by name, for xtcp's `fallbackTo`.
#[derive(Default)]
pub(crate) struct Peers(Mutex<HashMap<String, Arc<Visitor>>>);

impl Peers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Visitor>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One visitor as its tasks see it.
pub(crate) struct Visitor {
    config: VisitorConfig,
    /// `serverUser.serverName`, or our own `user.serverName`.
    wire_target: String,
    key: Key,
}

/// The visitors running on one login, each stoppable on its own (frpc's reload).
pub(crate) struct Running {
    ctx: Arc<VisitorContext>,
    /// Per visitor: its stop token (a child of the login's) and its task.
    tasks: HashMap<String, (CancellationToken, JoinHandle<()>)>,
    peers: Arc<Peers>,
}

impl Running {
    /// Starts `visitors` for a new login.
    pub(crate) fn start_all(
        cfg: &ClientConfig,
        visitors: &[VisitorConfig],
        ctx: VisitorContext,
    ) -> Running {
        let mut running = Running {
            ctx: Arc::new(ctx),
            tasks: HashMap::new(),
            peers: Arc::default(),
        };
        for v in visitors {
            running.start(cfg, v, None);
        }
        running
    }

    /// Stops one visitor: its listener closes (connections already open keep running until
    /// the session ends, as in frpc). Returns its task, which ends promptly.
    pub(crate) fn stop(&mut self, name: &str) -> Option<JoinHandle<()>> {
        let (token, task) = self.tasks.remove(name)?;
        token.cancel();
        self.peers.lock().remove(name);
        Some(task)
    }

    /// Starts one visitor; after `previous` has ended, so a changed visitor can bind the
    /// address its old configuration held.
    pub(crate) fn start(
        &mut self,
        cfg: &ClientConfig,
        v: &VisitorConfig,
        previous: Option<JoinHandle<()>>,
    ) {
        let wire_target = if v.server_user.is_empty() {
            cfg.wire_name(&v.server_name)
        } else {
            format!("{}.{}", v.server_user, v.server_name)
        };
        let visitor = Arc::new(Visitor {
            key: Key::derive(v.secret_key.expose()),
            config: v.clone(),
            wire_target,
        });
        let ctx = self.ctx.clone();
        self.peers.lock().insert(v.name.clone(), visitor.clone());
        let peers = self.peers.clone();
        let token = ctx.stop.child_token();
        let stop = token.clone();
        let task = tokio::spawn(async move {
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            let run_stop = stop.clone();
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = run(visitor, ctx, peers, run_stop) => {}
            }
        });
        self.tasks.insert(v.name.clone(), (token, task));
    }
}

async fn run(
    v: Arc<Visitor>,
    ctx: Arc<VisitorContext>,
    peers: Arc<Peers>,
    stop: CancellationToken,
) {
    let cfg = &v.config;
    if cfg.kind == VisitorKind::Xtcp {
        return xtcp_run(v, ctx, peers, stop).await;
    }
    if cfg.bind_port < 0 {
        return started_without_listener(&v, &ctx);
    }
    let port = cfg.bind_port as u16;
    match cfg.kind {
        VisitorKind::Stcp => {
            serve_tcp(&v, &ctx, |v, ctx, user| async move {
                stcp_conn(&v, &ctx, user).await
            })
            .await
        }
        VisitorKind::Sudp => {
            let socket =
                bind_until(&v, &ctx, || UdpSocket::bind((cfg.bind_addr.as_str(), port))).await;
            started(&v, &ctx, socket.local_addr().ok());
            sudp_dispatch(&v, &ctx, &socket).await;
        }
        VisitorKind::Xtcp => {}
    }
}

/// An xtcp visitor: its tunnel (punched on demand, or at once with `keepTunnelOpen`) and,
/// unless `bindPort < 0`, a listener whose connections become streams of the tunnel.
async fn xtcp_run(
    v: Arc<Visitor>,
    ctx: Arc<VisitorContext>,
    peers: Arc<Peers>,
    stop: CancellationToken,
) {
    let cfg = &v.config;
    let Some(link) = ctx.xtcp.clone() else {
        failed(&v, &ctx, "xtcp visitor without a control link".into());
        return;
    };
    let on_error: OnError = {
        let (v, ctx) = (v.clone(), ctx.clone());
        Box::new(move |error| failed(&v, &ctx, error))
    };
    let tunnel = Tunnel::start(link, cfg.clone(), v.wire_target.clone(), on_error, stop);
    if cfg.bind_port < 0 {
        started_without_listener(&v, &ctx);
        return std::future::pending().await;
    }
    serve_tcp(&v, &ctx, move |v, ctx, user| {
        let (tunnel, peers) = (tunnel.clone(), peers.clone());
        async move { xtcp_conn(&v, &ctx, &peers, &tunnel, user).await }
    })
    .await
}

/// A visitor that only other visitors hand connections to (`bindPort < 0`): nothing listens.
fn started_without_listener(v: &Visitor, ctx: &VisitorContext) {
    tracing::info!(visitor = %v.config.name, "start visitor success (no listener)");
    emit(
        ctx,
        Event::VisitorStarted {
            name: v.config.name.clone(),
            bind_addr: None,
        },
    );
}

/// Listens on the visitor's TCP address (retrying as frpc does) and runs `conn` for every
/// user connection in its own task, until the visitor stops.
async fn serve_tcp<F, Fut>(v: &Arc<Visitor>, ctx: &Arc<VisitorContext>, conn: F)
where
    F: Fn(Arc<Visitor>, Arc<VisitorContext>, TcpStream) -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>> + Send + 'static,
{
    let cfg = &v.config;
    let port = cfg.bind_port as u16;
    let listener = bind_until(v, ctx, || TcpListener::bind((cfg.bind_addr.as_str(), port))).await;
    started(v, ctx, listener.local_addr().ok());
    loop {
        let Ok((user, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let served = conn(v.clone(), ctx.clone(), user);
        let (v, stop) = (v.clone(), ctx.stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                r = served => if let Err(e) = r {
                    tracing::debug!(visitor = %v.config.name, error = %e, "visitor connection ended");
                },
            }
        });
    }
}

/// One xtcp user connection: a tunnel stream, or the fallback visitor when none is ready in
/// time.
async fn xtcp_conn(
    v: &Visitor,
    ctx: &Arc<VisitorContext>,
    peers: &Peers,
    tunnel: &Tunnel,
    user: TcpStream,
) -> Result<(), Error> {
    let opts = &v.config.xtcp;
    let fallback = (!opts.fallback_to.is_empty()).then_some(opts.fallback_timeout);
    match tunnel.open(fallback).await {
        Ok(stream) => splice_user(v, ctx, user, stream, BytesMut::new()).await,
        Err(e) if opts.fallback_to.is_empty() => {
            tracing::error!(visitor = %v.config.name, error = %e, "open tunnel error");
            Err(e)
        }
        Err(e) => {
            tracing::debug!(visitor = %v.config.name, error = %e, to = %opts.fallback_to, "try to transfer connection to visitor");
            let peer = peers.lock().get(&opts.fallback_to).cloned();
            match peer {
                Some(peer) if peer.config.kind == VisitorKind::Stcp => {
                    stcp_conn(&peer, ctx, user).await
                }
                _ => {
                    let error = format!(
                        "transfer connection to visitor {0} error: visitor [{0}] not found",
                        opts.fallback_to
                    );
                    tracing::error!(visitor = %v.config.name, %error);
                    Err(Error::Config(error))
                }
            }
        }
    }
}

fn emit(ctx: &VisitorContext, event: Event) {
    let _ = ctx.events.send(event);
}

fn started(v: &Visitor, ctx: &VisitorContext, addr: Option<SocketAddr>) {
    tracing::info!(visitor = %v.config.name, "start visitor success");
    emit(
        ctx,
        Event::VisitorStarted {
            name: v.config.name.clone(),
            bind_addr: addr,
        },
    );
}

fn failed(v: &Visitor, ctx: &VisitorContext, error: String) {
    emit(
        ctx,
        Event::VisitorFailed {
            name: v.config.name.clone(),
            error,
        },
    );
}

/// Binds the visitor's listener, retrying as frpc's visitor manager does while the address is
/// unavailable.
async fn bind_until<T, F, Fut>(v: &Visitor, ctx: &VisitorContext, bind: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = std::io::Result<T>>,
{
    loop {
        match bind().await {
            Ok(l) => return l,
            Err(e) => {
                let error = format!(
                    "listen on {}:{}: {e}",
                    v.config.bind_addr, v.config.bind_port
                );
                tracing::warn!(visitor = %v.config.name, %error, "start error");
                failed(v, ctx, error);
                tokio::time::sleep(RESTART_INTERVAL).await;
            }
        }
    }
}

/// Opens a visitor connection to frps: NewVisitorConn, then NewVisitorConnResp within 10 s.
/// Returns the stream and any payload read past the answer.
async fn connect(v: &Visitor, ctx: &VisitorContext) -> Result<(BoxStream, BytesMut), Error> {
    let cfg = &v.config;
    let stream = ctx.opener.open().await?;
    let mut writer = MsgWriter::for_wire(stream, ctx.wire_v2, true);
    let timestamp = unix_now();
    let hello = NewVisitorConn {
        run_id: ctx.run_id.clone(),
        proxy_name: v.wire_target.clone(),
        sign_key: proto_udp::sign_key(cfg.secret_key.expose(), timestamp),
        timestamp,
        use_encryption: cfg.use_encryption,
        use_compression: cfg.use_compression,
    };
    writer.send(&hello.into()).await?;
    let mut reader = MsgReader::for_wire(writer.into_inner(), ctx.wire_v2);
    let resp = tokio::time::timeout(RESP_TIMEOUT, reader.read())
        .await
        .map_err(|_| Error::Timeout("waiting for NewVisitorConnResp"))??;
    match resp {
        Some(Message::NewVisitorConnResp(r)) if r.error.is_empty() => Ok(reader.into_parts()),
        Some(Message::NewVisitorConnResp(r)) => Err(Error::VisitorRefused {
            name: cfg.name.clone(),
            reason: r.error,
        }),
        Some(other) => Err(Error::Protocol(format!(
            "expected NewVisitorConnResp, got {}",
            other.message_type().name()
        ))),
        None => Err(Error::Protocol(
            "server closed the visitor connection without an answer".into(),
        )),
    }
}

/// Reports a visitor connection that could not be set up.
fn refused(v: &Visitor, ctx: &VisitorContext, e: &Error) {
    let error = match e {
        Error::VisitorRefused { reason, .. } => reason.clone(),
        other => other.to_string(),
    };
    tracing::warn!(visitor = %v.config.name, %error, "start new visitor connection error");
    failed(v, ctx, error);
}

/// One stcp user connection: a visitor connection to frps, then bytes both ways.
async fn stcp_conn(v: &Visitor, ctx: &VisitorContext, user: TcpStream) -> Result<(), Error> {
    let (remote, early) = match connect(v, ctx).await {
        Ok(c) => c,
        Err(e) => {
            refused(v, ctx, &e);
            return Err(e);
        }
    };
    splice_user(v, ctx, user, remote, early).await
}

/// A user connection and its remote end (a visitor connection or an xtcp tunnel stream),
/// spliced with the visitor's secret-key wrapping.
async fn splice_user(
    v: &Visitor,
    ctx: &VisitorContext,
    user: TcpStream,
    remote: BoxStream,
    early: BytesMut,
) -> Result<(), Error> {
    let _ = user.set_nodelay(true);
    let cfg = &v.config;
    let counters = &ctx.counters;
    let held = || Held::new(&counters.buffered_bytes, &counters.peak_buffered_bytes);
    let key = cfg.use_encryption.then_some(&v.key);
    Splice {
        remote,
        local: user,
        up: Pump::outbound(
            Sealer::new(key.map(|k| (k, rand::random())), cfg.use_compression),
            &counters.bytes_from_local,
            held(),
        ),
        down: Pump::inbound(
            pipeline::Opener::new(key, cfg.use_compression),
            early,
            &counters.bytes_to_local,
            held(),
        ),
        log: None,
    }
    .await
    .map_err(Error::from)
}

/// The sudp visitor's loop: the first datagram opens a visitor connection, which then carries
/// every user's datagrams until it breaks; the next datagram opens a new one.
async fn sudp_dispatch(v: &Visitor, ctx: &VisitorContext, socket: &UdpSocket) {
    let size = ctx.udp_packet_size;
    let mut buf = vec![0u8; size + 1];
    let mut oversized: u64 = 0;
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        if n > size {
            warn_oversized(v, size, &mut oversized);
            continue;
        }
        let first = proto_udp::encode(&buf[..n], from);
        let (stream, early) = match connect(v, ctx).await {
            Ok(c) => c,
            Err(e) => {
                refused(v, ctx, &e);
                continue;
            }
        };
        let key = v.config.use_encryption.then_some(&v.key);
        let comp = v.config.use_compression;
        let conn = Wrapped::new(stream, key, comp, early);
        if let Err(e) = sudp_worker(v, ctx, socket, conn, first, &mut buf, &mut oversized).await {
            tracing::debug!(visitor = %v.config.name, error = %e, "sudp visitor connection ended");
        }
    }
}

fn warn_oversized(v: &Visitor, size: usize, count: &mut u64) {
    if *count == 0 {
        tracing::warn!(
            visitor = %v.config.name,
            limit = size,
            "udp datagram larger than udpPacketSize; dropped"
        );
    }
    *count += 1;
}

/// Carries datagrams over one sudp visitor connection until it breaks or stays silent for
/// 60 s (the proxy side pings every 30 s).
async fn sudp_worker(
    v: &Visitor,
    ctx: &VisitorContext,
    socket: &UdpSocket,
    conn: Wrapped,
    first: frp_proto::msg::UdpPacket,
    buf: &mut [u8],
    oversized: &mut u64,
) -> Result<(), Error> {
    let size = ctx.udp_packet_size;
    let (rd, wr) = tokio::io::split(conn);
    let mut reader = MsgReader::for_wire(rd, ctx.wire_v2);
    let mut writer = MsgWriter::for_wire(wr, ctx.wire_v2, false);
    let send = async {
        writer.send(&first.into()).await?;
        loop {
            let (n, from) = socket.recv_from(buf).await?;
            if n > size {
                warn_oversized(v, size, oversized);
                continue;
            }
            ctx.counters
                .bytes_from_local
                .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            writer
                .send(&proto_udp::encode(&buf[..n], from).into())
                .await?;
        }
    };
    let receive = async {
        let mut payload = Vec::with_capacity(size);
        loop {
            let msg = tokio::time::timeout(WORK_CONN_READ_TIMEOUT, reader.read())
                .await
                .map_err(|_| Error::Timeout("waiting for data on the sudp visitor connection"))??;
            let packet = match msg {
                Some(Message::UdpPacket(p)) => p,
                Some(_) => continue,
                None => return Ok::<(), Error>(()),
            };
            match proto_udp::decode_into(&packet, &mut payload) {
                Ok(user) => {
                    if socket.send_to(&payload, user).await.is_ok() {
                        ctx.counters
                            .bytes_to_local
                            .fetch_add(payload.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    tracing::debug!(visitor = %v.config.name, error = %e, "udp packet dropped")
                }
            }
        }
    };
    tokio::select! {
        r = send => r,
        r = receive => r,
    }
}
