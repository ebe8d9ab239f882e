//! The control session's driver: moves bytes and time for `frp_proto`'s session state machine.
//!
//! [`run`] is the client's one long-lived task. The protocol decisions — what to send after
//! login, when to ping, resend or retry a proxy, when a session is dead and how long to wait
//! before dialling again — are all `frp_proto::session::Session`'s. This task dials when told,
//! writes what the session queues, feeds it what the server sends and the time, spawns a work
//! connection per `ReqWorkConn`, and publishes state and events for the application.

use super::codec::{MsgReader, MsgWriter};
use super::config::{ClientConfig, ProxyConfig, VisitorConfig};
use super::error::Error;
use super::events::{proxy_ready, Counters, Event};
use super::reconfig::{self, Command, ProxyChanges, VisitorChanges};
use super::state::{ClientState, Phase, ProxyStatus};
use super::switch::{self, SwitchReceiver, SwitchSender};
use super::transport::{self, BoxStream, Connector};
use super::visitor::{self, Running};
use super::wire;
use super::wire_v2::{self, WireChoice};
use super::work::{self, WorkContext};
use frp_proto::crypto::Key;
use frp_proto::session::{self, Failure, Session};
use frp_proto::Message;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::{CancellationToken, DropGuard};

/// Bound on any single control write: a server that stops reading must not wedge the session.
const CONTROL_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Time allowed for CloseProxy messages on shutdown before we just close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// How long an ended control stream waits for the multiplexer's reason ([`control_closed`]).
const MUX_REASON_WAIT: Duration = Duration::from_millis(50);

/// What the engine's tasks share.
pub(crate) struct Shared {
    /// The configuration the client started with; its `proxies` are the first set only.
    pub config: ClientConfig,
    /// The proxies in force (the config's, until a reload replaces them).
    pub proxies: Mutex<Vec<ProxyConfig>>,
    /// The visitors in force (the config's, until a reload replaces them).
    pub visitors: Mutex<Vec<VisitorConfig>>,
    pub connector: Connector,
    pub counters: Arc<Counters>,
    pub events: broadcast::Sender<Event>,
    pub state: watch::Sender<ClientState>,
    /// Health checks switch their proxy on and off through this.
    pub switches: SwitchSender,
    /// The running health checks (a reload stops and starts them).
    pub health: super::health::HealthTasks,
}

impl Shared {
    fn emit(&self, event: Event) {
        // No subscriber is fine: events are for whoever listens.
        let _ = self.events.send(event);
    }

    fn set_phase(&self, phase: Phase) {
        self.state.send_modify(|s| s.phase = phase);
    }

    fn set_status(&self, name: &str, status: ProxyStatus) {
        self.state.send_modify(|s| {
            // A late answer for a proxy a reload removed does not bring it back.
            if let Some(slot) = s.proxies.get_mut(name) {
                *slot = status;
            }
        });
    }

    /// A copy of the proxies in force.
    pub fn proxies(&self) -> Vec<ProxyConfig> {
        self.proxies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A copy of the visitors in force.
    pub fn visitors(&self) -> Vec<VisitorConfig> {
        self.visitors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

type ControlReader = MsgReader<ReadHalf<BoxStream>>;
type ControlWriter = MsgWriter<WriteHalf<BoxStream>>;

/// One connection to frps: its transport, its control stream, and its work connections.
struct Conn {
    link: transport::Session,
    reader: ControlReader,
    writer: ControlWriter,
    /// Set once logged in: what this login's work connections need.
    work: Option<Arc<WorkContext>>,
    /// Set once logged in: this login's visitors.
    visitors: Option<Running>,
    /// Child of the client's token; cancelled when this connection ends (by `_release`),
    /// releasing its pooled work connections, whose StartWorkConn can no longer come.
    work_token: CancellationToken,
    _release: DropGuard,
}

impl Conn {
    /// Wire v2: the AEAD streams of the control connection, keyed from the token and the
    /// hellos; the server's stream may already have begun in the read buffer.
    fn enable_v2_crypto(&mut self, token: &str) -> Result<(), Error> {
        let Some(ctx) = self.reader.v2_mut().and_then(|v2| v2.context().cloned()) else {
            return Err(Error::Protocol(
                "wire v2: LoginResp without a ServerHello".into(),
            ));
        };
        let nonce: [u8; frp_proto::v2::aead::MAX_NONCE_LEN] = rand::random();
        let (sealer, opener) = ctx
            .client_streams(token.as_bytes(), &nonce[..ctx.algorithm.nonce_len()])
            .map_err(|e| Error::Protocol(format!("wire v2: {e}")))?;
        self.writer.enable_v2_encryption(sealer);
        self.reader.enable_v2_decryption(opener)
    }
}

/// What the wire v2 ClientHello says about the connection, as frpc fills it in.
fn wire_v2_bootstrap(config: &ClientConfig) -> frp_proto::v2::Bootstrap {
    frp_proto::v2::Bootstrap {
        transport: "tcp".into(),
        tls: config.tls.enable,
        tcp_mux: config.tcp_mux,
    }
}

/// Runs sessions until the client's token is cancelled (graceful stop) or a fatal error.
pub(crate) async fn run(
    shared: Arc<Shared>,
    session: Session,
    commands: mpsc::Receiver<Command>,
    stop: CancellationToken,
    switches: SwitchReceiver,
) -> Result<(), Error> {
    Driver {
        wire: WireChoice::new(shared.config.wire_protocol),
        shared,
        session,
        commands,
        switches,
        conn: None,
        transport_error: None,
        last_cause: None,
        stop,
    }
    .run()
    .await
}

struct Driver {
    shared: Arc<Shared>,
    session: Session,
    /// Requests from the application (reloads).
    commands: mpsc::Receiver<Command>,
    /// Proxies to switch on or off (health checks).
    switches: SwitchReceiver,
    conn: Option<Conn>,
    /// The details of the last transport failure reported to the session.
    transport_error: Option<Error>,
    /// The last connection's end, for the `Reconnecting` or `Stopped` that follows.
    last_cause: Option<Error>,
    stop: CancellationToken,
    /// The wire protocol in force (what `auto` learned is kept for reconnects).
    wire: WireChoice,
}

/// What the driver does after draining the session's events.
enum Next {
    Continue,
    Dial,
    Stop(Option<Error>),
}

impl Driver {
    async fn run(mut self) -> Result<(), Error> {
        loop {
            match self.drain_events() {
                Next::Continue => {}
                Next::Dial => {
                    self.dial().await;
                    continue;
                }
                Next::Stop(error) => return self.finish(error).await,
            }
            if !self.write_transmits().await {
                continue;
            }
            self.wait().await;
        }
    }

    /// Acts on everything the session decided.
    fn drain_events(&mut self) -> Next {
        let mut next = Next::Continue;
        while let Some(event) = self.session.poll_event() {
            match event {
                session::Event::Connect { attempt } => {
                    self.shared.emit(Event::Connecting { attempt });
                    self.shared.set_phase(Phase::Connecting);
                    next = Next::Dial;
                }
                session::Event::LoggedIn {
                    run_id,
                    reconnected,
                } => self.logged_in(run_id, reconnected),
                session::Event::ProxyReady { name, remote_addr } => {
                    self.proxy_ready(&name, &remote_addr)
                }
                session::Event::ProxyFailed { name, reason } => {
                    tracing::warn!(proxy = %name, %reason, "proxy rejected or failed to start");
                    self.shared
                        .set_status(&name, ProxyStatus::Failed(reason.clone()));
                    self.shared.emit(Event::ProxyFailed { name, reason });
                }
                session::Event::WorkConnRequested => self.spawn_work(),
                session::Event::Message(msg) => {
                    work::deliver(self.conn.as_ref().and_then(|c| c.work.as_deref()), *msg)
                }
                session::Event::Lost { cause, logged_in } => {
                    let error = self.error_for(cause);
                    if logged_in {
                        tracing::warn!(%error, "session lost");
                    } else {
                        tracing::warn!(%error, "login failed");
                        self.shared.counters.login_failed();
                    }
                    self.conn = None;
                    self.last_cause = Some(error);
                }
                session::Event::Reconnecting { attempt, delay, .. } => {
                    let cause = self
                        .last_cause
                        .as_ref()
                        .map(Error::to_string)
                        .unwrap_or_default();
                    tracing::info!(delay_ms = delay.as_millis() as u64, %cause, "reconnecting");
                    self.shared.set_phase(Phase::Reconnecting);
                    self.shared.emit(Event::Reconnecting {
                        attempt,
                        delay,
                        cause,
                    });
                }
                session::Event::Stopped { cause } => {
                    let error = match cause {
                        None => None,
                        Some(c) => Some(match self.last_cause.take() {
                            Some(e) => e,
                            None => self.error_for(c),
                        }),
                    };
                    next = Next::Stop(error);
                }
                _ => {}
            }
        }
        next
    }

    fn logged_in(&mut self, run_id: String, reconnected: bool) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        // Everything after the plaintext LoginResp is encrypted both ways.
        let token = self.shared.config.token.expose();
        let v2 = self.wire.is_v2();
        if v2 {
            if let Err(e) = conn.enable_v2_crypto(token) {
                self.conn = None;
                self.transport_failed(e);
                return;
            }
        } else {
            let key = Key::derive(token);
            conn.reader.enable_decryption(&key);
            conn.writer.enable_encryption(&key);
        }
        let mut work = WorkContext::new(
            &self.shared.config,
            &self.shared.proxies(),
            run_id.clone(),
            self.shared.counters.clone(),
            self.shared.events.clone(),
        );
        work.wire_v2 = v2;
        let xtcp = work.link_xtcp(&self.shared.switches, &self.shared.config);
        conn.work = Some(Arc::new(work));
        conn.visitors = Some(Running::start_all(
            &self.shared.config,
            &self.shared.visitors(),
            visitor::VisitorContext {
                run_id: run_id.clone(),
                opener: conn.link.opener(),
                counters: self.shared.counters.clone(),
                events: self.shared.events.clone(),
                udp_packet_size: self.shared.config.udp_packet_size,
                stop: conn.work_token.clone(),
                wire_v2: v2,
                xtcp,
            },
        ));
        if reconnected {
            self.shared
                .counters
                .reconnects
                .fetch_add(1, Ordering::Relaxed);
        }
        tracing::info!(run_id = %run_id, "logged in");
        self.shared.state.send_modify(|s| {
            s.phase = Phase::Online;
            s.run_id = Some(run_id.clone());
            for p in s.proxies.values_mut() {
                // Proxies switched off by their health check stay off.
                if matches!(p, ProxyStatus::Ready(_) | ProxyStatus::Failed(_)) {
                    *p = ProxyStatus::Pending;
                }
            }
        });
        self.shared.emit(Event::LoggedIn { run_id });
    }

    fn proxy_ready(&mut self, name: &str, remote_addr: &str) {
        let work = self.conn.as_ref().and_then(|c| c.work.as_ref());
        if let Some(Err(e)) = work.map(|w| w.start_plugin(&self.shared.config, name)) {
            return self.session.proxy_start_failed(name, e, Instant::now());
        }
        let is_vhost = self
            .shared
            .proxies()
            .iter()
            .find(|p| p.name == name)
            .is_some_and(|p| p.kind.is_vhost());
        let ready = proxy_ready(name, remote_addr, is_vhost);
        tracing::info!(proxy = %name, remote = %remote_addr, "proxy ready");
        self.shared
            .set_status(name, ProxyStatus::Ready(ready.clone()));
        self.shared.emit(Event::ProxyReady(ready));
    }

    fn spawn_work(&self) {
        let Some(conn) = self.conn.as_ref() else {
            return;
        };
        let Some(ctx) = conn.work.clone() else {
            return;
        };
        tokio::spawn(work::serve(
            conn.link.opener(),
            ctx,
            conn.work_token.clone(),
        ));
    }

    /// The application-facing error for a session failure.
    fn error_for(&mut self, cause: Failure) -> Error {
        match cause {
            Failure::LoginRejected(text) => Error::LoginRejected(text),
            Failure::LoginTimeout => Error::Timeout("waiting for LoginResp"),
            Failure::UnexpectedMessage { expected, got } => {
                Error::Protocol(format!("expected {expected}, got {got}"))
            }
            Failure::PongTimeout => Error::Timeout("waiting for Pong (heartbeat timeout)"),
            Failure::PongError(text) => Error::Protocol(format!("Pong error: {text}")),
            Failure::ProxyRejected { name, reason } => Error::ProxyRejected { name, reason },
            Failure::MessageTooLarge { .. } => Error::Config(cause.to_string()),
            Failure::Transport { .. } => self
                .transport_error
                .take()
                .unwrap_or_else(|| Error::Protocol("connection failed".into())),
            Failure::InvalidRunId { len } => Error::Protocol(format!(
                "the server sent an unusable run_id ({len} bytes; at most {} letters, digits, \
                 '-', '_' or '.')",
                session::MAX_RUN_ID_LEN
            )),
            other => Error::Protocol(other.to_string()),
        }
    }

    fn switch(&mut self, s: switch::Switch) {
        switch::apply(
            &self.shared.config,
            &self.shared.proxies(),
            &mut self.session,
            &self.shared.state,
            s,
        );
    }

    fn transport_failed(&mut self, error: Error) {
        let fatal = error.is_fatal();
        self.transport_error = Some(error);
        self.session.transport_failed(Instant::now(), fatal);
    }

    /// Dials, opens the control stream and hands it to the session (abandoned on shutdown).
    async fn dial(&mut self) {
        let (shared, stop, wire) = (&self.shared, &self.stop, &self.wire);
        let result = {
            let attempt = async {
                loop {
                    let link = shared.connector.connect().await?;
                    let timeout = shared.config.login_timeout;
                    let stream = tokio::time::timeout(timeout, link.opener().open())
                        .await
                        .map_err(|_| Error::Timeout("opening the control stream"))??;
                    let (rd, wr) = tokio::io::split(stream);
                    let bootstrap = wire_v2_bootstrap(&shared.config);
                    let (reader, writer) = (MsgReader::new(rd), MsgWriter::new(wr));
                    // `None`: `auto` found a v1-only server; dial again in v1.
                    let Some((reader, writer)) =
                        wire_v2::start_control(reader, writer, wire, bootstrap, timeout).await?
                    else {
                        continue;
                    };
                    let work_token = stop.child_token();
                    break Ok::<_, Error>(Conn {
                        link,
                        reader,
                        writer,
                        work: None,
                        visitors: None,
                        _release: work_token.clone().drop_guard(),
                        work_token,
                    });
                }
            };
            tokio::pin!(attempt);
            // A reload while dialling is applied at once (no connection to update yet).
            loop {
                tokio::select! {
                    r = &mut attempt => break r,
                    _ = stop.cancelled() => {
                        self.session.close();
                        return;
                    }
                    Some(cmd) = self.commands.recv() => {
                        execute(cmd, &mut self.session, shared, None, None);
                    }
                }
            }
        };
        match result {
            Ok(conn) => {
                self.conn = Some(conn);
                self.session.connected(Instant::now());
            }
            Err(e) => self.transport_failed(e),
        }
    }

    /// Writes what the session queued. False when the connection failed on the way (the
    /// session knows) or a shutdown interrupted a write (the connection is then unusable).
    async fn write_transmits(&mut self) -> bool {
        while let Some(msg) = self.session.poll_transmit() {
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            let write = tokio::time::timeout(CONTROL_WRITE_TIMEOUT, conn.writer.send(&msg));
            let result = tokio::select! {
                r = write => r.unwrap_or(Err(Error::Timeout("writing to the control connection"))),
                _ = self.stop.cancelled() => {
                    // A frame may be half written: nothing more can go on this stream.
                    self.conn = None;
                    self.session.close();
                    return false;
                }
            };
            if let Err(e) = result {
                self.transport_failed(e);
                return false;
            }
        }
        true
    }

    /// Waits for the next thing to happen: a message, a dead multiplexer, a timer, or a stop.
    async fn wait(&mut self) {
        let deadline = self.session.poll_timeout();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let Some(conn) = self.conn.as_mut() else {
            tokio::select! {
                _ = sleep => self.session.handle_timeout(Instant::now()),
                Some(s) = self.switches.recv() => self.switch(s),
                _ = self.stop.cancelled() => self.session.close(),
                Some(cmd) = self.commands.recv() => {
                    execute(cmd, &mut self.session, &self.shared, None, None);
                }
            }
            return;
        };
        tokio::select! {
            msg = conn.reader.read() => match msg {
                Ok(Some(msg)) => self.session.handle(msg, Instant::now()),
                Ok(None) => {
                    let error = control_closed(&conn.link, self.session.is_online()).await;
                    self.transport_failed(error);
                }
                Err(e) => self.transport_failed(e),
            },
            reason = conn.link.dead() => self.transport_failed(Error::Mux(reason)),
            _ = sleep => self.session.handle_timeout(Instant::now()),
            Some(s) = self.switches.recv() => self.switch(s),
            _ = self.stop.cancelled() => self.session.close(),
            Some(cmd) = self.commands.recv() => {
                let work = conn.work.as_deref();
                execute(cmd, &mut self.session, &self.shared, work, conn.visitors.as_mut());
            }
        }
    }

    /// The end: after a requested stop, CloseProxy for every proxy, FIN on the control stream
    /// and a closed connection (Go frpc's graceful close), all within [`SHUTDOWN_GRACE`]. The
    /// connection is closed, not just dropped, so what was queued on it reaches the server
    /// even if the process exits right after.
    async fn finish(mut self, error: Option<Error>) -> Result<(), Error> {
        if let Some(mut conn) = self.conn.take() {
            let session = &mut self.session;
            let close = async {
                while let Some(msg) = session.poll_transmit() {
                    if let Message::CloseProxy(c) = &msg {
                        tracing::info!(proxy = %c.proxy_name, "proxy closed");
                    }
                    conn.writer.send(&msg).await?;
                }
                let shut = conn.writer.shutdown().await;
                conn.link.close().await;
                shut
            };
            match tokio::time::timeout(SHUTDOWN_GRACE, close).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "graceful close incomplete"),
                Err(_) => tracing::debug!("graceful close timed out"),
            }
        }
        let cause = error.as_ref().map(|e| e.to_string());
        if let Some(c) = &cause {
            tracing::error!(cause = %c, "client stopped");
        }
        self.shared
            .state
            .send_modify(|s| s.phase = Phase::Stopped(error.clone()));
        self.shared.emit(Event::Stopped { cause });
        match error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Carries out one application request; `work` and `visitors` are the logged-in connection's.
fn execute(
    cmd: Command,
    session: &mut Session,
    shared: &Shared,
    work: Option<&WorkContext>,
    visitors: Option<&mut Running>,
) {
    // The caller may have given up waiting; the change stands either way.
    match cmd {
        Command::SetProxies { proxies, reply } => {
            let _ = reply.send(set_proxies(session, shared, work, proxies));
        }
        Command::SetVisitors {
            visitors: new,
            reply,
        } => {
            let _ = reply.send(set_visitors(shared, visitors, new));
        }
    }
}

/// Replaces the visitor set: removed and changed visitors stop listening, new and changed ones
/// start on the running login (or at the next one). Connections already open through a
/// visitor keep running, as in frpc.
fn set_visitors(
    shared: &Shared,
    running: Option<&mut Running>,
    visitors: Vec<VisitorConfig>,
) -> VisitorChanges {
    let changes = reconfig::diff_visitors(&shared.visitors(), &visitors);
    if changes.is_empty() {
        return changes;
    }
    if let Some(running) = running {
        let mut stopped: std::collections::HashMap<&str, _> = changes
            .removed
            .iter()
            .filter_map(|name| Some((name.as_str(), running.stop(name)?)))
            .collect();
        for v in visitors.iter().filter(|v| changes.added.contains(&v.name)) {
            running.start(&shared.config, v, stopped.remove(v.name.as_str()));
        }
    }
    *shared
        .visitors
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = visitors;
    tracing::info!(removed = ?changes.removed, added = ?changes.added, "visitors updated");
    shared.emit(Event::VisitorsUpdated {
        removed: changes.removed.clone(),
        added: changes.added.clone(),
    });
    changes
}

/// Replaces the proxy set: CloseProxy for every removed or changed proxy, then NewProxy for
/// every new or changed one (queued now, written by the loop), the work connections' table,
/// the published state. The caller checked the set (names, sizes) before sending it.
fn set_proxies(
    session: &mut Session,
    shared: &Shared,
    work: Option<&WorkContext>,
    proxies: Vec<ProxyConfig>,
) -> ProxyChanges {
    let changes = reconfig::diff(&shared.proxies(), &proxies);
    if changes.is_empty() {
        return changes;
    }
    let now = Instant::now();
    for name in &changes.removed {
        shared.health.stop(name);
        session.remove_proxy(name);
    }
    for p in proxies.iter().filter(|p| changes.added.contains(&p.name)) {
        if p.health_check.is_some() {
            // Registered once its health check first passes, as at start.
            continue;
        }
        let msg = wire::new_proxy_message(&shared.config.wire_name(&p.name), p);
        if let Err(e) = session.add_proxy(p.name.clone(), msg, now) {
            // Checked before the request was sent; a failure here would be a bug.
            tracing::error!(proxy = %p.name, error = %e, "proxy not added");
        }
    }
    if let Some(work) = work {
        work.set_proxies(&shared.config, &proxies);
    }
    shared.state.send_modify(|s| {
        for name in &changes.removed {
            s.proxies.remove(name);
        }
        for p in proxies.iter().filter(|p| changes.added.contains(&p.name)) {
            let status = match p.health_check {
                Some(_) => ProxyStatus::AwaitingHealth,
                None => ProxyStatus::Pending,
            };
            s.proxies.insert(p.name.clone(), status);
        }
    });
    // Their switches reach this task only after this function returns.
    for p in proxies.iter().filter(|p| changes.added.contains(&p.name)) {
        shared.health.start(p, &shared.switches, &shared.events);
    }
    *shared
        .proxies
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = proxies;
    tracing::info!(removed = ?changes.removed, added = ?changes.added, "proxies updated");
    shared.emit(Event::ProxiesUpdated {
        removed: changes.removed.clone(),
        added: changes.added.clone(),
    });
    changes
}

/// Why the control stream ended. A broken multiplexer (yamux protocol error, GoAway) ends the
/// control stream too, usually a moment before the driver has recorded why; that reason says
/// more than the bare EOF, so it is awaited briefly. Before LoginResp an EOF most often means
/// the server expects the other tcpMux setting.
async fn control_closed(link: &transport::Session, logged_in: bool) -> Error {
    if !logged_in {
        return Error::Protocol(
            "server closed the connection before answering Login (does its tcpMux setting match ours?)"
                .into(),
        );
    }
    if link.is_shared() {
        if let Ok(reason) = tokio::time::timeout(MUX_REASON_WAIT, link.dead()).await {
            return Error::Mux(reason);
        }
    }
    Error::Protocol("server closed the control connection".into())
}
