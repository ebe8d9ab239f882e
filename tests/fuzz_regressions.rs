//! The fuzz targets' committed corpus, replayed through the targets' own harnesses.
//!
//! CI does not run the fuzzers (`fuzz/`, nightly only); it runs this. Each target keeps a few
//! interesting inputs in `fuzz/regressions/<target>/` (every crash the fuzzers found, and inputs
//! that reach deep into the parser), and `fuzz/harness/` is compiled in here unchanged, so an
//! input checks exactly what it checked under libFuzzer. See docs/reliability.md, "Fuzzing".

#[path = "../fuzz/harness/mod.rs"]
mod harness;

use expose::httplog::Exchange;
use std::path::PathBuf;
use std::time::Duration;

/// The committed inputs of one target, in name order.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let inputs: Vec<_> = files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    assert!(!inputs.is_empty(), "no inputs in {}", dir.display());
    inputs
}

/// Runs `run` on every committed input of `target`, naming the input that fails.
fn replay(target: &str, run: impl Fn(&[u8])) {
    for (name, data) in corpus(target) {
        eprintln!("{target}/{name}");
        run(&data);
    }
}

#[test]
fn frame_decoder_corpus() {
    replay("frame_decoder", |d| {
        harness::frame_decoder::run(d);
    });
}

#[test]
fn message_json_corpus() {
    replay("message_json", |d| {
        harness::message_json::run(d);
    });
}

#[test]
fn cfb_decrypt_corpus() {
    replay("cfb_decrypt", harness::cfb_decrypt::run);
}

#[test]
fn snappy_decompress_corpus() {
    replay("snappy_decompress", harness::snappy_decompress::run);
}

#[test]
fn pipeline_opener_corpus() {
    replay("pipeline_opener", harness::pipeline_opener::run);
}

#[test]
fn control_session_corpus() {
    replay("control_session", |d| {
        harness::control_session::run(d);
    });
}

#[test]
fn http_log_corpus() {
    replay("http_log", |d| {
        harness::http_log::run(d);
    });
}

#[cfg(feature = "frpc-config")]
#[test]
fn frpc_config_corpus() {
    replay("frpc_config", harness::frpc_config::run);
}

#[test]
fn prime_config_corpus() {
    replay("prime_config", harness::prime_config::run);
}

#[test]
fn prime_response_corpus() {
    replay("prime_response", harness::prime_response::run);
}

/// Each input takes up to half a second of loopback traffic and timers, so they run at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_engine_corpus() {
    let inputs = corpus("control_engine");
    let runs = inputs.iter().map(|(name, data)| async move {
        harness::control_engine::run(data).await;
        eprintln!("control_engine/{name} done");
    });
    futures::future::join_all(runs).await;
}

/// An `http_log` input: each chunk behind its selector byte (length − 1, shifted left, low bit
/// set for response bytes).
fn http_steps(steps: &[Step<'_>]) -> Vec<u8> {
    let mut input = Vec::new();
    for (response, chunk) in steps {
        for piece in chunk.chunks(128) {
            input.push((((piece.len() - 1) as u8) << 1) | u8::from(*response));
            input.extend_from_slice(piece);
        }
    }
    input
}

/// What the request log shows of an exchange: method, path, status, response bytes.
type Shown<'a> = (&'a str, &'a str, u16, u64);

/// One direction's bytes of a conversation: (response side, bytes).
type Step<'a> = (bool, &'a [u8]);

fn shown(exchanges: &[Exchange]) -> Vec<Shown<'_>> {
    exchanges
        .iter()
        .map(|e| {
            (
                e.method.as_str(),
                e.path.as_str(),
                e.status,
                e.response_bytes,
            )
        })
        .collect()
}

#[test]
fn http_log_reports_the_exchanges_of_hand_written_conversations() {
    const REQ: bool = false;
    const RESP: bool = true;
    let cases: &[(&[Step<'_>], &[Shown<'_>])] = &[
        // Content-Length body.
        (
            &[
                (REQ, b"GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n"),
                (RESP, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
            ],
            &[("GET", "/hello.txt", 200, 5)],
        ),
        // Chunked both ways, an interim 100 Continue (not reported), chunk extensions and
        // trailers: the body is the 4 bytes of chunk data.
        (
            &[
                (
                    REQ,
                    b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
                      3\r\nabc\r\n0\r\n\r\n",
                ),
                (
                    RESP,
                    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n\
                      Transfer-Encoding: chunked\r\n\r\n4;x=y\r\nwxyz\r\n0\r\nT: 1\r\n\r\n",
                ),
            ],
            &[("POST", "/x", 201, 4)],
        ),
        // HEAD and 304 have no body whatever Content-Length says.
        (
            &[
                (REQ, b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"),
                (
                    RESP,
                    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
                ),
            ],
            &[("HEAD", "/", 304, 0)],
        ),
        // HTTP/1.0 without a length: the body runs until the close, which reports it.
        (
            &[
                (REQ, b"GET / HTTP/1.0\r\n\r\n"),
                (RESP, b"HTTP/1.0 200 OK\r\n\r\nuntil close"),
            ],
            &[("GET", "/", 200, 11)],
        ),
        // A WebSocket upgrade: 101 is reported, the frames after it are not HTTP.
        (
            &[
                (
                    REQ,
                    b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                ),
                (
                    RESP,
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00",
                ),
            ],
            &[("GET", "/ws", 101, 0)],
        ),
        // Expect: 100-continue answered at once with 204.
        (
            &[
                (
                    REQ,
                    b"PUT /p HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc",
                ),
                (RESP, b"HTTP/1.1 204 No Content\r\n\r\n"),
            ],
            &[("PUT", "/p", 204, 0)],
        ),
        // Two pipelined requests, answered in order.
        (
            &[
                (
                    REQ,
                    b"GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\nHEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
                ),
                (RESP, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
                (
                    RESP,
                    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
                ),
            ],
            &[("GET", "/hello.txt", 200, 5), ("HEAD", "/", 304, 0)],
        ),
    ];
    for (steps, want) in cases {
        let got = harness::http_log::run(&http_steps(steps));
        assert_eq!(shown(&got), *want);
        assert!(got.iter().all(|e| e.duration <= Duration::from_millis(4)));
    }
}

/// Streams larger than the fuzzers' inputs: whole 64 KiB blocks of zeros and noise, which fill
/// the opener's window and straddle its input buffer, intact and with a corrupt last chunk,
/// in every configuration and several read and write sizes.
#[test]
fn pipeline_opener_large_streams() {
    use bytes::BytesMut;
    use frp_proto::compress::Compressor;
    let mut data = vec![0u8; 200_000];
    data.extend((0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    data.extend(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n".repeat(2000));
    let mut c = Compressor::new();
    let mut stream = BytesMut::new();
    for block in data.chunks(70_000) {
        c.compress(block, &mut stream);
    }
    let mut corrupt = stream.to_vec();
    let at = corrupt.len() - 100;
    corrupt[at] ^= 0x40;
    for payload in [&stream[..], &corrupt[..], &data[..]] {
        for mode in 0..16u8 {
            for (read, write) in [(255, 255), (3, 200), (200, 0)] {
                let mut input = vec![mode, read, write];
                input.extend_from_slice(payload);
                harness::pipeline_opener::run(&input);
            }
        }
    }
}

/// Found by `prime_response`: an error status whose body was JSON without an explanation
/// (`{"mussage": …, "frp_token": …}`), or broken JSON, had its raw text quoted in the error,
/// credentials included; a 422 item without a message was quoted as JSON. A body that starts
/// like JSON is never quoted now, and neither is a JSON item.
#[test]
fn error_bodies_that_look_like_json_are_never_quoted() {
    use expose::prime::fuzzing::read_reply;
    const TOKEN: &str = "frp-token-0123456789";
    let bodies = [
        format!(r#"{{"mussage": "add a payment method", "frp_token": "{TOKEN}"}}"#),
        format!(r#"{{"message": "no", "frp_token": "{TOKEN}", "#),
        format!(r#"  [{{"frp_token": "{TOKEN}"}}]"#),
        format!(r#"{{"detail": [{{"loc": ["body"], "frp_token": "{TOKEN}"}}]}}"#),
        format!(r#"{{"detail": [[{{"frp_token": "{TOKEN}"}}]]}}"#),
    ];
    for status in [400, 402, 404, 409, 422, 500, 503] {
        for body in &bodies {
            let r = read_reply(status, body.as_bytes(), "t-1").unwrap();
            assert!(!r.errors().is_empty());
            for e in r.errors() {
                let msg = e.to_string();
                assert!(!msg.contains(TOKEN), "{status} {body}: {msg}");
            }
        }
    }
    // Text and HTML bodies are still quoted: they are the explanation.
    let r = read_reply(503, b"down for maintenance", "t-1").unwrap();
    assert!(r
        .list
        .unwrap_err()
        .to_string()
        .ends_with(": down for maintenance"));
}
