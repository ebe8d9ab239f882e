//! A DNS server for tests of `dnsServer`: answers one name over UDP on loopback.

use std::io;
use std::net::{IpAddr, SocketAddr};
use tokio::net::UdpSocket;

/// Starts a DNS server on 127.0.0.1 that answers A/AAAA queries for `name` (any letter case,
/// with or without the final dot) with `ips`, and NXDOMAIN for every other name. It runs until
/// the runtime stops.
pub async fn dns_server(name: &str, ips: Vec<IpAddr>) -> io::Result<SocketAddr> {
    let sock = UdpSocket::bind("127.0.0.1:0").await?;
    let addr = sock.local_addr()?;
    let mut wanted = Vec::new();
    for label in name.trim_end_matches('.').split('.') {
        wanted.push(u8::try_from(label.len()).unwrap_or(0));
        wanted.extend_from_slice(label.as_bytes());
    }
    wanted.push(0);
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            if let Some(reply) = answer(&buf[..n], &wanted, &ips) {
                let _ = sock.send_to(&reply, from).await;
            }
        }
    });
    Ok(addr)
}

/// The reply to one query packet, or `None` if it is not a one-question query.
fn answer(q: &[u8], wanted: &[u8], ips: &[IpAddr]) -> Option<Vec<u8>> {
    if q.len() < 17 || q[4..6] != [0, 1] {
        return None;
    }
    let qtype = u16::from_be_bytes([q[q.len() - 4], q[q.len() - 3]]);
    let known = q[12..q.len() - 4].eq_ignore_ascii_case(wanted);
    let mut r = q.to_vec();
    r[2] = 0x81;
    r[3] = if known { 0x80 } else { 0x83 };
    let mut count = 0u16;
    if known {
        for ip in ips {
            let data: Vec<u8> = match (ip, qtype) {
                (IpAddr::V4(v4), 1) => v4.octets().to_vec(),
                (IpAddr::V6(v6), 28) => v6.octets().to_vec(),
                _ => continue,
            };
            // The name as a pointer to the question, type, class IN, TTL 60, the address.
            r.extend_from_slice(&[0xc0, 12]);
            r.extend_from_slice(&qtype.to_be_bytes());
            r.extend_from_slice(&[0, 1, 0, 0, 0, 60, 0, data.len() as u8]);
            r.extend_from_slice(&data);
            count += 1;
        }
    }
    r[6..8].copy_from_slice(&count.to_be_bytes());
    Some(r)
}
