//! Token authentication.
//!
//! frp's token method proves knowledge of the shared token without sending it:
//! `privilege_key = lowercase hex(md5(token ‖ decimal timestamp))`, plain concatenation. frps
//! recomputes it and never checks the timestamp's age (so keep TLS on: a captured Login replays).

use md5::{Digest, Md5};

/// Lowercase hex of `md5(token + timestamp)`, as sent in Login, and in Ping / NewWorkConn when
/// the matching auth scope is enabled.
pub fn privilege_key(token: &str, timestamp: i64) -> String {
    let mut hasher = Md5::new();
    hasher.update(token.as_bytes());
    hasher.update(timestamp.to_string().as_bytes());
    to_hex(&hasher.finalize())
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

/// Compares two keys in time independent of where they differ, as frps does, so a server built
/// on this crate does not leak how much of a guessed key was right.
pub fn keys_match(a: &str, b: &str) -> bool {
    bytes_match(a.as_bytes(), b.as_bytes())
}

/// [`keys_match`] for secrets that are bytes, not text (credentials read off a socket).
pub fn bytes_match(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_vectors() {
        assert_eq!(
            privilege_key("abc", 1_700_000_000),
            "22bd6333f840eeeee03ad14f75fd96ac"
        );
        assert_eq!(
            privilege_key("", 1_700_000_000),
            "24920decf83f6960b80f737a28eeafc1"
        );
    }

    #[test]
    fn constant_time_compare() {
        assert!(keys_match("abc", "abc"));
        assert!(!keys_match("abc", "abd"));
        assert!(!keys_match("abc", "ab"));
    }
}
