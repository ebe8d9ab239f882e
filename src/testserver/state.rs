//! What a test can observe about the server: a cloneable snapshot, published through a
//! `tokio::sync::watch` channel on every change so tests wait on conditions instead of sleeping.

use frp_proto::msg::{Login, Message, MessageType, NewProxy};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// Everything the test server has seen and holds, at one instant.
///
/// Lists only grow (they are a log); maps reflect the present.
#[derive(Debug, Clone, Default)]
pub struct ServerState {
    /// Every Login received, accepted or not, in arrival order.
    pub logins: Vec<LoginRecord>,
    /// Live control connections by run id.
    pub controls: BTreeMap<String, ControlInfo>,
    /// Registered proxies by name (as sent, with the user prefix).
    pub proxies: BTreeMap<String, ProxyInfo>,
    /// Every message received on an established control connection, in arrival order (the
    /// Login itself is in [`ServerState::logins`]).
    pub control_messages: Vec<ControlMessage>,
    /// Names from every CloseProxy received, in arrival order (including unknown names).
    pub close_proxies: Vec<String>,
    /// Event counters.
    pub counters: Counters,
    /// True while the server is frozen ([`super::TestServer::freeze`]).
    pub frozen: bool,
    /// True once [`super::TestServer::kill`] was called.
    pub killed: bool,
}

impl ServerState {
    /// Logins that were accepted.
    pub fn accepted_logins(&self) -> impl Iterator<Item = &LoginRecord> {
        self.logins.iter().filter(|l| l.error.is_none())
    }

    /// Work connections currently pooled, over all controls.
    pub fn work_conns_pooled(&self) -> usize {
        self.controls.values().map(|c| c.pooled_work_conns).sum()
    }

    /// Whether a CloseProxy for `name` was received.
    pub fn close_proxy_received(&self, name: &str) -> bool {
        self.close_proxies.iter().any(|n| n == name)
    }

    /// Control messages of one type, in arrival order.
    pub fn messages_of(&self, ty: MessageType) -> impl Iterator<Item = &ControlMessage> {
        self.control_messages
            .iter()
            .filter(move |m| m.message.message_type() == ty)
    }

    /// The remote address of a live proxy, as sent in its NewProxyResp.
    pub fn remote_addr(&self, proxy_name: &str) -> Option<&str> {
        self.proxies.get(proxy_name).map(|p| p.remote_addr.as_str())
    }
}

/// One Login and what the server answered.
#[derive(Debug, Clone)]
pub struct LoginRecord {
    /// The message as received (its `Debug` redacts the key and the metas; the fields are
    /// readable).
    pub login: Login,
    /// Remote address of the TCP connection it came on (frps's plugin `client_address`).
    pub client_addr: SocketAddr,
    /// The run id given to the client; empty when the login was refused.
    pub run_id: String,
    /// The error sent in LoginResp, if refused.
    pub error: Option<String>,
    /// Whether this login replaced a live control with the same run id.
    pub replaced_existing: bool,
}

/// A live control connection.
#[derive(Debug, Clone)]
pub struct ControlInfo {
    /// Run id.
    pub run_id: String,
    /// Login `user`.
    pub user: String,
    /// Work connections requested up front: `min(login pool_count, max_pool_count)`.
    pub pool_count: usize,
    /// Work connections waiting in this control's pool.
    pub pooled_work_conns: usize,
    /// Distinguishes successive controls with the same run id (a re-login gets a new one).
    pub serial: u64,
}

/// A registered proxy.
#[derive(Debug, Clone)]
pub struct ProxyInfo {
    /// Proxy name as sent.
    pub name: String,
    /// `tcp`, `http`, `udp`, `stcp` or `sudp`.
    pub proxy_type: String,
    /// Run id of the owning control.
    pub run_id: String,
    /// What NewProxyResp carried: `":port"` for tcp, `host[:port],…` for http.
    pub remote_addr: String,
    /// tcp/udp: the listening port.
    pub remote_port: Option<u16>,
    /// http: the domains routed to this proxy.
    pub domains: Vec<String>,
    /// Payload encryption on its work connections.
    pub use_encryption: bool,
    /// Payload compression on its work connections.
    pub use_compression: bool,
}

impl ProxyInfo {
    /// The entry for a proxy just registered from `np` on the control `run_id`; what differs
    /// between types is where frps listens for it.
    pub(crate) fn registered(
        np: &NewProxy,
        run_id: &str,
        remote_addr: String,
        remote_port: Option<u16>,
        domains: Vec<String>,
    ) -> Self {
        ProxyInfo {
            name: np.proxy_name.clone(),
            proxy_type: np.proxy_type.clone(),
            run_id: run_id.to_owned(),
            remote_addr,
            remote_port,
            domains,
            use_encryption: np.use_encryption,
            use_compression: np.use_compression,
        }
    }
}

/// One message received on a control connection.
#[derive(Debug, Clone)]
pub struct ControlMessage {
    /// Run id of the control it arrived on.
    pub run_id: String,
    /// The decoded message.
    pub message: Message,
}

/// Event counters, monotonically increasing.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// TCP connections accepted on the bind port.
    pub connections: u64,
    /// Of those, the ones that ran TLS.
    pub tls_connections: u64,
    /// frp connections (control, work, visitor) that spoke wire v2.
    pub v2_connections: u64,
    /// yamux streams accepted (tcp_mux only).
    pub mux_streams: u64,
    /// NewWorkConn messages received with a known run id.
    pub work_conns_received: u64,
    /// Work connections closed because their control's pool was full.
    pub work_conns_discarded: u64,
    /// Work connections handed to a user connection (StartWorkConn written).
    pub work_conns_used: u64,
    /// ReqWorkConn messages sent.
    pub req_work_conns_sent: u64,
    /// NewVisitorConn accepted (stcp/sudp visitors).
    pub visitor_conns: u64,
    /// NewVisitorConn refused (bad sign key, unknown proxy, user not allowed).
    pub visitor_conns_refused: u64,
    /// User connections accepted on proxy listeners and the HTTP vhost.
    pub user_conns: u64,
    /// User connections dropped because no work connection arrived in time.
    pub user_conn_timeouts: u64,
    /// Controls closed because a new login took their run id.
    pub controls_replaced: u64,
    /// Controls closed for lack of Ping (tcp_mux off only).
    pub heartbeat_timeouts: u64,
    /// Bind-port connections that upgraded to frp's websocket (plain or inside TLS).
    pub ws_connections: u64,
    /// QUIC connections accepted on the QUIC port (handshake completed).
    pub quic_connections: u64,
    /// QUIC streams accepted (each one frp connection).
    pub quic_streams: u64,
}

/// [`super::TestServer::wait_for`] gave up.
#[derive(Debug, thiserror::Error)]
#[error("test server state did not match within {waited:?}; last state: {last:#?}")]
pub struct WaitTimeout {
    /// How long it waited.
    pub waited: Duration,
    /// The state when it gave up, for the assertion message.
    pub last: Box<ServerState>,
}
