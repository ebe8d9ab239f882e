//! The yamux client against the Go captures and against a hand-driven peer.

use super::config::{INITIAL_WINDOW, MAX_STREAM_WINDOW};
use super::frame::{Header, Kind, ACK, FIN, HEADER_LEN, RST, SYN};
use super::{Client, Config, OpenError};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::task::JoinHandle;

fn cfg() -> Config {
    Config {
        max_streams: 16_384,
        window_growth: 64 * 1024 * 1024,
    }
}

/// The Go frpc ↔ frps capture with tcpMux on and no TLS: `shared/vectors`, a sibling of the
/// repository root.
fn plain_mux_capture() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors/frp-0.66.0/plain-mux");
    assert!(dir.is_dir(), "captures not found at {}", dir.display());
    dir
}

/// Every frame of one direction of a capture: header bytes, decoded header, body.
fn capture_frames(file: &str) -> Vec<([u8; HEADER_LEN], Header, Vec<u8>)> {
    let bytes = std::fs::read(plain_mux_capture().join(file)).unwrap();
    let mut out = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let raw: [u8; HEADER_LEN] = rest[..HEADER_LEN].try_into().unwrap();
        let h = Header::decode(&raw).unwrap();
        let body_len = h.body_len() as usize;
        out.push((raw, h, rest[HEADER_LEN..HEADER_LEN + body_len].to_vec()));
        rest = &rest[HEADER_LEN + body_len..];
    }
    out
}

/// The far end of an in-memory connection, speaking raw frames.
struct Peer {
    io: DuplexStream,
}

impl Peer {
    /// The next frame, skipping the client's own pings (it measures the round trip with them).
    async fn frame(&mut self) -> (Header, Vec<u8>) {
        loop {
            let (h, body) = self.raw_frame().await;
            if h.kind != Kind::Ping || !h.has(SYN) {
                return (h, body);
            }
        }
    }

    /// The next frame, whatever it is.
    async fn raw_frame(&mut self) -> (Header, Vec<u8>) {
        let mut raw = [0u8; HEADER_LEN];
        tokio::time::timeout(Duration::from_secs(5), self.io.read_exact(&mut raw))
            .await
            .expect("no frame from the client")
            .unwrap();
        let h = Header::decode(&raw).unwrap();
        let mut body = vec![0u8; h.body_len() as usize];
        self.io.read_exact(&mut body).await.unwrap();
        (h, body)
    }

    /// The next frame of `kind`, skipping others.
    async fn frame_of_kind(&mut self, kind: Kind) -> Header {
        loop {
            let (h, _) = self.frame().await;
            if h.kind == kind {
                return h;
            }
        }
    }

    async fn send(&mut self, h: Header, body: &[u8]) {
        self.io.write_all(&h.encode()).await.unwrap();
        self.io.write_all(body).await.unwrap();
    }

    async fn send_raw(&mut self, raw: &[u8]) {
        self.io.write_all(raw).await.unwrap();
    }
}

/// A client session on an in-memory pipe, its driver running; the driver's task returns why
/// the session ended.
fn start() -> (Client, Peer, JoinHandle<String>) {
    let (a, b) = tokio::io::duplex(4 << 20);
    let (client, mut driver) = Client::new(a, &cfg());
    let task = tokio::spawn(async move { driver.run().await });
    (client, Peer { io: b }, task)
}

async fn ended(task: JoinHandle<String>) -> String {
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the session did not end")
        .unwrap()
}

#[test]
fn header_round_trip_and_rejects() {
    let cases = [
        Header::data(7, FIN, 1234),
        Header::window_update(1, SYN, 6_029_312),
        Header::window_update(3, ACK | RST, 0),
        Header::ping(SYN, 0xdead_beef),
        Header::go_away(2),
    ];
    for h in cases {
        assert_eq!(Header::decode(&h.encode()).unwrap(), h);
    }
    assert_eq!(
        Header::window_update(1, SYN, 6_029_312).encode(),
        [0, 1, 0, 1, 0, 0, 0, 1, 0, 0x5c, 0, 0]
    );
    let mut bad = Header::ping(SYN, 1).encode();
    bad[0] = 1;
    assert_eq!(
        Header::decode(&bad).unwrap_err().to_string(),
        "unknown version: 1"
    );
    bad[0] = 0;
    bad[1] = 4;
    assert_eq!(
        Header::decode(&bad).unwrap_err().to_string(),
        "unknown frame type: 4"
    );
}

#[test]
fn capture_frames_decode_and_encode_byte_for_byte() {
    for file in ["conn-0.c2s.bin", "conn-0.s2c.bin"] {
        let frames = capture_frames(file);
        assert!(frames.len() > 10, "{file}: {} frames", frames.len());
        for (raw, h, _) in &frames {
            assert_eq!(&h.encode(), raw, "{file}: {h:?}");
        }
    }
    // The server's side: every stream accepted with an ACK, and pings with SYN on stream 0.
    let s2c = capture_frames("conn-0.s2c.bin");
    assert!(s2c
        .iter()
        .any(|(_, h, _)| h.kind == Kind::WindowUpdate && h.flags == ACK && h.stream == 1));
}

/// Go frpc opens each stream with a WindowUpdate carrying SYN, ids 1, 3, 5, … in order, and
/// its first bytes follow as a Data frame without flags. Ours does the same; only the window
/// delta differs (Go grants 6 MiB at once, we start at 256 KiB and grow busy streams).
#[tokio::test]
async fn opening_sequence_matches_go_frpc() {
    let go: Vec<Header> = capture_frames("conn-0.c2s.bin")
        .into_iter()
        .map(|(_, h, _)| h)
        .collect();
    let go_opens: Vec<&Header> = go
        .iter()
        .filter(|h| h.has(SYN) && h.kind != Kind::Ping)
        .collect();
    assert!(go_opens.len() >= 2);
    let login_len = go[1].length;
    assert_eq!((go[1].kind, go[1].flags, go[1].stream), (Kind::Data, 0, 1));

    let (client, mut peer, _task) = start();
    let mut streams = Vec::new();
    for (i, want) in go_opens.iter().enumerate() {
        let mut s = client.open().await.unwrap();
        assert_eq!(s.id(), want.stream);
        if i == 0 {
            s.write_all(&vec![b'{'; login_len as usize]).await.unwrap();
        }
        let (h, _) = peer.frame().await;
        assert_eq!(
            (h.kind, h.flags, h.stream),
            (want.kind, want.flags, want.stream)
        );
        assert_eq!(h.length, 0, "we grant no window beyond the initial 256 KiB");
        if i == 0 {
            let (h, body) = peer.frame().await;
            assert_eq!(
                (h.kind, h.flags, h.stream, h.length),
                (Kind::Data, 0, 1, login_len)
            );
            assert_eq!(body.len(), login_len as usize);
        }
        streams.push(s);
    }
}

#[tokio::test]
async fn pings_are_answered_with_the_same_value() {
    let (_client, mut peer, _task) = start();
    for opaque in [0, 7, u32::MAX] {
        peer.send(Header::ping(SYN, opaque), &[]).await;
        let (h, _) = peer.frame().await;
        assert_eq!(h, Header::ping(ACK, opaque));
    }
    // An answer to a ping we never sent is ignored; the session goes on.
    peer.send(Header::ping(ACK, 5), &[]).await;
    peer.send(Header::ping(SYN, 6), &[]).await;
    assert_eq!(peer.frame().await.0, Header::ping(ACK, 6));
}

#[tokio::test]
async fn send_window_is_honoured_and_follows_updates() {
    let (client, mut peer, _task) = start();
    let mut s = client.open().await.unwrap();
    let writer = tokio::spawn(async move {
        s.write_all(&vec![7u8; 1 << 20]).await.unwrap();
        s
    });
    assert_eq!(peer.frame().await.0.flags, SYN);
    let mut got = 0usize;
    while got < INITIAL_WINDOW as usize {
        let (h, body) = peer.frame().await;
        assert_eq!(h.kind, Kind::Data);
        got += body.len();
    }
    assert_eq!(got, INITIAL_WINDOW as usize);
    // Nothing more until the window opens.
    let more = tokio::time::timeout(Duration::from_millis(200), peer.frame()).await;
    assert!(
        more.is_err(),
        "data beyond the window: {:?}",
        more.map(|f| f.0)
    );
    peer.send(
        Header::window_update(1, ACK, (1 << 20) - INITIAL_WINDOW),
        &[],
    )
    .await;
    drop(writer.await.unwrap());
    let mut fin = false;
    while got < 1 << 20 {
        let (h, body) = peer.frame().await;
        assert_eq!(h.kind, Kind::Data);
        got += body.len();
        fin = h.has(FIN);
    }
    assert_eq!(got, 1 << 20);
    // Dropping the stream sends FIN, after the bytes written before.
    if !fin {
        let h = peer.frame().await.0;
        assert!(h.has(FIN) && h.stream == 1, "{h:?}");
    }
}

#[tokio::test]
async fn receive_window_is_topped_up_once_half_is_read() {
    let (client, mut peer, _task) = start();
    let mut s = client.open().await.unwrap();
    peer.frame().await;
    let half = INITIAL_WINDOW / 2;
    peer.send(
        Header::data(1, ACK, half - 1),
        &vec![1u8; (half - 1) as usize],
    )
    .await;
    let mut buf = vec![0u8; half as usize];
    s.read_exact(&mut buf[..(half - 1) as usize]).await.unwrap();
    // Not yet half consumed: no update.
    let early = tokio::time::timeout(Duration::from_millis(100), peer.frame()).await;
    assert!(early.is_err());
    peer.send(Header::data(1, 0, 1), &[1]).await;
    s.read_exact(&mut buf[..1]).await.unwrap();
    let h = peer.frame_of_kind(Kind::WindowUpdate).await;
    assert_eq!((h.stream, h.flags), (1, 0));
    assert!(h.length >= half, "{h:?}");
    // The peer may now send a full window again.
    let total = INITIAL_WINDOW as usize;
    peer.send(Header::data(1, 0, total as u32), &vec![2u8; total])
        .await;
    let mut big = vec![0u8; total];
    s.read_exact(&mut big).await.unwrap();
}

impl Peer {
    /// The next WindowUpdate, answering our pings on the way after `rtt` (the round trip the
    /// client then measures).
    async fn update_answering_pings(&mut self, rtt: Duration) -> Header {
        loop {
            let (h, _) = self.raw_frame().await;
            match h.kind {
                Kind::WindowUpdate => return h,
                Kind::Ping if h.has(SYN) => {
                    tokio::time::sleep(rtt).await;
                    self.send(Header::ping(ACK, h.length), &[]).await;
                }
                _ => {}
            }
        }
    }
}

/// Rounds in which the peer sends a whole window at once and the reader reads all of it after
/// `read_delay`; returns each window the client then granted.
async fn windows_granted(rtt: Duration, read_delay: Duration, rounds: usize) -> Vec<u32> {
    let (client, mut peer, _task) = start();
    // The session's first frame is the ping that measures the round trip.
    let (ping, _) = peer.raw_frame().await;
    assert_eq!((ping.kind, ping.flags), (Kind::Ping, SYN));
    tokio::time::sleep(rtt).await;
    peer.send(Header::ping(ACK, ping.length), &[]).await;
    let mut s = client.open().await.unwrap();
    peer.frame().await;
    let mut window = INITIAL_WINDOW;
    let mut granted = Vec::new();
    let mut buf = vec![0u8; MAX_STREAM_WINDOW as usize];
    for _ in 0..rounds {
        peer.send(Header::data(1, 0, window), &vec![3u8; window as usize])
            .await;
        tokio::time::sleep(read_delay).await;
        s.read_exact(&mut buf[..window as usize]).await.unwrap();
        window = peer.update_answering_pings(rtt).await.length;
        granted.push(window);
    }
    granted
}

/// A reader that consumes windows faster than two round trips is held back by the window:
/// it doubles, up to the largest stream window.
#[tokio::test]
async fn a_sender_held_back_by_the_window_gets_a_larger_one() {
    let granted = windows_granted(Duration::from_millis(100), Duration::ZERO, 9).await;
    // An update may refill only the half read so far, so grants are compared with bounds.
    let largest = granted.iter().copied().max().unwrap_or(0);
    assert!(largest >= MAX_STREAM_WINDOW / 2, "{granted:?}");
    assert!(largest <= MAX_STREAM_WINDOW, "{granted:?}");
}

/// A reader that takes longer than two round trips per half window is what limits the
/// stream, not the window: the window stays as it is.
#[tokio::test]
async fn a_slow_reader_keeps_its_window() {
    let granted = windows_granted(Duration::from_millis(5), Duration::from_millis(60), 4).await;
    assert!(granted.iter().all(|&w| w <= INITIAL_WINDOW), "{granted:?}");
}

/// A reader that has read half its window, the other half still waiting, gets only what it
/// read back.
#[tokio::test]
async fn a_half_read_window_is_refilled_by_what_was_read() {
    let (client, mut peer, _task) = start();
    let mut s = client.open().await.unwrap();
    peer.frame().await;
    let window = INITIAL_WINDOW as usize;
    peer.send(Header::data(1, 0, window as u32), &vec![3u8; window])
        .await;
    let mut buf = vec![0u8; window / 2];
    s.read_exact(&mut buf).await.unwrap();
    let h = peer.update_answering_pings(Duration::ZERO).await;
    assert_eq!(h.length, INITIAL_WINDOW / 2);
}

#[tokio::test]
async fn peer_fin_is_eof_and_rst_is_an_error() {
    let (client, mut peer, _task) = start();
    let mut a = client.open().await.unwrap();
    let mut b = client.open().await.unwrap();
    peer.send(Header::data(1, ACK | FIN, 2), b"hi").await;
    peer.send(Header::window_update(3, ACK | RST, 0), &[]).await;
    let mut got = Vec::new();
    a.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"hi");
    let e = b.read(&mut [0u8; 4]).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset);
    assert!(b.write_all(b"x").await.is_err());
}

#[tokio::test]
async fn streams_opened_by_the_server_are_refused() {
    let (client, mut peer, _task) = start();
    peer.send(Header::window_update(2, SYN, 0), &[]).await;
    peer.send(Header::data(2, 0, 3), b"abc").await;
    peer.send(Header::data(4, SYN, 3), b"abc").await;
    for id in [2, 4] {
        let (h, _) = peer.frame().await;
        assert_eq!(h, Header::window_update(id, RST, 0));
    }
    // The session goes on.
    let _s = client.open().await.unwrap();
    assert_eq!(peer.frame().await.0.stream, 1);
}

#[tokio::test]
async fn protocol_violations_end_the_session_with_a_reason() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            {
                let mut h = Header::data(1, 0, 0).encode();
                h[0] = 1;
                h.to_vec()
            },
            "unknown version: 1",
        ),
        (
            {
                let mut h = Header::data(1, 0, 0).encode();
                h[1] = 9;
                h.to_vec()
            },
            "unknown frame type: 9",
        ),
        (
            Header::data(1, 0, u32::MAX).encode().to_vec(),
            "frame body is too large",
        ),
        (
            {
                let mut f = Header::data(1, 0, 300 * 1024).encode().to_vec();
                f.resize(HEADER_LEN + 300 * 1024, 0);
                f
            },
            "exceeds stream 1's receive window",
        ),
        (
            [
                Header::window_update(1, 0, u32::MAX).encode(),
                Header::window_update(1, 0, u32::MAX).encode(),
            ]
            .concat(),
            "overflows stream 1's send window",
        ),
        (Header::data(0, 0, 0).encode().to_vec(), "stream 0"),
        (
            Header::go_away(1).encode().to_vec(),
            "GoAway (protocol error",
        ),
    ];
    for (bytes, want) in cases {
        let (client, mut peer, task) = start();
        let mut s = client.open().await.unwrap();
        peer.frame().await;
        peer.send_raw(&bytes).await;
        let why = ended(task).await;
        assert!(why.contains(want), "{want}: ended with {why:?}");
        client.kill(&why);
        assert_eq!(s.read(&mut [0u8; 1]).await.unwrap(), 0);
        assert!(s.write_all(b"x").await.is_err());
        assert!(matches!(client.open().await, Err(OpenError::Closed(_))));
    }
}

#[tokio::test]
async fn a_violation_is_answered_with_go_away() {
    let (a, b) = tokio::io::duplex(1 << 20);
    let (_client, mut driver) = Client::new(a, &cfg());
    let mut peer = Peer { io: b };
    peer.send_raw(&[1u8; HEADER_LEN]).await;
    let why = driver.run().await;
    assert!(why.contains("unknown version"), "{why}");
    driver.drain_and_close().await;
    assert_eq!(peer.frame().await.0, Header::go_away(1));
}

#[tokio::test]
async fn the_stream_limit_refuses_without_ending_the_session() {
    let (a, b) = tokio::io::duplex(1 << 20);
    let (client, mut driver) = Client::new(
        a,
        &Config {
            max_streams: 3,
            window_growth: 0,
        },
    );
    tokio::spawn(async move { driver.run().await });
    let _peer = Peer { io: b };
    let held: Vec<_> = [0; 3].iter().map(|_| client.open()).collect();
    let mut streams = Vec::new();
    for f in held {
        streams.push(f.await.unwrap());
    }
    assert!(matches!(
        client.open().await,
        Err(OpenError::TooManyStreams(3))
    ));
}

/// A peer that answers pings, acknowledges every stream and answers the first byte on it with
/// one byte.
fn acking_peer(mut peer: Peer) {
    tokio::spawn(async move {
        loop {
            let mut raw = [0u8; HEADER_LEN];
            if peer.io.read_exact(&mut raw).await.is_err() {
                return;
            }
            let h = Header::decode(&raw).unwrap();
            let mut body = vec![0u8; h.body_len() as usize];
            if peer.io.read_exact(&mut body).await.is_err() {
                return;
            }
            let reply = if h.kind == Kind::Ping {
                h.has(SYN).then(|| (Header::ping(ACK, h.length), &[][..]))
            } else if h.has(SYN) {
                Some((Header::window_update(h.stream, ACK, 0), &[][..]))
            } else if h.kind == Kind::Data && !body.is_empty() {
                Some((Header::data(h.stream, 0, 1), &b"k"[..]))
            } else {
                None
            };
            if let Some((h, body)) = reply {
                peer.send(h, body).await;
            }
        }
    });
}

/// Opening a stream touches a constant number of stream entries whatever the number of idle
/// streams: opening, one exchange and the close of 200 streams cost the same table work with
/// 8 000 idle streams as with none. (rust-yamux 0.14 walked every stream on each open.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_work_does_not_grow_with_idle_streams() {
    let (a, b) = tokio::io::duplex(4 << 20);
    let (client, mut driver) = Client::new(a, &cfg());
    tokio::spawn(async move { driver.run().await });
    acking_peer(Peer { io: b });
    async fn exchange(client: &Client) -> super::Stream {
        let mut s = client.open().await.unwrap();
        s.write_all(b"c").await.unwrap();
        let mut k = [0u8; 1];
        s.read_exact(&mut k).await.unwrap();
        s
    }
    const OPENS: u64 = 200;
    let mut idle = Vec::new();
    let mut per_open = Vec::new();
    for target in [0usize, 8000] {
        while idle.len() < target {
            idle.push(exchange(&client).await);
        }
        let before = client.visits();
        for _ in 0..OPENS {
            drop(exchange(&client).await);
        }
        // Let the FINs of the last streams go out.
        tokio::time::sleep(Duration::from_millis(50)).await;
        per_open.push((client.visits() - before) as f64 / OPENS as f64);
    }
    assert!(per_open[0] <= 8.0, "{per_open:?} entries visited per open");
    assert!(
        per_open[1] <= per_open[0] * 1.5 + 1.0,
        "work per open grows with idle streams: {per_open:?} entries visited per open at 0 and 8 000 idle"
    );
}

/// A client session whose driver reads through `io` (the other end given to the peer).
fn start_on<T: super::SessionIo + Send + 'static>(io: T, peer: DuplexStream) -> (Client, Peer) {
    let (client, mut driver) = Client::new(io, &cfg());
    tokio::spawn(async move { driver.run().await });
    (client, Peer { io: peer })
}

/// Frames cut into reads of a few bytes (headers split across reads, bodies across many),
/// both when the driver reads into its own buffer and when the connection lends its buffered
/// bytes: every body reaches its stream in order, FIN after data is EOF after the data, RST
/// after data is an error after the data, and window updates, pings and bodies of unknown
/// streams in between change nothing.
#[tokio::test]
async fn frames_split_across_reads_arrive_whole() {
    for lending in [false, true] {
        let (client, mut peer) = if lending {
            let (a, b) = tokio::io::duplex(4 << 20);
            start_on(tokio::io::BufReader::with_capacity(5, a), b)
        } else {
            // A 5-byte pipe: no read returns more than 5 bytes.
            let (a, b) = tokio::io::duplex(5);
            start_on(a, b)
        };
        let mut one = client.open().await.unwrap();
        let mut three = client.open().await.unwrap();
        let sender = tokio::spawn(async move {
            let body = |n: usize, seed: u8| -> Vec<u8> {
                (0..n).map(|i| seed.wrapping_add(i as u8)).collect()
            };
            peer.send(Header::data(1, ACK, 1), &body(1, 10)).await;
            peer.send(Header::data(3, ACK, 700), &body(700, 20)).await;
            peer.send(Header::window_update(1, 0, 4096), &[]).await;
            peer.send(Header::ping(SYN, 9), &[]).await;
            peer.send(Header::data(99, 0, 13), &body(13, 0)).await;
            peer.send(Header::data(1, 0, 20_000), &body(20_000, 30))
                .await;
            peer.send(Header::data(1, FIN, 11), &body(11, 40)).await;
            peer.send(Header::data(3, RST, 5), &body(5, 50)).await;
            peer
        });
        let mut got = Vec::new();
        one.read_to_end(&mut got).await.unwrap();
        let want: Vec<u8> = [(1, 10u8), (20_000, 30), (11, 40)]
            .iter()
            .flat_map(|&(n, seed)| (0..n).map(move |i| seed.wrapping_add(i as u8)))
            .collect();
        assert_eq!(got, want, "lending: {lending}");
        let mut got = vec![0u8; 705];
        three.read_exact(&mut got).await.unwrap();
        let want: Vec<u8> = [(700, 20u8), (5, 50)]
            .iter()
            .flat_map(|&(n, seed)| (0..n).map(move |i| seed.wrapping_add(i as u8)))
            .collect();
        assert_eq!(got, want, "lending: {lending}");
        let e = three.read(&mut [0u8; 4]).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset);
        let mut peer = sender.await.unwrap();
        // The ping was answered in between (the driver kept its place in the byte stream).
        let h = peer.frame_of_kind(Kind::Ping).await;
        assert_eq!(h, Header::ping(ACK, 9), "lending: {lending}");
    }
}

/// Received bytes written straight to a sink (the splice's direct path, `poll_send_to`): in
/// order however little the sink takes at a time, the window topped up as they leave, FIN the
/// end after the data and RST an error after it, as for reads.
#[tokio::test]
async fn bytes_sent_to_a_sink_free_the_window_and_end_as_reads_do() {
    use std::future::poll_fn;
    use std::pin::Pin;
    let (client, mut peer, _task) = start();
    let mut one = client.open().await.unwrap();
    let mut three = client.open().await.unwrap();
    // The two SYNs.
    peer.frame().await;
    peer.frame().await;
    let window = INITIAL_WINDOW as usize;
    let body: Vec<u8> = (0..window + 5).map(|i| (i % 251) as u8).collect();
    peer.send(Header::data(1, ACK, window as u32), &body[..window])
        .await;
    // A sink that takes at most 10 000 bytes before its reader empties it.
    let (mut sink, mut far) = tokio::io::duplex(10_000);
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        far.read_to_end(&mut got).await.unwrap();
        got
    });
    let mut sent = 0;
    while sent < window {
        sent += poll_fn(|cx| one.poll_send_to(cx, Pin::new(&mut sink)))
            .await
            .unwrap();
    }
    let h = peer.frame_of_kind(Kind::WindowUpdate).await;
    assert_eq!((h.stream, h.flags), (1, 0));
    assert!(h.length >= INITIAL_WINDOW / 2, "{h:?}");
    peer.send(Header::data(1, FIN, 5), &body[window..]).await;
    loop {
        match poll_fn(|cx| one.poll_send_to(cx, Pin::new(&mut sink))).await {
            Ok(0) => break,
            Ok(n) => sent += n,
            Err(e) => panic!("{e}"),
        }
    }
    drop(sink);
    assert_eq!(sent, window + 5);
    assert_eq!(reader.await.unwrap(), body);

    peer.send(Header::data(3, ACK, 7), b"7 bytes").await;
    peer.send(Header::window_update(3, RST, 0), &[]).await;
    let (mut sink, mut far) = tokio::io::duplex(64);
    let n = poll_fn(|cx| three.poll_send_to(cx, Pin::new(&mut sink)))
        .await
        .unwrap();
    assert_eq!(n, 7);
    // Until the RST arrives there is nothing to send (Pending); then the error.
    let e = poll_fn(|cx| three.poll_send_to(cx, Pin::new(&mut sink)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset);
    let mut got = [0u8; 7];
    far.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"7 bytes");
}
