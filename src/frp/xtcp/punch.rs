//! frpc's `nathole.MakeHole`: send the punch datagrams frps's plan asks for and wait for the
//! peer's, on our discovery socket and, when told, on extra random ports.

use super::super::error::Error;
use frp_proto::crypto::Key;
use frp_proto::msg::{NatHoleResp, NatHoleSid};
use frp_proto::nathole::{self, punch, ROLE_SENDER};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::time::Instant;

/// At most this many extra sockets, whatever frps asks (frps's own plans use 256).
const MAX_LISTEN_RANDOM_PORTS: i64 = 256;

/// At most this many ports per candidate range, whatever frps asks (its plans span at most
/// the peer's port spread plus 10).
const MAX_RANGE_PORTS: i64 = 1000;

/// At most this many random ports per address, whatever frps asks (its plans use 1000).
const MAX_SEND_RANDOM_PORTS: i64 = 1000;

/// Punches with `resp`'s plan; returns the socket that heard the peer and the peer's address.
pub(super) async fn make_hole(
    socket: UdpSocket,
    resp: &NatHoleResp,
    key: &Key,
) -> Result<(UdpSocket, SocketAddr), Error> {
    let plan = &resp.detect_behavior;
    let transaction_id = super::new_transaction_id();
    let sid = NatHoleSid {
        transaction_id,
        sid: resp.sid.clone(),
        response: false,
        nonce: String::new(),
    };
    let mut sockets = vec![socket];
    let mut detect: Vec<String> = Vec::new();
    if plan.role == ROLE_SENDER {
        if plan.send_delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(plan.send_delay_ms as u64)).await;
        }
        detect.extend(resp.assisted_addrs.iter().cloned());
        detect.extend(resp.candidate_addrs.iter().cloned());
    } else {
        if plan.candidate_ports.is_empty() {
            detect.extend(resp.candidate_addrs.iter().cloned());
        }
        for _ in 0..plan.listen_random_ports.clamp(0, MAX_LISTEN_RANDOM_PORTS) {
            match UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await {
                Ok(s) => sockets.push(s),
                Err(e) => tracing::warn!(error = %e, "listen random udp addr error"),
            }
        }
    }
    let ttl = u32::try_from(plan.ttl).ok().filter(|t| *t > 0);
    for addr in nathole::compact(&detect) {
        let Ok(to) = addr.parse::<SocketAddr>() else {
            continue;
        };
        for s in &sockets {
            send_sid(s, &sid, key, to, ttl).await;
        }
    }
    let ips = nathole::compact(&nathole::parse_ips(&resp.candidate_addrs));
    if !plan.candidate_ports.is_empty() {
        for s in &sockets {
            for ip in &ips {
                for range in &plan.candidate_ports {
                    let from = range.from.max(1);
                    for port in from..=range.to.min(65535).min(from + MAX_RANGE_PORTS) {
                        if let Ok(to) = format!("{ip}:{port}").parse() {
                            send_sid(s, &sid, key, to, ttl).await;
                        }
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
            }
        }
    }
    let timeout = match plan.read_timeout_ms {
        ms if ms > 0 => Duration::from_millis(ms as u64),
        _ => nathole::DEFAULT_PUNCH_TIMEOUT,
    };
    let deadline = Instant::now() + timeout;
    let random = plan.send_random_ports.clamp(0, MAX_SEND_RANDOM_PORTS) as usize;
    let (index, peer) = {
        // Random ports are sprayed while we listen; the spray never ends by itself.
        let spray = async {
            if random > 0 {
                spray_random_ports(&sockets, &ips, random, &sid, key, ttl).await;
            }
            std::future::pending::<std::convert::Infallible>().await
        };
        let role = plan.role.as_str();
        // At least the discovery socket is in the list, so `select_ok` has something to wait on.
        let waits = sockets.iter().enumerate().map(|(i, s)| {
            Box::pin(async move {
                let peer = wait_detect(s, &resp.sid, key, role, deadline).await?;
                Ok::<_, String>((i, peer))
            })
        });
        let found = tokio::select! {
            r = futures::future::select_ok(waits) => r,
            never = spray => match never {},
        };
        let (found, _rest) = found.map_err(|e| {
            Error::Protocol(format!("make hole error: wait detect message error: {e}"))
        })?;
        found
    };
    Ok((sockets.swap_remove(index), peer))
}

/// One punch datagram, at `ttl` when given (restored afterwards), as frpc sends it: a fresh
/// random-length nonce so the datagrams differ in size.
async fn send_sid(
    socket: &UdpSocket,
    sid: &NatHoleSid,
    key: &Key,
    to: SocketAddr,
    ttl: Option<u32>,
) {
    let mut m = sid.clone();
    m.nonce = "0".repeat(rand::random::<usize>() % 20);
    let datagram = punch::encode(&m, key, rand::random());
    let original = match ttl {
        Some(t) => {
            let original = socket.ttl().ok();
            if socket.set_ttl(t).is_err() {
                None
            } else {
                original
            }
        }
        None => None,
    };
    if let Err(e) = socket.send_to(&datagram, to).await {
        tracing::trace!(%to, error = %e, "send sid message error");
    }
    if let Some(o) = original {
        let _ = socket.set_ttl(o);
    }
}

/// Sends to `count` random ports of every candidate IP (15 ms apart), from every socket.
async fn spray_random_ports(
    sockets: &[UdpSocket],
    ips: &[String],
    count: usize,
    sid: &NatHoleSid,
    key: &Key,
    ttl: Option<u32>,
) {
    let mut used = std::collections::HashSet::new();
    for _ in 0..count {
        let port = (0..10)
            .map(|_| 1024 + rand::random::<u16>() % (65535 - 1024))
            .find(|p| used.insert(*p));
        let Some(port) = port else { continue };
        for ip in ips {
            if let Ok(to) = format!("{ip}:{port}").parse() {
                for s in sockets {
                    send_sid(s, sid, key, to, ttl).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    }
}

/// Waits for the peer's punch with our session id. A receiver answers a request (and is
/// done); a sender waits for an answer to its own.
async fn wait_detect(
    socket: &UdpSocket,
    sid: &str,
    key: &Key,
    role: &str,
    deadline: Instant,
) -> Result<SocketAddr, String> {
    let mut buf = [0u8; 1024];
    loop {
        let (n, from) = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf))
            .await
            .map_err(|_| "i/o timeout".to_string())?
            .map_err(|e| e.to_string())?;
        let Some(mut m) = punch::decode(&buf[..n], key) else {
            tracing::debug!(%from, "decode sid message error");
            continue;
        };
        if m.sid != sid {
            tracing::debug!(%from, "get sid message with wrong sid");
            continue;
        }
        if !m.response {
            if role == ROLE_SENDER {
                continue;
            }
            m.response = true;
            let answer = punch::encode(&m, key, rand::random());
            let _ = socket.send_to(&answer, from).await;
        }
        return Ok(from);
    }
}
