//! The state every task of one server shares: configuration, hooks, the observable state, the
//! proxy and routing tables, and the live controls with their work-connection pools.
//!
//! Kept in one module below the connection, control, proxy and vhost code, which all use it and
//! which it uses none of.

use super::config::{LoginHook, NewProxyHook, ServerConfig};
use super::gate::Gate;
use super::splice::Wrapping;
use super::state::ServerState;
use super::wire::{write_frame, BoxIo};
use frp_proto::crypto::Key;
use frp_proto::msg::{Message, ReqWorkConn, StartWorkConn, StringMap};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Extra pool slots beyond `pool_count`, as frps sizes its work-connection channel.
const POOL_SLACK: usize = 10;

/// Distinguishes successive controls that share a run id.
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

/// Runtime-replaceable hooks.
#[derive(Default)]
pub(crate) struct Hooks {
    pub(crate) login: Option<LoginHook>,
    pub(crate) new_proxy: Option<NewProxyHook>,
}

/// State shared by every task of one server.
pub(crate) struct Inner {
    pub(crate) cfg: ServerConfig,
    pub(crate) key: Key,
    pub(crate) hooks: Mutex<Hooks>,
    pub(crate) state: watch::Sender<ServerState>,
    pub(crate) registry: Mutex<Registry>,
    pub(crate) gate: Arc<Gate>,
    /// Fired by `kill` (and on drop): every task ends and drops its sockets.
    pub(crate) cancel: CancellationToken,
    pub(crate) tls: Option<tokio_rustls::TlsAcceptor>,
    pub(crate) vhost_addr: SocketAddr,
    pub(crate) tcpmux_addr: SocketAddr,
    pub(crate) https_addr: SocketAddr,
    /// xtcp's hole-punching controller.
    pub(crate) nathole: Mutex<NatHole>,
}

impl Inner {
    /// Applies a change to the observable state and wakes waiters.
    pub(crate) fn update(&self, f: impl FnOnce(&mut ServerState)) {
        self.state.send_modify(f);
    }

    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn nathole(&self) -> MutexGuard<'_, NatHole> {
        self.nathole.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn hooks(&self) -> MutexGuard<'_, Hooks> {
        self.hooks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Spawns a task that ends (dropping whatever it owns) when the server is killed.
    pub(crate) fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        let cancel = self.cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = fut => {}
            }
        });
    }

    /// The port written into http `remote_addr`.
    pub(crate) fn vhost_public_port(&self) -> u16 {
        self.cfg
            .vhost_http_public_port
            .unwrap_or(self.vhost_addr.port())
    }
}

/// What the xtcp hole-punching controller (`nathole`) remembers.
#[derive(Default)]
pub(crate) struct NatHole {
    pub(crate) analyzer: frp_proto::nathole::analysis::Analyzer,
    /// Sessions waiting for the proxy's `NatHoleClient`, by sid.
    pub(crate) waiting: HashMap<
        String,
        tokio::sync::oneshot::Sender<(frp_proto::msg::NatHoleClient, Arc<ControlHandle>)>,
    >,
    /// Analysed sessions, for their report: the pair's key, the mode and the variant.
    pub(crate) planned: HashMap<String, (String, i64, usize)>,
}

/// Server-wide proxy and routing tables.
#[derive(Default)]
pub(crate) struct Registry {
    /// Live controls by run id.
    pub(crate) controls: HashMap<String, Arc<ControlHandle>>,
    /// Live proxies by name (global across controls, as in frps).
    pub(crate) proxies: HashMap<String, ProxyEntry>,
    /// Lowercased domain → routes, sorted by location descending (longest prefix first for
    /// nested locations), as frps's vhost router.
    pub(crate) vhosts: HashMap<String, Vec<Route>>,
    /// Lowercased domain → tcpmux (httpconnect) routes; a route's `location` holds its
    /// `route_by_http_user` (empty: any user).
    pub(crate) tcpmux: HashMap<String, Vec<Route>>,
    /// Lowercased domain → https proxy (routed by the TLS ClientHello's server name).
    pub(crate) https: HashMap<String, Route>,
    /// Last port of each tcp proxy name, so a re-login gets the same port if it is free.
    pub(crate) port_memory: HashMap<String, u16>,
}

/// A registered proxy.
pub(crate) struct ProxyEntry {
    pub(crate) ctl: Arc<ControlHandle>,
    /// tcp: stops the accept loop.
    pub(crate) stop: Option<CancellationToken>,
    /// tcp: fired once the listener is closed.
    pub(crate) stopped: Option<CancellationToken>,
    pub(crate) port: Option<u16>,
    /// http: (lowercased domain, location) pairs registered in `vhosts`.
    pub(crate) routes: Vec<(String, String)>,
    /// tcpmux: (lowercased domain, route-by user) pairs registered in `tcpmux`.
    pub(crate) tcpmux_routes: Vec<(String, String)>,
    /// https: lowercased domains registered in `https`.
    pub(crate) https_domains: Vec<String>,
    /// stcp/sudp: what visitors are checked against.
    pub(crate) secret: Option<SecretProxy>,
}

/// An stcp/sudp proxy as its visitors see it.
#[derive(Clone)]
pub(crate) struct SecretProxy {
    pub(crate) sk: String,
    /// Empty in NewProxy means the owner's own user, as frps fills it in.
    pub(crate) allow_users: Vec<String>,
    pub(crate) ctl: Arc<ControlHandle>,
    /// An xtcp proxy (hole punching only; stcp/sudp visitors cannot reach it).
    pub(crate) xtcp: bool,
    /// The proxy's payload wrapping on its work connections.
    pub(crate) wrapping: Wrapping,
}

/// Where an HTTP request goes and how it is rewritten.
#[derive(Clone)]
pub(crate) struct Route {
    pub(crate) location: String,
    pub(crate) proxy_name: String,
    pub(crate) ctl: Arc<ControlHandle>,
    pub(crate) wrapping: Wrapping,
    pub(crate) http_user: String,
    pub(crate) http_pwd: String,
    pub(crate) host_header_rewrite: String,
    pub(crate) headers: StringMap,
}

/// A live control connection, as seen by proxies and work connections.
pub(crate) struct ControlHandle {
    pub(crate) run_id: String,
    pub(crate) serial: u64,
    pub(crate) pool_count: usize,
    /// The login spoke wire v2: messages inside its udp work connections are v2 frames too.
    pub(crate) wire_v2: bool,
    /// Messages to send on the (encrypted) control stream.
    tx: mpsc::UnboundedSender<Message>,
    /// The work-connection pool: a bounded FIFO, like frps's `workConnCh`.
    pub(crate) pool_tx: mpsc::Sender<BoxIo>,
    pub(crate) pool_rx: tokio::sync::Mutex<mpsc::Receiver<BoxIo>>,
    /// Cancel to close this control (replacement, `close_control`, kill).
    pub(crate) close: CancellationToken,
    /// Fired once the control has finished and its proxies and pool are gone.
    pub(crate) done: CancellationToken,
}

impl ControlHandle {
    /// A control for `run_id` with a pool sized for `pool_count`, and the receiving end of
    /// its outgoing messages.
    pub(crate) fn new(
        inner: &Inner,
        run_id: String,
        pool_count: usize,
        wire_v2: bool,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<Message>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (pool_tx, pool_rx) = mpsc::channel(pool_count + POOL_SLACK);
        let handle = ControlHandle {
            run_id,
            serial: NEXT_SERIAL.fetch_add(1, Ordering::Relaxed),
            pool_count,
            wire_v2,
            tx,
            pool_tx,
            pool_rx: tokio::sync::Mutex::new(pool_rx),
            close: inner.cancel.child_token(),
            done: CancellationToken::new(),
        };
        (Arc::new(handle), rx)
    }

    /// Queues a message for the control stream.
    pub(crate) fn send(&self, inner: &Inner, msg: Message) {
        if matches!(msg, Message::ReqWorkConn(_)) {
            inner.update(|s| s.counters.req_work_conns_sent += 1);
        }
        let _ = self.tx.send(msg);
    }

    fn pooled(&self) -> usize {
        self.pool_tx.max_capacity() - self.pool_tx.capacity()
    }

    /// Publishes the pool size of this control.
    pub(crate) fn publish_pool(&self, inner: &Inner) {
        let n = self.pooled();
        inner.update(|s| {
            if let Some(c) = s.controls.get_mut(&self.run_id) {
                if c.serial == self.serial {
                    c.pooled_work_conns = n;
                }
            }
        });
    }

    /// Takes a pooled work connection without waiting, if one is there and nobody else is
    /// waiting for one.
    fn try_pop(&self) -> Option<BoxIo> {
        self.pool_rx.try_lock().ok()?.try_recv().ok()
    }

    /// Gets a work connection for a user connection and writes `start` on it, as frps's
    /// `GetWorkConnFromPool`: pooled first, else ask the client and wait up to
    /// `user_conn_timeout`; every taken connection is replaced by another ReqWorkConn; a
    /// connection whose StartWorkConn write fails is dropped and the next one tried.
    pub(crate) async fn take_work_conn(
        &self,
        inner: &Inner,
        start: StartWorkConn,
    ) -> Option<BoxIo> {
        let start = Message::from(start);
        for _ in 0..=self.pool_count {
            if self.close.is_cancelled() {
                return None;
            }
            let conn = match self.try_pop() {
                Some(c) => Some(c),
                None => {
                    self.send(inner, ReqWorkConn {}.into());
                    let wait = async {
                        let mut rx = self.pool_rx.lock().await;
                        tokio::select! {
                            c = rx.recv() => c,
                            _ = self.close.cancelled() => None,
                        }
                    };
                    match tokio::time::timeout(inner.cfg.user_conn_timeout, wait).await {
                        Ok(c) => c,
                        Err(_) => {
                            inner.update(|s| s.counters.user_conn_timeouts += 1);
                            return None;
                        }
                    }
                }
            };
            let mut conn = conn?;
            self.publish_pool(inner);
            self.send(inner, ReqWorkConn {}.into());
            if write_frame(&mut conn, &start).await.is_ok() {
                inner.update(|s| s.counters.work_conns_used += 1);
                return Some(conn);
            }
        }
        None
    }
}
