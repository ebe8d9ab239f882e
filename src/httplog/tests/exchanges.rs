//! Exchanges reported from well-formed traffic, in every chunking and framing.

use super::*;

#[test]
fn single_get_with_content_length() {
    let mut log = run(
        b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 12\r\n\r\nhello world!",
    );
    assert_eq!(summary(&mut log), vec![ex("GET", "/index.html", 200, 12)]);
    assert!(!log.is_passthrough());
}

#[test]
fn nothing_reported_before_the_body_completes() {
    let now = Instant::now();
    let mut log = HttpLog::new();
    log.on_request_bytes(b"GET / HTTP/1.1\r\n\r\n", now);
    log.on_response_bytes(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab", now);
    assert!(summary(&mut log).is_empty());
    log.on_response_bytes(b"cd", now);
    assert_eq!(summary(&mut log), vec![ex("GET", "/", 200, 4)]);
}

#[test]
fn keep_alive_alternating() {
    let now = Instant::now();
    let mut log = HttpLog::new();
    let requests: [&[u8]; 3] = [
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /b?q=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        b"DELETE /c HTTP/1.1\r\nHost: x\r\n\r\n",
    ];
    let responses: [&[u8]; 3] = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
        b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n",
        b"HTTP/1.1 404 Not Found\r\nCONTENT-LENGTH: 9\r\n\r\nnot found",
    ];
    let mut all = Vec::new();
    for (request, response) in requests.iter().zip(responses.iter()) {
        log.on_request_bytes(request, now);
        log.on_response_bytes(response, now);
        let got = summary(&mut log);
        assert_eq!(got.len(), 1);
        all.extend(got);
    }
    assert_eq!(all, keep_alive_expected());
    assert!(!log.is_passthrough());
}

#[test]
fn pipelined_requests_are_matched_in_order() {
    let mut log = run(KEEP_ALIVE_REQUESTS, KEEP_ALIVE_RESPONSES);
    assert_eq!(summary(&mut log), keep_alive_expected());
    assert!(!log.is_passthrough());
}

#[test]
fn byte_at_a_time_interleaved() {
    let now = Instant::now();
    let mut log = HttpLog::new();
    for b in KEEP_ALIVE_REQUESTS {
        log.on_request_bytes(std::slice::from_ref(b), now);
    }
    for b in KEEP_ALIVE_RESPONSES {
        log.on_response_bytes(std::slice::from_ref(b), now);
    }
    assert_eq!(summary(&mut log), keep_alive_expected());
}

#[test]
fn random_chunkings_agree_with_one_chunk() {
    fn end_of(hay: &[u8], needle: &[u8]) -> usize {
        hay.windows(needle.len()).position(|w| w == needle).unwrap() + needle.len()
    }
    // Where each request head ends, and where each response starts.
    let head_ends = [
        end_of(KEEP_ALIVE_REQUESTS, b"/a HTTP/1.1\r\nHost: x\r\n\r\n"),
        end_of(KEEP_ALIVE_REQUESTS, b"Content-Length: 5\r\n\r\n"),
        KEEP_ALIVE_REQUESTS.len(),
    ];
    let response_starts = [
        0,
        end_of(KEEP_ALIVE_RESPONSES, b"abc"),
        end_of(KEEP_ALIVE_RESPONSES, b"length: 0\r\n\r\n"),
    ];
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for _ in 0..500 {
        let now = Instant::now();
        let mut log = HttpLog::new();
        let requests = random_chunks(&mut rng, KEEP_ALIVE_REQUESTS, 20);
        let responses = random_chunks(&mut rng, KEEP_ALIVE_RESPONSES, 20);
        let (mut i, mut j) = (0, 0);
        let (mut fed_req, mut fed_resp) = (0, 0);
        while j < responses.len() {
            // A response chunk may go once every request it answers has its head seen.
            let end = fed_resp + responses[j].len();
            let allowed = (0..3)
                .filter(|&k| response_starts[k] < end)
                .all(|k| fed_req >= head_ends[k]);
            if allowed && (i == requests.len() || rng.below(2) == 0) {
                log.on_response_bytes(responses[j], now);
                fed_resp = end;
                j += 1;
            } else {
                log.on_request_bytes(requests[i], now);
                fed_req += requests[i].len();
                i += 1;
            }
        }
        while i < requests.len() {
            log.on_request_bytes(requests[i], now);
            i += 1;
        }
        assert_eq!(summary(&mut log), keep_alive_expected());
        assert!(!log.is_passthrough());
    }
}

#[test]
fn chunked_response_split_at_every_boundary() {
    let expected = vec![ex("GET", "/1", 200, 31), ex("GET", "/2", 204, 0)];
    let requests = b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n";
    let now = Instant::now();
    for split in 0..=CHUNKED_RESPONSES.len() {
        let mut log = HttpLog::new();
        log.on_request_bytes(requests, now);
        log.on_response_bytes(&CHUNKED_RESPONSES[..split], now);
        log.on_response_bytes(&CHUNKED_RESPONSES[split..], now);
        assert_eq!(summary(&mut log), expected, "split at {split}");
        assert!(!log.is_passthrough(), "split at {split}");
    }
    for a in 0..=CHUNKED_RESPONSES.len() {
        for b in a..=CHUNKED_RESPONSES.len() {
            let mut log = HttpLog::new();
            log.on_request_bytes(requests, now);
            log.on_response_bytes(&CHUNKED_RESPONSES[..a], now);
            log.on_response_bytes(&CHUNKED_RESPONSES[a..b], now);
            log.on_response_bytes(&CHUNKED_RESPONSES[b..], now);
            assert_eq!(summary(&mut log), expected, "splits at {a}, {b}");
        }
    }
}

#[test]
fn chunked_with_bare_lf_and_no_trailers() {
    let mut log = run(
        b"GET / HTTP/1.1\n\n",
        b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n",
    );
    assert_eq!(summary(&mut log), vec![ex("GET", "/", 200, 3)]);
    assert!(!log.is_passthrough());
}

#[test]
fn bare_lf_heads_and_leading_blank_lines() {
    let mut log = run(
        b"\r\nGET /x HTTP/1.0\nHost: a\n\n",
        b"HTTP/1.0 200 OK\nContent-Length: 2\n\nok",
    );
    assert_eq!(summary(&mut log), vec![ex("GET", "/x", 200, 2)]);
}

#[test]
fn bad_chunk_framing_is_passthrough() {
    for body in [
        &b"zz\r\n"[..],
        b"3\r\nabcX",
        b"3\r\nabc\rX",
        b"3x\r\n",
        b"fffffffffffffffff\r\n",
    ] {
        let mut response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        response.extend_from_slice(body);
        let mut log = run(b"GET / HTTP/1.1\r\n\r\n", &response);
        assert!(log.is_passthrough(), "{:?}", String::from_utf8_lossy(body));
        assert!(summary(&mut log).is_empty());
    }
}

#[test]
fn head_response_has_no_body() {
    let mut log = run(
        b"HEAD /big HTTP/1.1\r\n\r\nGET /small HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n\
          HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
    );
    assert_eq!(
        summary(&mut log),
        vec![ex("HEAD", "/big", 200, 0), ex("GET", "/small", 200, 2)]
    );
}

#[test]
fn no_body_for_204_and_304() {
    let mut log = run(
        b"DELETE /x HTTP/1.1\r\n\r\nGET /y HTTP/1.1\r\n\r\nGET /z HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n\
          HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n\
          HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!",
    );
    assert_eq!(
        summary(&mut log),
        vec![
            ex("DELETE", "/x", 204, 0),
            ex("GET", "/y", 304, 0),
            ex("GET", "/z", 200, 1),
        ]
    );
}

#[test]
fn interim_responses_do_not_complete_the_exchange() {
    let now = Instant::now();
    let mut log = HttpLog::new();
    log.on_request_bytes(
        b"PUT /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
        now,
    );
    log.on_response_bytes(b"HTTP/1.1 100 Continue\r\n\r\n", now);
    assert!(summary(&mut log).is_empty());
    log.on_request_bytes(b"data", now);
    log.on_response_bytes(
        b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        now,
    );
    assert_eq!(summary(&mut log), vec![ex("PUT", "/up", 200, 2)]);
    assert!(!log.is_passthrough());
}

#[test]
fn switching_protocols_reports_then_passthrough() {
    let now = Instant::now();
    let mut log = HttpLog::new();
    log.on_request_bytes(
        b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x85garbage",
        now,
    );
    log.on_response_bytes(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello",
        now,
    );
    assert_eq!(summary(&mut log), vec![ex("GET", "/ws", 101, 0)]);
    assert!(log.is_passthrough());
    log.on_request_bytes(b"GET / HTTP/1.1\r\n\r\n", now);
    log.on_response_bytes(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", now);
    log.on_close(now);
    assert!(summary(&mut log).is_empty());
}

#[test]
fn connect_2xx_reports_then_passthrough() {
    let mut log = run(
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01",
        b"HTTP/1.1 200 Connection Established\r\n\r\n\x16\x03\x03",
    );
    assert_eq!(
        summary(&mut log),
        vec![ex("CONNECT", "example.com:443", 200, 0)]
    );
    assert!(log.is_passthrough());
}

#[test]
fn refused_upgrade_keeps_parsing_held_requests() {
    // The server ignores `Upgrade: h2c`; the request pipelined behind it is HTTP after all.
    let mut log = run(
        b"GET /a HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n\
          GET /b HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA\
          HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nBB",
    );
    assert_eq!(
        summary(&mut log),
        vec![ex("GET", "/a", 200, 1), ex("GET", "/b", 200, 2)]
    );
    assert!(!log.is_passthrough());
    // A refused CONNECT also keeps the connection in HTTP.
    let mut log = run(
        b"CONNECT h:1 HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n\
          HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(
        summary(&mut log),
        vec![ex("CONNECT", "h:1", 403, 0), ex("GET", "/c", 200, 0)]
    );
}

#[test]
fn close_delimited_response_finishes_on_close() {
    let start = Instant::now();
    let mut log = HttpLog::new();
    log.on_request_bytes(b"GET /stream HTTP/1.0\r\n\r\n", start);
    log.on_response_bytes(
        b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nab",
        start,
    );
    log.on_response_bytes(b"cde", start);
    assert!(summary(&mut log).is_empty());
    let end = start + Duration::from_millis(250);
    log.on_close(end);
    let got: Vec<Exchange> = log.drain().collect();
    assert_eq!(
        got,
        vec![Exchange {
            method: "GET".into(),
            path: "/stream".into(),
            status: 200,
            duration: Duration::from_millis(250),
            response_bytes: 5,
            captured: None,
        }]
    );
    assert!(log.is_passthrough());
}

#[test]
fn non_chunked_transfer_encoding_response_is_close_delimited() {
    let now = Instant::now();
    let mut log = run(
        b"GET / HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\nContent-Length: 1\r\n\r\nxyz",
    );
    assert!(summary(&mut log).is_empty());
    log.on_close(now);
    assert_eq!(summary(&mut log), vec![ex("GET", "/", 200, 3)]);
}

#[test]
fn on_close_does_not_report_truncated_bodies() {
    let now = Instant::now();
    let mut log = run(
        b"GET / HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
    );
    log.on_close(now);
    assert!(summary(&mut log).is_empty());
    assert!(log.is_passthrough());
}

#[test]
fn post_with_chunked_request_body() {
    let request = b"POST /upload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
        4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Checksum: 1\r\n\r\n\
        GET /after HTTP/1.1\r\n\r\n";
    let responses = b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok\
        HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let now = Instant::now();
    for split in 0..=request.len() {
        let mut log = HttpLog::new();
        log.on_request_bytes(&request[..split], now);
        log.on_request_bytes(&request[split..], now);
        log.on_response_bytes(responses, now);
        assert_eq!(
            summary(&mut log),
            vec![ex("POST", "/upload", 201, 2), ex("GET", "/after", 200, 0)],
            "split at {split}"
        );
    }
}
