//! udp and sudp payloads: datagrams carried as [`UdpPacket`] messages inside a work (or
//! visitor) connection, after that connection's optional encryption and compression.
//!
//! Go frp encodes the datagram as standard base64 with padding in `c`, and the user's address
//! as a Go `net.UDPAddr` in `r` (`l` is never set by frpc). The same addresses come back in the
//! answers, which is how frps (or an sudp visitor) knows where to send each reply.

use crate::msg::{UdpAddr, UdpPacket};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// frpc's default `udpPacketSize`: the largest datagram read from a UDP socket.
pub const DEFAULT_UDP_PACKET_SIZE: usize = 1500;

/// The largest `udpPacketSize` whose UDPPacket still fits frp's 10 240-byte frame body: the
/// base64 of the payload plus the JSON around it (an IPv6 address with a zone included).
pub const MAX_UDP_PACKET_SIZE: usize = 7500;

/// frpc sends a Ping on a udp/sudp work connection this often, so frps (and an sudp visitor,
/// which both give up after [`WORK_CONN_READ_TIMEOUT`] of silence) keep it.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);

/// frps's (and the sudp visitor's) read deadline on a udp work connection.
pub const WORK_CONN_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// frpc closes the local UDP socket of one user address after this long without an answer from
/// the local service; the next datagram from that address opens a new one.
pub const LOCAL_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Datagrams queued per direction before new ones are dropped (frp's channel size; UDP may
/// lose packets, a full queue must never block the other users).
pub const QUEUE_LEN: usize = 1024;

/// Why a UDPPacket could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum UdpError {
    /// `c` is not valid standard base64.
    #[error("UDPPacket content is not valid base64")]
    Base64,
    /// `r` is missing or not an IP address and port.
    #[error("UDPPacket has no usable remote address")]
    Address,
}

/// The Go `net.UDPAddr` of a socket address (zone from an IPv6 scope id, as Go prints it).
pub fn udp_addr(addr: SocketAddr) -> UdpAddr {
    let (ip, zone) = match addr {
        SocketAddr::V4(a) => (a.ip().to_string(), String::new()),
        SocketAddr::V6(a) => {
            // Go prints an IPv4-mapped address as plain IPv4.
            let ip = match a.ip().to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => a.ip().to_string(),
            };
            let zone = if a.scope_id() == 0 {
                String::new()
            } else {
                a.scope_id().to_string()
            };
            (ip, zone)
        }
    };
    UdpAddr {
        ip,
        port: i64::from(addr.port()),
        zone,
    }
}

/// The socket address of a Go `net.UDPAddr`, if it names one.
pub fn socket_addr(addr: &UdpAddr) -> Option<SocketAddr> {
    let ip: IpAddr = addr.ip.parse().ok()?;
    let port = u16::try_from(addr.port).ok()?;
    let mut sa = SocketAddr::new(ip, port);
    if let SocketAddr::V6(v6) = &mut sa {
        if let Ok(scope) = addr.zone.parse::<u32>() {
            v6.set_scope_id(scope);
        }
    }
    Some(sa)
}

/// The UDPPacket frpc sends for a datagram from (or to) `remote`.
pub fn encode(payload: &[u8], remote: SocketAddr) -> UdpPacket {
    UdpPacket {
        content: STANDARD.encode(payload),
        local_addr: None,
        remote_addr: Some(udp_addr(remote)),
    }
}

/// Decodes a UDPPacket's datagram into `out` (cleared first) and returns its remote address.
pub fn decode_into(packet: &UdpPacket, out: &mut Vec<u8>) -> Result<SocketAddr, UdpError> {
    let remote = packet
        .remote_addr
        .as_ref()
        .and_then(socket_addr)
        .ok_or(UdpError::Address)?;
    out.clear();
    STANDARD
        .decode_vec(packet.content.as_bytes(), out)
        .map_err(|_| UdpError::Base64)?;
    Ok(remote)
}

/// The sign key of a NewVisitorConn: lowercase hex of md5(secret key ‖ decimal timestamp),
/// the same formula as the login's privilege key.
pub fn sign_key(secret_key: &str, timestamp: i64) -> String {
    crate::auth::privilege_key(secret_key, timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::encode_to_vec;

    #[test]
    fn packet_json_matches_go() {
        let p = encode(b"hello", "127.0.0.1:5353".parse().unwrap());
        let bytes = encode_to_vec(&p.into()).unwrap();
        assert_eq!(bytes[0], b'u');
        assert_eq!(
            &bytes[9..],
            br#"{"c":"aGVsbG8=","r":{"IP":"127.0.0.1","Port":5353,"Zone":""}}"#
        );
    }

    #[test]
    fn round_trip_and_bad_input() {
        let addr: SocketAddr = "[::1]:9".parse().unwrap();
        let p = encode(&[0, 1, 2, 255], addr);
        let mut out = Vec::new();
        assert_eq!(decode_into(&p, &mut out), Ok(addr));
        assert_eq!(out, [0, 1, 2, 255]);
        let mut bad = p.clone();
        bad.content = "!!".into();
        assert_eq!(decode_into(&bad, &mut out), Err(UdpError::Base64));
        bad = p.clone();
        bad.remote_addr = None;
        assert_eq!(decode_into(&bad, &mut out), Err(UdpError::Address));
        bad = p;
        bad.remote_addr.as_mut().unwrap().port = 70000;
        assert_eq!(decode_into(&bad, &mut out), Err(UdpError::Address));
    }

    #[test]
    fn mapped_ipv4_prints_as_ipv4() {
        let a: SocketAddr = "[::ffff:10.0.0.1]:80".parse().unwrap();
        assert_eq!(udp_addr(a).ip, "10.0.0.1");
    }

    #[test]
    fn the_largest_packet_fits_a_frame() {
        let addr: SocketAddr = "[fe80::1234:5678:9abc:def0%4294967295]:65535"
            .parse()
            .unwrap();
        let p = encode(&vec![0xff; MAX_UDP_PACKET_SIZE], addr);
        assert!(encode_to_vec(&p.into()).is_ok());
    }

    #[test]
    fn sign_key_is_md5_of_key_and_timestamp() {
        assert_eq!(
            sign_key("abc", 1_700_000_000),
            "22bd6333f840eeeee03ad14f75fd96ac"
        );
    }
}
