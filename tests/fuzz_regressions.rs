//! Inputs from the `cargo fuzz` targets `http_log` and `control_session` in `fuzz/` (see
//! docs/reliability.md, "Fuzzing"), replayed through the same harness as the targets so the
//! normal suite exercises them. Each input is inline hex.

use bytes::BytesMut;
use expose::frp::{Client, ClientConfig, ProxyConfig, ReconnectPolicy};
use expose::httplog::{HttpLog, MAX_COMPLETED, MAX_METHOD_BYTES, MAX_PATH_CHARS};
use expose::proto::crypto::{Encryptor, Key};
use expose::proto::frame::encode_to_vec;
use expose::proto::msg::LoginResp;
use expose::proto::{decode_frame, Message};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn unhex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    s.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// `fuzz_targets/http_log.rs`; returns the number of exchanges reported.
fn http_log(data: &[u8]) -> usize {
    let start = Instant::now();
    let mut log = HttpLog::new();
    let mut reported = 0;
    let mut check = |log: &mut HttpLog| {
        let exchanges: Vec<_> = log.drain().collect();
        assert!(exchanges.len() <= MAX_COMPLETED);
        for e in &exchanges {
            assert!(!e.method.is_empty() && e.method.len() <= MAX_METHOD_BYTES);
            assert!(e.method.bytes().all(|b| b.is_ascii_graphic()));
            assert!(e.path.chars().count() <= MAX_PATH_CHARS + 1);
            assert!(!e.path.chars().any(char::is_control));
            assert!((100..=999).contains(&e.status));
            assert!(e.response_bytes <= data.len() as u64);
        }
        reported += exchanges.len();
    };
    let mut input = data;
    let mut step = 0u64;
    while let [sel, rest @ ..] = input {
        let n = ((*sel >> 1) as usize + 1).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        input = tail;
        step += 1;
        let now = start + Duration::from_millis(step);
        if sel & 1 == 0 {
            log.on_request_bytes(chunk, now);
        } else {
            log.on_response_bytes(chunk, now);
        }
        check(&mut log);
    }
    log.on_close(start + Duration::from_millis(step + 1));
    check(&mut log);
    assert!(log.is_passthrough());
    reported
}

const TOKEN: &str = "fuzz-token";

/// `fuzz_targets/control_session.rs`: a fake frps answers Login, then sends the input
/// (variant by the first byte: encrypted after LoginResp, raw after LoginResp, raw instead of
/// LoginResp; bit 2 coalesces the writes). The client must neither panic nor hang.
async fn control_session(data: &[u8]) {
    let [variant, payload @ ..] = data else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut cfg = ClientConfig::new("127.0.0.1", listener.local_addr().unwrap().port(), TOKEN);
    cfg.tls.enable = false;
    cfg.tcp_mux = false;
    cfg.login_fail_exit = true;
    cfg.dial_timeout = Duration::from_millis(200);
    cfg.login_timeout = Duration::from_millis(200);
    cfg.heartbeat_interval = Some(Duration::from_millis(100));
    cfg.heartbeat_timeout = Duration::from_millis(300);
    cfg.tcp_keepalive = None;
    cfg.reconnect = ReconnectPolicy {
        base: Duration::from_millis(5),
        max: Duration::from_millis(10),
        quick_restart: Duration::from_millis(5),
    };
    let cfg = cfg
        .proxy(ProxyConfig::tcp("ssh", 9, 6000))
        .proxy(ProxyConfig::http("web", 9, "web"));
    let client = Client::start(cfg).unwrap();
    let server = async {
        let (mut sock, _) = listener.accept().await?;
        let mut buf = BytesMut::new();
        loop {
            match decode_frame(&mut buf) {
                Ok(Some(Message::Login(_))) => break,
                Ok(None) if sock.read_buf(&mut buf).await? > 0 => {}
                _ => return Ok(()),
            }
        }
        let mut out = Vec::new();
        if variant % 3 == 2 {
            out.extend_from_slice(payload);
        } else {
            let resp = LoginResp {
                version: "0.66.0".into(),
                run_id: "fuzz".into(),
                ..Default::default()
            };
            out = encode_to_vec(&resp.into()).unwrap();
            if variant & 4 == 0 {
                sock.write_all(&out).await?;
                out.clear();
            }
            if variant % 3 == 0 {
                let mut enc = Encryptor::new(&Key::derive(TOKEN), [0x5a; 16]);
                out.extend_from_slice(&enc.take_iv().unwrap());
                let start = out.len();
                out.extend_from_slice(payload);
                enc.encrypt(&mut out[start..]);
            } else {
                out.extend_from_slice(payload);
            }
        }
        sock.write_all(&out).await?;
        sock.shutdown().await?;
        let mut sink = [0u8; 4096];
        let drain = async {
            while sock.read(&mut sink).await? > 0 {}
            std::io::Result::Ok(())
        };
        let refuse = async {
            loop {
                drop(listener.accept().await?);
            }
            #[allow(unreachable_code)]
            std::io::Result::Ok(())
        };
        tokio::select! {
            r = drain => r,
            r = refuse => r,
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    // A panic in the client task would surface here as a task failure.
    let stopped = tokio::time::timeout(Duration::from_secs(5), client.shutdown())
        .await
        .expect("the client stops");
    if let Err(e) = stopped {
        assert!(!e.to_string().contains("task failed"), "client task: {e}");
    }
}

/// Corpus entries of `http_log` spread over sizes: requests and responses interleaved.
const HTTP_LOG: &[&str] = &[
    "
        702323
    ",
    "
        0c474554202f6500000000003673
    ",
    "
        224e4e4c4e464e4e4f4e4e554e4e4e4e4e4e4e4e4c4e7f20
    ",
    "
        7c4d54202f7020485454502f312e310d0a436f6e7474656e652d4c706563743a740a0d
    ",
    "
        78474554202f777320485454502f312e310d0a557067643a7e6509e009090909090909090909090909090909
        0d0a55ffff
    ",
    "
        0c504f5354202f780c20485454502f310c2e310d0a486f730c743a20610d0a540c72616e736665720c2d456e
        636f64690c6e673a206368750c6e6b6d640d0a2f
    ",
    "
        0c504f5354202f780c20485454502f310c2e310d0a486f730c743a2061fc0a540c72616e736665720c2d456e
        636f64690c6e673a206368750c6e6b65640d0a0d0c0a333b4854546f0d2f
    ",
    "
        0c504f5354202f780c20485454502f310c2e310d0a486f730c743a20610d0a540c72616e736665720c2d456e
        636f64690c6e673a206f73743a206c002c2c2c2c2c6c2c4c4c7c552020204e0f43174c0a502f485054a7502f
        7465
    ",
    "
        0c504f5354202f780c20485454502f310c2e310d0a6f48730c743a20610d0a540c72616e736665720c2d456e
        636f64690c6e673a206368750c6e736665722d456e636f646967b5b5b5b5b5b5b5206e3a6368750100000000
        000007343b312e0d312031301f0a430d6f6e74
    ",
    "
        224e4e4e4e4e4e4e4f4e4e274e4e4e4e4e4e4e0c504f2a5346474e4e4e4e54202f77ff7773ffff454c202fff
        fd0000000000000040007800000000000000000000fc48000000000000000000000000000000000000000000
        000000000000000000000000000000000000000000000a00000000f700000000200000000000000045000000
        3030204fb5f2f52048544844
    ",
];

/// The hand-written http_log seeds: plain, chunked with 100 Continue, HEAD/304, HTTP/1.0 until
/// close, WebSocket upgrade, Expect/204, two pipelined requests; with the exchanges each reports.
const HTTP_SEEDS: &[(&str, usize)] = &[
    (
        "46474554202f68656c6c6f2e74787420485454502f312e310d0a486f73743a20610d0a0d0a55485454502f312e3120323030204f4b0d0a436f6e74656e742d4c656e6774683a20350d0a0d0a68656c6c6f",
        99,
    ),
    (
        "8a504f5354202f7820485454502f312e310d0a486f73743a20610d0a5472616e736665722d456e636f64696e673a206368756e6b65640d0a0d0a330d0a6162630d0a300d0a0d0ac9485454502f312e312031303020436f6e74696e75650d0a0d0a485454502f312e312032303120437265617465640d0a5472616e736665722d456e636f64696e673a206368756e6b65640d0a0d0a343b783d790d0a7778797a0d0a300d0a543a20310d0a0d0a",
        99,
    ),
    (
        "3648454144202f20485454502f312e310d0a486f73743a20610d0a0d0a61485454502f312e3120333034204e6f74204d6f6469666965640d0a436f6e74656e742d4c656e6774683a2031300d0a0d0a",
        99,
    ),
    (
        "22474554202f20485454502f312e300d0a0d0a3b485454502f312e3020323030204f4b0d0a0d0a756e74696c20636c6f7365",
        99,
    ),
    (
        "78474554202f777320485454502f312e310d0a557067726164653a20776562736f636b65740d0a436f6e6e656374696f6e3a20557067726164650d0a0d0a73485454502f312e312031303120537769746368696e672050726f746f636f6c730d0a557067726164653a20776562736f636b65740d0a0d0a8100",
        99,
    ),
    (
        "7c505554202f7020485454502f312e310d0a436f6e74656e742d4c656e6774683a20330d0a4578706563743a203130302d636f6e74696e75650d0a0d0a61626335485454502f312e3120323034204e6f20436f6e74656e740d0a0d0a",
        99,
    ),
    (
        "7e474554202f68656c6c6f2e74787420485454502f312e310d0a486f73743a20610d0a0d0a48454144202f20485454502f312e310d0a486f73743a20610d0a0d0a55485454502f312e3120323030204f4b0d0a436f6e74656e742d4c656e6774683a20350d0a0d0a68656c6c6f61485454502f312e3120333034204e6f74204d6f6469666965640d0a436f6e74656e742d4c656e6774683a2031300d0a0d0a",
        99,
    ),
];

/// Corpus entries of `control_session` spread over sizes, all three variants.
const CONTROL_SESSION: &[&str] = &[
    "
        000000
    ",
    "
        6677000000000000000010bb00005e5e5e5e5e5e5e5e00653200
    ",
    "
        007300000000000000317b2270726f78795f6e616d6522ffffffffffffff74686f72697a6174699a9120666f
        6e72726d7022666c00000000006900
    ",
    "
        003200000000000000357b22700a00000000000000726f78e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4
        e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e47574
    ",
    "
        203200000000000000357b2270725f6e61796f786d65223a2277657362222c226572726f72223a3400000000
        000000000000000000000000000000006f72227d00000b
    ",
    "
        003300000000000000357b2270726f78795f6e616d65223a2277650000003300000000000000357b22700000
        0000001072223a42726f7860795f6e616d65223a726f757465692277
    ",
    "
        806300000000000000373737373737373737373737373737373737373737ab00373737373737373737373737
        003400000000000000027b7d32000000000000002a7b2270726f783737795f6e616d65
    ",
    "
        003200000000000000350a0a0a0a0a0a0a0a0a090a0a0a0a0a0a0a0a0a0a0a0a313131313131313131313131
        31313131313131313131000131313131313131313131313131313131313131313131315d0a0a0a0a0a0d0d0d
        0d7b2231
    ",
];

/// The hand-written seed: Pong, NewProxyResp for both proxies, ReqWorkConn, NatHoleResp.
const CONTROL_SEED: &str = "003400000000000000027b7d32000000000000002a7b2270726f78795f6e616d65223a22737368222c2272656d6f74655f61646472223a223a36303030227d32000000000000003f7b2270726f78795f6e616d65223a22776562222c2272656d6f74655f61646472223a227765622e6578616d706c652e636f6d222c226572726f72223a22227d7200000000000000027b7d6d000000000000000b7b22736964223a2278227d";

#[test]
fn http_log_corpus_replays() {
    for input in HTTP_LOG {
        http_log(&unhex(input));
    }
}

#[test]
fn http_log_seeds_report_their_exchanges() {
    let got: Vec<usize> = HTTP_SEEDS
        .iter()
        .map(|(i, _)| http_log(&unhex(i)))
        .collect();
    panic!("COUNTS {got:?}");
}

#[test]
fn http_log_reports_a_simple_exchange() {
    // Selector byte: (length - 1) << 1, low bit 0 for request bytes, 1 for response bytes.
    let req = b"GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    let mut input = vec![(req.len() as u8 - 1) << 1];
    input.extend_from_slice(req);
    input.push(((resp.len() as u8 - 1) << 1) | 1);
    input.extend_from_slice(resp);
    assert_eq!(http_log(&input), 1);
}

#[tokio::test]
async fn control_session_corpus_replays() {
    control_session(&unhex(CONTROL_SEED)).await;
    for input in CONTROL_SESSION {
        control_session(&unhex(input)).await;
    }
}
