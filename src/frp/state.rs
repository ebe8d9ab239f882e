//! The client's published state: what [`super::Client::state`] shows.

use super::error::Error;
use super::events::ProxyReady;
use std::collections::BTreeMap;

/// Where the client is in its life.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Phase {
    /// Dialling and logging in.
    Connecting,
    /// Logged in; proxies registered or being registered.
    Online,
    /// Lost the session; waiting before the next attempt.
    Reconnecting,
    /// Stopped for good: `None` after a requested shutdown, else the fatal error.
    Stopped(Option<Error>),
}

/// The state of one proxy in the current session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyStatus {
    /// Registration sent, or waiting for a session.
    Pending,
    /// Registered and reachable.
    Ready(ProxyReady),
    /// Refused by the server with this text (retried every 30 s unless fatal).
    Failed(String),
    /// Has a health check that has not passed yet: not registered (frpc's "new").
    AwaitingHealth,
    /// Taken down after its health check failed; registered again on the next success
    /// (frpc's "check failed").
    CheckFailed,
}

/// A snapshot of the whole client, published through [`super::Client::state`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientState {
    /// Life-cycle phase.
    pub phase: Phase,
    /// Run id of the current or last session.
    pub run_id: Option<String>,
    /// Every configured proxy by name (without the user prefix).
    pub proxies: BTreeMap<String, ProxyStatus>,
}

impl ClientState {
    /// The ready status of every proxy, in name order, if all are ready.
    pub fn all_ready(&self) -> Option<Vec<ProxyReady>> {
        self.proxies
            .values()
            .map(|s| match s {
                ProxyStatus::Ready(r) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }
}
