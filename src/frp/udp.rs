//! udp and sudp proxies on the client side: UDPPacket messages on a work connection relayed to
//! the local UDP service, as Go frpc's `udp.Forwarder` does.
//!
//! - One work connection carries every user's datagrams. A udp proxy keeps only the newest
//!   work connection frps gave it (frps keeps one per udp proxy and replaces it when it
//!   breaks); an sudp proxy serves each work connection (one per visitor connection) on its own.
//! - Each user address (`r` of the packets) gets its own local UDP socket, connected to the
//!   local service, so the answers can be told apart. A socket without an answer for
//!   [`LOCAL_READ_TIMEOUT`] is closed; the next datagram from that user opens a new one.
//! - A Ping goes on the work connection every [`HEARTBEAT_INTERVAL`], since frps drops a udp
//!   work connection that is silent for 60 s.
//! - With `proxyProtocolVersion` each datagram to the local service starts with a PROXY
//!   header naming the user's address (version 2 `DGRAM`; version 1, which has no UDP, the
//!   short `PROXY UNKNOWN` line), as frpc does.
//! - Datagrams wait in a queue of [`QUEUE_LEN`]; when it is full new ones are dropped, as UDP
//!   may, and nobody else waits. A datagram from the local service larger than
//!   `udp_packet_size` is dropped with a warning (Go frpc would cut it to that size).

use super::codec::{MsgReader, MsgWriter};
use super::config::ProxyProtocolVersion;
use super::error::Error;
use super::events::Counters;
use super::wrapped::Wrapped;
use frp_proto::msg::{Ping, UdpPacket};
use frp_proto::proxy_protocol;
use frp_proto::udp::{self as proto_udp, HEARTBEAT_INTERVAL, LOCAL_READ_TIMEOUT, QUEUE_LEN};
use frp_proto::Message;
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Local sockets of one work connection, by user address.
type Sockets = Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>>;

/// What one udp/sudp work connection needs.
pub(crate) struct Relay<'a> {
    /// Proxy name without the user prefix, for logs.
    pub name: &'a str,
    /// The local UDP service.
    pub local: SocketAddr,
    /// `udpPacketSize`.
    pub packet_size: usize,
    pub counters: &'a Arc<Counters>,
    /// UDPPacket messages in wire v2 frames (as frpc does when the login speaks v2).
    pub wire_v2: bool,
    /// `transport.proxyProtocolVersion`: a PROXY header (user → local service) before each
    /// datagram to the local service, as frpc's forwarder writes it.
    pub proxy_protocol: Option<ProxyProtocolVersion>,
}

/// Relays datagrams between `conn` and the local service until the connection ends or `stop`
/// fires.
pub(crate) async fn serve(
    relay: Relay<'_>,
    conn: Wrapped,
    stop: CancellationToken,
) -> Result<(), Error> {
    let (rd, wr) = tokio::io::split(conn);
    let mut reader = MsgReader::for_wire(rd, relay.wire_v2);
    let mut writer = MsgWriter::for_wire(wr, relay.wire_v2, false);
    let (tx, mut rx) = mpsc::channel::<UdpPacket>(QUEUE_LEN);
    let sockets: Sockets = Arc::default();
    // The per-user socket tasks end with this connection.
    let users = stop.child_token();
    let _users_guard = users.clone().drop_guard();

    let send = async {
        let mut heartbeat = tokio::time::interval_at(
            tokio::time::Instant::now() + HEARTBEAT_INTERVAL,
            HEARTBEAT_INTERVAL,
        );
        loop {
            let msg: Message = tokio::select! {
                p = rx.recv() => match p {
                    Some(p) => p.into(),
                    None => return Ok(()),
                },
                _ = heartbeat.tick() => Ping::default().into(),
            };
            writer.send(&msg).await?;
        }
    };
    let receive = async {
        let mut payload = Vec::with_capacity(relay.packet_size);
        // Header and payload of one datagram, reused (only with a PROXY header).
        let mut framed = Vec::new();
        loop {
            let packet = match reader.read().await? {
                Some(Message::UdpPacket(p)) => p,
                Some(_) => continue,
                None => return Ok::<(), Error>(()),
            };
            let user = match proto_udp::decode_into(&packet, &mut payload) {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!(proxy = %relay.name, error = %e, "udp packet dropped");
                    continue;
                }
            };
            let socket = match local_socket(&relay, &sockets, user, &tx, &users).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(proxy = %relay.name, error = %e, "local udp socket");
                    continue;
                }
            };
            let datagram = match relay.proxy_protocol {
                // frpc sends the bare payload when no header can be built.
                Some(v) => match proxy_protocol::build_datagram(v, user, relay.local) {
                    Ok(header) => {
                        framed.clear();
                        framed.extend_from_slice(header.as_bytes());
                        framed.extend_from_slice(&payload);
                        &framed
                    }
                    Err(_) => &payload,
                },
                None => &payload,
            };
            if socket.send(datagram).await.is_ok() {
                relay
                    .counters
                    .bytes_to_local
                    .fetch_add(payload.len() as u64, Ordering::Relaxed);
            }
        }
    };
    tokio::select! {
        r = send => r,
        r = receive => r,
        _ = stop.cancelled() => Ok(()),
    }
}

/// The socket for `user`, opened (and its reading task started) on its first datagram.
async fn local_socket(
    relay: &Relay<'_>,
    sockets: &Sockets,
    user: SocketAddr,
    tx: &mpsc::Sender<UdpPacket>,
    stop: &CancellationToken,
) -> std::io::Result<Arc<UdpSocket>> {
    if let Some(s) = lock(sockets).get(&user) {
        return Ok(s.clone());
    }
    let any = match relay.local {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    let socket = UdpSocket::bind(any).await?;
    socket.connect(relay.local).await?;
    let socket = Arc::new(socket);
    lock(sockets).insert(user, socket.clone());
    tokio::spawn(answers(
        relay.name.to_owned(),
        socket.clone(),
        user,
        relay.packet_size,
        tx.clone(),
        sockets.clone(),
        relay.counters.clone(),
        stop.clone(),
    ));
    Ok(socket)
}

fn lock(s: &Sockets) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Arc<UdpSocket>>> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads the local service's answers to one user until it is quiet for [`LOCAL_READ_TIMEOUT`].
#[allow(clippy::too_many_arguments)]
async fn answers(
    name: String,
    socket: Arc<UdpSocket>,
    user: SocketAddr,
    packet_size: usize,
    tx: mpsc::Sender<UdpPacket>,
    sockets: Sockets,
    counters: Arc<Counters>,
    stop: CancellationToken,
) {
    // One byte more than allowed tells an oversized datagram from one that just fits.
    let mut buf = vec![0u8; packet_size + 1];
    let mut oversized: u64 = 0;
    loop {
        let read = tokio::select! {
            r = tokio::time::timeout(LOCAL_READ_TIMEOUT, socket.recv(&mut buf)) => r,
            _ = stop.cancelled() => break,
        };
        let n = match read {
            Ok(Ok(n)) => n,
            _ => break,
        };
        if n > packet_size {
            if oversized == 0 {
                tracing::warn!(
                    proxy = %name,
                    limit = packet_size,
                    "udp datagram from the local service is larger than udpPacketSize; dropped"
                );
            }
            oversized += 1;
            continue;
        }
        counters
            .bytes_from_local
            .fetch_add(n as u64, Ordering::Relaxed);
        // A full queue drops the datagram, as Go frpc does.
        let _ = tx.try_send(proto_udp::encode(&buf[..n], user));
    }
    let mut map = lock(&sockets);
    if map.get(&user).is_some_and(|s| Arc::ptr_eq(s, &socket)) {
        map.remove(&user);
    }
}
