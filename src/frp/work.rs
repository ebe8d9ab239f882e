//! Work connections: the data path.
//!
//! For every `ReqWorkConn` the control session spawns [`serve`]: open a stream (or connection),
//! send `NewWorkConn`, wait — possibly for a long time, the connection sits in frps's pool — for
//! `StartWorkConn`, dial the local service and splice bytes both ways (see `splice`) until
//! either side ends.

use super::codec::{MsgReader, MsgWriter};
use super::config::{ClientConfig, ProxyConfig};
use super::error::Error;
use super::events::{Counters, Event, RepeatLimiter, Verdict, REPEAT_WINDOW};
use super::limit::{Limiter, Throttle};
use super::splice::{Held, Pump, RequestLog, Splice};
use super::transport::{BoxStream, Opener};
use super::wire::unix_now;
use crate::httplog::HttpLog;
use frp_proto::crypto::Key;
use frp_proto::msg::NewWorkConn;
use frp_proto::pipeline::{self, Sealer};
use frp_proto::proxy_protocol;
use frp_proto::Message;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What every work connection of one login needs to know; shared, read-only but for the
/// per-proxy warning limiters and the proxy table, which a reload replaces.
pub(crate) struct WorkContext {
    pub run_id: String,
    pub token: crate::secret::Secret,
    pub key: Key,
    pub auth_new_work_conns: bool,
    /// Proxies by wire name (`user.name`). Read once per StartWorkConn; a connection keeps the
    /// proxy it started with, so a reload never touches live connections.
    proxies: RwLock<HashMap<String, Arc<WorkProxy>>>,
    pub local_dial_timeout: Duration,
    pub counters: Arc<Counters>,
    pub events: broadcast::Sender<Event>,
    /// `udpPacketSize`, for udp/sudp proxies.
    pub udp_packet_size: usize,
    /// The login speaks wire v2: work connections open with the magic and v2 frames.
    pub wire_v2: bool,
    /// The inspector's store: http proxies record their exchanges there.
    pub capture: Option<Arc<crate::capture::CaptureStore>>,
    /// The control connection as xtcp proxies use it; set once logged in.
    pub xtcp: Option<Arc<super::xtcp::Link>>,
}

/// One proxy as its work connections see it.
pub(crate) struct WorkProxy {
    pub config: ProxyConfig,
    /// Repeated "local service unreachable" reports of this proxy.
    unreachable: Mutex<Unreachable>,
    /// udp: ends the work connection in use when frps hands over a new one.
    udp_current: Mutex<Option<CancellationToken>>,
    /// The client-side bandwidth limit, shared by all work connections of the proxy.
    limiter: Option<Arc<Limiter>>,
    /// The proxy's plugin instance, made when frps accepts the proxy.
    plugin: super::plugin::Slot,
}

/// Rate limiting of one proxy's "local service unreachable" warnings.
struct Unreachable {
    limiter: RepeatLimiter,
    /// The latest dial error, for the summary.
    last_error: String,
}

impl WorkProxy {
    fn new(config: ProxyConfig, repeat_window: Duration) -> Self {
        let limiter = config
            .bandwidth_limit
            .as_ref()
            .and_then(|b| b.client_rate())
            .map(|rate| Arc::new(Limiter::new(rate)));
        WorkProxy {
            config,
            unreachable: Mutex::new(Unreachable {
                limiter: RepeatLimiter::new(repeat_window),
                last_error: String::new(),
            }),
            udp_current: Mutex::new(None),
            limiter,
            plugin: Default::default(),
        }
    }
}

impl WorkContext {
    /// The context of one login; `proxies` are the proxies in force (the config's at start,
    /// a reload's later).
    pub(crate) fn new(
        cfg: &ClientConfig,
        proxies: &[ProxyConfig],
        run_id: String,
        counters: Arc<Counters>,
        events: broadcast::Sender<Event>,
    ) -> Self {
        let ctx = WorkContext {
            run_id,
            token: cfg.token.clone(),
            key: Key::derive(cfg.token.expose()),
            auth_new_work_conns: cfg.auth_new_work_conns,
            proxies: RwLock::new(HashMap::new()),
            local_dial_timeout: super::config::DEFAULT_LOCAL_DIAL_TIMEOUT,
            counters,
            events,
            udp_packet_size: cfg.udp_packet_size,
            wire_v2: false,
            capture: cfg.capture.clone(),
            xtcp: None,
        };
        ctx.set_proxies(cfg, proxies);
        ctx
    }

    /// Makes `proxies` the table for StartWorkConns from now on. A proxy whose config is
    /// unchanged keeps its entry (and its warning limiter); a removed proxy's next
    /// StartWorkConn finds nothing and its work connection is closed, as frpc does.
    pub(crate) fn set_proxies(&self, cfg: &ClientConfig, proxies: &[ProxyConfig]) {
        let mut table = self.proxies.write().unwrap_or_else(PoisonError::into_inner);
        let mut old = std::mem::take(&mut *table);
        for p in proxies {
            let wire = cfg.wire_name(&p.name);
            let entry = match old.remove(&wire) {
                Some(kept) if kept.config == *p => kept,
                _ => Arc::new(WorkProxy::new(p.clone(), REPEAT_WINDOW)),
            };
            table.insert(wire, entry);
        }
    }

    /// Starts the plugin of the proxy `name` (without the user prefix), if it has one: frpc
    /// makes a proxy's plugin when frps accepts the proxy. The error is the proxy's start
    /// error.
    pub(crate) fn start_plugin(&self, cfg: &ClientConfig, name: &str) -> Result<(), String> {
        let Some(proxy) = self.proxy(&cfg.wire_name(name)) else {
            return Ok(());
        };
        match &proxy.config.plugin {
            Some(plugin) => proxy.plugin.start(plugin),
            None => Ok(()),
        }
    }

    /// Gives this login's xtcp proxies their control link; returns it for the visitors.
    pub(crate) fn link_xtcp(
        &mut self,
        switches: &super::switch::SwitchSender,
        cfg: &ClientConfig,
    ) -> Option<Arc<super::xtcp::Link>> {
        let settings = super::xtcp::Settings {
            stun_server: cfg.nat_hole_stun_server.clone(),
        };
        let link = Arc::new(super::xtcp::Link::new(switches.clone(), settings));
        self.xtcp = Some(link.clone());
        Some(link)
    }

    fn proxy(&self, wire_name: &str) -> Option<Arc<WorkProxy>> {
        self.proxies
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(wire_name)
            .cloned()
    }
}

/// Hands a control message the session does not own to xtcp (a `NatHoleResp` somebody
/// waits for); anything else is logged and dropped.
pub(crate) fn deliver(ctx: Option<&WorkContext>, msg: Message) {
    let kind = msg.message_type().name();
    let link = ctx.and_then(|c| c.xtcp.as_ref());
    if !link.is_some_and(|l| l.deliver(msg)) {
        tracing::debug!(kind, "ignoring control message");
    }
}

/// Counts one splicing work connection in a gauge for as long as it lives, so no early return
/// or panic can leave the gauge off.
struct Active<'a>(&'a AtomicU64);

impl<'a> Active<'a> {
    fn new(gauge: &'a AtomicU64) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        Active(gauge)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One work connection, from `NewWorkConn` to the end of its splice. Errors end only this
/// connection; they are logged at debug level and never reach the control session.
pub(crate) async fn serve(opener: Opener, ctx: Arc<WorkContext>, session: CancellationToken) {
    if let Err(e) = serve_inner(opener, &ctx, session).await {
        tracing::debug!(error = %e, "work connection ended");
    }
}

async fn serve_inner(
    opener: Opener,
    ctx: &Arc<WorkContext>,
    session: CancellationToken,
) -> Result<(), Error> {
    // Boxed, as the rare paths below: a task's future is as large as its largest state, and an
    // idle connection keeps the whole allocation (37 KiB when these were inline, against 16 KiB
    // for everything else an idle connection holds).
    let stream = Box::pin(opener.open()).await?;
    let mut writer = MsgWriter::for_wire(stream, ctx.wire_v2, true);
    let mut hello = NewWorkConn {
        run_id: ctx.run_id.clone(),
        ..Default::default()
    };
    if ctx.auth_new_work_conns {
        let ts = unix_now();
        hello.timestamp = ts;
        hello.privilege_key = frp_proto::auth::privilege_key(ctx.token.expose(), ts);
    }
    writer.send(&hello.into()).await?;
    let stream = writer.into_inner();

    // A pooled connection waits here until frps hands it a visitor; there is no timeout (Go has
    // none), but a session that is replaced or shut down releases it.
    let mut reader = MsgReader::for_wire(stream, ctx.wire_v2);
    let pooled = Active::new(&ctx.counters.pooled_work_conns);
    let start = tokio::select! {
        msg = reader.read() => msg?,
        _ = session.cancelled() => return Ok(()),
    };
    drop(pooled);
    let start = match start {
        Some(Message::StartWorkConn(s)) => s,
        // frps closes surplus pooled connections with a bare EOF: not an error.
        None => return Ok(()),
        Some(other) => {
            return Err(Error::Protocol(format!(
                "expected StartWorkConn, got {}",
                other.message_type().name()
            )))
        }
    };
    if !start.error.is_empty() {
        return Err(Error::Protocol(format!(
            "server refused work connection: {}",
            start.error
        )));
    }
    let Some(work_proxy) = ctx.proxy(&start.proxy_name) else {
        return Err(Error::Protocol(format!(
            "StartWorkConn for unknown proxy {:?}",
            start.proxy_name
        )));
    };
    let proxy = &work_proxy.config;
    if let super::config::ProxyKind::Xtcp(opts) = &proxy.kind {
        return Box::pin(serve_xtcp(ctx, &work_proxy, opts, reader, start, session)).await;
    }
    let (stream, early) = reader.into_parts();
    if proxy.kind.is_udp() {
        return Box::pin(serve_udp(ctx, &work_proxy, stream, early, &session)).await;
    }
    let key = proxy.use_encryption.then_some(&ctx.key);
    to_local(ctx, &work_proxy, stream, early, &start, &session, key).await
}

/// An xtcp work connection: it only brings the punch's session id; the visitor's connections
/// come as streams of the punched QUIC connection, each served as a work connection whose
/// payload is wrapped with the proxy's secret key (as frpc does).
async fn serve_xtcp(
    ctx: &Arc<WorkContext>,
    work_proxy: &Arc<WorkProxy>,
    opts: &super::config::SecretOptions,
    reader: MsgReader<BoxStream>,
    start: frp_proto::msg::StartWorkConn,
    session: CancellationToken,
) -> Result<(), Error> {
    let Some(link) = ctx.xtcp.clone() else {
        return Err(Error::Protocol(
            "xtcp work connection without a control link".into(),
        ));
    };
    let key = Arc::new(Key::derive(opts.secret_key.expose()));
    let proxy = super::xtcp::proxy::XtcpProxy {
        wire_name: start.proxy_name.clone(),
        secret_key: opts.secret_key.expose(),
        disable_assisted: opts.disable_assisted_addrs,
    };
    let start = Arc::new(start);
    let on_stream = |stream: BoxStream| {
        let (ctx, wp, start, key) = (ctx.clone(), work_proxy.clone(), start.clone(), key.clone());
        let session = session.clone();
        tokio::spawn(async move {
            let key = wp.config.use_encryption.then_some(&*key);
            let early = bytes::BytesMut::new();
            if let Err(e) = to_local(&ctx, &wp, stream, early, &start, &session, key).await {
                tracing::debug!(error = %e, "xtcp connection ended");
            }
        });
    };
    let served = super::xtcp::proxy::serve(&link, proxy, reader, &session, on_stream).await;
    if let Err(e) = &served {
        tracing::warn!(proxy = %work_proxy.config.name, error = %e, "xtcp");
    }
    served
}

/// A started work connection (or xtcp stream) to the local service or the proxy's plugin,
/// its payload wrapped with `key` when encrypted.
async fn to_local(
    ctx: &WorkContext,
    work_proxy: &Arc<WorkProxy>,
    stream: BoxStream,
    early: bytes::BytesMut,
    start: &frp_proto::msg::StartWorkConn,
    session: &CancellationToken,
    key: Option<&Key>,
) -> Result<(), Error> {
    let proxy = &work_proxy.config;
    if let Some(plugin) = &proxy.plugin {
        return Box::pin(serve_plugin(
            ctx, work_proxy, plugin, stream, early, start, key,
        ))
        .await;
    }

    let counters = &ctx.counters;
    let held = || Held::new(&counters.buffered_bytes, &counters.peak_buffered_bytes);
    let up = Pump::outbound(
        Sealer::new(key.map(|k| (k, rand::random())), proxy.use_compression),
        &counters.bytes_from_local,
        held(),
    );
    let local_addr = proxy.local_addr();
    let dialed = tokio::time::timeout(
        ctx.local_dial_timeout,
        TcpStream::connect((proxy.local_host.as_str(), proxy.local_port)),
    )
    .await;
    let local = match dialed {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            crate::nofile::warn_once(&e);
            report_unreachable(&ctx.events, work_proxy, &local_addr, e.to_string(), session);
            return Box::pin(answer_unreachable(proxy, &local_addr, stream, up)).await;
        }
        Err(_) => {
            let error = "timed out".to_string();
            report_unreachable(&ctx.events, work_proxy, &local_addr, error, session);
            return Box::pin(answer_unreachable(proxy, &local_addr, stream, up)).await;
        }
    };
    let mut local = local;
    let _ = local.set_nodelay(true);
    if let Some(version) = proxy.proxy_protocol {
        // Before any payload, as frpc: the local service learns the visitor's address.
        let header = proxy_protocol::for_work_conn(
            version,
            &start.src_addr,
            start.src_port,
            &start.dst_addr,
            start.dst_port,
        )
        .map_err(|e| {
            Error::Protocol(format!(
                "write proxy protocol header to local conn error: {e}"
            ))
        })?;
        if let Some(header) = header {
            local.write_all(header.as_bytes()).await?;
        }
    }
    let throttle = || work_proxy.limiter.clone().map(Throttle::new);
    let down = Pump::inbound(
        pipeline::Opener::new(key, proxy.use_compression),
        early,
        &counters.bytes_to_local,
        held(),
    );

    counters.total_work_conns.fetch_add(1, Ordering::Relaxed);
    let _active = Active::new(&counters.active_work_conns);
    let per_proxy = counters.proxies.get(&proxy.name);
    per_proxy.total_conns.fetch_add(1, Ordering::Relaxed);
    let _open = Active::new(&per_proxy.open_conns);
    // http proxies are observed for the inspector too; its recording rides on the same parser.
    let capture = ctx.capture.as_deref().filter(|_| proxy.is_http());
    let log = (proxy.request_log || capture.is_some()).then(|| RequestLog {
        parser: Box::new(match capture {
            Some(store) => HttpLog::with_capture(store.capture_options()),
            None => HttpLog::new(),
        }),
        proxy: &proxy.name,
        events: &ctx.events,
        capture,
        local_addr: &local_addr,
        counters: &per_proxy,
    });
    let mut splice = Splice {
        remote: stream,
        local,
        up: up.throttled(throttle()),
        down: down.throttled(throttle()),
        log,
    };
    let result = (&mut splice).await;
    // Per-proxy bytes are added once, when the connection ends.
    let (to_local, from_local) = (splice.down.moved(), splice.up.moved());
    per_proxy
        .bytes_to_local
        .fetch_add(to_local, Ordering::Relaxed);
    per_proxy
        .bytes_from_local
        .fetch_add(from_local, Ordering::Relaxed);
    result.map_err(Error::from)
}

/// A work connection handed to the proxy's plugin, seen through the payload wrapping.
async fn serve_plugin(
    ctx: &WorkContext,
    work_proxy: &WorkProxy,
    plugin: &super::plugin::PluginConfig,
    stream: BoxStream,
    early: bytes::BytesMut,
    start: &frp_proto::msg::StartWorkConn,
    key: Option<&Key>,
) -> Result<(), Error> {
    let proxy = &work_proxy.config;
    // Limited under the payload wrapping, counted above it: as the splice does.
    let stream: BoxStream = match &work_proxy.limiter {
        Some(limiter) => Box::new(super::metered::Metered::limited(stream, limiter.clone())),
        None => stream,
    };
    let conn = super::metered::Metered::counted(
        super::wrapped::Wrapped::new(stream, key, proxy.use_compression, early),
        ctx.counters.clone(),
    );
    let src = (!start.src_addr.is_empty() && start.src_port != 0)
        .then(|| start.src_addr.parse().ok())
        .flatten()
        .map(|ip| std::net::SocketAddr::new(ip, start.src_port));
    let header = match proxy.proxy_protocol {
        Some(version) => proxy_protocol::for_work_conn(
            version,
            &start.src_addr,
            start.src_port,
            &start.dst_addr,
            start.dst_port,
        )
        .ok()
        .flatten(),
        None => None,
    };
    let visitor = super::plugin::Visitor {
        proxy: proxy.name.clone(),
        src,
        header,
    };
    ctx.counters
        .total_work_conns
        .fetch_add(1, Ordering::Relaxed);
    let _active = Active::new(&ctx.counters.active_work_conns);
    super::plugin::serve(plugin, &work_proxy.plugin, conn, visitor).await
}

/// A udp/sudp work connection: UDPPacket messages inside the proxy's payload wrapping. A udp
/// proxy keeps only its newest work connection, as Go frpc does.
async fn serve_udp(
    ctx: &WorkContext,
    work_proxy: &WorkProxy,
    stream: BoxStream,
    early: bytes::BytesMut,
    session: &CancellationToken,
) -> Result<(), Error> {
    let proxy = &work_proxy.config;
    let stop = session.child_token();
    if matches!(proxy.kind, super::config::ProxyKind::Udp { .. }) {
        let mut current = work_proxy
            .udp_current
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = current.replace(stop.clone()) {
            old.cancel();
        }
    }
    tracing::info!(proxy = %proxy.name, "incoming a new work connection for {} proxy", proxy.kind.type_name());
    let local = tokio::net::lookup_host((proxy.local_host.as_str(), proxy.local_port))
        .await?
        .next()
        .ok_or_else(|| {
            Error::Config(format!(
                "proxy {}: no address for {}",
                proxy.name, proxy.local_host
            ))
        })?;
    let key = proxy.use_encryption.then_some(&ctx.key);
    let conn = super::wrapped::Wrapped::new(stream, key, proxy.use_compression, early);
    ctx.counters
        .total_work_conns
        .fetch_add(1, Ordering::Relaxed);
    let _active = Active::new(&ctx.counters.active_work_conns);
    let relay = super::udp::Relay {
        name: &proxy.name,
        local,
        packet_size: ctx.udp_packet_size,
        counters: &ctx.counters,
        wire_v2: ctx.wire_v2,
        proxy_protocol: proxy.proxy_protocol,
    };
    super::udp::serve(relay, conn, stop).await
}

/// Tells the caller the local service is down, the first time at once and then at most one
/// summary per window ([`REPEAT_WINDOW`]), so a crowd of visitors does not flood the log and the events.
fn report_unreachable(
    events: &broadcast::Sender<Event>,
    proxy: &Arc<WorkProxy>,
    local_addr: &str,
    error: String,
    session: &CancellationToken,
) {
    let verdict = {
        let mut state = proxy
            .unreachable
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let verdict = state.limiter.hit(Instant::now());
        if !matches!(verdict, Verdict::Report) {
            state.last_error = error.clone();
        }
        verdict
    };
    let name = &proxy.config.name;
    match verdict {
        Verdict::Report => {
            tracing::warn!(proxy = %name, local = %local_addr, %error, "local service unreachable");
            let _ = events.send(Event::LocalUnreachable {
                name: name.clone(),
                local_addr: local_addr.to_owned(),
                error,
                suppressed: 0,
            });
        }
        Verdict::Suppress { flush_at: Some(at) } => {
            let (events, proxy, session) = (events.clone(), proxy.clone(), session.clone());
            let local_addr = local_addr.to_owned();
            tokio::spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    // The session's events end with it; a late summary would only confuse.
                    _ = session.cancelled() => return,
                }
                summarise_unreachable(&events, &proxy, &local_addr);
            });
        }
        Verdict::Suppress { flush_at: None } => {}
    }
}

/// The summary at the end of a window: how many reports were held back, and the last error.
fn summarise_unreachable(events: &broadcast::Sender<Event>, proxy: &WorkProxy, local_addr: &str) {
    let summary = {
        let mut state = proxy
            .unreachable
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let error = std::mem::take(&mut state.last_error);
        let window = state.limiter.length();
        state
            .limiter
            .flush(Instant::now())
            .map(|n| (n, error, window))
    };
    let Some((suppressed, error, window)) = summary else {
        return;
    };
    let name = &proxy.config.name;
    tracing::warn!(
        proxy = %name,
        local = %local_addr,
        %error,
        "local service unreachable: {suppressed} more in the last {} s",
        window.as_secs_f64()
    );
    let _ = events.send(Event::LocalUnreachable {
        name: name.clone(),
        local_addr: local_addr.to_owned(),
        error,
        suppressed,
    });
}

/// Answers a visitor whose local service is down: http visitors get a short 502 page naming
/// the local address; then the connection is closed.
async fn answer_unreachable(
    proxy: &ProxyConfig,
    local_addr: &str,
    mut stream: BoxStream,
    mut up: Pump<'_, Sealer>,
) -> Result<(), Error> {
    if proxy.is_http() {
        up.send(bad_gateway_page(local_addr).as_bytes(), &mut stream)
            .await?;
    }
    let _ = stream.shutdown().await;
    Ok(())
}

/// The 502 response an http visitor gets when the local service is down: short, and naming the
/// local address so the person running the tunnel knows what to start.
pub(crate) fn bad_gateway_page(local_addr: &str) -> String {
    let body = format!(
        "<!doctype html><title>502 Bad Gateway</title><h1>502 Bad Gateway</h1>\
         <p>expose could not reach the local service at {local_addr}. Is it running?</p>\n"
    );
    format!(
        "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests;
