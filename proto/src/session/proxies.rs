//! The proxies a session registers, and where each stands on the current connection.

use crate::msg::NewProxy;
use std::time::{Duration, Instant};

/// Go frpc re-sends a NewProxy that got no answer after 20 s.
pub const PROXY_RESEND_AFTER: Duration = Duration::from_secs(20);

/// Go frpc retries a refused proxy every 30 s; this is how "already exists" heals once a stale
/// session of ours times out on the server.
pub const PROXY_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Where one proxy stands on the current connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Registration {
    /// Not sent on this connection yet.
    Unsent,
    /// NewProxy sent at this time; no answer yet.
    Pending(Instant),
    /// Registered.
    Ready,
    /// Refused at this time.
    Failed(Instant),
}

impl Registration {
    /// When this proxy's NewProxy must be (re)sent, if ever.
    pub fn due(self) -> Option<Option<Instant>> {
        match self {
            Registration::Unsent => Some(None),
            Registration::Pending(t) => Some(Some(t + PROXY_RESEND_AFTER)),
            Registration::Failed(t) => Some(Some(t + PROXY_RETRY_AFTER)),
            Registration::Ready => None,
        }
    }

    /// Whether the server may hold a registration we should close.
    pub fn may_be_registered(self) -> bool {
        !matches!(self, Registration::Unsent)
    }
}

/// One configured proxy.
#[derive(Debug, Clone)]
pub(crate) struct Proxy {
    /// The name the application knows (no user prefix).
    pub name: String,
    /// The registration message; its `proxy_name` is the wire name (`user.name`).
    pub msg: NewProxy,
    pub status: Registration,
}

impl Proxy {
    pub fn wire_name(&self) -> &str {
        &self.msg.proxy_name
    }
}

/// The proxies of a session, in the order they were added (which is the order of registration).
#[derive(Debug, Default)]
pub(crate) struct ProxyTable {
    list: Vec<Proxy>,
}

impl ProxyTable {
    pub fn iter(&self) -> impl Iterator<Item = &Proxy> {
        self.list.iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Proxy> {
        self.list.iter_mut()
    }

    pub fn by_wire_name(&mut self, wire_name: &str) -> Option<&mut Proxy> {
        self.list.iter_mut().find(|p| p.wire_name() == wire_name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.list.iter().any(|p| p.name == name)
    }

    pub fn push(&mut self, proxy: Proxy) {
        self.list.push(proxy);
    }

    pub fn remove(&mut self, name: &str) -> Option<Proxy> {
        let i = self.list.iter().position(|p| p.name == name)?;
        Some(self.list.remove(i))
    }

    /// Forgets every registration: a new connection starts from scratch.
    pub fn reset(&mut self) {
        for p in &mut self.list {
            p.status = Registration::Unsent;
        }
    }

    /// The earliest time a (re)registration is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.list
            .iter()
            .filter_map(|p| p.status.due().flatten())
            .min()
    }
}
