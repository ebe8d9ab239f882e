//! Property tests: every codec in the crate either round-trips or fails cleanly, whatever the
//! message contents and wherever the reads are cut.
//!
//! The runtime feeds these codecs straight from sockets, so two properties matter most: no peer
//! bytes can make them panic, and the result never depends on how the bytes were chunked. Case
//! counts are kept modest so the file runs in a few seconds in the test profile; the vector
//! tests cover the exact bytes, these cover the space around them.

use bytes::BytesMut;
use frp_proto::compress::{
    CompressError, Compressor, Decompressor, MAX_BLOCK_LEN, STREAM_IDENTIFIER,
};
use frp_proto::crypto::{Decryptor, Encryptor, Key, BLOCK_LEN};
use frp_proto::frame::{complete_frame_len, encode_to_vec, FrameError, HEADER_LEN, MAX_BODY_LEN};
use frp_proto::msg::*;
use frp_proto::pipeline::{Opener, Pipe, Sealer, MAX_BUFFERED};
use frp_proto::{decode_frame, Message};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::{select, Index};

/// Cases per property: enough to reach the odd corners (escapes, empty fields, cuts inside
/// headers) while keeping the whole file to a few seconds in the test profile.
const CASES: u32 = 64;

/// Explicit case counts per property: the default 256 would make the file slow for little gain.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

// ------------------------------------------------------------------------------------------
// Generators
// ------------------------------------------------------------------------------------------

/// Field text: plain identifiers most of the time, but also everything Go's encoder treats
/// specially (`<>&`, quotes, backslashes, control characters, U+2028/9) and arbitrary Unicode.
/// Lengths stay small so a message fits the 10 240-byte limit almost always.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9._:-]{0,12}",
        3 => "[<>&\"\\\\/ a-c\\t\\n\\r\\x00-\\x1f\\x7f\\x{2028}\\x{2029}é漢🦀]{0,10}",
        3 => "(?s).{0,12}",
    ]
}

/// Maps as Go sends them (string to string); small, so the body stays under the limit.
fn map() -> impl Strategy<Value = StringMap> {
    btree_map(text(), text(), 0..3)
}

/// Lists of text, small for the same reason.
fn list() -> impl Strategy<Value = Vec<String>> {
    vec(text(), 0..3)
}

/// Any `client_spec`; the always-present struct field must survive even when it is all default.
fn client_spec() -> impl Strategy<Value = ClientSpec> {
    (text(), any::<bool>()).prop_map(|(kind, always_auth_pass)| ClientSpec {
        kind,
        always_auth_pass,
    })
}

/// Login has 12 fields, past proptest's tuple limit in one go, hence the nested tuples.
fn login() -> impl Strategy<Value = Login> {
    (
        (text(), text(), text(), text(), text(), text()),
        (
            any::<i64>(),
            text(),
            text(),
            map(),
            client_spec(),
            any::<i64>(),
        ),
    )
        .prop_map(
            |(
                (version, hostname, os, arch, user, privilege_key),
                (timestamp, run_id, client_id, metas, client_spec, pool_count),
            )| Login {
                version,
                hostname,
                os,
                arch,
                user,
                privilege_key,
                timestamp,
                run_id,
                client_id,
                metas,
                client_spec,
                pool_count,
            },
        )
}

/// NewProxy, the largest message: 23 fields in four tuples.
fn new_proxy() -> impl Strategy<Value = NewProxy> {
    (
        (text(), text(), any::<bool>(), any::<bool>(), text(), text()),
        (text(), text(), map(), map(), any::<i64>(), list()),
        (text(), list(), text(), text(), text(), map()),
        (map(), text(), text(), list(), text()),
    )
        .prop_map(
            |(
                (
                    proxy_name,
                    proxy_type,
                    use_encryption,
                    use_compression,
                    bandwidth_limit,
                    bandwidth_limit_mode,
                ),
                (group, group_key, metas, annotations, remote_port, custom_domains),
                (subdomain, locations, http_user, http_pwd, host_header_rewrite, headers),
                (response_headers, route_by_http_user, sk, allow_users, multiplexer),
            )| NewProxy {
                proxy_name,
                proxy_type,
                use_encryption,
                use_compression,
                bandwidth_limit,
                bandwidth_limit_mode,
                group,
                group_key,
                metas,
                annotations,
                remote_port,
                custom_domains,
                subdomain,
                locations,
                http_user,
                http_pwd,
                host_header_rewrite,
                headers,
                response_headers,
                route_by_http_user,
                sk,
                allow_users,
                multiplexer,
            },
        )
}

/// UDP addresses are optional pointers in Go; both the absent and the present case must survive.
fn udp_addr() -> impl Strategy<Value = Option<UdpAddr>> {
    proptest::option::of(
        (text(), any::<i64>(), text()).prop_map(|(ip, port, zone)| UdpAddr { ip, port, zone }),
    )
}

/// The nested, always-present struct of NatHoleResp.
fn detect_behavior() -> impl Strategy<Value = NatHoleDetectBehavior> {
    let ports = vec(
        (any::<i64>(), any::<i64>()).prop_map(|(from, to)| PortsRange { from, to }),
        0..3,
    );
    (
        text(),
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        ports,
        any::<i64>(),
        any::<i64>(),
    )
        .prop_map(
            |(
                role,
                mode,
                ttl,
                send_delay_ms,
                read_timeout_ms,
                candidate_ports,
                send_random_ports,
                listen_random_ports,
            )| {
                NatHoleDetectBehavior {
                    role,
                    mode,
                    ttl,
                    send_delay_ms,
                    read_timeout_ms,
                    candidate_ports,
                    send_random_ports,
                    listen_random_ports,
                }
            },
        )
}

/// Arbitrary messages of one type. The match is exhaustive over [`MessageType`], so a new
/// message type cannot be added to the crate without a generator here.
fn message_of(ty: MessageType) -> BoxedStrategy<Message> {
    match ty {
        MessageType::Login => login().prop_map(Message::from).boxed(),
        MessageType::LoginResp => (text(), text(), text())
            .prop_map(|(version, run_id, error)| {
                LoginResp {
                    version,
                    run_id,
                    error,
                }
                .into()
            })
            .boxed(),
        MessageType::NewProxy => new_proxy().prop_map(Message::from).boxed(),
        MessageType::NewProxyResp => (text(), text(), text())
            .prop_map(|(proxy_name, remote_addr, error)| {
                NewProxyResp {
                    proxy_name,
                    remote_addr,
                    error,
                }
                .into()
            })
            .boxed(),
        MessageType::CloseProxy => text()
            .prop_map(|proxy_name| CloseProxy { proxy_name }.into())
            .boxed(),
        MessageType::NewWorkConn => (text(), text(), any::<i64>())
            .prop_map(|(run_id, privilege_key, timestamp)| {
                NewWorkConn {
                    run_id,
                    privilege_key,
                    timestamp,
                }
                .into()
            })
            .boxed(),
        MessageType::ReqWorkConn => Just(ReqWorkConn {}.into()).boxed(),
        MessageType::StartWorkConn => (text(), text(), text(), any::<u16>(), any::<u16>(), text())
            .prop_map(
                |(proxy_name, src_addr, dst_addr, src_port, dst_port, error)| {
                    StartWorkConn {
                        proxy_name,
                        src_addr,
                        dst_addr,
                        src_port,
                        dst_port,
                        error,
                    }
                    .into()
                },
            )
            .boxed(),
        MessageType::NewVisitorConn => (
            text(),
            text(),
            text(),
            any::<i64>(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(run_id, proxy_name, sign_key, timestamp, use_encryption, use_compression)| {
                    NewVisitorConn {
                        run_id,
                        proxy_name,
                        sign_key,
                        timestamp,
                        use_encryption,
                        use_compression,
                    }
                    .into()
                },
            )
            .boxed(),
        MessageType::NewVisitorConnResp => (text(), text())
            .prop_map(|(proxy_name, error)| NewVisitorConnResp { proxy_name, error }.into())
            .boxed(),
        MessageType::Ping => (text(), any::<i64>())
            .prop_map(|(privilege_key, timestamp)| {
                Ping {
                    privilege_key,
                    timestamp,
                }
                .into()
            })
            .boxed(),
        MessageType::Pong => text().prop_map(|error| Pong { error }.into()).boxed(),
        MessageType::UdpPacket => (text(), udp_addr(), udp_addr())
            .prop_map(|(content, local_addr, remote_addr)| {
                UdpPacket {
                    content,
                    local_addr,
                    remote_addr,
                }
                .into()
            })
            .boxed(),
        MessageType::NatHoleVisitor => (
            text(),
            text(),
            any::<bool>(),
            text(),
            text(),
            any::<i64>(),
            list(),
            list(),
        )
            .prop_map(
                |(
                    transaction_id,
                    proxy_name,
                    pre_check,
                    protocol,
                    sign_key,
                    timestamp,
                    mapped_addrs,
                    assisted_addrs,
                )| {
                    NatHoleVisitor {
                        transaction_id,
                        proxy_name,
                        pre_check,
                        protocol,
                        sign_key,
                        timestamp,
                        mapped_addrs,
                        assisted_addrs,
                    }
                    .into()
                },
            )
            .boxed(),
        MessageType::NatHoleClient => (text(), text(), text(), list(), list())
            .prop_map(
                |(transaction_id, proxy_name, sid, mapped_addrs, assisted_addrs)| {
                    NatHoleClient {
                        transaction_id,
                        proxy_name,
                        sid,
                        mapped_addrs,
                        assisted_addrs,
                    }
                    .into()
                },
            )
            .boxed(),
        MessageType::NatHoleResp => (
            text(),
            text(),
            text(),
            list(),
            list(),
            detect_behavior(),
            text(),
        )
            .prop_map(
                |(
                    transaction_id,
                    sid,
                    protocol,
                    candidate_addrs,
                    assisted_addrs,
                    detect_behavior,
                    error,
                )| {
                    NatHoleResp {
                        transaction_id,
                        sid,
                        protocol,
                        candidate_addrs,
                        assisted_addrs,
                        detect_behavior,
                        error,
                    }
                    .into()
                },
            )
            .boxed(),
        MessageType::NatHoleSid => (text(), text(), any::<bool>(), text())
            .prop_map(|(transaction_id, sid, response, nonce)| {
                NatHoleSid {
                    transaction_id,
                    sid,
                    response,
                    nonce,
                }
                .into()
            })
            .boxed(),
        MessageType::NatHoleReport => (text(), any::<bool>())
            .prop_map(|(sid, success)| NatHoleReport { sid, success }.into())
            .boxed(),
    }
}

/// A message of a random type, for the properties about streams of frames.
fn any_message() -> impl Strategy<Value = Message> {
    select(MessageType::ALL.to_vec()).prop_flat_map(message_of)
}

/// Read or write sizes. Zero is included on purpose: an empty read must be a no-op.
fn sizes() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        3 => vec(0usize..48, 1..8),
        1 => vec(0usize..(2 * MAX_BLOCK_LEN), 1..4),
    ]
}

/// Cuts `data` into consecutive pieces whose sizes cycle through `sizes`.
fn cut<'a>(data: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    if sizes.iter().all(|&s| s == 0) {
        // Nothing would ever advance; still hand over one empty read before the data.
        return vec![&data[..0], data];
    }
    let mut pieces = Vec::new();
    let mut rest = data;
    for &size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

/// The wire bytes of several messages; any too long to send are left out, as a sender must.
fn encode_all(msgs: &[Message]) -> Vec<u8> {
    msgs.iter()
        .filter_map(|m| encode_to_vec(m).ok())
        .flatten()
        .collect()
}

// ------------------------------------------------------------------------------------------
// Messages and framing
// ------------------------------------------------------------------------------------------

/// Encodes `msg` and decodes it back, checking the frame against frp's format on the way.
fn assert_round_trip(msg: &Message) -> Result<(), TestCaseError> {
    let bytes = match encode_to_vec(msg) {
        Ok(bytes) => bytes,
        // Refusing is fine, but only for a body that really exceeds the limit.
        Err(FrameError::TooLong(n)) => {
            prop_assert!(n > MAX_BODY_LEN as u64);
            return Ok(());
        }
        Err(e) => return Err(TestCaseError::fail(format!("encode failed: {e}"))),
    };
    prop_assert_eq!(bytes[0], msg.message_type().byte());
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[1..HEADER_LEN]);
    let body = &bytes[HEADER_LEN..];
    prop_assert_eq!(i64::from_be_bytes(len), body.len() as i64);
    prop_assert!(body.len() <= MAX_BODY_LEN);

    // Go's `json.Marshal` output: compact JSON with HTML-sensitive characters escaped, so no
    // raw `<`, `>`, `&`, U+2028/U+2029 or control bytes can appear in a body.
    let body_text = std::str::from_utf8(body).expect("JSON is UTF-8");
    prop_assert!(
        !body_text.contains(['<', '>', '&', '\u{2028}', '\u{2029}']),
        "unescaped HTML-sensitive character in {}",
        body_text
    );
    prop_assert!(
        !body.iter().any(|&b| b < 0x20),
        "raw control byte in {}",
        body_text
    );
    serde_json::from_slice::<serde_json::Value>(body).expect("body is JSON");

    prop_assert_eq!(complete_frame_len(&bytes).ok(), Some(Some(bytes.len())));
    let mut buf = BytesMut::from(&bytes[..]);
    let decoded = decode_frame(&mut buf)
        .expect("decodes")
        .expect("whole frame");
    prop_assert_eq!(&decoded, msg);
    prop_assert!(buf.is_empty(), "the frame is consumed exactly");
    Ok(())
}

/// One property per message type, so each of the 18 is exercised on every run.
macro_rules! round_trip_tests {
    ($($name:ident => $ty:ident,)*) => {
        proptest! {
            #![proptest_config(config(CASES))]
            $(
                #[test]
                fn $name(msg in message_of(MessageType::$ty)) {
                    assert_round_trip(&msg)?;
                }
            )*
        }

        #[test]
        fn every_message_type_has_a_round_trip_property() {
            let covered = [$(MessageType::$ty,)*];
            assert_eq!(covered.len(), MessageType::ALL.len());
            for ty in MessageType::ALL {
                assert!(covered.contains(&ty), "{} has no round-trip property", ty.name());
            }
        }
    };
}

round_trip_tests! {
    round_trip_login => Login,
    round_trip_login_resp => LoginResp,
    round_trip_new_proxy => NewProxy,
    round_trip_new_proxy_resp => NewProxyResp,
    round_trip_close_proxy => CloseProxy,
    round_trip_new_work_conn => NewWorkConn,
    round_trip_req_work_conn => ReqWorkConn,
    round_trip_start_work_conn => StartWorkConn,
    round_trip_new_visitor_conn => NewVisitorConn,
    round_trip_new_visitor_conn_resp => NewVisitorConnResp,
    round_trip_ping => Ping,
    round_trip_pong => Pong,
    round_trip_udp_packet => UdpPacket,
    round_trip_nat_hole_visitor => NatHoleVisitor,
    round_trip_nat_hole_client => NatHoleClient,
    round_trip_nat_hole_resp => NatHoleResp,
    round_trip_nat_hole_sid => NatHoleSid,
    round_trip_nat_hole_report => NatHoleReport,
}

/// What feeding a byte stream to the frame decoder produced.
#[derive(Debug, PartialEq)]
struct FrameOutcome {
    messages: Vec<Message>,
    /// The first error, as text (`FrameError` holds a `serde_json::Error`, which has no `Eq`).
    error: Option<String>,
    /// Bytes of an incomplete frame still buffered at the end. Not recorded after an error:
    /// how much lay behind the bad byte depends on where the read happened to end.
    left: usize,
}

/// Drives the decoder as the runtime does: append each read, take frames until it asks for
/// more, stop at the first error. Along the way, checks that `decode_frame` consumes nothing
/// unless it returns a frame, and agrees with `complete_frame_len`.
fn decode_stream(pieces: &[&[u8]]) -> FrameOutcome {
    let mut buf = BytesMut::new();
    let mut messages = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            let before = buf.len();
            let complete = complete_frame_len(&buf);
            match decode_frame(&mut buf) {
                Ok(Some(msg)) => {
                    let Ok(Some(n)) = complete else {
                        panic!("decoded a frame complete_frame_len called {complete:?}");
                    };
                    assert_eq!(before - buf.len(), n, "consumed exactly one frame");
                    messages.push(msg);
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before, "Ok(None) consumes nothing");
                    assert!(matches!(complete, Ok(None)), "{complete:?}");
                    break;
                }
                Err(e) => {
                    // Header errors show in both; a bad body only once the frame is complete.
                    match (&e, &complete) {
                        (FrameError::InvalidBody { .. }, Ok(Some(_))) | (_, Err(_)) => {}
                        _ => panic!("decode error {e} but complete_frame_len {complete:?}"),
                    }
                    return FrameOutcome {
                        messages,
                        error: Some(e.to_string()),
                        left: 0,
                    };
                }
            }
        }
    }
    FrameOutcome {
        messages,
        error: None,
        left: buf.len(),
    }
}

/// Inputs for the frame decoder: plain noise, headers near the limits with junk bodies, and
/// valid frame sequences with one byte changed.
fn frame_noise() -> impl Strategy<Value = Vec<u8>> {
    let type_byte = select(MessageType::ALL.to_vec()).prop_map(MessageType::byte);
    let length = prop_oneof![
        Just(-1i64),
        any::<i64>(),
        0i64..40,
        (MAX_BODY_LEN as i64 - 8)..(MAX_BODY_LEN as i64 + 8),
    ];
    prop_oneof![
        vec(any::<u8>(), 0..64),
        (type_byte, length, vec(any::<u8>(), 0..48)).prop_map(|(ty, len, body)| {
            let mut v = vec![ty];
            v.extend_from_slice(&len.to_be_bytes());
            v.extend_from_slice(&body);
            v
        }),
        (vec(any_message(), 1..4), any::<Index>(), any::<u8>()).prop_map(|(msgs, at, byte)| {
            let mut v = encode_all(&msgs);
            if !v.is_empty() {
                let i = at.index(v.len());
                v[i] = byte;
            }
            v
        }),
    ]
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn frames_decode_identically_on_any_chunking(
        msgs in vec(any_message(), 0..6),
        reads in sizes(),
    ) {
        let wire = encode_all(&msgs);
        let expected: Vec<Message> = msgs
            .into_iter()
            .filter(|m| encode_to_vec(m).is_ok())
            .collect();
        let outcome = decode_stream(&cut(&wire, &reads));
        prop_assert_eq!(outcome, FrameOutcome { messages: expected, error: None, left: 0 });
    }

    #[test]
    fn frame_decoder_never_panics_and_ignores_chunking(
        noise in frame_noise(),
        reads in sizes(),
    ) {
        let whole = decode_stream(&[&noise]);
        let chunked = decode_stream(&cut(&noise, &reads));
        prop_assert_eq!(chunked, whole);
    }

    /// The limit is on the body and is inclusive: a body of exactly 10 240 bytes is accepted.
    #[test]
    fn too_long_is_refused_exactly_past_the_limit(n in (MAX_BODY_LEN - 40)..(MAX_BODY_LEN + 8)) {
        let proxy_name = "a".repeat(n);
        let body = format!(r#"{{"proxy_name":"{proxy_name}"}}"#);
        match encode_to_vec(&CloseProxy { proxy_name }.into()) {
            Ok(bytes) => {
                prop_assert!(body.len() <= MAX_BODY_LEN);
                prop_assert_eq!(&bytes[HEADER_LEN..], body.as_bytes());
            }
            Err(FrameError::TooLong(got)) => {
                prop_assert!(body.len() > MAX_BODY_LEN);
                prop_assert_eq!(got, body.len() as u64);
            }
            Err(e) => return Err(TestCaseError::fail(e.to_string())),
        }
    }
}

// ------------------------------------------------------------------------------------------
// AES-128-CFB
// ------------------------------------------------------------------------------------------

/// Runs `wire` through a fresh decryptor in the given pieces, returning the plaintext.
fn decrypt_pieces(key: &Key, wire: &[u8], reads: &[usize]) -> (Vec<u8>, bool) {
    let mut dec = Decryptor::new(key);
    let mut out = Vec::new();
    for piece in cut(wire, reads) {
        let mut buf = piece.to_vec();
        out.extend_from_slice(dec.decrypt(&mut buf));
    }
    (out, dec.has_iv())
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn decryptor_inverts_encryptor_on_any_chunking(
        token in "(?s).{0,12}",
        iv in any::<[u8; BLOCK_LEN]>(),
        plain in vec(any::<u8>(), 0..600),
        writes in sizes(),
        reads in sizes(),
    ) {
        let key = Key::derive(&token);
        let mut enc = Encryptor::new(&key, iv);
        let mut wire = enc.take_iv().expect("IV first").to_vec();
        prop_assert_eq!(&wire[..], &iv[..]);
        prop_assert!(enc.take_iv().is_none());
        for piece in cut(&plain, &writes) {
            let mut buf = piece.to_vec();
            enc.encrypt(&mut buf);
            wire.extend_from_slice(&buf);
        }
        // CFB is a stream: the ciphertext cannot depend on how the writes were sized.
        let mut whole = plain.clone();
        Encryptor::new(&key, iv).encrypt(&mut whole);
        prop_assert_eq!(&wire[BLOCK_LEN..], &whole[..]);

        let (out, has_iv) = decrypt_pieces(&key, &wire, &reads);
        prop_assert_eq!(out, plain);
        prop_assert!(has_iv);
    }

    #[test]
    fn decryptor_never_panics_and_strips_exactly_the_iv(
        token in "(?s).{0,12}",
        wire in vec(any::<u8>(), 0..200),
        reads in sizes(),
    ) {
        let key = Key::derive(&token);
        let (chunked, has_iv) = decrypt_pieces(&key, &wire, &reads);
        let (whole, _) = decrypt_pieces(&key, &wire, &[wire.len().max(1)]);
        prop_assert_eq!(chunked.len(), wire.len().saturating_sub(BLOCK_LEN));
        prop_assert_eq!(has_iv, wire.len() >= BLOCK_LEN);
        prop_assert_eq!(chunked, whole);
    }
}

// ------------------------------------------------------------------------------------------
// Snappy framing
// ------------------------------------------------------------------------------------------

/// What feeding a stream to the decompressor produced: the data, and the first error.
type SnappyOutcome = (Vec<u8>, Option<String>);

/// Feeds `pieces` until the first error, as the runtime would before dropping the connection.
fn decompress_pieces(pieces: &[&[u8]]) -> SnappyOutcome {
    let mut d = Decompressor::new();
    let mut out = BytesMut::new();
    for piece in pieces {
        if let Err(e) = d.decompress(piece, &mut out) {
            return (out.to_vec(), Some(e.to_string()));
        }
    }
    (out.to_vec(), None)
}

/// Data that compresses well (a short pattern repeated, up to three 64 KiB blocks) or not at
/// all (random bytes).
fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (vec(any::<u8>(), 1..24), 0usize..8_000).prop_map(|(pattern, n)| pattern.repeat(n)),
        vec(any::<u8>(), 0..3_000),
    ]
}

/// Inputs for the decompressor: noise, noise after a valid stream identifier (to get past the
/// first check), chunk headers of every kind with junk bodies, and real streams with one byte
/// changed.
fn snappy_noise() -> impl Strategy<Value = Vec<u8>> {
    let chunk = (
        select(vec![0x00u8, 0x01, 0x02, 0x7f, 0x80, 0xfe, 0xff]),
        proptest::option::of(0u32..0x00ff_ffff),
        vec(any::<u8>(), 0..80),
    )
        .prop_map(|(kind, declared, body)| {
            // Half the time the length is honest, so the body is actually parsed.
            let len = declared.unwrap_or(body.len() as u32);
            let mut v = vec![kind];
            v.extend_from_slice(&len.to_le_bytes()[..3]);
            v.extend_from_slice(&body);
            v
        });
    let with_id = |rest: Vec<u8>| [&STREAM_IDENTIFIER[..], &rest].concat();
    prop_oneof![
        vec(any::<u8>(), 0..64),
        vec(any::<u8>(), 0..64).prop_map(with_id),
        vec(chunk, 0..4).prop_map(move |chunks| with_id(chunks.concat())),
        (vec(payload(), 1..3), any::<Index>(), any::<u8>()).prop_map(|(writes, at, byte)| {
            let mut c = Compressor::new();
            let mut wire = BytesMut::new();
            for w in &writes {
                c.compress(w, &mut wire);
            }
            let i = at.index(wire.len());
            wire[i] = byte;
            wire.to_vec()
        }),
    ]
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn decompressor_never_panics_and_ignores_chunking(
        noise in snappy_noise(),
        reads in sizes(),
    ) {
        let whole = decompress_pieces(&[&noise]);
        let chunked = decompress_pieces(&cut(&noise, &reads));
        prop_assert_eq!(chunked, whole);
    }

    /// fed one byte at a time, a call completes at most one chunk; when that chunk is bad, the
    /// call must fail without leaving any of it in the output, or the runtime could forward
    /// bytes that never passed the checksum.
    #[test]
    fn failing_decompress_call_appends_nothing(noise in snappy_noise()) {
        let mut d = Decompressor::new();
        let mut out = BytesMut::new();
        for byte in noise.chunks(1) {
            let before = out.len();
            if d.decompress(byte, &mut out).is_err() {
                prop_assert_eq!(out.len(), before);
                break;
            }
        }
    }
}

proptest! {
    // Payloads reach 190 KiB, so fewer cases keep this one fast.
    #![proptest_config(config(24))]

    #[test]
    fn compressor_output_round_trips_on_any_chunking(
        writes in vec(payload(), 0..4),
        reads in sizes(),
    ) {
        let mut c = Compressor::new();
        let mut wire = BytesMut::new();
        for w in &writes {
            c.compress(w, &mut wire);
        }
        // The stream identifier goes out once, at the start of the first write.
        if !writes.is_empty() {
            prop_assert_eq!(&wire[..STREAM_IDENTIFIER.len()], &STREAM_IDENTIFIER[..]);
            let rest = &wire[STREAM_IDENTIFIER.len()..];
            prop_assert!(!rest.windows(STREAM_IDENTIFIER.len()).any(|w| w == STREAM_IDENTIFIER));
        }
        let (out, error) = decompress_pieces(&cut(&wire, &reads));
        prop_assert_eq!(error, None);
        prop_assert_eq!(out, writes.concat());
    }
}

// ------------------------------------------------------------------------------------------
// Payload pipeline
// ------------------------------------------------------------------------------------------

/// Feeds `pieces` to `pipe` as reads, taking at most `write` bytes per write, checking the
/// bound and the no-stall contract throughout; stops at the first error.
fn through_pipe(
    pipe: &mut impl Pipe,
    pieces: &[&[u8]],
    write: usize,
) -> Result<Vec<u8>, CompressError> {
    let mut out = Vec::new();
    for piece in pieces {
        let mut piece = *piece;
        loop {
            assert!(pipe.buffered() <= MAX_BUFFERED);
            let ready = pipe.ready();
            if !ready.is_empty() {
                let n = ready.len().min(write.max(1));
                out.extend_from_slice(&ready[..n]);
                pipe.consume(n)?;
                continue;
            }
            if piece.is_empty() {
                break;
            }
            let n = pipe.push(piece)?;
            assert!(n > 0, "nothing ready and no room");
            piece = &piece[n..];
        }
    }
    Ok(out)
}

proptest! {
    #![proptest_config(config(24))]

    #[test]
    fn pipeline_round_trips_on_any_chunking(
        writes in vec(payload(), 0..3),
        encryption in any::<bool>(),
        compression in any::<bool>(),
        iv in any::<[u8; BLOCK_LEN]>(),
        reads in sizes(),
        write in 1usize..100_000,
    ) {
        let key = Key::derive("props");
        let data = writes.concat();
        let mut sealer = Sealer::new(encryption.then_some((&key, iv)), compression);
        let wire = through_pipe(&mut sealer, &writes.iter().map(Vec::as_slice).collect::<Vec<_>>(), write)
            .expect("sealing cannot fail");
        let mut opener = Opener::new(encryption.then_some(&key), compression);
        let back = through_pipe(&mut opener, &cut(&wire, &reads), write).expect("valid stream");
        prop_assert_eq!(back, data);
    }

    /// The bounded opener accepts and rejects exactly what the unbounded decompressor does,
    /// and yields the same data up to the first error.
    #[test]
    fn bounded_opener_agrees_with_the_decompressor(noise in snappy_noise(), reads in sizes()) {
        let (whole, error) = decompress_pieces(&[&noise]);
        let mut opener = Opener::new(None, true);
        let mut got = Vec::new();
        let mut failed = None;
        'outer: for mut piece in cut(&noise, &reads) {
            loop {
                let ready = opener.ready().to_vec();
                if !ready.is_empty() {
                    got.extend_from_slice(&ready);
                    if let Err(e) = opener.consume(ready.len()) {
                        failed = Some(e.to_string());
                        break 'outer;
                    }
                    continue;
                }
                if piece.is_empty() {
                    break;
                }
                match opener.push(piece) {
                    Ok(n) => piece = &piece[n..],
                    Err(e) => {
                        failed = Some(e.to_string());
                        break 'outer;
                    }
                }
            }
        }
        prop_assert_eq!(got, whole);
        prop_assert_eq!(failed, error);
    }
}
