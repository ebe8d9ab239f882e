//! The STUN binding exchange frpc's NAT discovery uses (RFC 5389, with the RFC 3489 and 5780
//! attributes that name a second server address).
//!
//! frpc sends a bare Binding Request (no attributes) to `natHoleStunServer`, reads the
//! answer's XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS) as its public address, and when the answer
//! names another server address (OTHER-ADDRESS or CHANGED-ADDRESS) asks that one too: two
//! public addresses are needed to tell an easy NAT from a hard one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The fixed cookie of every RFC 5389 message.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Length of a STUN header.
pub const HEADER_LEN: usize = 20;
/// Binding Request.
pub const BINDING_REQUEST: u16 = 0x0001;
/// Binding Success Response.
pub const BINDING_SUCCESS: u16 = 0x0101;

const ATTR_MAPPED_ADDRESS: u16 = 0x0001;
const ATTR_CHANGED_ADDRESS: u16 = 0x0005;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
const ATTR_OTHER_ADDRESS: u16 = 0x802C;

/// A transaction id: 12 bytes the caller picks at random.
pub type TransactionId = [u8; 12];

/// What a binding answer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindingAnswer {
    /// Our address as the server saw it.
    pub mapped: Option<SocketAddr>,
    /// The server's other address, to ask a second time.
    pub other: Option<SocketAddr>,
}

/// Why a datagram is not a usable STUN message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StunError {
    /// Shorter than its header or its declared length.
    #[error("stun message truncated")]
    Truncated,
    /// Not an RFC 5389 message.
    #[error("not a stun message")]
    NotStun,
}

/// A bare Binding Request, as frpc sends it.
pub fn binding_request(id: &TransactionId) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[0..2].copy_from_slice(&BINDING_REQUEST.to_be_bytes());
    out[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    out[8..20].copy_from_slice(id);
    out
}

/// Header fields of a message: its type and transaction id, and its attribute bytes.
pub fn parse_header(data: &[u8]) -> Result<(u16, TransactionId, &[u8]), StunError> {
    if data.len() < HEADER_LEN {
        return Err(StunError::Truncated);
    }
    let ty = u16::from_be_bytes([data[0], data[1]]);
    let len = usize::from(u16::from_be_bytes([data[2], data[3]]));
    if ty & 0xC000 != 0 || data[4..8] != MAGIC_COOKIE.to_be_bytes() {
        return Err(StunError::NotStun);
    }
    let body = data
        .get(HEADER_LEN..HEADER_LEN + len)
        .ok_or(StunError::Truncated)?;
    let mut id = [0u8; 12];
    id.copy_from_slice(&data[8..20]);
    Ok((ty, id, body))
}

/// Reads a Binding answer. XOR-MAPPED-ADDRESS wins over MAPPED-ADDRESS and OTHER-ADDRESS over
/// CHANGED-ADDRESS, as in frpc; attributes that do not parse are ignored.
pub fn parse_binding_answer(data: &[u8]) -> Result<(TransactionId, BindingAnswer), StunError> {
    let (_, id, mut attrs) = parse_header(data)?;
    let mut answer = BindingAnswer {
        mapped: None,
        other: None,
    };
    let (mut plain, mut xor, mut changed, mut other) = (None, None, None, None);
    while attrs.len() >= 4 {
        let ty = u16::from_be_bytes([attrs[0], attrs[1]]);
        let len = usize::from(u16::from_be_bytes([attrs[2], attrs[3]]));
        let Some(value) = attrs.get(4..4 + len) else {
            break;
        };
        match ty {
            ATTR_MAPPED_ADDRESS => plain = plain.or(address(value, None)),
            ATTR_XOR_MAPPED_ADDRESS => xor = xor.or(address(value, Some(&id))),
            ATTR_CHANGED_ADDRESS => changed = changed.or(address(value, None)),
            ATTR_OTHER_ADDRESS => other = other.or(address(value, None)),
            _ => {}
        }
        let padded = (4 + len + 3) & !3;
        attrs = attrs.get(padded..).unwrap_or(&[]);
    }
    answer.mapped = xor.or(plain);
    answer.other = other.or(changed);
    Ok((id, answer))
}

/// One address attribute: `0, family, port, address`, XORed when `xor_id` is given.
fn address(value: &[u8], xor_id: Option<&TransactionId>) -> Option<SocketAddr> {
    let (family, rest) = (value.get(1)?, value.get(2..)?);
    let mut port = u16::from_be_bytes([*rest.first()?, *rest.get(1)?]);
    let raw = rest.get(2..)?;
    let mut mask = [0u8; 16];
    mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    if let Some(id) = xor_id {
        port ^= (MAGIC_COOKIE >> 16) as u16;
        mask[4..].copy_from_slice(id);
    } else {
        mask = [0; 16];
    }
    let ip = match (family, raw.len()) {
        (1, 4) => {
            let mut b = [0u8; 4];
            for (i, o) in b.iter_mut().enumerate() {
                *o = raw[i] ^ mask[i];
            }
            IpAddr::V4(Ipv4Addr::from(b))
        }
        (2, 16) => {
            let mut b = [0u8; 16];
            for (i, o) in b.iter_mut().enumerate() {
                *o = raw[i] ^ mask[i];
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// A Binding Success answer naming `mapped` (as XOR-MAPPED-ADDRESS) and, if given, the
/// server's second address (OTHER-ADDRESS): what a STUN server sends, for test servers.
pub fn binding_success(
    id: &TransactionId,
    mapped: SocketAddr,
    other: Option<SocketAddr>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&BINDING_SUCCESS.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    out.extend_from_slice(id);
    put_address(&mut out, ATTR_XOR_MAPPED_ADDRESS, mapped, Some(id));
    if let Some(other) = other {
        put_address(&mut out, ATTR_OTHER_ADDRESS, other, None);
    }
    let len = (out.len() - HEADER_LEN) as u16;
    out[2..4].copy_from_slice(&len.to_be_bytes());
    out
}

fn put_address(out: &mut Vec<u8>, ty: u16, addr: SocketAddr, xor_id: Option<&TransactionId>) {
    let mut mask = [0u8; 16];
    let mut port = addr.port();
    if let Some(id) = xor_id {
        mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        mask[4..].copy_from_slice(id);
        port ^= (MAGIC_COOKIE >> 16) as u16;
    }
    let (family, ip): (u8, Vec<u8>) = match addr.ip() {
        IpAddr::V4(v4) => (1, v4.octets().to_vec()),
        IpAddr::V6(v6) => (2, v6.octets().to_vec()),
    };
    out.extend_from_slice(&ty.to_be_bytes());
    out.extend_from_slice(&((4 + ip.len()) as u16).to_be_bytes());
    out.extend_from_slice(&[0, family]);
    out.extend_from_slice(&port.to_be_bytes());
    out.extend(ip.iter().zip(mask.iter()).map(|(b, m)| b ^ m));
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: TransactionId = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

    #[test]
    fn request_layout() {
        let r = binding_request(&ID);
        assert_eq!(&r[..8], &[0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42]);
        assert_eq!(&r[8..], &ID);
        let (ty, id, body) = parse_header(&r).unwrap();
        assert_eq!((ty, id, body.len()), (BINDING_REQUEST, ID, 0));
    }

    #[test]
    fn xor_mapped_ipv4_by_hand() {
        // 192.0.2.1:32853 XORed with the cookie: port 0x8055 ^ 0x2112 = 0xA147, address
        // c0000201 ^ 2112a442 = e112a643. Before it an unknown attribute of odd length (padded),
        // after it a MAPPED-ADDRESS that must lose against the XOR one.
        let mut data = vec![0x01, 0x01, 0, 0, 0x21, 0x12, 0xA4, 0x42];
        data.extend_from_slice(&ID);
        data.extend_from_slice(&[0x80, 0x22, 0, 3, b'a', b'b', b'c', 0]);
        data.extend_from_slice(&[0, 0x20, 0, 8, 0, 1, 0xA1, 0x47, 0xE1, 0x12, 0xA6, 0x43]);
        data.extend_from_slice(&[0, 0x01, 0, 8, 0, 1, 0, 80, 10, 0, 0, 1]);
        let len = (data.len() - HEADER_LEN) as u16;
        data[2..4].copy_from_slice(&len.to_be_bytes());
        let (id, answer) = parse_binding_answer(&data).unwrap();
        assert_eq!(id, ID);
        assert_eq!(answer.mapped, Some("192.0.2.1:32853".parse().unwrap()));
        assert_eq!(answer.other, None);
    }

    #[test]
    fn success_round_trip() {
        for (mapped, other) in [
            ("203.0.113.7:4000", Some("198.51.100.2:3479")),
            ("[2001:db8::1]:9", None),
        ] {
            let mapped: SocketAddr = mapped.parse().unwrap();
            let other = other.map(|o| o.parse().unwrap());
            let data = binding_success(&ID, mapped, other);
            let (id, answer) = parse_binding_answer(&data).unwrap();
            assert_eq!(id, ID);
            assert_eq!(
                answer,
                BindingAnswer {
                    mapped: Some(mapped),
                    other
                }
            );
        }
    }

    #[test]
    fn garbage_never_panics() {
        assert_eq!(parse_binding_answer(&[0; 5]), Err(StunError::Truncated));
        assert_eq!(parse_binding_answer(&[0xff; 40]), Err(StunError::NotStun));
        let mut data = binding_success(&ID, "1.2.3.4:5".parse().unwrap(), None);
        data[3] = 200; // declared longer than it is
        assert_eq!(parse_binding_answer(&data), Err(StunError::Truncated));
        for cut in 0..data.len() {
            let mut d = binding_success(&ID, "1.2.3.4:5".parse().unwrap(), None);
            d.truncate(cut);
            let _ = parse_binding_answer(&d);
        }
    }
}
