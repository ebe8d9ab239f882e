//! Our TLS ClientHello has the shape Go frpc's has in the reference captures
//! (`vectors/frp-0.66.0/tls-clienthello*`): a plain 0x16 record (no 0x17 prefix unless asked),
//! SNI only for host names, and no ALPN.

use expose::frp::{Client, ClientConfig, ProxyConfig};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// Extensions of a ClientHello record: (type, body).
fn extensions(record: &[u8]) -> Vec<(u16, Vec<u8>)> {
    // record header (5) + handshake header (4) + version (2) + random (32)
    let mut i = 5 + 4 + 2 + 32;
    let sid = record[i] as usize;
    i += 1 + sid;
    let suites = u16::from_be_bytes([record[i], record[i + 1]]) as usize;
    i += 2 + suites;
    let comp = record[i] as usize;
    i += 1 + comp;
    let total = u16::from_be_bytes([record[i], record[i + 1]]) as usize;
    i += 2;
    let end = i + total;
    let mut out = Vec::new();
    while i + 4 <= end {
        let ty = u16::from_be_bytes([record[i], record[i + 1]]);
        let len = u16::from_be_bytes([record[i + 2], record[i + 3]]) as usize;
        out.push((ty, record[i + 4..i + 4 + len].to_vec()));
        i += 4 + len;
    }
    out
}

/// Starts a client towards a listener that records the first bytes, and returns them.
async fn first_bytes(host: &str, custom_first_byte: bool) -> Vec<u8> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut cfg = ClientConfig::new(host, port, "t").proxy(ProxyConfig::tcp("x", 9, 0));
    cfg.tls.custom_first_byte = custom_first_byte;
    let client = Client::start(cfg).unwrap();
    let (mut s, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut buf = vec![0u8; 16 * 1024];
    let mut got = 0;
    // Read until the whole first record (and the prefix byte) is in.
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf[got..]))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        got += n;
        let off = usize::from(custom_first_byte);
        if got >= off + 5 {
            let len = u16::from_be_bytes([buf[off + 3], buf[off + 4]]) as usize;
            if got >= off + 5 + len {
                break;
            }
        }
    }
    drop(client);
    buf.truncate(got);
    buf
}

fn sni(exts: &[(u16, Vec<u8>)]) -> Option<String> {
    exts.iter().find(|(t, _)| *t == 0).map(|(_, body)| {
        // list length (2), name type (1), name length (2), name
        let len = u16::from_be_bytes([body[3], body[4]]) as usize;
        String::from_utf8(body[5..5 + len].to_vec()).unwrap()
    })
}

#[tokio::test]
async fn host_name_gets_sni_and_no_alpn() {
    let bytes = first_bytes("localhost", false).await;
    assert_eq!(
        bytes[0], 0x16,
        "a plain TLS handshake record, no prefix byte"
    );
    let exts = extensions(&bytes);
    assert_eq!(sni(&exts).as_deref(), Some("localhost"));
    assert!(exts.iter().all(|(t, _)| *t != 16), "no ALPN extension");
    assert!(
        exts.iter().any(|(t, _)| *t == 43),
        "supported_versions (TLS 1.3)"
    );
}

#[tokio::test]
async fn ip_literal_gets_no_sni() {
    let bytes = first_bytes("127.0.0.1", false).await;
    assert_eq!(bytes[0], 0x16);
    assert_eq!(sni(&extensions(&bytes)), None);
}

#[tokio::test]
async fn custom_first_byte_precedes_the_client_hello() {
    let bytes = first_bytes("127.0.0.1", true).await;
    assert_eq!(bytes[0], 0x17);
    assert_eq!(bytes[1], 0x16);
}
