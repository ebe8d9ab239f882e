//! frpc's `nathole.Prepare`: learn our public UDP addresses from the STUN server and keep the
//! socket they belong to for the punch.

use super::super::error::Error;
use frp_proto::nathole::classify::{classify, NatFeature};
use frp_proto::nathole::stun;
use frp_proto::nathole::STUN_TIMEOUT;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tokio::net::UdpSocket;

/// The outcome of discovery: the socket and what frps needs to know about it.
pub(super) struct Prepared {
    pub socket: UdpSocket,
    /// Public `ip:port`s, one per STUN server asked (the named one and its other address).
    pub mapped: Vec<String>,
    /// Our own non-loopback addresses with the socket's port (unless disabled).
    pub assisted: Vec<String>,
    /// For the log line frpc prints.
    pub feature: Option<NatFeature>,
}

/// Binds an IPv4 UDP socket, asks `stun_server` (and the other address it names) for our
/// public address, and returns the socket with at least two addresses, as frpc requires.
pub(super) async fn prepare(stun_server: &str, disable_assisted: bool) -> Result<Prepared, Error> {
    let fail = |e: String| Error::Protocol(format!("nathole prepare error: discover error: {e}"));
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .await
        .map_err(|e| fail(e.to_string()))?;
    let server = tokio::net::lookup_host(stun_server)
        .await
        .map_err(|e| fail(e.to_string()))?
        .find(SocketAddr::is_ipv4)
        .ok_or_else(|| fail(format!("no IPv4 address for {stun_server}")))?;
    let mut mapped = Vec::with_capacity(2);
    let first = binding(&socket, server).await.map_err(fail)?;
    let Some(addr) = first.mapped else {
        return Err(fail("no external address found".into()));
    };
    mapped.push(addr.to_string());
    if let Some(other) = first.other.filter(SocketAddr::is_ipv4) {
        if let Some(addr) = binding(&socket, other).await.map_err(fail)?.mapped {
            mapped.push(addr.to_string());
        }
    }
    if mapped.len() < 2 {
        return Err(fail("not enough addresses".into()));
    }
    let port = socket.local_addr()?.port();
    let local_ips = local_ips(server).await;
    let feature = classify(&mapped, &local_ips).ok();
    let assisted = if disable_assisted {
        Vec::new()
    } else {
        local_ips.iter().map(|ip| format!("{ip}:{port}")).collect()
    };
    Ok(Prepared {
        socket,
        mapped,
        assisted,
        feature,
    })
}

/// One Binding request and its answer, within frpc's 3 s.
async fn binding(socket: &UdpSocket, server: SocketAddr) -> Result<stun::BindingAnswer, String> {
    let id: stun::TransactionId = rand::random();
    socket
        .send_to(&stun::binding_request(&id), server)
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 1024];
    let wait = async {
        loop {
            let (n, _) = socket
                .recv_from(&mut buf)
                .await
                .map_err(|e| e.to_string())?;
            // A late answer to an earlier request (or a stray datagram) is not ours.
            match stun::parse_binding_answer(&buf[..n]) {
                Ok((got, answer)) if got == id => return Ok(answer),
                _ => continue,
            }
        }
    };
    tokio::time::timeout(STUN_TIMEOUT, wait)
        .await
        .map_err(|_| "wait response from stun server timeout".to_string())?
}

/// Our own IPv4 address towards the STUN server, if it is neither loopback nor link-local
/// (frpc lists every interface address of that kind; the one the route to the STUN server
/// uses is the one a peer on the same network can reach).
async fn local_ips(towards: SocketAddr) -> Vec<String> {
    let Ok(probe) = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await else {
        return Vec::new();
    };
    if probe.connect(towards).await.is_err() {
        return Vec::new();
    }
    match probe.local_addr().map(|a| a.ip()) {
        Ok(IpAddr::V4(ip)) if !ip.is_loopback() && !ip.is_link_local() && !ip.is_unspecified() => {
            vec![ip.to_string()]
        }
        _ => Vec::new(),
    }
}
