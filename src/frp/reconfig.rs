//! Replacing a running client's proxies and visitors (frpc's reload) without dropping its
//! session.
//!
//! The rule is Go frpc's: a proxy whose configuration is unchanged is left alone, with its
//! registration and its live work connections; a proxy that is gone, or whose configuration
//! changed in any way, is closed (CloseProxy); a new or changed one is registered (NewProxy).
//! Closes come before registrations, so a changed proxy's name is free again at frps when its
//! new NewProxy arrives. Work connections that are already splicing keep running with the
//! configuration they started with, whatever happens to their proxy; a StartWorkConn that
//! arrives for a proxy that is gone gets its connection closed.

use super::config::{ProxyConfig, VisitorConfig};
use tokio::sync::oneshot;

/// A request to the control task.
pub(crate) enum Command {
    /// Make these proxies the client's proxies.
    SetProxies {
        proxies: Vec<ProxyConfig>,
        reply: oneshot::Sender<ProxyChanges>,
    },
    /// Make these visitors the client's visitors.
    SetVisitors {
        visitors: Vec<VisitorConfig>,
        reply: oneshot::Sender<VisitorChanges>,
    },
}

/// What a [`super::Client::set_visitors`] changed, by visitor name (without the user prefix):
/// the same rule as for proxies, a changed visitor is stopped and started again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VisitorChanges {
    /// Stopped: gone from the new set, or changed. In the old set's order.
    pub removed: Vec<String>,
    /// Started: new, or changed. In the new set's order.
    pub added: Vec<String>,
}

impl VisitorChanges {
    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.added.is_empty()
    }
}

/// The visitors that turn `current` into `new` (names are unique in each).
pub(crate) fn diff_visitors(current: &[VisitorConfig], new: &[VisitorConfig]) -> VisitorChanges {
    let (removed, added) = diff_by(current, new, |v| &v.name);
    VisitorChanges { removed, added }
}

/// Names of the items of `current` not in `new` unchanged, and of `new` not in `current`.
fn diff_by<T: PartialEq>(
    current: &[T],
    new: &[T],
    name: impl Fn(&T) -> &String,
) -> (Vec<String>, Vec<String>) {
    let kept = |x: &T, other: &[T]| other.iter().any(|o| o == x);
    (
        current
            .iter()
            .filter(|x| !kept(x, new))
            .map(|x| name(x).clone())
            .collect(),
        new.iter()
            .filter(|x| !kept(x, current))
            .map(|x| name(x).clone())
            .collect(),
    )
}

/// What a [`super::Client::set_proxies`] changed, by proxy name (without the user prefix). A
/// changed proxy is in both lists, as frpc logs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyChanges {
    /// Closed at frps: gone from the new set, or changed. In the old set's order.
    pub removed: Vec<String>,
    /// Registered: new, or changed. In the new set's order.
    pub added: Vec<String>,
}

impl ProxyChanges {
    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.added.is_empty()
    }
}

/// The changes that turn `current` into `new` (proxy names are unique in each).
pub(crate) fn diff(current: &[ProxyConfig], new: &[ProxyConfig]) -> ProxyChanges {
    let (removed, added) = diff_by(current, new, |p| &p.name);
    ProxyChanges { removed, added }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_proxies_stay_changed_ones_are_closed_and_registered_again() {
        let a = ProxyConfig::tcp("a", 22, 6000);
        let b = ProxyConfig::tcp("b", 23, 6001);
        let c = ProxyConfig::tcp("c", 24, 6002);
        let c2 = ProxyConfig::tcp("c", 25, 6002);
        let d = ProxyConfig::http("d", 80, "d");
        let changes = diff(&[a.clone(), b, c], &[d, c2, a]);
        assert_eq!(changes.removed, ["b", "c"]);
        assert_eq!(changes.added, ["d", "c"]);
        assert!(diff(
            &[ProxyConfig::tcp("a", 22, 0)],
            &[ProxyConfig::tcp("a", 22, 0)]
        )
        .is_empty());
    }

    #[test]
    fn visitors_diff_like_proxies() {
        use crate::frp::VisitorKind;
        let a = VisitorConfig::new("a", VisitorKind::Stcp, "s", "k", 7001);
        let b = VisitorConfig::new("b", VisitorKind::Sudp, "s", "k", 7002);
        let a2 = a.clone().use_encryption(true);
        let c = VisitorConfig::new("c", VisitorKind::Stcp, "s", "k", -1);
        let changes = diff_visitors(&[a.clone(), b.clone()], &[c, a2, b.clone()]);
        assert_eq!(changes.removed, ["a"]);
        assert_eq!(changes.added, ["c", "a"]);
        assert!(diff_visitors(&[a.clone(), b.clone()], &[b, a]).is_empty());
    }

    #[test]
    fn any_setting_counts_as_a_change() {
        let a = ProxyConfig::tcp("a", 22, 0);
        let changed = [
            a.clone().use_encryption(true),
            a.clone().local_host("127.0.0.2"),
            a.clone().meta("k", "v"),
            a.clone().load_balancer("g", "k"),
            a.clone().annotation("k", "v"),
        ];
        for c in changed {
            assert_eq!(diff(std::slice::from_ref(&a), &[c]).removed, ["a"]);
        }
    }
}
