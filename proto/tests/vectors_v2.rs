//! Replays the byte captures of real Go frpc/frps 0.70.1 with `transport.wireProtocol = "v2"`
//! (`shared/vectors/frp-0.70.1/`) through `frp_proto::v2`, and the v1 capture of the same
//! release through the v1 code.
//!
//! Each direction is decoded the way the runtime must (magic, hello, plaintext opening frame,
//! then the leftover bytes handed to the AEAD opener or passed on as payload) under several
//! chunkings, with keys derived from the capture's token and its two hello payloads. Then every
//! byte is rebuilt from the decoded values: hellos, plaintext frames and, with the captured
//! stream nonces, every AEAD record.

// The capture helpers are shared with `vectors.rs`, which uses parts this file does not.
#[allow(dead_code)]
mod capture;

use bytes::BytesMut;
use capture::decode::{Conn, Role as V1Role, CHUNK_SIZES};
use capture::yamux::*;
use capture::{Case, Dir, Expected, LOCAL_BODY};
use frp_proto::auth::privilege_key;
use frp_proto::msg::*;
use frp_proto::v2::aead::RANDOM_LEN;
use frp_proto::v2::frame::{decode_frame, decode_message, encode_frame, encode_message_to_vec};
use frp_proto::v2::hello::{answer_client_hello, ClientHello, ServerHello};
use frp_proto::v2::*;
use frp_proto::Message;
use std::collections::BTreeSet;

const SET: &str = "frp-0.70.1";

/// What follows the plaintext frames of a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Control connection: an AEAD stream of message frames.
    Control,
    /// Work connection: raw proxied bytes.
    Work,
}

/// Where an incremental reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Magic,
    Hello,
    Opening,
    After,
}

/// Everything one direction of a v2 connection carried, decoded.
#[derive(Debug, Default, PartialEq)]
struct Direction {
    /// The hello frame's type and payload (control connections).
    hello: Option<(u16, Vec<u8>)>,
    /// The plaintext message that ends the plaintext part.
    opening: Option<Message>,
    /// Wire bytes up to and including the opening message.
    plain_len: usize,
    /// Messages from the AEAD stream (control connections).
    encrypted: Vec<Message>,
    /// The AEAD plaintext, byte for byte.
    decrypted: Vec<u8>,
    /// The raw bytes after the opening frame (work connections).
    payload: Vec<u8>,
}

/// An incremental decoder for one direction, over the crate's public API only.
struct Reader {
    role: Role,
    stage: Stage,
    /// Wire bytes before the AEAD stream; AEAD plaintext after it.
    buf: BytesMut,
    /// AEAD wire bytes not yet opened.
    sealed: BytesMut,
    opener: Option<StreamOpener>,
    seen: usize,
    out: Direction,
}

impl Reader {
    fn new(role: Role, dir: Dir, opener: Option<StreamOpener>) -> Self {
        let stage = match (dir, role) {
            (Dir::C2s, _) => Stage::Magic,
            (Dir::S2c, Role::Control) => Stage::Hello,
            (Dir::S2c, Role::Work) => Stage::Opening,
        };
        Reader {
            role,
            stage,
            buf: BytesMut::new(),
            sealed: BytesMut::new(),
            opener,
            seen: 0,
            out: Direction::default(),
        }
    }

    fn feed(&mut self, chunk: &[u8]) {
        if self.stage == Stage::After {
            self.after(chunk);
            return;
        }
        self.seen += chunk.len();
        self.buf.extend_from_slice(chunk);
        loop {
            match self.stage {
                Stage::Magic => {
                    if self.buf.len() < MAGIC.len() {
                        return;
                    }
                    assert_eq!(&self.buf[..MAGIC.len()], MAGIC, "the client's magic");
                    let _ = self.buf.split_to(MAGIC.len());
                    self.stage = match self.role {
                        Role::Control => Stage::Hello,
                        Role::Work => Stage::Opening,
                    };
                }
                Stage::Hello => {
                    let Some((header, payload)) = decode_frame(&mut self.buf).expect("hello frame")
                    else {
                        return;
                    };
                    self.out.hello = Some((header.code, payload.to_vec()));
                    self.stage = Stage::Opening;
                }
                Stage::Opening => {
                    let Some(msg) = decode_message(&mut self.buf).expect("opening message") else {
                        return;
                    };
                    self.out.opening = Some(msg);
                    self.out.plain_len = self.seen - self.buf.len();
                    self.stage = Stage::After;
                    let rest = self.buf.split();
                    self.after(&rest);
                    return;
                }
                Stage::After => unreachable!(),
            }
        }
    }

    fn after(&mut self, bytes: &[u8]) {
        match self.role {
            Role::Work => self.out.payload.extend_from_slice(bytes),
            Role::Control => {
                self.sealed.extend_from_slice(bytes);
                let start = self.buf.len();
                let opener = self.opener.as_mut().expect("control streams have a key");
                opener
                    .open(&mut self.sealed, &mut self.buf)
                    .expect("every AEAD record opens");
                self.out.decrypted.extend_from_slice(&self.buf[start..]);
                while let Some(msg) = decode_message(&mut self.buf).expect("AEAD frame decodes") {
                    self.out.encrypted.push(msg);
                }
            }
        }
    }

    fn finish(self) -> Direction {
        // Both programs were killed between messages: nothing may be left half-read.
        assert!(
            self.buf.is_empty(),
            "{} bytes of a frame left",
            self.buf.len()
        );
        assert!(
            self.sealed.is_empty(),
            "{} bytes of a record left",
            self.sealed.len()
        );
        self.out
    }
}

/// Decodes `whole` at once and under every other chunking (the fixed sizes and the `real`
/// read or write boundaries) and asserts they agree.
fn decode_every_way(
    label: &str,
    role: Role,
    dir: Dir,
    opener: impl Fn() -> Option<StreamOpener>,
    whole: &[u8],
    real: &[Vec<u8>],
) -> Direction {
    assert_eq!(real.concat(), whole, "{label}: chunks != capture file");
    let decode = |chunks: Vec<&[u8]>| {
        let mut reader = Reader::new(role, dir, opener());
        for chunk in chunks {
            reader.feed(chunk);
        }
        reader.finish()
    };
    let reference = decode(vec![whole]);
    for size in CHUNK_SIZES {
        assert_eq!(
            decode(whole.chunks(size).collect()),
            reference,
            "{label}: {size}-byte chunks"
        );
    }
    assert_eq!(
        decode(real.iter().map(Vec::as_slice).collect()),
        reference,
        "{label}: recorded chunks"
    );
    reference
}

/// The plaintext frames at the start of a direction, without decrypting: enough to get both
/// hello payloads, from which the keys follow.
fn hello_payload(raw: &[u8], skip_magic: bool) -> Vec<u8> {
    let mut buf = BytesMut::from(raw);
    if skip_magic {
        let _ = buf.split_to(MAGIC.len());
    }
    let (_, payload) = decode_frame(&mut buf).unwrap().expect("a whole hello");
    payload.to_vec()
}

/// One v2 connection (TCP connection or yamux stream), both directions.
struct V2Conn {
    label: String,
    c2s_raw: Vec<u8>,
    s2c_raw: Vec<u8>,
    c2s: Direction,
    s2c: Direction,
    /// The negotiated crypto (control connections).
    crypto: Option<CryptoContext>,
}

fn decode_conn(
    label: String,
    role: Role,
    token: &str,
    raw: [(Vec<u8>, Vec<Vec<u8>>); 2],
) -> V2Conn {
    let [(c2s_raw, c2s_chunks), (s2c_raw, s2c_chunks)] = raw;
    let crypto = (role == Role::Control).then(|| {
        let client = hello_payload(&c2s_raw, true);
        let server = hello_payload(&s2c_raw, false);
        let hello: ServerHello = serde_json::from_slice(&server).expect("ServerHello JSON");
        let alg = Algorithm::from_name(&hello.selected.crypto.algorithm).expect("known algorithm");
        CryptoContext::new(alg, &client, &server)
    });
    let keys = crypto.as_ref().map(|c| c.keys(token.as_bytes()));
    let opener = |dir: Dir| {
        let crypto = crypto.clone();
        let keys = keys.clone();
        move || {
            let (crypto, keys) = (crypto.as_ref()?, keys.as_ref()?);
            let key = match dir {
                Dir::C2s => &keys.client_to_server,
                Dir::S2c => &keys.server_to_client,
            };
            Some(StreamOpener::new(crypto.algorithm, key))
        }
    };
    let c2s = decode_every_way(
        &format!("{label} c2s"),
        role,
        Dir::C2s,
        opener(Dir::C2s),
        &c2s_raw,
        &c2s_chunks,
    );
    let s2c = decode_every_way(
        &format!("{label} s2c"),
        role,
        Dir::S2c,
        opener(Dir::S2c),
        &s2c_raw,
        &s2c_chunks,
    );
    V2Conn {
        label,
        c2s_raw,
        s2c_raw,
        c2s,
        s2c,
        crypto,
    }
}

struct V2Session {
    control: V2Conn,
    work: Vec<V2Conn>,
}

/// v2-plain-nomux: conn 0 is the control connection, every later conn a work connection.
fn nomux_session(case: &Case, token: &str) -> V2Session {
    let conns: Vec<u64> = case.transcript.opened.iter().copied().collect();
    assert_eq!(
        conns,
        [0, 1, 2, 3, 4, 5],
        "one control, five work connections"
    );
    let mut decoded = conns.iter().map(|&conn| {
        let role = if conn == 0 { Role::Control } else { Role::Work };
        let raw = [Dir::C2s, Dir::S2c].map(|dir| {
            (
                case.conn_bytes(conn, dir),
                case.transcript.chunks(conn, dir).to_vec(),
            )
        });
        decode_conn(format!("conn {conn}"), role, token, raw)
    });
    let control = decoded.next().expect("control connection");
    V2Session {
        control,
        work: decoded.collect(),
    }
}

/// The streams the client opened (SYN), in order.
fn opened_streams(frames: &[YamuxFrame]) -> Vec<u32> {
    frames
        .iter()
        .filter(|f| f.flags & YAMUX_SYN != 0 && f.kind == YAMUX_WINDOW_UPDATE)
        .map(|f| f.stream)
        .collect()
}

/// v2-plain-mux: stream 1 is the control stream, the others work connections. The chunking of
/// each stream is its Data frames: frpc's and frps's own write boundaries.
fn mux_session(mux: &MuxCapture, token: &str) -> V2Session {
    let streams = opened_streams(&mux.c2s);
    assert_eq!(
        streams,
        [1, 3, 5, 7, 9, 11],
        "control, then five work streams"
    );
    let mut decoded = streams.iter().map(|&stream| {
        let role = if stream == 1 {
            Role::Control
        } else {
            Role::Work
        };
        let raw = [&mux.c2s, &mux.s2c].map(|frames| {
            let writes = stream_writes(frames, stream);
            (writes.concat(), writes)
        });
        decode_conn(format!("stream {stream}"), role, token, raw)
    });
    let control = decoded.next().expect("control stream");
    V2Session {
        control,
        work: decoded.collect(),
    }
}

// ------------------------------------------------------------------------------------------
// Shared assertions
// ------------------------------------------------------------------------------------------

/// The hellos, Login and LoginResp of the control connection, and the keys; the hellos and
/// plaintext frames rebuilt byte for byte.
fn assert_handshake(conn: &V2Conn, exp: &Expected, tcp_mux: bool) {
    let label = &conn.label;
    let (client_code, client_payload) = conn.c2s.hello.clone().expect("ClientHello");
    let (server_code, server_payload) = conn.s2c.hello.clone().expect("ServerHello");
    assert_eq!(client_code, FrameType::ClientHello.code());
    assert_eq!(server_code, FrameType::ServerHello.code());

    // ClientHello: what frpc 0.70.1 sends for tcp without TLS, rebuilt from its random.
    let client: ClientHello = serde_json::from_slice(&client_payload).expect("ClientHello JSON");
    assert_eq!(
        client.capabilities.crypto.algorithms,
        ["aes-256-gcm", "xchacha20-poly1305"],
        "{label}: the capture machine has AES-NI"
    );
    let random: [u8; RANDOM_LEN] = client.capabilities.crypto.client_random[..]
        .try_into()
        .expect("32-byte client random");
    let handshake = ClientHandshake::new(
        Bootstrap {
            transport: "tcp".into(),
            tls: false,
            tcp_mux,
        },
        &[Algorithm::Aes256Gcm, Algorithm::XChaCha20Poly1305],
        random,
    );
    assert_eq!(
        handshake.payload(),
        &client_payload[..],
        "{label}: ClientHello"
    );

    // ServerHello: frps's answer rebuilt from its random; the client accepts it and gets the
    // same transcript hash as the server.
    let server: ServerHello = serde_json::from_slice(&server_payload).expect("ServerHello JSON");
    assert!(server.error.is_empty());
    let server_random: [u8; RANDOM_LEN] = server.selected.crypto.server_random[..]
        .try_into()
        .expect("32-byte server random");
    let answer = answer_client_hello(&client_payload, server_random).expect("frps answers");
    assert_eq!(answer.payload, server_payload, "{label}: ServerHello");
    let server_ctx = answer.outcome.expect("frps accepts the ClientHello");
    let client_ctx = handshake.finish(&server_payload).expect("frpc accepts");
    assert_eq!(client_ctx, server_ctx);
    assert_eq!(Some(&client_ctx), conn.crypto.as_ref());
    assert_eq!(
        client_ctx.algorithm,
        Algorithm::Aes256Gcm,
        "frps takes the client's first"
    );

    // Login: frpc 0.70.1's fields, with a hostname now.
    let Some(Message::Login(login)) = &conn.c2s.opening else {
        panic!("{label}: no Login: {:?}", conn.c2s.opening);
    };
    let mut metas = StringMap::new();
    metas.insert("binding_secret".into(), exp.binding_secret.clone());
    let expected = Login {
        version: "0.70.1".into(),
        hostname: login.hostname.clone(),
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
    assert_eq!(*login, expected, "{label}: Login");
    assert!(!login.hostname.is_empty(), "frpc 0.70.1 sends its hostname");
    assert_eq!(
        conn.s2c.opening,
        Some(
            LoginResp {
                version: "0.70.1".into(),
                run_id: exp.run_id.clone(),
                ..Default::default()
            }
            .into()
        ),
        "{label}: LoginResp"
    );

    // The plaintext part of each direction, rebuilt.
    let mut c2s = BytesMut::new();
    handshake.write_opening(&mut c2s).unwrap();
    c2s.extend_from_slice(&encode_message_to_vec(&login.clone().into()).unwrap());
    assert_eq!(
        &c2s[..],
        &conn.c2s_raw[..conn.c2s.plain_len],
        "{label} c2s plaintext"
    );
    let mut s2c = BytesMut::new();
    encode_frame(FrameType::ServerHello, &answer.payload, &mut s2c).unwrap();
    s2c.extend_from_slice(&encode_message_to_vec(conn.s2c.opening.as_ref().unwrap()).unwrap());
    assert_eq!(
        &s2c[..],
        &conn.s2c_raw[..conn.s2c.plain_len],
        "{label} s2c plaintext"
    );
}

/// Re-sealing the decoded messages with the captured stream nonce and the derived key, one
/// header record and one payload record per frame as Go writes them, reproduces every AEAD
/// byte of both directions; the decrypted bytes are exactly the re-encoded frames.
fn assert_aead_reseals(conn: &V2Conn, token: &str) {
    let ctx = conn.crypto.as_ref().expect("control connection");
    let keys = ctx.keys(token.as_bytes());
    let n = ctx.algorithm.nonce_len();
    for (dir, raw, decoded, key) in [
        (Dir::C2s, &conn.c2s_raw, &conn.c2s, &keys.client_to_server),
        (Dir::S2c, &conn.s2c_raw, &conn.s2c, &keys.server_to_client),
    ] {
        let label = format!("{} {}", conn.label, dir.name());
        let wire = &raw[decoded.plain_len..];
        let frames: Vec<Vec<u8>> = decoded
            .encrypted
            .iter()
            .map(|m| encode_message_to_vec(m).unwrap())
            .collect();
        assert_eq!(
            frames.concat(),
            decoded.decrypted,
            "{label}: frames re-encode"
        );
        let mut sealer = StreamSealer::new(ctx.algorithm, key, &wire[..n]).unwrap();
        let mut out = BytesMut::new();
        for frame in &frames {
            sealer.seal_frame(frame, &mut out).unwrap();
        }
        assert_eq!(
            &out[..],
            wire,
            "{label}: re-sealed stream differs from the capture"
        );
        // With the wrong direction's key nothing opens.
        let wrong = match dir {
            Dir::C2s => &keys.server_to_client,
            Dir::S2c => &keys.client_to_server,
        };
        let mut opener = StreamOpener::new(ctx.algorithm, wrong);
        let err = opener
            .open(&mut BytesMut::from(wire), &mut BytesMut::new())
            .unwrap_err();
        assert_eq!(err, aead::AeadError::Authentication(0), "{label}");
    }
}

/// A work connection that served one HTTP request, rebuilt byte for byte: magic, NewWorkConn,
/// the response; StartWorkConn, the request.
fn assert_work_conn(conn: &V2Conn, exp: &Expected, proxy: &str, tcp: bool) {
    let label = &conn.label;
    assert_eq!(conn.c2s.opening, Some(exp.new_work_conn()), "{label}");
    let Some(Message::StartWorkConn(start)) = &conn.s2c.opening else {
        panic!("{label}: no StartWorkConn: {:?}", conn.s2c.opening);
    };
    let expected = StartWorkConn {
        proxy_name: exp.wire_name(proxy),
        src_addr: "127.0.0.1".into(),
        dst_addr: if tcp {
            exp.proxy_bind_addr.clone()
        } else {
            String::new()
        },
        src_port: start.src_port,
        dst_port: if tcp { exp.remote_port as u16 } else { 0 },
        ..Default::default()
    };
    assert_eq!(*start, expected, "{label}");
    assert!(
        conn.s2c.payload.starts_with(b"GET /hello.txt HTTP/1.1\r\n"),
        "{label}"
    );
    assert!(
        conn.c2s.payload.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "{label}"
    );
    assert!(conn.c2s.payload.ends_with(LOCAL_BODY), "{label}");

    let mut c2s = MAGIC.to_vec();
    c2s.extend_from_slice(&encode_message_to_vec(&exp.new_work_conn()).unwrap());
    c2s.extend_from_slice(&conn.c2s.payload);
    assert_eq!(c2s, conn.c2s_raw, "{label} c2s");
    let mut s2c = encode_message_to_vec(&start.clone().into()).unwrap();
    s2c.extend_from_slice(&conn.s2c.payload);
    assert_eq!(s2c, conn.s2c_raw, "{label} s2c");
    assert_eq!(conn.s2c.hello, None);
}

/// http, tcp, http, tcp, then the idle pooled connection.
fn assert_work_conns(session: &V2Session, exp: &Expected) {
    let [a, b, c, d, idle] = &session.work[..] else {
        panic!("five work connections, got {}", session.work.len());
    };
    assert_work_conn(a, exp, &exp.http_name, false);
    assert_work_conn(b, exp, &exp.tcp_name, true);
    assert_work_conn(c, exp, &exp.http_name, false);
    assert_work_conn(d, exp, &exp.tcp_name, true);
    assert_eq!(idle.c2s.opening, Some(exp.new_work_conn()));
    assert!(idle.c2s.payload.is_empty());
    assert_eq!(idle.s2c, Direction::default(), "frps never used it");
}

/// The two NewProxy come in either order (frpc starts proxies concurrently); each answer
/// follows its request.
/// Returns the two answers in the order due and everything frps sent encrypted.
fn assert_proxies_registered(session: &V2Session, exp: &Expected) -> (Vec<Message>, Vec<Message>) {
    let c2s = &session.control.c2s.encrypted;
    let s2c = &session.control.s2c.encrypted;
    let sent: BTreeSet<String> = c2s[..2].iter().map(|m| format!("{m:?}")).collect();
    let want: BTreeSet<String> = [exp.http_proxy().into(), exp.tcp_proxy().into()]
        .iter()
        .map(|m: &Message| format!("{m:?}"))
        .collect();
    assert_eq!(sent, want, "both proxies, in some order");
    let resp = |m: &Message| -> Message {
        match m {
            Message::NewProxy(np) if np.proxy_type == "http" => exp.http_proxy_resp().into(),
            _ => exp.tcp_proxy_resp().into(),
        }
    };
    let answers: Vec<Message> = c2s[..2].iter().map(resp).collect();
    (answers, s2c.to_vec())
}

// ------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------

#[test]
fn transcripts_match_the_capture_files() {
    for name in ["v2-plain-nomux", "v2-plain-mux", "v1-plain-mux"] {
        let case = Case::load_set(SET, name);
        assert!(!case.transcript.opened.is_empty(), "{name}");
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

#[test]
fn v2_nomux_control_connection_decrypts_and_reencodes() {
    let case = Case::load_set(SET, "v2-plain-nomux");
    assert_eq!(case.frpc.get("transport.wireProtocol"), "v2");
    let exp = case.expected();
    let session = nomux_session(&case, &exp.token);
    let control = &session.control;
    assert_handshake(control, &exp, false);
    assert_aead_reseals(control, &exp.token);

    // Client: both proxies and the first Ping right after login, the 30 s heartbeat later.
    let ping: Message = Ping::default().into();
    let (answers, s2c) = assert_proxies_registered(&session, &exp);
    assert_eq!(control.c2s.encrypted[2..], [ping.clone(), ping]);
    // Server: the pool's ReqWorkConn, both answers, the Pong, one ReqWorkConn per used work
    // connection, the heartbeat's Pong.
    let req: Message = ReqWorkConn {}.into();
    let pong: Message = Pong::default().into();
    let mut want = vec![req.clone()];
    want.extend(answers);
    want.extend([
        pong.clone(),
        req.clone(),
        req.clone(),
        req.clone(),
        req,
        pong,
    ]);
    assert_eq!(s2c, want);
}

#[test]
fn v2_nomux_work_connections_are_magic_and_plaintext_frames() {
    let case = Case::load_set(SET, "v2-plain-nomux");
    let exp = case.expected();
    let session = nomux_session(&case, &exp.token);
    assert_work_conns(&session, &exp);
}

#[test]
fn v2_mux_control_stream_decrypts_and_reencodes() {
    let case = Case::load_set(SET, "v2-plain-mux");
    let exp = case.expected();
    let mux = mux_capture(&case);
    let session = mux_session(&mux, &exp.token);
    let control = &session.control;
    assert_handshake(control, &exp, true);
    assert_aead_reseals(control, &exp.token);

    // No frp heartbeat with tcpMux (yamux keepalive instead).
    let (answers, s2c) = assert_proxies_registered(&session, &exp);
    assert_eq!(control.c2s.encrypted.len(), 2);
    let req: Message = ReqWorkConn {}.into();
    let mut want = vec![req.clone()];
    want.extend(answers);
    want.extend([req.clone(), req.clone(), req.clone(), req]);
    assert_eq!(s2c, want);
}

#[test]
fn v2_mux_work_streams_are_magic_and_plaintext_frames() {
    let case = Case::load_set(SET, "v2-plain-mux");
    let exp = case.expected();
    let session = mux_session(&mux_capture(&case), &exp.token);
    assert_work_conns(&session, &exp);
}

/// Go's writes, seen as yamux Data frames: the magic alone, each frame's header and payload
/// apart, the stream nonce alone, then one Data frame per AEAD record. Our writer may batch
/// them; this pins down what a reader must cope with.
#[test]
fn v2_mux_shows_one_write_per_go_write() {
    let case = Case::load_set(SET, "v2-plain-mux");
    let mux = mux_capture(&case);
    let lens = |frames: &[YamuxFrame], stream: u32| -> Vec<usize> {
        stream_writes(frames, stream).iter().map(Vec::len).collect()
    };
    let c2s = lens(&mux.c2s, 1);
    assert_eq!(c2s[..2], [MAGIC.len(), FRAME_HEADER_LEN]);
    assert_eq!(c2s[3], FRAME_HEADER_LEN, "Login header");
    assert_eq!(c2s[5], 12, "the AES-GCM stream nonce");
    assert_eq!(c2s[6], 4 + FRAME_HEADER_LEN + 16, "a header record");
    let s2c = lens(&mux.s2c, 1);
    assert_eq!(s2c[0], FRAME_HEADER_LEN, "frps sends no magic");
    assert_eq!(s2c[4], 12);
    for stream in [3, 5, 7, 9, 11] {
        assert_eq!(lens(&mux.c2s, stream)[..2], [MAGIC.len(), FRAME_HEADER_LEN]);
    }
}

/// frp 0.70.1 without `wireProtocol` speaks v1 exactly as 0.66.0 did: no magic, the v1 Login
/// and LoginResp in clear, then the AES-128-CFB stream.
#[test]
fn v1_capture_of_0_70_1_is_plain_v1() {
    let case = Case::load_set(SET, "v1-plain-mux");
    let exp = case.expected();
    let mux = mux_capture(&case);
    let streams = opened_streams(&mux.c2s);
    assert_eq!(streams, [1, 3, 5, 7, 9, 11]);
    let key = exp.key();
    let decode = |stream: u32, role: V1Role| {
        let raw = [&mux.c2s, &mux.s2c].map(|frames| {
            let writes = stream_writes(frames, stream);
            (writes.concat(), writes)
        });
        Conn::decode(format!("stream {stream}"), role, &key, raw)
    };
    let control = decode(1, V1Role::Control);
    assert!(!control.c2s_raw.starts_with(&MAGIC));
    assert!(matches!(&control.c2s.opening, Some(Message::Login(l)) if l.version == "0.70.1"));
    assert!(matches!(&control.s2c.opening, Some(Message::LoginResp(r)) if r.run_id == exp.run_id));
    assert_eq!(control.c2s.encrypted.len(), 2, "two NewProxy");
    for stream in [3, 5, 7, 9, 11] {
        let work = decode(stream, V1Role::Work);
        assert_eq!(work.c2s.opening, Some(exp.new_work_conn()));
    }
}
