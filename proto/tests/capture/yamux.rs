//! Demultiplexing the plain-mux capture: yamux frames, and the frp byte stream of each stream.

use super::decode::{Conn, Role, Session, CHUNK_SIZES};
use super::{Case, Dir};
use frp_proto::crypto::Key;

/// yamux wire constants, named as in hashicorp/yamux's spec, so the assertions read like
/// the vectors README: header size, frame types, then flag bits.
pub const YAMUX_HEADER_LEN: usize = 12;
pub const YAMUX_DATA: u8 = 0;
pub const YAMUX_WINDOW_UPDATE: u8 = 1;
pub const YAMUX_PING: u8 = 2;
pub const YAMUX_GO_AWAY: u8 = 3;
pub const YAMUX_SYN: u16 = 1;
pub const YAMUX_ACK: u16 = 2;
pub const YAMUX_FIN: u16 = 4;
pub const YAMUX_RST: u16 = 8;
/// The window delta that opens a stream: 6 MiB `MaxStreamWindowSize` minus the 256 KiB initial
/// window, as the vectors README explains.
pub const YAMUX_OPEN_DELTA: u32 = 6 * 1024 * 1024 - 256 * 1024;

/// One yamux frame as it appeared on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamuxFrame {
    pub version: u8,
    pub kind: u8,
    pub flags: u16,
    pub stream: u32,
    /// Payload length for Data, window delta for WindowUpdate, opaque for Ping, code for GoAway.
    pub length: u32,
    pub payload: Vec<u8>,
}

/// Splits one direction of a yamux connection into frames, on any chunking. Written here rather
/// than borrowed from the `yamux` crate so the test checks the wire format itself, not one
/// implementation's reading of it.
#[derive(Default)]
pub struct YamuxDemuxer {
    pub buf: Vec<u8>,
    pub frames: Vec<YamuxFrame>,
}

impl YamuxDemuxer {
    pub fn feed(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
        while self.buf.len() >= YAMUX_HEADER_LEN {
            let h = &self.buf[..YAMUX_HEADER_LEN];
            let kind = h[1];
            let length = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
            // Only Data frames carry a body; for the other types the field is a value.
            let body = if kind == YAMUX_DATA {
                length as usize
            } else {
                0
            };
            if self.buf.len() < YAMUX_HEADER_LEN + body {
                break;
            }
            self.frames.push(YamuxFrame {
                version: h[0],
                kind,
                flags: u16::from_be_bytes([h[2], h[3]]),
                stream: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
                length,
                payload: self.buf[YAMUX_HEADER_LEN..YAMUX_HEADER_LEN + body].to_vec(),
            });
            self.buf.drain(..YAMUX_HEADER_LEN + body);
        }
    }

    pub fn finish(self) -> Vec<YamuxFrame> {
        assert!(
            self.buf.is_empty(),
            "{} trailing bytes are not a whole yamux frame",
            self.buf.len()
        );
        self.frames
    }
}

pub fn demux<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<YamuxFrame> {
    let mut d = YamuxDemuxer::default();
    for chunk in chunks {
        d.feed(chunk);
    }
    d.finish()
}

/// Demuxes one direction of the mux capture under every chunking and asserts they agree.
pub fn demux_every_way(label: &str, whole: &[u8], real: &[Vec<u8>]) -> Vec<YamuxFrame> {
    assert_eq!(
        real.concat(),
        whole,
        "{label}: recorded chunks != capture file"
    );
    let reference = demux([whole]);
    for size in CHUNK_SIZES {
        assert_eq!(
            demux(whole.chunks(size)),
            reference,
            "{label}: {size}-byte chunks"
        );
    }
    assert_eq!(
        demux(real.iter().map(Vec::as_slice)),
        reference,
        "{label}: recv() chunks"
    );
    reference
}

/// The payloads of a stream's Data frames in order: its byte stream, with frpc's and frps's
/// own write boundaries as the chunking.
pub fn stream_writes(frames: &[YamuxFrame], stream: u32) -> Vec<Vec<u8>> {
    frames
        .iter()
        .filter(|f| f.kind == YAMUX_DATA && f.stream == stream && !f.payload.is_empty())
        .map(|f| f.payload.clone())
        .collect()
}

/// The mux capture: both directions of conn 0 as yamux frames.
pub struct MuxCapture {
    pub c2s: Vec<YamuxFrame>,
    pub s2c: Vec<YamuxFrame>,
    pub c2s_raw: Vec<u8>,
}

pub fn mux_capture(case: &Case) -> MuxCapture {
    let conns: Vec<u64> = case.transcript.opened.iter().copied().collect();
    assert_eq!(
        conns,
        [0],
        "with tcpMux everything rides one TCP connection"
    );
    let c2s_raw = case.conn_bytes(0, Dir::C2s);
    let s2c_raw = case.conn_bytes(0, Dir::S2c);
    MuxCapture {
        c2s: demux_every_way("mux c2s", &c2s_raw, case.transcript.chunks(0, Dir::C2s)),
        s2c: demux_every_way("mux s2c", &s2c_raw, case.transcript.chunks(0, Dir::S2c)),
        c2s_raw,
    }
}

/// plain-mux: stream 1 is the control stream, streams 3, 5, 7 work connections.
pub fn mux_session(mux: &MuxCapture, key: &Key) -> Session {
    let decode = |stream: u32, role: Role| {
        let raw = [&mux.c2s, &mux.s2c].map(|frames| {
            let writes = stream_writes(frames, stream);
            (writes.concat(), writes)
        });
        Conn::decode(format!("stream {stream}"), role, key, raw)
    };
    Session {
        control: decode(1, Role::Control),
        work: [3, 5, 7].map(|s| decode(s, Role::Work)).into(),
    }
}
