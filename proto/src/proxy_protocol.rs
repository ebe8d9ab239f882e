//! The PROXY protocol header (HAProxy's, versions 1 and 2) that a proxy with
//! `proxyProtocolVersion` writes to its local service before any payload, so the service sees
//! the visitor's address instead of the client's.
//!
//! frpc builds it from `StartWorkConn`'s `src_addr:src_port` (the visitor) and
//! `dst_addr:dst_port` (the frps listener) with these rules, which [`for_work_conn`] keeps:
//! - no header at all when `src_addr` is empty or `src_port` is 0 (frps sent no visitor);
//! - an empty `dst_addr` stands for `127.0.0.1`;
//! - the family comes from the source address: IPv4 (or IPv4-mapped IPv6) gives `TCP4`, any
//!   other IPv6 gives `TCP6`. A `TCP4` header with an IPv6 destination cannot be written: the
//!   work connection is closed instead. A `TCP6` header carries an IPv4 destination in its
//!   IPv4-mapped form (printed as a dotted quad in version 1, as Go prints it).
//!
//! The header is built into a fixed buffer: no allocation per connection.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The 12-byte signature that starts every version 2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The longest version 1 line the specification allows, CRLF included.
pub const V1_MAX_LEN: usize = 107;

/// Longest header this module writes (a version 1 `TCP6` line).
const MAX_LEN: usize = V1_MAX_LEN;

/// Which version of the header to write (frp's `v1` or `v2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// The human-readable line, `PROXY TCP4 src dst sport dport\r\n`.
    V1,
    /// The binary form.
    V2,
}

impl Version {
    /// frp's config value: `"v1"` or `"v2"`; anything else is `None`.
    pub fn from_config(value: &str) -> Option<Version> {
        match value {
            "v1" => Some(Version::V1),
            "v2" => Some(Version::V2),
            _ => None,
        }
    }
}

/// Why no header could be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// An address that is not an IP literal (frps always sends literals).
    #[error("invalid address {0:?}")]
    InvalidAddress(String),
    /// An IPv4 source with an IPv6 destination: no header family holds both.
    #[error("invalid address: IPv4 source {src} with IPv6 destination {dst}")]
    MixedFamilies {
        /// The source address.
        src: IpAddr,
        /// The destination address.
        dst: IpAddr,
    },
}

/// A built header, ready to be written before the payload.
#[derive(Clone, Copy)]
pub struct Header {
    buf: [u8; MAX_LEN],
    len: usize,
}

impl Header {
    /// The header's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header")
            .field("bytes", &self.as_bytes())
            .finish()
    }
}

/// Appends to the fixed buffer; the caller keeps writes within [`MAX_LEN`].
struct Cursor<'a> {
    buf: &'a mut [u8; MAX_LEN],
    len: usize,
}

impl Cursor<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        self.buf[self.len..end].copy_from_slice(bytes);
        self.len = end;
    }
}

impl fmt::Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.len + s.len() > MAX_LEN {
            return Err(fmt::Error);
        }
        self.put(s.as_bytes());
        Ok(())
    }
}

/// The IPv4 form of an IPv4 or IPv4-mapped IPv6 address (Go's `To4`).
fn to_v4(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    }
}

/// The 16-byte form (Go's `To16`): IPv4 becomes IPv4-mapped.
fn to_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// Writes an IP as Go's `net.IP.String` does: IPv4 and IPv4-mapped addresses as dotted quads,
/// other IPv6 addresses in RFC 5952 form.
fn write_ip(out: &mut Cursor<'_>, ip: IpAddr) -> fmt::Result {
    match to_v4(ip) {
        Some(v4) => write!(out, "{v4}"),
        None => write!(out, "{ip}"),
    }
}

/// The header for a TCP connection from `src` to `dst`.
pub fn build(version: Version, src: SocketAddr, dst: SocketAddr) -> Result<Header, HeaderError> {
    build_for(version, src, dst, true)
}

/// The header frpc puts before each datagram a udp or sudp proxy relays to its local service,
/// `src` being the user's address and `dst` the local service. Version 2 has the `DGRAM`
/// transport (otherwise the same rules as [`build`]); version 1 knows no UDP, so it is the
/// short `PROXY UNKNOWN\r\n` line, as frpc's PROXY protocol library writes it.
pub fn build_datagram(
    version: Version,
    src: SocketAddr,
    dst: SocketAddr,
) -> Result<Header, HeaderError> {
    build_for(version, src, dst, false)
}

fn build_for(
    version: Version,
    src: SocketAddr,
    dst: SocketAddr,
    stream: bool,
) -> Result<Header, HeaderError> {
    let mut buf = [0u8; MAX_LEN];
    let mut out = Cursor {
        buf: &mut buf,
        len: 0,
    };
    let src_v4 = to_v4(src.ip());
    let dst_v4 = to_v4(dst.ip());
    // The short version 1 datagram line carries no addresses, so any pair goes.
    let addresses = stream || version == Version::V2;
    if addresses && src_v4.is_some() && dst_v4.is_none() {
        return Err(HeaderError::MixedFamilies {
            src: src.ip(),
            dst: dst.ip(),
        });
    }
    match version {
        Version::V1 if !stream => out.put(b"PROXY UNKNOWN\r\n"),
        Version::V1 => {
            let family = if src_v4.is_some() { "TCP4" } else { "TCP6" };
            // At most 5 + 5 + 2 × 39 + 2 × 5 + 3 + 2 bytes: always fits.
            let written = write!(out, "PROXY {family} ")
                .and_then(|()| write_ip(&mut out, src.ip()))
                .and_then(|()| out.write_char(' '))
                .and_then(|()| write_ip(&mut out, dst.ip()))
                .and_then(|()| write!(out, " {} {}\r\n", src.port(), dst.port()));
            debug_assert!(written.is_ok());
        }
        Version::V2 => {
            out.put(&V2_SIGNATURE);
            // Version 2, command PROXY.
            out.put(&[0x21]);
            // Low nibble of the family byte: 1 STREAM, 2 DGRAM.
            let transport = if stream { 0x01 } else { 0x02 };
            match (src_v4, dst_v4) {
                (Some(s), Some(d)) => {
                    // AF_INET; 12 bytes of addresses and ports.
                    out.put(&[0x10 | transport, 0, 12]);
                    out.put(&s.octets());
                    out.put(&d.octets());
                }
                _ => {
                    // AF_INET6; 36 bytes of addresses and ports.
                    out.put(&[0x20 | transport, 0, 36]);
                    out.put(&to_v6(src.ip()).octets());
                    out.put(&to_v6(dst.ip()).octets());
                }
            }
            out.put(&src.port().to_be_bytes());
            out.put(&dst.port().to_be_bytes());
        }
    }
    let len = out.len;
    Ok(Header { buf, len })
}

/// Parses an IP literal as Go's resolver takes one: bare, or an IPv6 literal with a zone.
fn parse_ip(addr: &str) -> Result<IpAddr, HeaderError> {
    let bare = addr.split_once('%').map_or(addr, |(ip, _zone)| ip);
    bare.parse::<IpAddr>()
        .ok()
        .filter(|ip| ip.is_ipv6() || bare == addr)
        .ok_or_else(|| HeaderError::InvalidAddress(addr.to_owned()))
}

/// The header frpc writes for one work connection, from `StartWorkConn`'s fields: `None` when
/// frps named no visitor (`src_addr` empty or `src_port` 0).
pub fn for_work_conn(
    version: Version,
    src_addr: &str,
    src_port: u16,
    dst_addr: &str,
    dst_port: u16,
) -> Result<Option<Header>, HeaderError> {
    if src_addr.is_empty() || src_port == 0 {
        return Ok(None);
    }
    let dst_addr = if dst_addr.is_empty() {
        "127.0.0.1"
    } else {
        dst_addr
    };
    let src = SocketAddr::new(parse_ip(src_addr)?, src_port);
    let dst = SocketAddr::new(parse_ip(dst_addr)?, dst_port);
    build(version, src, dst).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v1_tcp4_is_the_specification_example() {
        let h = build(
            Version::V1,
            addr("192.168.0.1:56324"),
            addr("192.168.0.11:443"),
        )
        .unwrap();
        assert_eq!(
            h.as_bytes(),
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
        );
    }

    #[test]
    fn v1_tcp6_compresses_and_prints_a_mapped_destination_as_a_dotted_quad() {
        let h = build(
            Version::V1,
            addr("[2001:db8:0:0:1:0:0:1]:1234"),
            addr("[::1]:80"),
        )
        .unwrap();
        assert_eq!(
            h.as_bytes(),
            b"PROXY TCP6 2001:db8::1:0:0:1 ::1 1234 80\r\n"
        );
        let h = build(
            Version::V1,
            addr("[2001:db8::1]:1234"),
            addr("127.0.0.1:80"),
        )
        .unwrap();
        assert_eq!(
            h.as_bytes(),
            b"PROXY TCP6 2001:db8::1 127.0.0.1 1234 80\r\n"
        );
    }

    #[test]
    fn v1_longest_line_fits_the_specification_bound() {
        let a = "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe]:65535";
        let h = build(Version::V1, addr(a), addr(a)).unwrap();
        assert_eq!(h.as_bytes().len(), 104);
        assert!(h.as_bytes().len() <= V1_MAX_LEN);
    }

    #[test]
    fn v2_tcp4_is_byte_exact() {
        let h = build(Version::V2, addr("127.0.0.1:12345"), addr("10.0.0.1:80")).unwrap();
        let mut want = V2_SIGNATURE.to_vec();
        want.extend_from_slice(&[0x21, 0x11, 0x00, 0x0c]);
        want.extend_from_slice(&[127, 0, 0, 1, 10, 0, 0, 1]);
        want.extend_from_slice(&[0x30, 0x39, 0x00, 0x50]);
        assert_eq!(h.as_bytes(), &want[..]);
        assert_eq!(h.as_bytes().len(), 28);
    }

    #[test]
    fn v2_tcp6_is_byte_exact_with_a_mapped_destination() {
        let h = build(Version::V2, addr("[2001:db8::1]:443"), addr("1.2.3.4:8080")).unwrap();
        let mut want = V2_SIGNATURE.to_vec();
        want.extend_from_slice(&[0x21, 0x21, 0x00, 0x24]);
        want.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4]);
        want.extend_from_slice(&[0x01, 0xbb, 0x1f, 0x90]);
        assert_eq!(h.as_bytes(), &want[..]);
        assert_eq!(h.as_bytes().len(), 52);
    }

    #[test]
    fn v2_udp4_and_udp6_are_byte_exact() {
        let h = build_datagram(Version::V2, addr("127.0.0.1:12345"), addr("10.0.0.1:80")).unwrap();
        let mut want = V2_SIGNATURE.to_vec();
        want.extend_from_slice(&[0x21, 0x12, 0x00, 0x0c]);
        want.extend_from_slice(&[127, 0, 0, 1, 10, 0, 0, 1]);
        want.extend_from_slice(&[0x30, 0x39, 0x00, 0x50]);
        assert_eq!(h.as_bytes(), &want[..]);
        let h = build_datagram(Version::V2, addr("[2001:db8::1]:443"), addr("[::1]:53")).unwrap();
        assert_eq!(&h.as_bytes()[12..16], &[0x21, 0x22, 0x00, 0x24]);
        assert_eq!(h.as_bytes().len(), 52);
    }

    #[test]
    fn v1_udp_is_the_short_unknown_line() {
        for dst in ["10.0.0.1:80", "[::1]:53"] {
            let h = build_datagram(Version::V1, addr("1.2.3.4:5"), addr(dst)).unwrap();
            assert_eq!(h.as_bytes(), b"PROXY UNKNOWN\r\n");
        }
    }

    #[test]
    fn an_ipv4_mapped_source_is_tcp4() {
        let h = build(Version::V1, addr("[::ffff:1.2.3.4]:1"), addr("5.6.7.8:2")).unwrap();
        assert_eq!(h.as_bytes(), b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n");
    }

    #[test]
    fn an_ipv4_source_with_an_ipv6_destination_is_refused() {
        for v in [Version::V1, Version::V2] {
            let err = build(v, addr("1.2.3.4:1"), addr("[::1]:2")).unwrap_err();
            assert!(matches!(err, HeaderError::MixedFamilies { .. }));
        }
    }

    #[test]
    fn work_conn_rules_follow_frpc() {
        // No visitor: no header.
        assert!(for_work_conn(Version::V1, "", 1, "1.2.3.4", 2)
            .unwrap()
            .is_none());
        assert!(for_work_conn(Version::V2, "1.2.3.4", 0, "1.2.3.4", 2)
            .unwrap()
            .is_none());
        // No destination (an http vhost): 127.0.0.1 and port 0.
        let h = for_work_conn(Version::V1, "203.0.113.7", 5555, "", 0)
            .unwrap()
            .unwrap();
        assert_eq!(h.as_bytes(), b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 0\r\n");
        let h = for_work_conn(Version::V1, "fe80::1%eth0", 5, "::", 6)
            .unwrap()
            .unwrap();
        assert_eq!(h.as_bytes(), b"PROXY TCP6 fe80::1 :: 5 6\r\n");
        assert_eq!(
            for_work_conn(Version::V2, "example.com", 1, "", 0).unwrap_err(),
            HeaderError::InvalidAddress("example.com".into())
        );
        assert!(for_work_conn(Version::V2, "1.2.3.4%x", 1, "", 0).is_err());
    }

    #[test]
    fn config_values() {
        assert_eq!(Version::from_config("v1"), Some(Version::V1));
        assert_eq!(Version::from_config("v2"), Some(Version::V2));
        assert_eq!(Version::from_config("V2"), None);
    }
}
