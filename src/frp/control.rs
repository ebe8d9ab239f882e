//! The control session's driver: moves bytes and time for `frp_proto`'s session state machine.
//!
//! [`run`] is the client's one long-lived task. The protocol decisions — what to send after
//! login, when to ping, resend or retry a proxy, when a session is dead and how long to wait
//! before dialling again — are all `frp_proto::session::Session`'s. This task dials when told,
//! writes what the session queues, feeds it what the server sends and the time, spawns a work
//! connection per `ReqWorkConn`, and publishes state and events for the application.

use super::codec::{MsgReader, MsgWriter};
use super::config::{ClientConfig, ProxyKind};
use super::error::Error;
use super::events::{proxy_ready, Counters, Event};
use super::state::{ClientState, Phase, ProxyStatus};
use super::transport::{self, BoxStream, Connector};
use super::wire;
use super::work::{self, WorkContext};
use frp_proto::crypto::Key;
use frp_proto::session::{self, Failure, Session};
use frp_proto::Message;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::{CancellationToken, DropGuard};

/// Bound on any single control write: a server that stops reading must not wedge the session.
const CONTROL_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Time allowed for CloseProxy messages on shutdown before we just close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// How long an ended control stream waits for the multiplexer's own reason (see
/// [`control_closed`]).
const MUX_REASON_WAIT: Duration = Duration::from_millis(50);

/// What the engine's tasks share.
pub(crate) struct Shared {
    pub config: ClientConfig,
    pub connector: Connector,
    pub counters: Arc<Counters>,
    pub events: broadcast::Sender<Event>,
    pub state: watch::Sender<ClientState>,
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
            s.proxies.insert(name.to_owned(), status);
        });
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
    /// Child of the client's token; cancelled when this connection ends (by `_release`),
    /// releasing its pooled work connections: they wait for a StartWorkConn that cannot come
    /// any more.
    work_token: CancellationToken,
    _release: DropGuard,
}

/// The session for a configuration, with every proxy added. Fails when a proxy's registration
/// would not fit a frame (or two share a name).
pub(crate) fn new_session(config: &ClientConfig) -> Result<Session, Error> {
    let now = Instant::now();
    let mut session = Session::new(wire::session_config(config), now, wire::unix_now());
    for p in &config.proxies {
        let msg = wire::new_proxy_message(&config.wire_name(&p.name), p);
        session
            .add_proxy(p.name.clone(), msg, now)
            .map_err(|e| Error::Config(e.to_string()))?;
    }
    Ok(session)
}

/// Runs sessions until the client's token is cancelled (graceful stop) or a fatal error.
pub(crate) async fn run(
    shared: Arc<Shared>,
    session: Session,
    stop: CancellationToken,
) -> Result<(), Error> {
    Driver {
        shared,
        session,
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
    conn: Option<Conn>,
    /// The details of the last transport failure reported to the session.
    transport_error: Option<Error>,
    /// The last connection's end, for the `Reconnecting` or `Stopped` that follows.
    last_cause: Option<Error>,
    stop: CancellationToken,
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
                    tracing::warn!(proxy = %name, %reason, "proxy rejected");
                    self.shared
                        .set_status(&name, ProxyStatus::Failed(reason.clone()));
                    self.shared.emit(Event::ProxyFailed { name, reason });
                }
                session::Event::WorkConnRequested => self.spawn_work(),
                session::Event::Message(msg) => {
                    tracing::debug!(kind = msg.message_type().name(), "ignoring control message")
                }
                session::Event::Lost { cause, logged_in } => {
                    let error = self.error_for(cause);
                    if logged_in {
                        tracing::warn!(%error, "session lost");
                    } else {
                        tracing::warn!(%error, "login failed");
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
        let key = Key::derive(self.shared.config.token.expose());
        conn.reader.enable_decryption(&key);
        conn.writer.enable_encryption(&key);
        conn.work = Some(Arc::new(WorkContext::new(
            &self.shared.config,
            run_id.clone(),
            self.shared.counters.clone(),
            self.shared.events.clone(),
        )));
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
                *p = ProxyStatus::Pending;
            }
        });
        self.shared.emit(Event::LoggedIn { run_id });
    }

    fn proxy_ready(&self, name: &str, remote_addr: &str) {
        let is_vhost = self
            .shared
            .config
            .proxies
            .iter()
            .find(|p| p.name == name)
            .is_some_and(|p| !matches!(p.kind, ProxyKind::Tcp { .. }));
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

    fn transport_failed(&mut self, error: Error) {
        let fatal = error.is_fatal();
        self.transport_error = Some(error);
        self.session.transport_failed(Instant::now(), fatal);
    }

    /// Dials, opens the control stream and hands the connection to the session; a shutdown
    /// asked for meanwhile abandons the attempt.
    async fn dial(&mut self) {
        let attempt = async {
            let link = self.shared.connector.connect().await?;
            let stream =
                tokio::time::timeout(self.shared.config.login_timeout, link.opener().open())
                    .await
                    .map_err(|_| Error::Timeout("opening the control stream"))??;
            let (rd, wr) = tokio::io::split(stream);
            let work_token = self.stop.child_token();
            Ok::<_, Error>(Conn {
                link,
                reader: MsgReader::new(rd),
                writer: MsgWriter::new(wr),
                work: None,
                _release: work_token.clone().drop_guard(),
                work_token,
            })
        };
        let result = tokio::select! {
            r = attempt => r,
            _ = self.stop.cancelled() => {
                self.session.close();
                return;
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
                _ = self.stop.cancelled() => self.session.close(),
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
            _ = self.stop.cancelled() => self.session.close(),
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

/// Why the control stream ended. With tcpMux a broken multiplexer (a yamux protocol error,
/// GoAway) ends the control stream too, usually a moment before the driver has recorded why;
/// that reason says more than the bare EOF, so it is awaited briefly.
/// Before LoginResp an EOF most often means the server expects the other tcpMux setting.
async fn control_closed(link: &transport::Session, logged_in: bool) -> Error {
    if !logged_in {
        return Error::Protocol(
            "server closed the connection before answering Login (does its tcpMux setting match ours?)"
                .into(),
        );
    }
    if matches!(link, transport::Session::Mux(_)) {
        if let Ok(reason) = tokio::time::timeout(MUX_REASON_WAIT, link.dead()).await {
            return Error::Mux(reason);
        }
    }
    Error::Protocol("server closed the control connection".into())
}
