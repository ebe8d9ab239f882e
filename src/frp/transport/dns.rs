//! Resolving the server name through one given DNS server (frpc's `dnsServer`), over UDP.
//!
//! frpc swaps Go's resolver for one that sends every query to that server; people use it where
//! the system resolver cannot see the frps name (split-horizon DNS, containers without a
//! resolver). This sends an A and an AAAA query from one socket, checks that each answer
//! matches its query (id, source address, question), and reads the addresses out of the answer
//! section. Every length in an answer is checked before it is used: the reply is peer input.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::net::UdpSocket;

/// Per-attempt wait for the answers; two attempts, as Go's resolver does by default.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
const ATTEMPTS: usize = 2;

/// Record types.
const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;

/// Largest UDP answer read (EDNS is not offered, so 512 is the limit; some servers send more).
const MAX_ANSWER: usize = 4096;

/// The addresses of `host` as `server` answers, with `port`. An IP literal is returned as is.
pub(super) async fn resolve(
    server: SocketAddr,
    host: &str,
    port: u16,
) -> io::Result<Vec<SocketAddr>> {
    resolve_with(server, host, port, ATTEMPT_TIMEOUT).await
}

async fn resolve_with(
    server: SocketAddr,
    host: &str,
    port: u16,
    attempt_timeout: Duration,
) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let name = host.trim_end_matches('.');
    let queries = [query(name, TYPE_A)?, query(name, TYPE_AAAA)?];
    let bind: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(bind).await?;
    sock.connect(server).await?;
    let mut last_err = io::Error::new(io::ErrorKind::TimedOut, "dns server did not answer");
    for _ in 0..ATTEMPTS {
        for (q, _) in &queries {
            sock.send(q).await?;
        }
        match tokio::time::timeout(attempt_timeout, answers(&sock, &queries)).await {
            Ok(Ok(ips)) if !ips.is_empty() => {
                return Ok(ips
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, port))
                    .collect())
            }
            Ok(Ok(_)) => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("lookup {name} on {server}: no such host"),
                ))
            }
            Ok(Err(e)) => last_err = e,
            Err(_) => {}
        }
    }
    Err(last_err)
}

/// Reads until both queries are answered; A addresses first.
async fn answers(sock: &UdpSocket, queries: &[(Vec<u8>, u16); 2]) -> io::Result<Vec<IpAddr>> {
    let mut found: [Option<Vec<IpAddr>>; 2] = [None, None];
    let mut buf = vec![0u8; MAX_ANSWER];
    while found.iter().any(Option::is_none) {
        let n = sock.recv(&mut buf).await?;
        for (i, (q, id)) in queries.iter().enumerate() {
            if found[i].is_none() {
                if let Some(ips) = parse_answer(&buf[..n], *id, &q[12..]) {
                    found[i] = Some(ips);
                }
            }
        }
    }
    Ok(found.into_iter().flatten().flatten().collect())
}

/// A query packet for `name` and its id.
fn query(name: &str, qtype: u16) -> io::Result<(Vec<u8>, u16)> {
    let id: u16 = rand::random();
    let mut p = Vec::with_capacity(name.len() + 18);
    p.extend_from_slice(&id.to_be_bytes());
    // Flags: recursion desired; one question.
    p.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    if name.len() > 253 {
        return Err(invalid("server name too long for DNS"));
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(invalid("server name is not a valid DNS name"));
        }
        p.push(label.len() as u8);
        p.extend_from_slice(label.as_bytes());
    }
    p.push(0);
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok((p, id))
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// The A/AAAA addresses of an answer to the query with `id` and `question` (its question
/// section, compared byte for byte ignoring ASCII case); `None` if the packet is not that
/// answer or is malformed. `Some(empty)` is a valid "no such address" answer.
fn parse_answer(p: &[u8], id: u16, question: &[u8]) -> Option<Vec<IpAddr>> {
    if p.len() < 12 || u16::from_be_bytes([p[0], p[1]]) != id || p[2] & 0x80 == 0 {
        return None;
    }
    let rcode = p[3] & 0x0f;
    let qdcount = u16::from_be_bytes([p[4], p[5]]);
    let ancount = u16::from_be_bytes([p[6], p[7]]);
    if qdcount != 1
        || !p
            .get(12..12 + question.len())?
            .eq_ignore_ascii_case(question)
    {
        return None;
    }
    if rcode == 3 {
        return Some(Vec::new());
    }
    if rcode != 0 {
        return None;
    }
    let mut at = 12 + question.len();
    let mut ips = Vec::new();
    for _ in 0..ancount {
        at = skip_name(p, at)?;
        let fixed = p.get(at..at + 10)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let class = u16::from_be_bytes([fixed[2], fixed[3]]);
        let len = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        at += 10;
        let data = p.get(at..at + len)?;
        at += len;
        if class != CLASS_IN {
            continue;
        }
        match (rtype, data.len()) {
            (TYPE_A, 4) => ips.push(IpAddr::from(<[u8; 4]>::try_from(data).ok()?)),
            (TYPE_AAAA, 16) => ips.push(IpAddr::from(<[u8; 16]>::try_from(data).ok()?)),
            _ => {}
        }
    }
    Some(ips)
}

/// The offset after a (possibly compressed) name starting at `at`.
fn skip_name(p: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *p.get(at)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Some(at + 1),
            0x00 => at += 1 + usize::from(len),
            // A pointer ends the name here (where it points does not matter for skipping).
            0xc0 => {
                p.get(at + 1)?;
                return Some(at + 2);
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "testserver")]
    #[tokio::test]
    async fn resolves_through_the_given_server() {
        let v4: IpAddr = "127.0.0.7".parse().unwrap();
        let v6: IpAddr = "::1".parse().unwrap();
        let dns = crate::testserver::dns_server("frps.example.test", vec![v4, v6])
            .await
            .unwrap();
        let got = resolve(dns, "FRPS.example.test.", 7000).await.unwrap();
        assert_eq!(
            got,
            vec![SocketAddr::new(v4, 7000), SocketAddr::new(v6, 7000)]
        );
        let e = resolve(dns, "other.test", 1).await.unwrap_err();
        assert!(e.to_string().contains("no such host"), "{e}");
        // An IP literal needs no server.
        let got = resolve(dns, "10.1.2.3", 5).await.unwrap();
        assert_eq!(got, vec!["10.1.2.3:5".parse().unwrap()]);
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let e = resolve_with(addr, "x.test", 1, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(query("a..b", TYPE_A).is_err());
        assert!(query(&"a".repeat(64), TYPE_A).is_err());
        assert!(query(&"a.".repeat(130), TYPE_A).is_err());
    }

    #[test]
    fn answers_are_checked() {
        let (q, id) = query("h.test", TYPE_A).unwrap();
        let question = &q[12..];
        let mut r = q.clone();
        r[2] = 0x81;
        r[3] = 0x80;
        r[7] = 1;
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]);
        assert_eq!(
            parse_answer(&r, id, question),
            Some(vec![IpAddr::from([1, 2, 3, 4])])
        );
        // Wrong id, not a response, other question, truncated: not this answer.
        assert_eq!(parse_answer(&r, id.wrapping_add(1), question), None);
        let mut not_resp = r.clone();
        not_resp[2] = 0x01;
        assert_eq!(parse_answer(&not_resp, id, question), None);
        let (other, _) = query("x.test", TYPE_A).unwrap();
        assert_eq!(parse_answer(&r, id, &other[12..]), None);
        for cut in 0..r.len() {
            let _ = parse_answer(&r[..cut], id, question);
        }
        assert_eq!(parse_answer(&r[..r.len() - 1], id, question), None);
        // A label length with the reserved bits set is malformed.
        let mut bad = r.clone();
        let at = 12 + question.len();
        bad[at] = 0x80;
        assert_eq!(parse_answer(&bad, id, question), None);
    }
}
