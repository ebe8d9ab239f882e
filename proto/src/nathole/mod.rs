//! xtcp's NAT hole punching, the decisions without I/O.
//!
//! An xtcp visitor and the xtcp proxy's client each learn their public UDP addresses from a
//! STUN server ([`stun`]), tell frps about them (`NatHoleVisitor`, `NatHoleClient`), and frps
//! answers both with `NatHoleResp`: the peer's addresses and how to punch ([`analysis`], which
//! the test server runs as frps does, with [`classify`] for the NAT type). Both ends then send
//! small encrypted `NatHoleSid` datagrams at each other ([`punch`]) until one gets through; the
//! UDP socket that received it carries the tunnel (QUIC) afterwards.

pub mod analysis;
pub mod classify;
pub mod punch;
pub mod stun;

use std::time::Duration;

/// frpc waits this long for frps's `NatHoleResp` (pre-check and exchange).
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);

/// frps waits this long for the proxy's `NatHoleClient` after a visitor asked.
pub const CLIENT_WAIT_TIMEOUT: Duration = Duration::from_secs(10);

/// frpc waits this long for a STUN answer.
pub const STUN_TIMEOUT: Duration = Duration::from_secs(3);

/// Read timeout of the punch when frps sets none.
pub const DEFAULT_PUNCH_TIMEOUT: Duration = Duration::from_secs(5);

/// frpc's default `natHoleStunServer`.
pub const DEFAULT_STUN_SERVER: &str = "stun.easyvoip.com:3478";

/// The two roles of a punch.
pub const ROLE_SENDER: &str = "sender";
/// See [`ROLE_SENDER`].
pub const ROLE_RECEIVER: &str = "receiver";

/// `ip` of every `ip:port` in `addrs` that parses (Go's `parseIPs`); other entries are skipped.
pub fn parse_ips(addrs: &[String]) -> Vec<String> {
    addrs
        .iter()
        .filter_map(|a| split_host_port(a).map(|(ip, _)| ip.to_owned()))
        .collect()
}

/// Go's `net.SplitHostPort` for the shapes frp produces: `ip:port` and `[ipv6]:port`.
pub fn split_host_port(addr: &str) -> Option<(&str, &str)> {
    if let Some(rest) = addr.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        return Some((host, port));
    }
    let (host, port) = addr.rsplit_once(':')?;
    if host.contains(':') {
        return None;
    }
    Some((host, port))
}

/// Drops consecutive duplicates, as Go's `slices.Compact`.
pub fn compact(list: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for s in list {
        if out.last() != Some(s) {
            out.push(s.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_shapes() {
        assert_eq!(split_host_port("1.2.3.4:5"), Some(("1.2.3.4", "5")));
        assert_eq!(split_host_port("[::1]:80"), Some(("::1", "80")));
        assert_eq!(split_host_port("::1:80"), None);
        assert_eq!(split_host_port("nohost"), None);
        let addrs = [
            "1.1.1.1:1".to_owned(),
            "bad".to_owned(),
            "2.2.2.2:3".to_owned(),
        ];
        assert_eq!(parse_ips(&addrs), ["1.1.1.1", "2.2.2.2"]);
        let dup = [
            "a".to_owned(),
            "a".to_owned(),
            "b".to_owned(),
            "a".to_owned(),
        ];
        assert_eq!(compact(&dup), ["a", "b", "a"]);
    }
}
