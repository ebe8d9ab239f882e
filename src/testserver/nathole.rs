//! frps's NAT hole controller for xtcp, and a STUN responder on loopback.
//!
//! An xtcp visitor's `NatHoleVisitor` arrives on its control stream: a pre-check is answered
//! at once (proxy registered as xtcp, visiting user allowed); a real request is checked (proxy
//! exists, sign key), gets a session id, which goes to the proxy's client on one of its work
//! connections (StartWorkConn then `NatHoleSid`, then closed), and waits up to 10 s for that
//! client's `NatHoleClient`. Both ends' addresses go through frps's planning
//! (`frp_proto::nathole::analysis`) and each end gets its `NatHoleResp`, a sender's 1 s late
//! so the receiver's first packets have gone out. `NatHoleReport` feeds the plan's scores.
//! Error texts are frps's.
//!
//! The STUN responder answers Binding requests on two loopback sockets, the first naming the
//! second as its OTHER-ADDRESS, so a client discovers two (equal) public addresses: an easy
//! NAT, as on any host without one.

use super::shared::{ControlHandle, Inner, SecretProxy};
use super::wire::{close, write_frame};
use frp_proto::msg::{
    NatHoleClient, NatHoleReport, NatHoleResp, NatHoleSid, NatHoleVisitor, StartWorkConn,
};
use frp_proto::nathole::analysis::Plan;
use frp_proto::nathole::{stun, CLIENT_WAIT_TIMEOUT, ROLE_SENDER};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

fn resp_error(transaction_id: &str, error: String) -> NatHoleResp {
    NatHoleResp {
        transaction_id: transaction_id.to_owned(),
        error,
        ..Default::default()
    }
}

fn xtcp_proxy(inner: &Inner, name: &str) -> Option<SecretProxy> {
    inner
        .registry()
        .proxies
        .get(name)
        .and_then(|e| e.secret.clone())
        .filter(|s| s.xtcp)
}

/// frps's `HandleVisitor`.
pub(crate) async fn handle_visitor(inner: Arc<Inner>, ctl: Arc<ControlHandle>, m: NatHoleVisitor) {
    let name = &m.proxy_name;
    if m.pre_check {
        let user = inner
            .state
            .borrow()
            .controls
            .get(&ctl.run_id)
            .map(|c| c.user.clone())
            .unwrap_or_default();
        let error = match xtcp_proxy(&inner, name) {
            None => format!("xtcp server for [{name}] doesn't exist"),
            Some(p) if !p.allow_users.iter().any(|u| *u == user || u == "*") => {
                format!("xtcp visitor user [{user}] not allowed for [{name}]")
            }
            Some(_) => String::new(),
        };
        ctl.send(&inner, resp_error(&m.transaction_id, error).into());
        return;
    }
    let target = match xtcp_proxy(&inner, name) {
        None => Err(format!("xtcp server for [{name}] doesn't exist")),
        Some(p) => {
            let expected = frp_proto::udp::sign_key(&p.sk, m.timestamp);
            if frp_proto::auth::keys_match(&expected, &m.sign_key) {
                Ok(p)
            } else {
                Err(format!("xtcp connection of [{name}] auth failed"))
            }
        }
    };
    let target = match target {
        Ok(t) => t,
        Err(error) => {
            ctl.send(&inner, resp_error(&m.transaction_id, error).into());
            return;
        }
    };
    let sid = gen_sid();
    let (tx, rx) = oneshot::channel();
    inner.nathole().waiting.insert(sid.clone(), tx);
    // The proxy's side learns the sid on a work connection of its own.
    let owner = target.ctl.clone();
    let (i, s) = (inner.clone(), sid.clone());
    let start = StartWorkConn {
        proxy_name: name.clone(),
        ..Default::default()
    };
    tokio::spawn(async move {
        if let Some(mut work) = owner.take_work_conn(&i, start).await {
            let msg = NatHoleSid {
                sid: s,
                ..Default::default()
            };
            let _ = write_frame(&mut work, &msg.into()).await;
            close(&mut work).await;
        }
    });
    let client = tokio::time::timeout(CLIENT_WAIT_TIMEOUT, rx).await;
    inner.nathole().waiting.remove(&sid);
    let Ok(Ok((client, client_ctl))) = client else {
        tracing::debug!(%sid, "test server: wait for NatHoleClient message timeout");
        return;
    };
    let plan = inner.nathole().analyzer.plan(&sid, &m, &client);
    let (mut vresp, mut cresp) = match plan {
        Ok(Plan {
            visitor,
            client,
            key,
            mode,
            index,
        }) => {
            inner
                .nathole()
                .planned
                .insert(sid.clone(), (key, mode, index));
            (visitor, client)
        }
        Err(e) => (
            resp_error(&m.transaction_id, e.clone()),
            resp_error(&client.transaction_id, e),
        ),
    };
    if let Some(addrs) = &inner.cfg.nathole_candidates {
        for r in [&mut vresp, &mut cresp] {
            if r.error.is_empty() {
                r.candidate_addrs = addrs.clone();
                r.assisted_addrs = Vec::new();
            }
        }
    }
    let send = |ctl: Arc<ControlHandle>, resp: NatHoleResp| {
        let inner = inner.clone();
        async move {
            if resp.detect_behavior.role == ROLE_SENDER {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            ctl.send(&inner, resp.into());
        }
    };
    tokio::join!(send(ctl, vresp), send(client_ctl, cresp));
}

/// frps's session ids: unix seconds, then 16 random hex digits.
fn gen_sid() -> String {
    let random: [u8; 8] = rand::random();
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{secs}{}", frp_proto::auth::to_hex(&random))
}

/// frps's `HandleClient`: the proxy's end of a waiting session.
pub(crate) fn handle_client(inner: &Inner, ctl: &Arc<ControlHandle>, m: NatHoleClient) {
    if let Some(tx) = inner.nathole().waiting.remove(&m.sid) {
        let _ = tx.send((m, ctl.clone()));
    }
}

/// frps's `HandleReport`: a success makes the plan's variant the next choice for that pair.
pub(crate) fn handle_report(inner: &Inner, m: &NatHoleReport) {
    let mut nh = inner.nathole();
    let Some((key, mode, index)) = nh.planned.remove(&m.sid) else {
        return;
    };
    if m.success {
        nh.analyzer.report_success(&key, mode, index);
    }
}

/// Binds the two STUN sockets on loopback and answers until `stop`; returns the first one's
/// address (the client's `natHoleStunServer`).
pub(crate) async fn start_stun(stop: CancellationToken) -> io::Result<SocketAddr> {
    let primary = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let secondary = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let (addr, other) = (primary.local_addr()?, secondary.local_addr()?);
    for (socket, other) in [(primary, Some(other)), (secondary, None)] {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = answer_stun(socket, other) => {}
                _ = stop.cancelled() => {}
            }
        });
    }
    Ok(addr)
}

async fn answer_stun(socket: UdpSocket, other: Option<SocketAddr>) {
    let mut buf = [0u8; 1024];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            // An ICMP error surfacing on the socket; do not spin on it.
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        if let Ok((stun::BINDING_REQUEST, id, _)) = stun::parse_header(&buf[..n]) {
            let _ = socket
                .send_to(&stun::binding_success(&id, from, other), from)
                .await;
        }
    }
}
