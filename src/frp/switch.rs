//! Turning one configured proxy on or off while the client runs, without touching the session
//! or the other proxies: on adds it to the session (NewProxy at once when online, and after
//! every login), off removes it (CloseProxy when frps may hold it). The health checks use it.

use super::config::{ClientConfig, ProxyConfig};
use super::state::{ClientState, ProxyStatus};
use super::wire;
use frp_proto::session::Session;
use std::time::Instant;
use tokio::sync::{mpsc, watch};

/// A request to the control task: about one proxy, by name (without the user prefix), or a
/// control message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Switch {
    /// Register the proxy (its health check passed).
    On(String),
    /// Deregister the proxy (its health check failed).
    Off(String),
    /// Queue a control message of the engine's own (xtcp's NatHole messages; boxed, as a
    /// `Message` is large and these are rare).
    Send(Box<frp_proto::Message>),
}

/// Where switches are sent; the control task holds the receiving end.
pub(crate) type SwitchSender = mpsc::UnboundedSender<Switch>;

/// The receiving end, read by the control task.
pub(crate) type SwitchReceiver = mpsc::UnboundedReceiver<Switch>;

/// A new channel for switches.
pub(crate) fn channel() -> (SwitchSender, SwitchReceiver) {
    mpsc::unbounded_channel()
}

/// Applies one switch to the session and the published state. Unknown names and switching a
/// proxy to the side it is on change nothing.
pub(crate) fn apply(
    config: &ClientConfig,
    proxies: &[ProxyConfig],
    session: &mut Session,
    state: &watch::Sender<ClientState>,
    switch: Switch,
) {
    match switch {
        Switch::On(name) => {
            // The proxies in force: a check of a proxy a reload removed switches nothing on.
            let Some(p) = proxies.iter().find(|p| p.name == name) else {
                return;
            };
            let msg = wire::new_proxy_message(&config.wire_name(&p.name), p);
            // Sizes were checked at start; a duplicate means it is on already.
            if session.add_proxy(name.clone(), msg, Instant::now()).is_ok() {
                state.send_modify(|s| {
                    s.proxies.insert(name, ProxyStatus::Pending);
                });
            }
        }
        Switch::Send(msg) => {
            if !session.send(*msg) {
                tracing::debug!("control message dropped: not online");
            }
        }
        Switch::Off(name) => {
            if session.remove_proxy(&name) {
                tracing::info!(proxy = %name, "proxy closed after a failed health check");
                state.send_modify(|s| {
                    s.proxies.insert(name, ProxyStatus::CheckFailed);
                });
            }
        }
    }
}
