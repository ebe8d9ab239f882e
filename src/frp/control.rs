//! The control session: login, proxy registration, heartbeats, work-connection requests, and
//! reconnects.
//!
//! [`run`] is the client's one long-lived task. Each pass of its loop is one session:
//! connect → Login → (encrypted from here) NewProxy for every proxy → serve the control stream
//! until it is lost or a shutdown is asked for. Between sessions it backs off like Go frpc
//! (§9) and logs in again with the same `run_id`, so frps replaces the old session and the
//! proxies come back under the same names and ports.

use super::codec::{MsgReader, MsgWriter};
use super::config::{ClientConfig, HttpOptions, ProxyConfig, ProxyKind};
use super::error::{is_fatal_rejection, Error};
use super::events::{proxy_ready, Counters, Event, ProxyReady};
use super::transport::{BoxStream, Connector, Session};
use super::work::{self, WorkContext};
use super::{ClientState, Phase, ProxyStatus};
use frp_proto::crypto::Key;
use frp_proto::msg::{CloseProxy, Login, NewProxy, Ping, StringMap};
use frp_proto::Message;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

/// Go frpc re-sends a NewProxy that got no answer after 20 s.
const PROXY_RESEND_AFTER: Duration = Duration::from_secs(20);

/// Go frpc retries a refused proxy every 30 s (how "already exists" heals once a stale session
/// times out on the server).
const PROXY_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Bound on any single control write: a server that stops reading must not wedge the session
/// loop, which also runs the heartbeat checks.
const CONTROL_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Time allowed for CloseProxy messages on shutdown before we just close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// How long an ended control stream waits for the multiplexer's own reason (see
/// `Control::control_closed`).
const MUX_REASON_WAIT: Duration = Duration::from_millis(50);

/// Before the first successful login Go frpc caps its backoff at 10 s.
const FIRST_LOGIN_MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Session deaths within this window count towards slowing down quick restarts.
const DEATH_WINDOW: Duration = Duration::from_secs(60);

/// Quick restarts allowed inside [`DEATH_WINDOW`] before backing off exponentially.
const QUICK_RESTARTS: usize = 3;

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
}

/// How one session ended.
enum Outcome {
    /// A shutdown was requested and done.
    Shutdown,
    /// We never got logged in.
    LoginFailed(Error),
    /// Logged in, then lost the session.
    Lost(Error),
}

/// Seconds since the Unix epoch, as frp's timestamps.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Go's `runtime.GOOS` for this build, which frps shows in its dashboard.
fn go_os() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    }
}

/// Go's `runtime.GOARCH` for this build.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64",
        other => other,
    }
}

/// `delay` plus up to 10 % random jitter, as frp's backoff does.
fn jitter(delay: Duration) -> Duration {
    let max_extra = delay.as_millis() as u64 / 10;
    if max_extra == 0 {
        return delay;
    }
    delay + Duration::from_millis(rand::random::<u64>() % (max_extra + 1))
}

/// The backoff step after `failures` failed attempts in a row.
fn backoff(base: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 1u32.checked_shl(failures.min(16)).unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(max)
}

/// Runs sessions until a shutdown or a fatal error.
pub(crate) async fn run(
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), Error> {
    let policy = shared.config.reconnect.clone();
    let mut run_id = String::new();
    let mut logged_in_once = false;
    let mut failures: u32 = 0;
    let mut deaths: VecDeque<Instant> = VecDeque::new();
    loop {
        shared.emit(Event::Connecting {
            attempt: failures + 1,
        });
        let outcome = session(&shared, &mut run_id, &mut logged_in_once, &mut shutdown).await;
        let (delay, cause) = match outcome {
            Outcome::Shutdown => return stop(&shared, None),
            Outcome::LoginFailed(e) => {
                if e.is_fatal() || (!logged_in_once && shared.config.login_fail_exit) {
                    return stop(&shared, Some(e));
                }
                let cap = if logged_in_once {
                    policy.max
                } else {
                    policy.max.min(FIRST_LOGIN_MAX_BACKOFF)
                };
                let delay = backoff(policy.base, cap, failures);
                failures = failures.saturating_add(1);
                (delay, e.to_string())
            }
            Outcome::Lost(e) => {
                if e.is_fatal() {
                    return stop(&shared, Some(e));
                }
                failures = 0;
                let now = Instant::now();
                deaths.push_back(now);
                while deaths
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > DEATH_WINDOW)
                {
                    deaths.pop_front();
                }
                let delay = if deaths.len() <= QUICK_RESTARTS {
                    policy.quick_restart
                } else {
                    backoff(
                        policy.quick_restart,
                        policy.max,
                        (deaths.len() - QUICK_RESTARTS) as u32,
                    )
                };
                (delay, e.to_string())
            }
        };
        let delay = jitter(delay);
        tracing::info!(delay_ms = delay.as_millis() as u64, %cause, "reconnecting");
        shared.set_phase(Phase::Reconnecting);
        shared.emit(Event::Reconnecting {
            attempt: failures + 1,
            delay,
            cause,
        });
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown_requested(&mut shutdown) => return stop(&shared, None),
        }
    }
}

fn stop(shared: &Shared, error: Option<Error>) -> Result<(), Error> {
    let cause = error.as_ref().map(|e| e.to_string());
    if let Some(c) = &cause {
        tracing::error!(cause = %c, "client stopped");
    }
    shared
        .state
        .send_modify(|s| s.phase = Phase::Stopped(error.clone()));
    shared.emit(Event::Stopped { cause });
    match error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Resolves once a shutdown is requested (or the client handle is gone).
async fn shutdown_requested(rx: &mut watch::Receiver<bool>) {
    // An error means the sender was dropped: nobody can ask for anything any more, so stop.
    let _ = rx.wait_for(|stop| *stop).await;
}

/// One session, from dialling to its end.
async fn session(
    shared: &Arc<Shared>,
    run_id: &mut String,
    logged_in_once: &mut bool,
    shutdown: &mut watch::Receiver<bool>,
) -> Outcome {
    shared.set_phase(Phase::Connecting);
    let login = tokio::select! {
        r = login(shared, run_id) => r,
        _ = shutdown_requested(shutdown) => return Outcome::Shutdown,
    };
    let (session, reader, writer) = match login {
        Ok(parts) => parts,
        Err(e) => {
            tracing::warn!(error = %e, "login failed");
            return Outcome::LoginFailed(e);
        }
    };
    if *logged_in_once {
        shared.counters.reconnects.fetch_add(1, Ordering::Relaxed);
    }
    *logged_in_once = true;
    tracing::info!(run_id = %run_id, "logged in");
    shared.state.send_modify(|s| {
        s.phase = Phase::Online;
        s.run_id = Some(run_id.clone());
        for p in s.proxies.values_mut() {
            *p = ProxyStatus::Pending;
        }
    });
    shared.emit(Event::LoggedIn {
        run_id: run_id.clone(),
    });
    let ctx = Arc::new(WorkContext::new(
        &shared.config,
        run_id.clone(),
        shared.counters.clone(),
        shared.events.clone(),
    ));
    let mut control = Control {
        shared: shared.clone(),
        session,
        reader,
        writer,
        ctx,
        work_token: CancellationToken::new(),
        proxies: shared
            .config
            .proxies
            .iter()
            .map(|p| ProxyRun {
                wire_name: shared.config.wire_name(&p.name),
                config: p.clone(),
                status: RunStatus::Unsent,
            })
            .collect(),
    };
    let outcome = control.serve(shutdown).await;
    // Pooled work connections of this session wait for a StartWorkConn that cannot come now.
    control.work_token.cancel();
    outcome
}

type ControlReader = MsgReader<ReadHalf<BoxStream>>;
type ControlWriter = MsgWriter<WriteHalf<BoxStream>>;

/// Dial, Login, LoginResp; on success the control stream is encrypted both ways.
async fn login(
    shared: &Shared,
    run_id: &mut String,
) -> Result<(Session, ControlReader, ControlWriter), Error> {
    let cfg = &shared.config;
    let session = shared.connector.connect().await?;
    let stream = tokio::time::timeout(cfg.login_timeout, session.opener().open())
        .await
        .map_err(|_| Error::Timeout("opening the control stream"))??;
    let (rd, wr) = tokio::io::split(stream);
    let mut reader = MsgReader::new(rd);
    let mut writer = MsgWriter::new(wr);

    let timestamp = unix_now();
    let metas: StringMap = cfg
        .metas
        .iter()
        .map(|(k, v)| (k.clone(), v.expose().to_owned()))
        .collect();
    let login = Login {
        version: cfg.version.clone(),
        hostname: cfg.hostname.clone().unwrap_or_default(),
        os: go_os().to_owned(),
        arch: go_arch().to_owned(),
        user: cfg.user.clone(),
        privilege_key: frp_proto::auth::privilege_key(cfg.token.expose(), timestamp),
        timestamp,
        run_id: run_id.clone(),
        client_id: cfg.client_id.clone(),
        metas,
        client_spec: Default::default(),
        pool_count: i64::from(cfg.pool_count),
    };
    let exchange = async {
        writer.send(&login.into()).await?;
        reader.read().await
    };
    let resp = match tokio::time::timeout(cfg.login_timeout, exchange).await {
        Err(_) => return Err(Error::Timeout("waiting for LoginResp")),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(None)) => {
            return Err(Error::Protocol(
                "server closed the connection before answering Login (does its tcpMux setting match ours?)"
                    .into(),
            ))
        }
        Ok(Ok(Some(Message::LoginResp(r)))) => r,
        Ok(Ok(Some(other))) => {
            return Err(Error::Protocol(format!(
                "expected LoginResp, got {}",
                other.message_type().name()
            )))
        }
    };
    if !resp.error.is_empty() {
        return Err(Error::LoginRejected(resp.error));
    }
    if !resp.run_id.is_empty() {
        *run_id = resp.run_id;
    }
    let key = Key::derive(cfg.token.expose());
    reader.enable_decryption(&key);
    writer.enable_encryption(&key);
    Ok((session, reader, writer))
}

/// Where one proxy stands in the current session.
enum RunStatus {
    /// Not yet sent in this session.
    Unsent,
    /// NewProxy sent at this time, no answer yet.
    Pending(Instant),
    /// Registered.
    Ready,
    /// Refused at this time.
    Failed(Instant),
    /// Closed by us.
    Closed,
}

struct ProxyRun {
    wire_name: String,
    config: ProxyConfig,
    status: RunStatus,
}

/// A logged-in session.
struct Control {
    shared: Arc<Shared>,
    session: Session,
    reader: ControlReader,
    writer: ControlWriter,
    ctx: Arc<WorkContext>,
    /// Cancelled when this session ends, releasing its pooled work connections.
    work_token: CancellationToken,
    proxies: Vec<ProxyRun>,
}

impl Control {
    async fn send(&mut self, msg: Message) -> Result<(), Error> {
        match tokio::time::timeout(CONTROL_WRITE_TIMEOUT, self.writer.send(&msg)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout("writing to the control connection")),
        }
    }

    async fn serve(&mut self, shutdown: &mut watch::Receiver<bool>) -> Outcome {
        match self.serve_inner(shutdown).await {
            Ok(()) => Outcome::Shutdown,
            Err(e) => {
                tracing::warn!(error = %e, "session lost");
                Outcome::Lost(e)
            }
        }
    }

    async fn serve_inner(&mut self, shutdown: &mut watch::Receiver<bool>) -> Result<(), Error> {
        let cfg = self.shared.config.clone();
        for i in 0..self.proxies.len() {
            self.register(i).await?;
        }
        let heartbeat = cfg.heartbeat_interval;
        let tick = housekeeping_tick(heartbeat, cfg.heartbeat_timeout);
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_ping: Option<Instant> = None;
        let mut last_pong = Instant::now();
        loop {
            // Go frpc pings right after login (the captures show it) and then every interval.
            if let Some(every) = heartbeat {
                if last_ping.is_none_or(|t| t.elapsed() >= every) {
                    self.send(self.ping().into()).await?;
                    last_ping = Some(Instant::now());
                }
                if last_pong.elapsed() > cfg.heartbeat_timeout {
                    return Err(Error::Timeout("waiting for Pong (heartbeat timeout)"));
                }
            }
            self.retry_proxies().await?;
            tokio::select! {
                msg = self.reader.read() => {
                    match msg? {
                        None => return Err(control_closed(&self.session).await),
                        Some(msg) => {
                            if let Message::Pong(p) = &msg {
                                if !p.error.is_empty() {
                                    return Err(Error::Protocol(format!("Pong error: {}", p.error)));
                                }
                                last_pong = Instant::now();
                            }
                            self.handle(msg).await?;
                        }
                    }
                }
                reason = self.session.dead() => return Err(Error::Mux(reason)),
                _ = ticker.tick() => {}
                _ = shutdown_requested(shutdown) => {
                    self.close_all().await;
                    return Ok(());
                }
            }
        }
    }

    fn ping(&self) -> Ping {
        let cfg = &self.shared.config;
        if cfg.auth_heartbeats {
            let ts = unix_now();
            Ping {
                privilege_key: frp_proto::auth::privilege_key(cfg.token.expose(), ts),
                timestamp: ts,
            }
        } else {
            Ping::default()
        }
    }

    async fn handle(&mut self, msg: Message) -> Result<(), Error> {
        match msg {
            Message::ReqWorkConn(_) => {
                tokio::spawn(work::serve(
                    self.session.opener(),
                    self.ctx.clone(),
                    self.work_token.clone(),
                ));
            }
            Message::NewProxyResp(resp) => {
                let Some(i) = self
                    .proxies
                    .iter()
                    .position(|p| p.wire_name == resp.proxy_name)
                else {
                    tracing::debug!(proxy = %resp.proxy_name, "answer for a proxy we did not register");
                    return Ok(());
                };
                let name = self.proxies[i].config.name.clone();
                if resp.error.is_empty() {
                    let is_vhost = !matches!(self.proxies[i].config.kind, ProxyKind::Tcp { .. });
                    let ready = proxy_ready(&name, &resp.remote_addr, is_vhost);
                    self.proxies[i].status = RunStatus::Ready;
                    tracing::info!(proxy = %name, remote = %resp.remote_addr, "proxy ready");
                    self.set_status(&name, ProxyStatus::Ready(ready.clone()));
                    self.shared.emit(Event::ProxyReady(ready));
                } else {
                    self.proxies[i].status = RunStatus::Failed(Instant::now());
                    tracing::warn!(proxy = %name, reason = %resp.error, "proxy rejected");
                    self.set_status(&name, ProxyStatus::Failed(resp.error.clone()));
                    self.shared.emit(Event::ProxyFailed {
                        name: name.clone(),
                        reason: resp.error.clone(),
                    });
                    if is_fatal_rejection(&resp.error) {
                        return Err(Error::ProxyRejected {
                            name,
                            reason: resp.error,
                        });
                    }
                }
            }
            Message::Pong(_) => {}
            other => {
                // Known types we do not serve (NatHole*, …) are skipped; frames are
                // length-prefixed so that is always safe.
                tracing::debug!(
                    kind = other.message_type().name(),
                    "ignoring control message"
                );
            }
        }
        Ok(())
    }

    fn set_status(&self, name: &str, status: ProxyStatus) {
        self.shared.state.send_modify(|s| {
            s.proxies.insert(name.to_owned(), status);
        });
    }

    async fn register(&mut self, i: usize) -> Result<(), Error> {
        let msg = new_proxy_message(&self.proxies[i].wire_name, &self.proxies[i].config);
        self.send(msg.into()).await?;
        self.proxies[i].status = RunStatus::Pending(Instant::now());
        Ok(())
    }

    /// Re-sends NewProxy for proxies with no answer after 20 s or refused 30 s ago, as Go does.
    async fn retry_proxies(&mut self) -> Result<(), Error> {
        for i in 0..self.proxies.len() {
            let due = match self.proxies[i].status {
                RunStatus::Unsent => true,
                RunStatus::Pending(t) => t.elapsed() >= PROXY_RESEND_AFTER,
                RunStatus::Failed(t) => t.elapsed() >= PROXY_RETRY_AFTER,
                RunStatus::Ready | RunStatus::Closed => false,
            };
            if due {
                self.register(i).await?;
            }
        }
        Ok(())
    }

    /// CloseProxy for every proxy, then FIN on the control stream (Go frpc's graceful close).
    async fn close_all(&mut self) {
        let close = async {
            for i in 0..self.proxies.len() {
                if matches!(
                    self.proxies[i].status,
                    RunStatus::Closed | RunStatus::Unsent
                ) {
                    continue;
                }
                let msg = CloseProxy {
                    proxy_name: self.proxies[i].wire_name.clone(),
                };
                self.writer.send(&msg.into()).await?;
                self.proxies[i].status = RunStatus::Closed;
                tracing::info!(proxy = %self.proxies[i].config.name, "proxy closed");
            }
            self.writer.shutdown().await
        };
        if let Ok(Err(e)) | Err(e) = tokio::time::timeout(SHUTDOWN_GRACE, close)
            .await
            .map_err(|_| Error::Timeout("sending CloseProxy"))
        {
            tracing::debug!(error = %e, "graceful close incomplete");
        }
    }
}

/// Why the control stream ended. With tcpMux a broken multiplexer (a yamux protocol error,
/// GoAway) ends the control stream too, usually a moment before the driver has recorded why;
/// that reason says more than the bare EOF, so it is awaited briefly.
async fn control_closed(session: &Session) -> Error {
    if matches!(session, Session::Mux(_)) {
        if let Ok(reason) = tokio::time::timeout(MUX_REASON_WAIT, session.dead()).await {
            return Error::Mux(reason);
        }
    }
    Error::Protocol("server closed the control connection".into())
}

/// How often the session loop wakes without traffic: fine enough for short test heartbeats,
/// at most once a second in production.
fn housekeeping_tick(interval: Option<Duration>, timeout: Duration) -> Duration {
    let mut tick = Duration::from_secs(1).min(timeout / 4);
    if let Some(i) = interval {
        tick = tick.min(i / 4);
    }
    tick.max(Duration::from_millis(20))
}

/// The NewProxy message for a proxy, as Go frpc builds it.
pub(crate) fn new_proxy_message(wire_name: &str, p: &ProxyConfig) -> NewProxy {
    let mut m = NewProxy {
        proxy_name: wire_name.to_owned(),
        use_encryption: p.use_encryption,
        use_compression: p.use_compression,
        metas: p
            .metas
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().to_owned()))
            .collect(),
        ..Default::default()
    };
    match &p.kind {
        ProxyKind::Tcp { remote_port } => {
            m.proxy_type = "tcp".into();
            m.remote_port = i64::from(*remote_port);
        }
        ProxyKind::Http(HttpOptions {
            subdomain,
            custom_domains,
            locations,
            host_header_rewrite,
            http_user,
            http_password,
            request_headers,
        }) => {
            m.proxy_type = "http".into();
            m.subdomain = subdomain.clone().unwrap_or_default();
            m.custom_domains = custom_domains.clone();
            m.locations = locations.clone();
            m.host_header_rewrite = host_header_rewrite.clone().unwrap_or_default();
            m.http_user = http_user.clone().unwrap_or_default();
            m.http_pwd = http_password
                .as_ref()
                .map(|s| s.expose().to_owned())
                .unwrap_or_default();
            m.headers = request_headers.clone();
        }
        ProxyKind::Https {
            subdomain,
            custom_domains,
        } => {
            m.proxy_type = "https".into();
            m.subdomain = subdomain.clone().unwrap_or_default();
            m.custom_domains = custom_domains.clone();
        }
    }
    m
}

/// The ready status of every proxy, if all are ready.
pub(crate) fn all_ready(state: &ClientState) -> Option<Vec<ProxyReady>> {
    state
        .proxies
        .values()
        .map(|s| match s {
            ProxyStatus::Ready(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap() {
        let b = Duration::from_secs(2);
        let m = Duration::from_secs(20);
        let steps: Vec<u64> = (0..6).map(|n| backoff(b, m, n).as_secs()).collect();
        assert_eq!(steps, vec![2, 4, 8, 16, 20, 20]);
        assert_eq!(backoff(b, m, 1000), m);
    }

    #[test]
    fn jitter_adds_at_most_ten_percent() {
        for _ in 0..100 {
            let d = jitter(Duration::from_secs(10));
            assert!(d >= Duration::from_secs(10) && d <= Duration::from_secs(11));
        }
    }

    #[test]
    fn new_proxy_matches_go_frpc_for_the_vector_http_proxy() {
        let p = ProxyConfig::http("t-0-0123456789abcdef", 80, "t-0-0123456789abcdef");
        let msg = new_proxy_message("t-0-0123456789abcdef.t-0-0123456789abcdef", &p);
        let bytes = frp_proto::frame::encode_to_vec(&msg.into()).unwrap();
        assert_eq!(
            &bytes[9..],
            br#"{"proxy_name":"t-0-0123456789abcdef.t-0-0123456789abcdef","proxy_type":"http","subdomain":"t-0-0123456789abcdef"}"#
        );
    }
}
