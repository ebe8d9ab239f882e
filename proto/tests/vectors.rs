//! Replays the byte captures of real Go frpc/frps 0.66.0 (`shared/vectors/frp-0.66.0/`) through
//! this crate.
//!
//! The captures are the ground truth of the protocol: if our framing, message structs, key
//! derivation or CFB stream disagree with Go in any byte, one of these tests fails. Each
//! direction is decoded the way the runtime must decode it (plaintext opening frame, then the
//! leftover bytes handed to the decryptor) and under several chunkings, because a TCP read can
//! end anywhere: inside a header, inside the IV, inside a frame.
//!
//! Dynamic values (ports, run id, source ports) are read from the case's own `frpc.toml`,
//! `frps.toml`, logs and `capture-notes.txt`, so a regenerated capture still passes; protocol
//! constants (message order, versions, fixed strings) are asserted literally.

mod capture;

use capture::decode::{nomux_session, Conn, Direction, Session};
use capture::tls::*;
use capture::yamux::*;
use capture::{unhex, Case, Dir, Expected, LOCAL_BODY};
use frp_proto::auth::{privilege_key, to_hex};
use frp_proto::crypto::{Encryptor, Key, BLOCK_LEN};
use frp_proto::frame::{complete_frame_len, encode_to_vec, HEADER_LEN};
use frp_proto::msg::*;
use frp_proto::pipeline::{Opener, Pipe, Sealer};
use frp_proto::Message;
use std::collections::BTreeSet;
use std::net::IpAddr;

// ------------------------------------------------------------------------------------------
// Shared assertions
// ------------------------------------------------------------------------------------------

/// The Login and LoginResp that open the control connection, field by field.
fn assert_login_exchange(session: &Session, exp: &Expected) {
    let conn = &session.control;
    let Some(Message::Login(login)) = &conn.c2s.opening else {
        panic!(
            "{}: c2s does not open with Login: {:?}",
            conn.label, conn.c2s.opening
        );
    };
    // The timestamp is the capture's clock; everything else follows from it and the config.
    let mut metas = StringMap::new();
    metas.insert("binding_secret".into(), exp.binding_secret.clone());
    let expected = Login {
        version: "0.66.0".into(),
        os: "linux".into(),
        arch: "amd64".into(),
        user: exp.user.clone(),
        privilege_key: privilege_key(&exp.token, login.timestamp),
        timestamp: login.timestamp,
        metas,
        client_spec: ClientSpec::default(),
        pool_count: exp.pool_count,
        ..Default::default()
    };
    assert_eq!(*login, expected, "{}: Login fields", conn.label);
    assert!(login.timestamp > 1_700_000_000, "a real Unix timestamp");
    // `client_spec` must be on the wire as `{}` (a Go struct field is never omitted), and a
    // first login carries neither hostname nor run_id.
    let login_len = complete_frame_len(&conn.c2s_raw)
        .expect("header")
        .expect("whole Login");
    let body = std::str::from_utf8(&conn.c2s_raw[HEADER_LEN..login_len]).expect("JSON is UTF-8");
    assert!(
        body.contains(r#""client_spec":{}"#),
        "{}: {body}",
        conn.label
    );
    assert!(!body.contains("hostname") && !body.contains("run_id"));

    assert_eq!(
        conn.s2c.opening,
        Some(
            LoginResp {
                version: "0.66.0".into(),
                run_id: exp.run_id.clone(),
                ..Default::default()
            }
            .into()
        ),
        "{}: LoginResp",
        conn.label
    );
    assert_eq!(
        exp.run_id.len(),
        16,
        "frps run ids are 8 random bytes in hex"
    );
}

/// A work connection that served one HTTP request: NewWorkConn, StartWorkConn for `start`, the
/// request frps forwarded (addressed to `host`), and the local service's answer.
fn assert_http_work_conn(conn: &Conn, exp: &Expected, start: &StartWorkConn, host: &str) {
    assert_eq!(
        conn.c2s.opening,
        Some(exp.new_work_conn()),
        "{}",
        conn.label
    );
    assert_eq!(
        conn.s2c.opening,
        Some(start.clone().into()),
        "{}",
        conn.label
    );

    let request = &conn.s2c.payload;
    assert!(
        request.starts_with(b"GET /hello.txt HTTP/1.1\r\n"),
        "{}: request {:?}",
        conn.label,
        String::from_utf8_lossy(request)
    );
    let host_line = format!("\r\nHost: {host}\r\n");
    assert!(
        request
            .windows(host_line.len())
            .any(|w| w == host_line.as_bytes()),
        "{}: no {host_line:?}",
        conn.label
    );
    assert!(request.ends_with(b"\r\n\r\n"), "a complete GET request");

    let response = &conn.c2s.payload;
    assert!(
        response.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "{}",
        conn.label
    );
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of response headers")
        + 4;
    let (head, body) = response.split_at(split);
    assert_eq!(body, LOCAL_BODY, "{}: response body", conn.label);
    assert_eq!(body.len(), 39);
    let head = String::from_utf8_lossy(head);
    assert!(head.contains("\r\nContent-Length: 39\r\n"), "{head}");
}

/// The three work connections of either plain case: http, tcp, then the idle pooled one.
fn assert_work_conns(session: &Session, exp: &Expected) {
    let [http, tcp, idle] = &session.work[..] else {
        panic!("three work connections, got {}", session.work.len());
    };

    // frps sends no dst fields for http, and the visitor's source port is only in the capture.
    let Some(Message::StartWorkConn(http_start)) = &http.s2c.opening else {
        panic!("{}: no StartWorkConn: {:?}", http.label, http.s2c.opening);
    };
    assert_ne!(http_start.src_port, 0);
    let http_start_expected = StartWorkConn {
        proxy_name: exp.wire_name(&exp.http_name),
        src_addr: "127.0.0.1".into(),
        src_port: http_start.src_port,
        ..Default::default()
    };
    let vhost = format!("{}.{}", exp.subdomain, exp.sub_domain_host);
    assert_http_work_conn(http, exp, &http_start_expected, &vhost);
    // frps rewrites the request it forwards over an http proxy, the tcp proxy passes it as is.
    let request = String::from_utf8_lossy(&http.s2c.payload);
    for header in [
        "X-Forwarded-For: 127.0.0.1",
        "X-Forwarded-Proto: http",
        "Accept-Encoding: gzip",
    ] {
        assert!(request.contains(header), "{}: no {header}", http.label);
    }

    let tcp_start = StartWorkConn {
        proxy_name: exp.wire_name(&exp.tcp_name),
        src_addr: "127.0.0.1".into(),
        dst_addr: exp.proxy_bind_addr.clone(),
        src_port: exp.tcp_src_port,
        dst_port: u16::try_from(exp.remote_port).expect("port"),
        ..Default::default()
    };
    let tcp_host = format!("127.0.0.1:{}", exp.remote_port);
    assert_http_work_conn(tcp, exp, &tcp_start, &tcp_host);
    assert!(!String::from_utf8_lossy(&tcp.s2c.payload).contains("X-Forwarded"));

    // The pool refill frps never used: a NewWorkConn and nothing else either way.
    assert_eq!(
        idle.c2s.opening,
        Some(exp.new_work_conn()),
        "{}",
        idle.label
    );
    assert!(idle.c2s.payload.is_empty());
    assert_eq!(
        idle.s2c,
        Direction::default(),
        "{}: frps sent nothing",
        idle.label
    );
}

/// Re-encoding reproduces every plaintext frame of the connection, and re-encrypting the
/// decoded frames with the captured IV reproduces the captured ciphertext. The second half
/// proves the CFB state carries across messages exactly as Go's does: one byte of drift in any
/// message would garble every later one.
fn assert_control_reencodes(conn: &Conn, key: &Key) {
    for (dir, raw, decoded) in [
        (Dir::C2s, &conn.c2s_raw, &conn.c2s),
        (Dir::S2c, &conn.s2c_raw, &conn.s2c),
    ] {
        let label = format!("{} {}", conn.label, dir.name());
        let opening_len = complete_frame_len(raw)
            .expect("valid header")
            .expect("whole opening frame");
        let opening = decoded.opening.as_ref().expect("opening frame");
        assert_eq!(
            encode_to_vec(opening).expect("encodes"),
            raw[..opening_len],
            "{label}: plaintext frame re-encodes"
        );

        // Go writes each message with one Write call, so the frames are the natural writes.
        let writes: Vec<Vec<u8>> = decoded
            .encrypted
            .iter()
            .map(|m| encode_to_vec(m).expect("encodes"))
            .collect();
        assert_eq!(
            writes.concat(),
            decoded.decrypted,
            "{label}: AES frames re-encode"
        );

        let wire = &raw[opening_len..];
        let iv: [u8; BLOCK_LEN] = wire[..BLOCK_LEN].try_into().expect("16-byte IV");
        let plain = writes.concat();
        // Write sizes must not matter to a CFB stream: per message, all at once, 5-byte writes.
        let splits: [Vec<&[u8]>; 3] = [
            writes.iter().map(Vec::as_slice).collect(),
            vec![&plain],
            plain.chunks(5).collect(),
        ];
        for (n, split) in splits.iter().enumerate() {
            let mut enc = Encryptor::new(key, iv);
            let mut out = enc.take_iv().expect("IV goes first").to_vec();
            assert!(enc.take_iv().is_none(), "the IV is sent once");
            for write in split {
                let mut buf = write.to_vec();
                enc.encrypt(&mut buf);
                out.extend_from_slice(&buf);
            }
            assert_eq!(
                out, wire,
                "{label}: re-encryption #{n} differs from the capture"
            );
        }
    }
}

/// The payload pipeline in its encryption-only configuration is the control stream's cipher:
/// an [`Opener`] fed the captured ciphertext (in odd read sizes, and with writes of any size
/// taken) yields the captured plaintext, and a [`Sealer`] given the captured IV and the
/// decrypted frames, one write per message as Go does, reproduces the wire byte for byte.
fn assert_pipeline_matches_control_stream(conn: &Conn, key: &Key) {
    for (dir, raw, decoded) in [
        (Dir::C2s, &conn.c2s_raw, &conn.c2s),
        (Dir::S2c, &conn.s2c_raw, &conn.s2c),
    ] {
        let label = format!("{} {}", conn.label, dir.name());
        let opening_len = complete_frame_len(raw)
            .expect("valid header")
            .expect("whole opening frame");
        let wire = &raw[opening_len..];
        for read in [1, 7, 13, 64, wire.len().max(1)] {
            let mut opener = Opener::new(Some(key), false);
            let mut plain = Vec::new();
            for piece in wire.chunks(read) {
                let mut piece = piece;
                while !piece.is_empty() {
                    let n = opener.push(piece).expect("no compression, no error");
                    piece = &piece[n..];
                    let ready = opener.ready().to_vec();
                    opener.consume(ready.len()).unwrap();
                    plain.extend_from_slice(&ready);
                }
            }
            assert_eq!(
                plain, decoded.decrypted,
                "{label}: opened with reads of {read}"
            );
        }

        let iv: [u8; BLOCK_LEN] = wire[..BLOCK_LEN].try_into().expect("16-byte IV");
        let mut sealer = Sealer::new(Some((key, iv)), false);
        let mut sealed = Vec::new();
        for msg in &decoded.encrypted {
            let frame = encode_to_vec(msg).expect("encodes");
            assert_eq!(sealer.push(&frame).unwrap(), frame.len(), "{label}");
            sealed.extend_from_slice(sealer.ready());
            sealer.consume(sealer.ready().len()).unwrap();
        }
        assert_eq!(
            sealed, wire,
            "{label}: sealed stream differs from the capture"
        );
    }
}

// ------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------

/// Everything encrypted in the captures hangs on this key; check it first and in isolation.
#[test]
fn token_key_is_the_documented_pbkdf2_output() {
    let case = Case::load("plain-nomux");
    let key = Key::derive(case.frpc.get("auth.token"));
    assert_eq!(to_hex(key.as_bytes()), "d2d18ca34f0c016e3a414681288b0650");
}

/// The other tests use the .bin files as the whole stream and the transcript as the read
/// boundaries; that is only sound if both record the same bytes.
#[test]
fn transcripts_match_the_capture_files() {
    for name in [
        "plain-nomux",
        "plain-mux",
        "tls-clienthello",
        "tls-clienthello-ipaddr",
    ] {
        let case = Case::load(name);
        assert!(!case.transcript.opened.is_empty(), "{name}: no connections");
        for &conn in &case.transcript.opened {
            for dir in [Dir::C2s, Dir::S2c] {
                assert_eq!(
                    case.transcript.chunks(conn, dir).concat(),
                    case.conn_bytes(conn, dir),
                    "{name} conn {conn} {}",
                    dir.name()
                );
            }
        }
    }
}

/// The control connection without mux: the message sequence a client must produce and accept.
#[test]
fn plain_nomux_control_connection_decodes_to_the_captured_messages() {
    let case = Case::load("plain-nomux");
    let exp = case.expected();
    let key = exp.key();
    let session = nomux_session(&case, &key);
    assert_login_exchange(&session, &exp);

    // Client: both proxies and the first Ping right after login, the 30 s heartbeat later.
    assert_eq!(
        session.control.c2s.encrypted,
        [
            exp.http_proxy().into(),
            exp.tcp_proxy().into(),
            Ping::default().into(),
            Ping::default().into(),
        ]
    );
    // Server: the pool_count ReqWorkConn, the two answers, the Pong, one ReqWorkConn per used
    // pooled connection, then the Pong for the heartbeat.
    let req: Message = ReqWorkConn {}.into();
    let pong: Message = Pong::default().into();
    assert_eq!(
        session.control.s2c.encrypted,
        [
            req.clone(),
            exp.http_proxy_resp().into(),
            exp.tcp_proxy_resp().into(),
            pong.clone(),
            req.clone(),
            req,
            pong,
        ]
    );
    assert!(session.control.c2s.payload.is_empty() && session.control.s2c.payload.is_empty());
}

/// Work connections are plaintext frames followed by raw bytes: a client that encrypted or
/// framed the payload would corrupt the user's traffic.
#[test]
fn plain_nomux_work_connections_carry_start_work_conn_then_raw_http() {
    let case = Case::load("plain-nomux");
    let exp = case.expected();
    let session = nomux_session(&case, &exp.key());
    assert_work_conns(&session, &exp);
}

/// The yamux behaviour of Go frpc that our transport must interoperate with.
#[test]
fn plain_mux_yamux_framing_is_as_documented() {
    let case = Case::load("plain-mux");
    let mux = mux_capture(&case);
    for frame in mux.c2s.iter().chain(&mux.s2c) {
        assert_eq!(frame.version, 0, "{frame:?}");
        assert!(frame.kind <= YAMUX_GO_AWAY, "{frame:?}");
        assert_eq!(frame.flags & YAMUX_RST, 0, "no stream was reset: {frame:?}");
        assert_ne!(frame.kind, YAMUX_GO_AWAY, "SIGINT sends no GoAway");
    }

    // The session starts with the SYN WindowUpdate of stream 1, then Login in a Data frame.
    assert_eq!(mux.c2s_raw[..12], unhex("0001000100000001005c0000"));
    assert_eq!(YAMUX_OPEN_DELTA, 6_029_312);
    let login_len = complete_frame_len(&mux.c2s_raw[24..])
        .expect("header")
        .expect("Login is whole in the first Data frame");
    assert_eq!(mux.c2s_raw[24], b'o');
    assert_eq!(
        mux.c2s[1],
        YamuxFrame {
            version: 0,
            kind: YAMUX_DATA,
            flags: 0,
            stream: 1,
            length: login_len as u32,
            payload: mux.c2s_raw[24..24 + login_len].to_vec(),
        }
    );

    // frpc opens every stream, with odd ids, a SYN WindowUpdate before any data, and frps ACKs
    // with the same delta. frps opens none.
    let streams: BTreeSet<u32> = mux
        .c2s
        .iter()
        .map(|f| f.stream)
        .filter(|&s| s != 0)
        .collect();
    assert_eq!(streams, BTreeSet::from([1, 3, 5, 7]));
    for &s in &streams {
        let first = mux.c2s.iter().find(|f| f.stream == s).expect("frame");
        assert_eq!(
            (first.kind, first.flags, first.length),
            (YAMUX_WINDOW_UPDATE, YAMUX_SYN, YAMUX_OPEN_DELTA),
            "stream {s} opens with SYN"
        );
        let ack = mux
            .s2c
            .iter()
            .find(|f| f.stream == s)
            .expect("frps answers");
        assert_eq!(
            (ack.kind, ack.flags, ack.length),
            (YAMUX_WINDOW_UPDATE, YAMUX_ACK, YAMUX_OPEN_DELTA),
            "stream {s} is ACKed"
        );
    }
    assert!(
        mux.s2c
            .iter()
            .all(|f| f.flags & YAMUX_SYN == 0 || f.kind == YAMUX_PING),
        "frps opens no streams"
    );

    // Streams 3 and 5 served a request and closed both ways with a FIN WindowUpdate of delta 0;
    // control stream 1 and idle stream 7 died with the process and saw no FIN.
    for frames in [&mux.c2s, &mux.s2c] {
        let fins: Vec<&YamuxFrame> = frames.iter().filter(|f| f.flags & YAMUX_FIN != 0).collect();
        assert_eq!(fins.iter().map(|f| f.stream).collect::<Vec<_>>(), [3, 5]);
        for fin in fins {
            assert_eq!((fin.kind, fin.length), (YAMUX_WINDOW_UPDATE, 0), "{fin:?}");
            let mut after = frames.iter().skip_while(|f| !std::ptr::eq(*f, fin)).skip(1);
            assert!(
                after.all(|f| f.stream != fin.stream || f.kind != YAMUX_DATA),
                "no data after FIN on stream {}",
                fin.stream
            );
        }
    }

    // Keepalive: each side pings once (SYN, opaque 0) and answers the other's ping (ACK).
    for frames in [&mux.c2s, &mux.s2c] {
        let mut pings: Vec<(u16, u32, u32)> = frames
            .iter()
            .filter(|f| f.kind == YAMUX_PING)
            .map(|f| (f.flags, f.stream, f.length))
            .collect();
        pings.sort();
        assert_eq!(pings, [(YAMUX_SYN, 0, 0), (YAMUX_ACK, 0, 0)]);
    }
}

/// With tcpMux the frp layer is unchanged apart from heartbeats; the control stream proves it.
#[test]
fn plain_mux_control_stream_decodes_to_the_captured_messages() {
    let case = Case::load("plain-mux");
    let exp = case.expected();
    let key = exp.key();
    let mux = mux_capture(&case);
    let session = mux_session(&mux, &key);
    assert_login_exchange(&session, &exp);

    // With tcpMux frpc sends no frp Ping (yamux keepalive replaces it), so no Pong either.
    assert_eq!(
        session.control.c2s.encrypted,
        [exp.http_proxy().into(), exp.tcp_proxy().into()]
    );
    let req: Message = ReqWorkConn {}.into();
    assert_eq!(
        session.control.s2c.encrypted,
        [
            req.clone(),
            exp.http_proxy_resp().into(),
            exp.tcp_proxy_resp().into(),
            req.clone(),
            req,
        ]
    );

    // Each Go Write is one Data frame: the IV travels alone, then one frame per message.
    for (frames, decoded) in [
        (&mux.c2s, &session.control.c2s),
        (&mux.s2c, &session.control.s2c),
    ] {
        let sizes: Vec<usize> = stream_writes(frames, 1).iter().map(Vec::len).collect();
        let mut expected = vec![encode_to_vec(decoded.opening.as_ref().expect("opening"))
            .expect("encodes")
            .len()];
        expected.push(BLOCK_LEN);
        expected.extend(
            decoded
                .encrypted
                .iter()
                .map(|m| encode_to_vec(m).expect("encodes").len()),
        );
        assert_eq!(sizes, expected);
    }
}

/// Work streams behave exactly like work connections, one yamux stream each.
#[test]
fn plain_mux_work_streams_carry_start_work_conn_then_raw_http() {
    let case = Case::load("plain-mux");
    let exp = case.expected();
    let mux = mux_capture(&case);
    let session = mux_session(&mux, &exp.key());
    assert_work_conns(&session, &exp);
}

/// Our encoder must produce what Go frpc/frps produce: key order, omitted empties and `{}`
/// for `client_spec` all show up as byte differences here.
#[test]
fn captured_plaintext_frames_re_encode_byte_for_byte() {
    let nomux = Case::load("plain-nomux");
    let exp = nomux.expected();
    let key = exp.key();
    let session = nomux_session(&nomux, &key);

    // The Login as the README quotes it, with the type byte and 0xe6 = 230 length in front.
    let login_raw = &session.control.c2s_raw;
    assert_eq!(&login_raw[..HEADER_LEN], b"o\0\0\0\0\0\0\0\xe6");
    assert_eq!(complete_frame_len(login_raw).expect("header"), Some(239));

    let mux = mux_capture(&Case::load("plain-mux"));
    let mux_session = mux_session(&mux, &key);
    for session in [&session, &mux_session] {
        for conn in std::iter::once(&session.control).chain(&session.work) {
            for (raw, decoded) in [(&conn.c2s_raw, &conn.c2s), (&conn.s2c_raw, &conn.s2c)] {
                let Some(opening) = &decoded.opening else {
                    continue;
                };
                let len = complete_frame_len(raw)
                    .expect("header")
                    .expect("whole frame");
                assert_eq!(
                    encode_to_vec(opening).expect("encodes"),
                    raw[..len],
                    "{}: {} re-encodes",
                    conn.label,
                    opening.message_type().name()
                );
            }
        }
    }
}

/// The encrypted side of the same guarantee, for both captures and both directions.
#[test]
fn decrypted_control_frames_re_encode_and_re_encrypt_to_the_capture() {
    let nomux = Case::load("plain-nomux");
    let key = nomux.expected().key();
    assert_control_reencodes(&nomux_session(&nomux, &key).control, &key);
    let mux = mux_capture(&Case::load("plain-mux"));
    assert_control_reencodes(&mux_session(&mux, &key).control, &key);
}

#[test]
fn the_payload_pipeline_opens_and_seals_the_captured_control_streams() {
    let nomux = Case::load("plain-nomux");
    let key = nomux.expected().key();
    assert_pipeline_matches_control_stream(&nomux_session(&nomux, &key).control, &key);
    let mux = mux_capture(&Case::load("plain-mux"));
    assert_pipeline_matches_control_stream(&mux_session(&mux, &key).control, &key);
}

/// frps rejects a Login whose key it cannot recompute, so the formula must match Go's exactly.
#[test]
fn login_privilege_key_is_md5_of_token_and_timestamp() {
    for name in ["plain-nomux", "plain-mux"] {
        let case = Case::load(name);
        let exp = case.expected();
        let key = exp.key();
        let session = match name {
            "plain-nomux" => nomux_session(&case, &key),
            _ => mux_session(&mux_capture(&case), &key),
        };
        let Some(Message::Login(login)) = &session.control.c2s.opening else {
            panic!("{name}: no Login");
        };
        assert_eq!(
            login.privilege_key,
            privilege_key(&exp.token, login.timestamp),
            "{name}"
        );
        // A key from another token or another second must not match.
        assert_ne!(login.privilege_key, privilege_key("wrong", login.timestamp));
        assert_ne!(
            login.privilege_key,
            privilege_key(&exp.token, login.timestamp + 1)
        );
    }
    // The README quotes the plain-nomux Login verbatim.
    assert_eq!(
        privilege_key("vector-token", 1_795_878_904),
        "1d68d64f003f17a2dffec92ec2c362fc"
    );
}

// ------------------------------------------------------------------------------------------
// TLS ClientHello (what our transport must produce on the wire)
// ------------------------------------------------------------------------------------------

/// Loads a TLS case and checks its first byte before parsing, since that byte alone decides
/// whether frps treats the connection as TLS.
fn client_hello(name: &str) -> (Case, ClientHello) {
    let case = Case::load(name);
    let data = case.conn_bytes(0, Dir::C2s);
    // Byte 0 decides how frps sniffs the connection: 0x16 is TLS straight away; 0x17 would be
    // frp's custom prefix, which Go frpc 0.66 does not send by default.
    assert_eq!(data[0], TLS_HANDSHAKE_RECORD, "{name}: first byte");
    assert_ne!(data[0], FRP_TLS_PREFIX);
    let hello = ClientHello::parse(&data);
    (case, hello)
}

/// What both TLS cases share, and so what our transport must match whatever the server address.
fn assert_common_hello(hello: &ClientHello) {
    assert!(
        hello.extension(EXT_ALPN).is_none(),
        "frpc sends no ALPN over TCP+TLS"
    );
    let versions = hello.supported_versions();
    assert!(
        versions.contains(&0x0304) && versions.contains(&0x0303),
        "{versions:x?}"
    );
}

/// Prime's servers are host names: this is the ClientHello shape our transport must send them.
#[test]
fn tls_client_hello_to_a_host_name_has_no_prefix_byte_and_carries_sni() {
    let (case, hello) = client_hello("tls-clienthello");
    let server = case.frpc.get("serverAddr");
    assert!(
        server.parse::<IpAddr>().is_err(),
        "this case uses a host name"
    );
    assert_eq!(hello.sni().as_deref(), Some(server));
    assert_eq!(hello.extensions[0].0, EXT_SERVER_NAME, "Go puts SNI first");
    assert_common_hello(&hello);
}

/// SNI must not carry an IP literal (RFC 6066), so a self-hosted frps by IP gets none.
#[test]
fn tls_client_hello_to_an_ip_literal_has_no_sni() {
    let (case, hello) = client_hello("tls-clienthello-ipaddr");
    let server = case.frpc.get("serverAddr");
    assert!(
        server.parse::<IpAddr>().is_ok(),
        "this case uses an IP literal"
    );
    assert_eq!(hello.sni(), None);
    assert_common_hello(&hello);

    // Apart from SNI the two hellos offer the same extensions in the same order.
    let (_, named) = client_hello("tls-clienthello");
    let types = |h: &ClientHello| -> Vec<u16> {
        h.extensions
            .iter()
            .map(|(t, _)| *t)
            .filter(|&t| t != EXT_SERVER_NAME)
            .collect()
    };
    assert_eq!(types(&hello), types(&named));
}
