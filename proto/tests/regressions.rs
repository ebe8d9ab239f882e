//! Regression tests for bugs found in `frp-proto` while writing the vector and property tests.
//! Each test names the bug it pins down, so a reader can tell why such a specific input exists.

use bytes::BytesMut;
use frp_proto::compress::{CompressError, Decompressor, STREAM_IDENTIFIER};
use frp_proto::frame::{encode_to_vec, HEADER_LEN};
use frp_proto::msg::CloseProxy;

/// A compressed chunk whose snappy block announces 5 bytes and then breaks off: the length
/// preamble decodes, the block does not.
fn stream_with_corrupt_block() -> Vec<u8> {
    let block = [0x05, 0x00]; // varint length 5, then a literal tag with its byte missing
    let mut wire = STREAM_IDENTIFIER.to_vec();
    wire.push(0x00); // compressed data chunk
    wire.extend_from_slice(&((4 + block.len()) as u32).to_le_bytes()[..3]);
    wire.extend_from_slice(&[0; 4]); // CRC; never reached
    wire.extend_from_slice(&block);
    wire
}

/// Bug: on a snappy block that failed to decode, `Decompressor::decompress` returned
/// `Err(Corrupt)` but left the zero-filled space it had reserved for the block in `out`
/// (the checksum failure path already truncated). A caller that forwards `out` before looking
/// at the error would have sent bytes that were never data.
#[test]
fn corrupt_snappy_block_leaves_no_bytes_in_the_output() {
    let mut out = BytesMut::from(&b"earlier data"[..]);
    let result = Decompressor::new().decompress(&stream_with_corrupt_block(), &mut out);
    assert_eq!(result, Err(CompressError::Corrupt));
    assert_eq!(&out[..], b"earlier data");
}

/// Bug: Go 1.22 changed `encoding/json` to write backspace and form feed as `\b` and `\f`
/// (before: `\u0008`, `\u000c`). frp 0.66.0 is built with a newer Go (its ClientHello offers
/// X25519MLKEM768, a Go 1.24 default), so matching it byte for byte needs the short forms.
#[test]
fn backspace_and_form_feed_are_escaped_as_go_does() {
    let bytes = encode_to_vec(
        &CloseProxy {
            proxy_name: "a\u{8}b\u{c}c\u{1}d".into(),
        }
        .into(),
    )
    .unwrap();
    assert_eq!(
        std::str::from_utf8(&bytes[HEADER_LEN..]).unwrap(),
        r#"{"proxy_name":"a\bb\fc\u0001d"}"#
    );
}

/// Go's `net.UDPAddr` has no `omitempty` tags: an address is written with all three fields.
#[test]
fn udp_addresses_keep_every_field_like_go() {
    use frp_proto::msg::{UdpAddr, UdpPacket};
    let pkt = UdpPacket {
        content: "aGk=".into(),
        local_addr: Some(UdpAddr {
            ip: "1.2.3.4".into(),
            port: 53,
            zone: String::new(),
        }),
        remote_addr: None,
    };
    let bytes = frp_proto::frame::encode_to_vec(&pkt.into()).unwrap();
    assert_eq!(
        &bytes[9..],
        br#"{"c":"aGk=","l":{"IP":"1.2.3.4","Port":53,"Zone":""}}"#
    );
}
