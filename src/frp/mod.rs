//! The frp client engine: talks to an unmodified frps exactly as Go frpc 0.66 does.
//!
//! ```no_run
//! # async fn demo() -> Result<(), expose::frp::Error> {
//! use expose::frp::{Client, ClientConfig, ProxyConfig};
//!
//! let config = ClientConfig::new("frps.example.com", 7000, "token")
//!     .proxy(ProxyConfig::tcp("ssh", 22, 0));
//! let client = Client::start(config)?;
//! for proxy in client.ready().await? {
//!     println!("{} is at {}", proxy.name, proxy.remote_addr);
//! }
//! client.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! # Tasks and data flow
//! - `control::run` (one task per client) owns the session: it dials through `transport`,
//!   logs in, registers proxies, pings, and reconnects with backoff when the session is lost.
//! - With tcpMux a yamux driver task (in `transport`) owns the multiplexed connection and keeps
//!   it polled so frps's keepalive pings are always answered.
//! - Every `ReqWorkConn` from frps spawns one `work::serve` task: open a stream, NewWorkConn,
//!   wait for StartWorkConn, dial the local service, splice.
//!
//! Tasks report upwards only through [`Event`]s, the [`ClientState`] watch and [`Stats`]
//! counters, never by calling back.

mod codec;
mod codec_v2;
mod config;
mod control;
mod error;
mod events;
mod health;
mod limit;
mod metered;
mod plugin;
mod proxy_opts;
mod proxy_stats;
mod reconfig;
mod splice;
mod state;
mod switch;
mod transport;
mod transport_opts;
mod udp;
mod visitor;
mod visitor_config;
mod wire;
mod wire_v2;
mod work;
pub(crate) mod wrapped;
mod xtcp;
/// Bytes put back in front of a stream, for the test server's sniffing.
#[cfg(feature = "testserver")]
pub(crate) use transport::prefixed::Prefixed;
/// The QUIC stream and ALPN, for the test server's QUIC listener.
#[cfg(feature = "testserver")]
pub(crate) use transport::quic;
/// The websocket codec, for the test server's end of it.
#[cfg(feature = "testserver")]
pub(crate) use transport::ws;

pub use config::{
    ClientConfig, HttpOptions, ProxyConfig, ProxyKind, ProxyProtocolVersion, ReconnectPolicy,
    SecretOptions, TlsConfig, VisitorConfig, VisitorKind, XtcpVisitorOptions, DEFAULT_FRP_VERSION,
    DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_TIMEOUT,
};
pub use error::Error;
pub use events::{Event, HttpRequest, ProxyReady, Stats, REPEAT_WINDOW};
pub use plugin::{PluginConfig, PluginKind};
pub use proxy_opts::{
    BandwidthError, BandwidthLimit, BandwidthLimitMode, HealthCheck, HealthCheckKind,
};
pub use proxy_stats::{Metrics, ProxyStats, HTTP_DURATION_BUCKETS};
pub use reconfig::{ProxyChanges, VisitorChanges};
pub use state::{ClientState, Phase, ProxyStatus};
pub use transport::{parse_fingerprint, MAX_MUX_STREAMS};
pub use transport_opts::{ProxyScheme, ProxyUrl, QuicOptions, TransportConfig, TransportProtocol};
pub use wire_v2::WireProtocol;

use control::Shared;
use events::Counters;
use reconfig::Command;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Events buffered for slow subscribers before they start missing some.
const EVENT_CAPACITY: usize = 256;

/// Requests to the control task that may wait while it is busy (each is answered quickly).
const COMMAND_CAPACITY: usize = 8;

/// A running frp client. Dropping it asks the session to shut down gracefully (CloseProxy for
/// each proxy, then close) in the background; call [`Client::shutdown`] to wait for that.
///
/// Every visitor holds one file descriptor in this process (its connection to the local
/// service; without tcpMux, one more for its work connection). The client never changes the
/// process's open-file limit (`RLIMIT_NOFILE`): raising the soft limit to the hard limit at
/// start, as Go programs and the `expose` binary do, is the application's decision. When the
/// limit is reached, the engine logs one warning naming it.
pub struct Client {
    shared: Arc<Shared>,
    handle: ClientHandle,
    /// The root of the cancellation tree: the control task watches it, each connection's work
    /// tasks hang off a child of it.
    stop: CancellationToken,
    task: Option<JoinHandle<Result<(), Error>>>,
}

impl Client {
    /// Validates `config` and starts the client in the background. Must be called inside a tokio
    /// runtime. Returns at once; use [`Client::ready`] to wait for the proxies.
    pub fn start(config: ClientConfig) -> Result<Client, Error> {
        validate(&config)?;
        // Registers the proxies with the session now, so a registration too large for a frame
        // is refused here rather than by the background task.
        let session = wire::new_session(&config)?;
        let connector = transport::Connector::new(&config)?;
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let state = ClientState {
            phase: Phase::Connecting,
            run_id: None,
            proxies: config
                .proxies
                .iter()
                .map(|p| {
                    let status = match p.health_check {
                        Some(_) => ProxyStatus::AwaitingHealth,
                        None => ProxyStatus::Pending,
                    };
                    (p.name.clone(), status)
                })
                .collect(),
        };
        let (state, _) = watch::channel(state);
        let (switches, switched) = switch::channel();
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared {
            proxies: Mutex::new(config.proxies.clone()),
            visitors: Mutex::new(config.visitors.clone()),
            config,
            connector,
            counters: Arc::new(Counters::default()),
            events,
            state,
            switches,
            health: health::HealthTasks::new(stop.clone()),
        });
        let (commands, rx) = mpsc::channel(COMMAND_CAPACITY);
        let task = tokio::spawn(control::run(
            shared.clone(),
            session,
            rx,
            stop.clone(),
            switched,
        ));
        shared
            .health
            .start_all(&shared.config.proxies, &shared.switches, &shared.events);
        Ok(Client {
            handle: ClientHandle {
                shared: shared.clone(),
                commands,
            },
            shared,
            stop,
            task: Some(task),
        })
    }

    /// Replaces the proxy set without dropping the session, as frpc's reload does: see
    /// [`ClientHandle::set_proxies`].
    pub async fn set_proxies(&self, proxies: Vec<ProxyConfig>) -> Result<ProxyChanges, Error> {
        self.handle.set_proxies(proxies).await
    }

    /// Replaces the visitor set without dropping the session: see [`ClientHandle::set_visitors`].
    pub async fn set_visitors(
        &self,
        visitors: Vec<VisitorConfig>,
    ) -> Result<VisitorChanges, Error> {
        self.handle.set_visitors(visitors).await
    }

    /// The visitors in force: the config's, or the last set given to [`Client::set_visitors`].
    pub fn visitors(&self) -> Vec<VisitorConfig> {
        self.shared.visitors()
    }

    /// A handle that can change the running client from another task (an admin API).
    pub fn handle(&self) -> ClientHandle {
        self.handle.clone()
    }

    /// The proxies in force: the config's, or the last set given to [`Client::set_proxies`].
    pub fn proxies(&self) -> Vec<ProxyConfig> {
        self.shared.proxies()
    }

    /// Subscribes to events from now on.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }

    /// The live state; `changed().await` on it to follow along.
    pub fn state(&self) -> watch::Receiver<ClientState> {
        self.shared.state.subscribe()
    }

    /// Current counters.
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// Figures for metrics beyond [`Client::stats`]: login failures, the work-connection pool
    /// and per-proxy counters.
    pub fn metrics(&self) -> Metrics {
        self.shared.counters.metrics()
    }

    /// The configuration the client started with (its `proxies` are the first set; see
    /// [`Client::proxies`] for the ones in force).
    pub fn config(&self) -> &ClientConfig {
        &self.shared.config
    }

    /// Waits until every proxy is ready and returns them in name order.
    ///
    /// Fails with the server's text as soon as a proxy is refused, or with the plugin's error
    /// when a proxy's plugin cannot start (the client keeps retrying a
    /// non-fatal refusal every 30 s; call again to keep waiting), or with the fatal error if the
    /// client stopped. Put a timeout around it to bound a login that keeps failing.
    pub async fn ready(&self) -> Result<Vec<ProxyReady>, Error> {
        let mut rx = self.shared.state.subscribe();
        loop {
            {
                let state = rx.borrow_and_update();
                if let Phase::Stopped(e) = &state.phase {
                    return Err(e.clone().unwrap_or(Error::Stopped));
                }
                if let Some((name, ProxyStatus::Failed(reason))) = state
                    .proxies
                    .iter()
                    .find(|(_, s)| matches!(s, ProxyStatus::Failed(_)))
                {
                    return Err(Error::ProxyRejected {
                        name: name.clone(),
                        reason: reason.clone(),
                    });
                }
                if matches!(state.phase, Phase::Online) {
                    if let Some(all) = state.all_ready() {
                        return Ok(all);
                    }
                }
            }
            if rx.changed().await.is_err() {
                return Err(Error::Stopped);
            }
        }
    }

    /// Graceful shutdown: CloseProxy for every proxy, close the session, and wait for the
    /// background task. Returns the fatal error if the client had already stopped on one.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        self.close().await
    }

    /// [`Client::shutdown`] for owners that keep the handle (it stays usable for `state` and
    /// `stats`); later calls return at once.
    pub async fn close(&mut self) -> Result<(), Error> {
        self.stop.cancel();
        self.join().await
    }

    /// Waits until the client stops by itself (a fatal error, or `login_fail_exit`).
    pub async fn wait(&mut self) -> Result<(), Error> {
        self.join().await
    }

    async fn join(&mut self) -> Result<(), Error> {
        match self.task.take() {
            Some(task) => match task.await {
                Ok(r) => r,
                // A panic in the engine is a bug: let it surface as one.
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => Err(Error::Stopped),
            },
            None => match &self.shared.state.borrow().phase {
                Phase::Stopped(Some(e)) => Err(e.clone()),
                _ => Ok(()),
            },
        }
    }
}

/// A cloneable handle on a running [`Client`], for tasks that change it while its owner keeps
/// it (for shutdown). It does not keep the client alive.
#[derive(Clone)]
pub struct ClientHandle {
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
}

impl ClientHandle {
    /// Replaces the proxy set without dropping the session, as frpc's reload does: proxies
    /// whose configuration is unchanged are left alone with their live connections; removed
    /// and changed ones get CloseProxy, then new and changed ones NewProxy. Work connections
    /// already splicing keep running; a removed proxy gets no new ones.
    ///
    /// The set is checked first as at [`Client::start`] (names, ports, sizes); on an error
    /// nothing changes. Returns once the change is in force (the registrations are sent, not
    /// yet answered; follow [`Client::state`] for that), or [`Error::Stopped`] if the client
    /// has stopped.
    pub async fn set_proxies(&self, proxies: Vec<ProxyConfig>) -> Result<ProxyChanges, Error> {
        let mut check = self.shared.config.clone();
        check.proxies = proxies;
        validate(&check)?;
        // Every registration must fit a frame, as at start.
        wire::new_session(&check)?;
        let (reply, answer) = oneshot::channel();
        let cmd = Command::SetProxies {
            proxies: check.proxies,
            reply,
        };
        self.commands.send(cmd).await.map_err(|_| Error::Stopped)?;
        answer.await.map_err(|_| Error::Stopped)
    }

    /// The proxies in force.
    pub fn proxies(&self) -> Vec<ProxyConfig> {
        self.shared.proxies()
    }

    /// Replaces the visitor set without dropping the session, as frpc's reload does: visitors
    /// whose configuration is unchanged keep running; removed and changed ones stop listening
    /// (connections already open through them keep running until the session ends), new and
    /// changed ones start on the running login, or at the next login when there is none.
    ///
    /// The set is checked first as at [`Client::start`]; on an error nothing changes.
    pub async fn set_visitors(
        &self,
        visitors: Vec<VisitorConfig>,
    ) -> Result<VisitorChanges, Error> {
        let mut check = self.shared.config.clone();
        check.visitors = visitors;
        visitor::validate(&check)?;
        let (reply, answer) = oneshot::channel();
        let cmd = Command::SetVisitors {
            visitors: check.visitors,
            reply,
        };
        self.commands.send(cmd).await.map_err(|_| Error::Stopped)?;
        answer.await.map_err(|_| Error::Stopped)
    }

    /// frpc's reload of both sets: [`ClientHandle::set_proxies`], then
    /// [`ClientHandle::set_visitors`], with both sets checked before either changes.
    pub async fn reload(
        &self,
        proxies: Vec<ProxyConfig>,
        visitors: Vec<VisitorConfig>,
    ) -> Result<(ProxyChanges, VisitorChanges), Error> {
        let mut check = self.shared.config.clone();
        check.proxies = proxies;
        check.visitors = visitors;
        validate(&check)?;
        let proxies = self.set_proxies(check.proxies).await?;
        let visitors = self.set_visitors(check.visitors).await?;
        Ok((proxies, visitors))
    }

    /// The visitors in force.
    pub fn visitors(&self) -> Vec<VisitorConfig> {
        self.shared.visitors()
    }

    /// The live state.
    pub fn state(&self) -> watch::Receiver<ClientState> {
        self.shared.state.subscribe()
    }

    /// Current counters (as [`Client::stats`]).
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// Figures for metrics (as [`Client::metrics`]).
    pub fn metrics(&self) -> Metrics {
        self.shared.counters.metrics()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Refuses configurations that cannot work, before any connection is made.
fn validate(cfg: &ClientConfig) -> Result<(), Error> {
    if cfg.server_host.is_empty() {
        return Err(Error::Config("server host is empty".into()));
    }
    if cfg.server_port == 0 {
        return Err(Error::Config("server port 0".into()));
    }
    if cfg.heartbeat_timeout.is_zero() {
        return Err(Error::Config("heartbeat timeout must be positive".into()));
    }
    let mut names = HashSet::new();
    for p in &cfg.proxies {
        if p.name.is_empty() {
            return Err(Error::Config("proxy with an empty name".into()));
        }
        if !names.insert(p.name.as_str()) {
            return Err(Error::Config(format!("duplicate proxy name {:?}", p.name)));
        }
        if p.local_port == 0 && p.plugin.is_none() {
            return Err(Error::Config(format!("proxy {}: local port 0", p.name)));
        }
        let vhost_names = match &p.kind {
            ProxyKind::Http(h) => Some((&h.subdomain, &h.custom_domains)),
            ProxyKind::Https {
                subdomain,
                custom_domains,
            }
            | ProxyKind::TcpMux {
                subdomain,
                custom_domains,
                ..
            } => Some((subdomain, custom_domains)),
            ProxyKind::Tcp { .. }
            | ProxyKind::Udp { .. }
            | ProxyKind::Stcp(_)
            | ProxyKind::Sudp(_)
            | ProxyKind::Xtcp(_) => None,
        };
        if let Some((sub, domains)) = vhost_names {
            if sub.as_deref().unwrap_or("").is_empty() && domains.is_empty() {
                return Err(Error::Config(format!(
                    "proxy {}: needs a subdomain or a custom domain",
                    p.name
                )));
            }
            if sub
                .as_deref()
                .is_some_and(|s| s.contains('.') || s.contains('*'))
            {
                return Err(Error::Config(format!(
                    "proxy {}: subdomain may not contain '.' or '*'",
                    p.name
                )));
            }
        }
    }
    visitor::validate(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn start_refuses_a_registration_too_large_for_a_frame() {
        let http = HttpOptions::default().custom_domain("d".repeat(11_000));
        let cfg = ClientConfig::new("127.0.0.1", 7000, "t").proxy(ProxyConfig::new(
            "big",
            8080,
            ProxyKind::Http(http),
        ));
        let err = Client::start(cfg).err().expect("refused");
        assert!(
            matches!(&err, Error::Config(m) if m.contains("big") && m.contains("10240")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn start_refuses_duplicate_proxy_names() {
        let cfg = ClientConfig::new("127.0.0.1", 7000, "t")
            .proxy(ProxyConfig::tcp("a", 22, 0))
            .proxy(ProxyConfig::tcp("a", 23, 0));
        let err = Client::start(cfg).err().expect("refused");
        assert!(
            matches!(&err, Error::Config(m) if m.contains("duplicate")),
            "{err}"
        );
    }
}
