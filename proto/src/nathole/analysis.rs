//! frps's side of hole punching: which end sends, which receives, with what TTL, delays and
//! port guesses, learned per pair of networks from the outcomes the clients report.
//!
//! Modes, as frps names them: 0 for two easy NATs (or a public host); 1 for a hard NAT whose
//! ports change regularly facing an easy one (the easy end also tries ports around the hard
//! end's last one); 2 for an irregular hard NAT facing an easy one (the hard end listens on 256
//! extra ports, the easy end sends to 1000 random ones); 3 and 4 for two hard NATs. Each mode
//! lists variants; every pair of networks keeps a score per variant, the best is tried next
//! (and loses a point for trying), a reported success earns two.

use super::classify::{classify, NatFeature, EASY_NAT, HARD_NAT};
use super::{compact, parse_ips, split_host_port, ROLE_RECEIVER, ROLE_SENDER};
use crate::msg::{NatHoleClient, NatHoleDetectBehavior, NatHoleResp, NatHoleVisitor, PortsRange};
use md5::{Digest, Md5};
use std::collections::HashMap;

/// One end's part in a punch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Behavior {
    /// [`ROLE_SENDER`] or [`ROLE_RECEIVER`].
    pub role: &'static str,
    /// TTL of the receiver's first packets (they open its NAT without reaching the peer's).
    pub ttl: i64,
    /// Wait before sending.
    pub send_delay_ms: i64,
    /// How many ports around the peer's last public port to try.
    pub ports_range_number: i64,
    /// How many random ports of the peer to try.
    pub ports_random_number: i64,
    /// How many extra local ports to listen on.
    pub listen_random_ports: i64,
}

const fn b(role: &'static str, ttl: i64, delay: i64, range: i64) -> Behavior {
    Behavior {
        role,
        ttl,
        send_delay_ms: delay,
        ports_range_number: range,
        ports_random_number: 0,
        listen_random_ports: 0,
    }
}

const fn random(delay: i64) -> Behavior {
    Behavior {
        role: ROLE_SENDER,
        ttl: 0,
        send_delay_ms: delay,
        ports_range_number: 0,
        ports_random_number: 1000,
        listen_random_ports: 0,
    }
}

const fn listen(ttl: i64, range: i64) -> Behavior {
    Behavior {
        role: ROLE_RECEIVER,
        ttl,
        send_delay_ms: 0,
        ports_range_number: range,
        ports_random_number: 0,
        listen_random_ports: 256,
    }
}

const S: &str = ROLE_SENDER;
const R: &str = ROLE_RECEIVER;

/// Mode 0, both easy: (client, visitor) per variant.
const MODE0: [(Behavior, Behavior); 10] = [
    (b(S, 0, 0, 0), b(R, 7, 0, 0)),
    (b(R, 7, 0, 0), b(S, 0, 0, 0)),
    (b(S, 0, 0, 0), b(R, 4, 0, 0)),
    (b(R, 4, 0, 0), b(S, 0, 0, 0)),
    (b(S, 0, 0, 0), b(R, 0, 0, 0)),
    (b(R, 0, 0, 0), b(S, 0, 0, 0)),
    (b(S, 0, 5000, 0), b(R, 0, 0, 0)),
    (b(S, 0, 10000, 0), b(R, 0, 0, 0)),
    (b(R, 0, 0, 0), b(S, 0, 5000, 0)),
    (b(R, 0, 0, 0), b(S, 0, 10000, 0)),
];

/// Mode 1: the regular hard NAT sends, the easy one receives and guesses ports.
const MODE1: [(Behavior, Behavior); 6] = [
    (b(S, 0, 0, 0), b(R, 7, 0, 10)),
    (b(S, 0, 2000, 0), b(R, 7, 0, 10)),
    (b(S, 0, 0, 0), b(R, 4, 0, 10)),
    (b(S, 0, 2000, 0), b(R, 4, 0, 10)),
    (b(S, 0, 0, 0), b(R, 0, 0, 10)),
    (b(S, 0, 2000, 0), b(R, 0, 0, 10)),
];

/// Mode 2: the easy end sends to random ports, the hard end listens on many.
const MODE2: [(Behavior, Behavior); 3] = [
    (random(3000), listen(7, 0)),
    (random(3000), listen(4, 0)),
    (random(3000), listen(0, 0)),
];

/// Mode 3: two regular hard NATs, both guess ports.
const MODE3: [(Behavior, Behavior); 6] = [
    (b(S, 0, 0, 10), b(R, 7, 0, 10)),
    (b(S, 0, 0, 10), b(R, 4, 0, 10)),
    (b(S, 0, 0, 10), b(R, 0, 0, 10)),
    (b(R, 7, 0, 10), b(S, 0, 0, 10)),
    (b(R, 4, 0, 10), b(S, 0, 0, 10)),
    (b(R, 0, 0, 10), b(S, 0, 0, 10)),
];

/// Mode 4: two hard NATs, one regular (it sends).
const MODE4: [(Behavior, Behavior); 3] = [
    (random(3000), listen(7, 2)),
    (random(3000), listen(4, 2)),
    (random(3000), listen(0, 2)),
];

/// The variants of a mode (unknown modes: mode 0's).
pub fn behaviors(mode: i64) -> &'static [(Behavior, Behavior)] {
    match mode {
        1 => &MODE1,
        2 => &MODE2,
        3 => &MODE3,
        4 => &MODE4,
        _ => &MODE0,
    }
}

#[derive(Debug, Clone, Copy)]
struct Score {
    mode: i64,
    index: usize,
    score: i64,
}

fn scores(mode: i64, sender: i64, receiver: i64) -> impl Iterator<Item = Score> {
    behaviors(mode)
        .iter()
        .enumerate()
        .map(move |(index, (c, _))| Score {
            mode,
            index,
            score: if c.role == ROLE_SENDER {
                sender
            } else {
                receiver
            },
        })
}

/// The scores of one pair of networks.
#[derive(Debug, Clone)]
struct Records {
    scores: Vec<Score>,
}

impl Records {
    fn new(c: &NatFeature, v: &NatFeature) -> Self {
        let features = [c, v];
        let easy = features.iter().filter(|f| f.nat_type == EASY_NAT).count();
        let hard = features.len() - easy;
        let regular = features
            .iter()
            .filter(|f| f.nat_type != EASY_NAT && f.regular_ports_change)
            .count();
        let mut s: Vec<Score> = Vec::new();
        let mode0 = |s: &mut Vec<Score>| {
            if c.public_network {
                s.extend(scores(0, 0, 1));
            } else if v.public_network {
                s.extend(scores(0, 1, 0));
            } else {
                s.extend(scores(0, 0, 0));
            }
        };
        match (easy, hard, regular) {
            (2, _, _) => mode0(&mut s),
            (_, 1, 1) => {
                s.extend(scores(1, 0, 0));
                s.extend(scores(2, 0, 0));
                mode0(&mut s);
            }
            (_, 1, 0) => {
                s.extend(scores(2, 0, 0));
                s.extend(scores(1, 0, 0));
                mode0(&mut s);
            }
            (_, 2, 2) => {
                s.extend(scores(3, 0, 0));
                s.extend(scores(4, 0, 0));
            }
            (_, 2, 1) => s.extend(scores(4, 0, 0)),
            _ => {
                s.extend(scores(0, 1, 1));
                s.extend(scores(1, 1, 1));
                s.extend(scores(3, 1, 1));
            }
        }
        Records { scores: s }
    }

    /// The best variant (the first of equals), which loses a point for being tried.
    fn recommend(&mut self) -> (i64, usize) {
        let mut best: Option<&mut Score> = None;
        for s in self.scores.iter_mut() {
            if best.as_ref().is_none_or(|b| s.score > b.score) {
                best = Some(s);
            }
        }
        match best {
            Some(s) => {
                s.score -= 1;
                (s.mode, s.index)
            }
            None => (0, 0),
        }
    }

    fn report_success(&mut self, mode: i64, index: usize) {
        if let Some(s) = self
            .scores
            .iter_mut()
            .find(|s| s.mode == mode && s.index == index)
        {
            s.score = (s.score + 2).min(10);
        }
    }
}

/// What frps remembers about past punches, by pair of networks.
#[derive(Debug, Default)]
pub struct Analyzer {
    records: HashMap<String, Records>,
}

/// The outcome of one analysis: what to tell each end, and what to remember for the report.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `NatHoleResp` for the visitor.
    pub visitor: NatHoleResp,
    /// `NatHoleResp` for the proxy's client.
    pub client: NatHoleResp,
    /// Key of the pair of networks.
    pub key: String,
    /// Chosen mode.
    pub mode: i64,
    /// Chosen variant of the mode.
    pub index: usize,
}

impl Analyzer {
    /// An analyzer without history.
    pub fn new() -> Self {
        Self::default()
    }

    /// frps's `analysis`: both ends' messages in, both answers out. `Err` carries frps's
    /// text, which it then sends to both ends instead.
    pub fn plan(
        &mut self,
        sid: &str,
        v: &NatHoleVisitor,
        c: &NatHoleClient,
    ) -> Result<Plan, String> {
        let cf = classify(&c.mapped_addrs, &parse_ips(&c.assisted_addrs))
            .map_err(|e| format!("classify client nat feature error: {e}"))?;
        let vf = classify(&v.mapped_addrs, &parse_ips(&v.assisted_addrs))
            .map_err(|e| format!("classify visitor nat feature error: {e}"))?;
        let key = analysis_key(&v.mapped_addrs, &vf, &c.mapped_addrs, &cf);
        let records = self
            .records
            .entry(key.clone())
            .or_insert_with(|| Records::new(&cf, &vf));
        let (mode, index) = records.recommend();
        let (mut cb, mut vb) = behaviors(mode).get(index).copied().unwrap_or_default();
        let swap = match mode {
            1 => cf.nat_type == EASY_NAT,
            2 => cf.nat_type == HARD_NAT,
            4 => !cf.regular_ports_change,
            _ => false,
        };
        if swap {
            std::mem::swap(&mut cb, &mut vb);
        }
        let mut timeout = cb.send_delay_ms.max(vb.send_delay_ms) + 5000;
        if cb.listen_random_ports > 0 || vb.listen_random_ports > 0 {
            timeout += 30000;
        }
        let resp =
            |tx: &str, peer: (&[String], &[String]), pf: &NatFeature, me: &Behavior| NatHoleResp {
                transaction_id: tx.to_owned(),
                sid: sid.to_owned(),
                protocol: v.protocol.clone(),
                candidate_addrs: compact(peer.0),
                assisted_addrs: compact(peer.1),
                detect_behavior: NatHoleDetectBehavior {
                    role: me.role.to_owned(),
                    mode,
                    ttl: me.ttl,
                    send_delay_ms: me.send_delay_ms,
                    read_timeout_ms: timeout - me.send_delay_ms,
                    candidate_ports: range_ports(
                        peer.0,
                        pf.ports_difference,
                        me.ports_range_number,
                    ),
                    send_random_ports: me.ports_random_number,
                    listen_random_ports: me.listen_random_ports,
                },
                error: String::new(),
            };
        Ok(Plan {
            visitor: resp(
                &v.transaction_id,
                (&c.mapped_addrs, &c.assisted_addrs),
                &cf,
                &vb,
            ),
            client: resp(
                &c.transaction_id,
                (&v.mapped_addrs, &v.assisted_addrs),
                &vf,
                &cb,
            ),
            key,
            mode,
            index,
        })
    }

    /// A punch of `plan` worked: its variant is preferred next time for that pair.
    pub fn report_success(&mut self, key: &str, mode: i64, index: usize) {
        if let Some(r) = self.records.get_mut(key) {
            r.report_success(mode, index);
        }
    }
}

/// md5 over both ends' first public IP and NAT features, in frps's order.
fn analysis_key(vm: &[String], vf: &NatFeature, cm: &[String], cf: &NatFeature) -> String {
    let mut h = Md5::new();
    for (mapped, f) in [(vm, vf), (cm, cf)] {
        if let Some(ip) = compact(&parse_ips(mapped)).first() {
            h.update(ip.as_bytes());
        }
        h.update(f.nat_type.as_bytes());
        h.update(f.behavior.as_bytes());
        h.update(
            if f.regular_ports_change {
                "true"
            } else {
                "false"
            }
            .as_bytes(),
        );
    }
    crate::auth::to_hex(&h.finalize())
}

/// Ports around the peer's last public port worth trying (none when `max_number` is 0).
pub fn range_ports(addrs: &[String], difference: i64, max_number: i64) -> Vec<PortsRange> {
    if max_number <= 0 {
        return Vec::new();
    }
    let Some(port) = addrs
        .last()
        .and_then(|a| split_host_port(a))
        .and_then(|(_, p)| p.parse::<i64>().ok())
    else {
        return Vec::new();
    };
    vec![PortsRange {
        from: (port - difference - 5).max(port - max_number).max(1),
        to: (port + difference + 5).min(port + max_number).min(65535),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visitor(addrs: &[&str]) -> NatHoleVisitor {
        NatHoleVisitor {
            transaction_id: "tv".into(),
            protocol: "quic".into(),
            mapped_addrs: addrs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn client(addrs: &[&str]) -> NatHoleClient {
        NatHoleClient {
            transaction_id: "tc".into(),
            mapped_addrs: addrs.iter().map(|s| s.to_string()).collect(),
            assisted_addrs: vec!["192.168.1.2:5000".into()],
            ..Default::default()
        }
    }

    #[test]
    fn two_easy_nats_start_with_mode0_client_sends() {
        let mut a = Analyzer::new();
        let v = visitor(&["1.1.1.1:100", "1.1.1.1:100"]);
        let c = client(&["2.2.2.2:200", "2.2.2.2:200"]);
        let p = a.plan("sid1", &v, &c).unwrap();
        assert_eq!((p.mode, p.index), (0, 0));
        assert_eq!(p.client.detect_behavior.role, "sender");
        assert_eq!(p.visitor.detect_behavior.role, "receiver");
        assert_eq!(p.visitor.detect_behavior.ttl, 7);
        assert_eq!(p.visitor.detect_behavior.read_timeout_ms, 5000);
        assert_eq!(p.visitor.candidate_addrs, ["2.2.2.2:200"]);
        assert_eq!(p.visitor.assisted_addrs, ["192.168.1.2:5000"]);
        assert_eq!(p.client.candidate_addrs, ["1.1.1.1:100"]);
        assert_eq!(
            (p.client.sid.as_str(), p.client.transaction_id.as_str()),
            ("sid1", "tc")
        );
        assert_eq!(p.visitor.protocol, "quic");
        // Tried once: the next variant comes next; a success brings the first back.
        let p2 = a.plan("sid2", &v, &c).unwrap();
        assert_eq!((p2.mode, p2.index), (0, 1));
        a.report_success(&p.key, 0, 0);
        let p3 = a.plan("sid3", &v, &c).unwrap();
        assert_eq!((p3.mode, p3.index), (0, 0));
    }

    #[test]
    fn public_client_receives_first() {
        let mut a = Analyzer::new();
        let v = visitor(&["1.1.1.1:100", "1.1.1.1:100"]);
        let c = client(&["192.168.1.2:200", "192.168.1.2:200"]);
        let p = a.plan("s", &v, &c).unwrap();
        assert_eq!((p.mode, p.index), (0, 1));
        assert_eq!(p.client.detect_behavior.role, "receiver");
    }

    #[test]
    fn hard_regular_client_sends_and_easy_visitor_guesses_ports() {
        let mut a = Analyzer::new();
        let v = visitor(&["1.1.1.1:100", "1.1.1.1:100"]);
        let c = client(&["2.2.2.2:200", "2.2.2.2:203"]);
        let p = a.plan("s", &v, &c).unwrap();
        assert_eq!((p.mode, p.index), (1, 0));
        assert_eq!(p.client.detect_behavior.role, "sender");
        let d = &p.visitor.detect_behavior;
        assert_eq!((d.role.as_str(), d.ttl), ("receiver", 7));
        assert_eq!(d.candidate_ports, [PortsRange { from: 195, to: 211 }]);
    }

    #[test]
    fn irregular_hard_visitor_listens_on_many_ports() {
        let mut a = Analyzer::new();
        let v = visitor(&["1.1.1.1:100", "1.1.1.1:900"]);
        let c = client(&["2.2.2.2:200", "2.2.2.2:200"]);
        let p = a.plan("s", &v, &c).unwrap();
        assert_eq!(p.mode, 2);
        assert_eq!(p.visitor.detect_behavior.listen_random_ports, 256);
        assert_eq!(p.client.detect_behavior.send_random_ports, 1000);
        assert_eq!(p.client.detect_behavior.read_timeout_ms, 35000);
        assert_eq!(p.visitor.detect_behavior.read_timeout_ms, 38000);
    }

    #[test]
    fn errors_name_the_side() {
        let mut a = Analyzer::new();
        let v = visitor(&["1.1.1.1:100"]);
        let c = client(&["2.2.2.2:200", "2.2.2.2:200"]);
        assert_eq!(
            a.plan("s", &v, &c).unwrap_err(),
            "classify visitor nat feature error: not enough addresses"
        );
        let c = client(&[]);
        assert_eq!(
            a.plan("s", &v, &c).unwrap_err(),
            "classify client nat feature error: not enough addresses"
        );
    }

    #[test]
    fn range_ports_clamped() {
        let a = ["1.1.1.1:3".to_string()];
        assert_eq!(range_ports(&a, 0, 10), [PortsRange { from: 1, to: 8 }]);
        assert!(range_ports(&a, 0, 0).is_empty());
        assert!(range_ports(&["x".to_string()], 0, 10).is_empty());
    }
}
