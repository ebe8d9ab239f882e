//! NAT classification from the public addresses STUN reported, as frp computes it.

use super::split_host_port;

/// The NAT kind frp names.
pub const EASY_NAT: &str = "EasyNAT";
/// See [`EASY_NAT`].
pub const HARD_NAT: &str = "HardNAT";

/// How the public address changed between the STUN servers.
pub const BEHAVIOR_NO_CHANGE: &str = "BehaviorNoChange";
/// See [`BEHAVIOR_NO_CHANGE`].
pub const BEHAVIOR_IP_CHANGED: &str = "BehaviorIPChanged";
/// See [`BEHAVIOR_NO_CHANGE`].
pub const BEHAVIOR_PORT_CHANGED: &str = "BehaviorPortChanged";
/// See [`BEHAVIOR_NO_CHANGE`].
pub const BEHAVIOR_BOTH_CHANGED: &str = "BehaviorBothChanged";

/// One side's NAT as frp sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatFeature {
    /// [`EASY_NAT`] or [`HARD_NAT`].
    pub nat_type: &'static str,
    /// One of the `BEHAVIOR_*` names.
    pub behavior: &'static str,
    /// Spread of the public ports (port-changing NATs only).
    pub ports_difference: i64,
    /// The ports changed by at most 5: the next one can be guessed.
    pub regular_ports_change: bool,
    /// One public address is a local address: no NAT on this side.
    pub public_network: bool,
}

/// Why addresses cannot be classified (frp's texts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClassifyError {
    /// Fewer than two addresses.
    #[error("not enough addresses")]
    NotEnough,
    /// An address is not `ip:port`.
    #[error("address {0} is not host:port")]
    BadAddress(String),
}

/// frp's `ClassifyNATFeature`: `addresses` are the public `ip:port`s STUN reported (at least
/// two), `local_ips` the host's own addresses.
pub fn classify(addresses: &[String], local_ips: &[String]) -> Result<NatFeature, ClassifyError> {
    if addresses.len() <= 1 {
        return Err(ClassifyError::NotEnough);
    }
    let mut public_network = false;
    let (mut ip_changed, mut port_changed) = (false, false);
    let mut base: Option<(&str, &str)> = None;
    let (mut port_max, mut port_min) = (0i64, 0i64);
    for addr in addresses {
        let (ip, port) =
            split_host_port(addr).ok_or_else(|| ClassifyError::BadAddress(addr.clone()))?;
        let num: i64 = port
            .parse()
            .map_err(|_| ClassifyError::BadAddress(addr.clone()))?;
        if local_ips.iter().any(|l| l == ip) {
            public_network = true;
        }
        let Some((base_ip, base_port)) = base else {
            base = Some((ip, port));
            port_max = num;
            port_min = num;
            continue;
        };
        port_max = port_max.max(num);
        port_min = port_min.min(num);
        ip_changed |= base_ip != ip;
        port_changed |= base_port != port;
    }
    let (nat_type, behavior) = match (ip_changed, port_changed) {
        (true, true) => (HARD_NAT, BEHAVIOR_BOTH_CHANGED),
        (true, false) => (HARD_NAT, BEHAVIOR_IP_CHANGED),
        (false, true) => (HARD_NAT, BEHAVIOR_PORT_CHANGED),
        (false, false) => (EASY_NAT, BEHAVIOR_NO_CHANGE),
    };
    let mut feature = NatFeature {
        nat_type,
        behavior,
        ports_difference: 0,
        regular_ports_change: false,
        public_network,
    };
    if behavior == BEHAVIOR_PORT_CHANGED {
        feature.ports_difference = port_max - port_min;
        feature.regular_ports_change = (1..=5).contains(&feature.ports_difference);
    }
    Ok(feature)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn kinds() {
        let f = classify(&v(&["1.1.1.1:10", "1.1.1.1:10"]), &[]).unwrap();
        assert_eq!((f.nat_type, f.behavior), (EASY_NAT, BEHAVIOR_NO_CHANGE));
        let f = classify(&v(&["1.1.1.1:10", "1.1.1.1:13"]), &v(&["1.1.1.1"])).unwrap();
        assert_eq!((f.nat_type, f.behavior), (HARD_NAT, BEHAVIOR_PORT_CHANGED));
        assert!(f.regular_ports_change && f.public_network);
        assert_eq!(f.ports_difference, 3);
        let f = classify(&v(&["1.1.1.1:10", "1.1.1.1:100"]), &[]).unwrap();
        assert!(!f.regular_ports_change);
        let f = classify(&v(&["1.1.1.1:10", "2.2.2.2:10"]), &[]).unwrap();
        assert_eq!(f.behavior, BEHAVIOR_IP_CHANGED);
        let f = classify(&v(&["1.1.1.1:10", "2.2.2.2:11"]), &[]).unwrap();
        assert_eq!(f.behavior, BEHAVIOR_BOTH_CHANGED);
        assert_eq!(
            classify(&v(&["1.1.1.1:10"]), &[]),
            Err(ClassifyError::NotEnough)
        );
        assert!(classify(&v(&["x", "y"]), &[]).is_err());
    }
}
