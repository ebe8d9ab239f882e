//! Decoding one direction of an frp connection the way the runtime does, under many chunkings.

use super::{Case, Dir};
use bytes::BytesMut;
use frp_proto::crypto::{Decryptor, Key};
use frp_proto::{decode_frame, Message};

/// What follows the plaintext opening frame of a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Control connection: a 16-byte IV, then an AES-128-CFB stream of frames.
    Control,
    /// Work connection: raw proxied bytes (these captures have `use_encryption` off).
    Work,
}

/// Everything one direction of an frp connection carried, decoded.
#[derive(Debug, Default, PartialEq)]
pub struct Direction {
    /// The plaintext frame that opens the direction (Login, LoginResp, NewWorkConn,
    /// StartWorkConn); `None` if the peer never sent one.
    pub opening: Option<Message>,
    /// Frames decoded from the AES stream (control connections).
    pub encrypted: Vec<Message>,
    /// The AES plaintext, byte for byte (control connections).
    pub decrypted: Vec<u8>,
    /// The raw bytes after the opening frame (work connections): the proxied payload.
    pub payload: Vec<u8>,
}

/// An incremental decoder for one direction, written against the crate's public API only, so
/// it exercises exactly what the runtime has to do: buffer until the opening frame is whole,
/// then hand whatever was read past it to the next layer (trap 8 of the protocol notes: bytes
/// read past LoginResp are the start of the server's IV).
pub struct DirectionReader {
    pub role: Role,
    /// Undecoded frame bytes: wire bytes before the opening frame, AES plaintext after it.
    pub buf: BytesMut,
    pub decryptor: Decryptor,
    pub out: Direction,
}

impl DirectionReader {
    pub fn new(role: Role, key: &Key) -> Self {
        DirectionReader {
            role,
            buf: BytesMut::new(),
            decryptor: Decryptor::new(key),
            out: Direction::default(),
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        if self.out.opening.is_some() {
            self.after_opening(chunk);
            return;
        }
        self.buf.extend_from_slice(chunk);
        let Some(msg) = decode_frame(&mut self.buf).expect("opening frame decodes") else {
            return;
        };
        self.out.opening = Some(msg);
        let rest = self.buf.split();
        self.after_opening(&rest);
    }

    pub fn after_opening(&mut self, bytes: &[u8]) {
        match self.role {
            Role::Work => self.out.payload.extend_from_slice(bytes),
            Role::Control => {
                let mut bytes = bytes.to_vec();
                let plain = self.decryptor.decrypt(&mut bytes);
                self.out.decrypted.extend_from_slice(plain);
                self.buf.extend_from_slice(plain);
                while let Some(msg) = decode_frame(&mut self.buf).expect("AES frame decodes") {
                    self.out.encrypted.push(msg);
                }
            }
        }
    }

    pub fn finish(self) -> Direction {
        // Both programs were killed between messages, so nothing may be left half-decoded.
        assert!(
            self.buf.is_empty(),
            "{} bytes of an incomplete frame left over",
            self.buf.len()
        );
        if self.role == Role::Control && self.out.opening.is_some() {
            assert!(
                self.decryptor.has_iv(),
                "encrypted stream without a full IV"
            );
        }
        self.out
    }
}

pub fn decode_chunks<'a>(
    role: Role,
    key: &Key,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Direction {
    let mut reader = DirectionReader::new(role, key);
    for chunk in chunks {
        reader.feed(chunk);
    }
    reader.finish()
}

/// Fixed chunk sizes to replay besides the real read boundaries: single bytes split every
/// header and the IV; 7 and 13 are coprime with the 9-byte header and the 16-byte IV, so the
/// cuts wander through every position; 64 is a plausible small read.
pub const CHUNK_SIZES: [usize; 4] = [1, 7, 13, 64];

/// Decodes `whole` at once and under every other chunking, asserts all agree, and returns the
/// result. `real` are the read boundaries the capture recorded and must add up to `whole`.
pub fn decode_every_way(
    label: &str,
    role: Role,
    key: &Key,
    whole: &[u8],
    real: &[Vec<u8>],
) -> Direction {
    assert_eq!(
        real.concat(),
        whole,
        "{label}: recorded chunks != capture file"
    );
    let reference = decode_chunks(role, key, [whole]);
    for size in CHUNK_SIZES {
        let got = decode_chunks(role, key, whole.chunks(size));
        assert_eq!(
            got, reference,
            "{label}: {size}-byte chunks decode differently"
        );
    }
    let got = decode_chunks(role, key, real.iter().map(Vec::as_slice));
    assert_eq!(
        got, reference,
        "{label}: recorded recv() chunks decode differently"
    );
    reference
}

/// One frp connection (a TCP connection, or one yamux stream), both directions.
pub struct Conn {
    pub label: String,
    pub c2s_raw: Vec<u8>,
    pub s2c_raw: Vec<u8>,
    pub c2s: Direction,
    pub s2c: Direction,
}

impl Conn {
    pub fn decode(label: String, role: Role, key: &Key, raw: [(Vec<u8>, Vec<Vec<u8>>); 2]) -> Self {
        let [(c2s_raw, c2s_chunks), (s2c_raw, s2c_chunks)] = raw;
        let c2s = decode_every_way(&format!("{label} c2s"), role, key, &c2s_raw, &c2s_chunks);
        let s2c = decode_every_way(&format!("{label} s2c"), role, key, &s2c_raw, &s2c_chunks);
        Conn {
            label,
            c2s_raw,
            s2c_raw,
            c2s,
            s2c,
        }
    }
}

/// A whole capture decoded: the control connection and the work connections in open order.
pub struct Session {
    pub control: Conn,
    pub work: Vec<Conn>,
}

/// plain-nomux: conn 0 is the control connection, every later conn a work connection.
pub fn nomux_session(case: &Case, key: &Key) -> Session {
    let conns: Vec<u64> = case.transcript.opened.iter().copied().collect();
    assert_eq!(
        conns,
        [0, 1, 2, 3],
        "one control and three work connections"
    );
    let mut decoded = conns.iter().map(|&conn| {
        let role = if conn == 0 { Role::Control } else { Role::Work };
        let raw = [Dir::C2s, Dir::S2c].map(|dir| {
            (
                case.conn_bytes(conn, dir),
                case.transcript.chunks(conn, dir).to_vec(),
            )
        });
        Conn::decode(format!("conn {conn}"), role, key, raw)
    });
    let control = decoded.next().expect("control connection");
    Session {
        control,
        work: decoded.collect(),
    }
}
