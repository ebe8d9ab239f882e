//! Malformed or oversized input goes passthrough; what is reported stays bounded and safe.

use super::*;

#[test]
fn request_framing_errors_are_passthrough() {
    for request in [
        &b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"[..],
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
        b"GET  / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/2.0\r\n\r\n",
        b"GET /\r\n\r\n",
        b"G(T / HTTP/1.1\r\n\r\n",
    ] {
        let mut log = HttpLog::new();
        log.on_request_bytes(request, Instant::now());
        assert!(
            log.is_passthrough(),
            "{:?}",
            String::from_utf8_lossy(request)
        );
    }
    // Repeated identical lengths are fine.
    let mut log = run(
        b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2, 2\r\n\r\nab",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(summary(&mut log), vec![ex("POST", "/", 200, 0)]);
}

#[test]
fn oversized_head_is_passthrough() {
    let mut request = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', MAX_HEAD_BYTES));
    request.extend_from_slice(b"\r\n\r\n");
    let now = Instant::now();
    // Whole, and in small pieces: the limit holds either way.
    let mut log = HttpLog::new();
    log.on_request_bytes(&request, now);
    assert!(log.is_passthrough());
    let mut log = HttpLog::new();
    for piece in request.chunks(100) {
        log.on_request_bytes(piece, now);
    }
    assert!(log.is_passthrough());

    let mut response = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..2000 {
        response.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    let mut log = HttpLog::new();
    log.on_request_bytes(b"GET / HTTP/1.1\r\n\r\n", now);
    log.on_response_bytes(&response, now);
    assert!(log.is_passthrough());
    // Just under the limit is fine.
    let mut request = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    let fill = MAX_HEAD_BYTES - request.len() - 4;
    request.extend(std::iter::repeat_n(b'a', fill));
    request.extend_from_slice(b"\r\n\r\n");
    assert_eq!(request.len(), MAX_HEAD_BYTES);
    let mut log = run(&request, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(summary(&mut log), vec![ex("GET", "/", 200, 0)]);
}

#[test]
fn non_http_streams_go_passthrough_at_once() {
    let now = Instant::now();
    let mut log = HttpLog::new();
    log.on_request_bytes(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", now);
    assert!(log.is_passthrough());
    let mut log = HttpLog::new();
    log.on_request_bytes(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", now);
    assert!(log.is_passthrough());
    let mut log = HttpLog::new();
    log.on_request_bytes(b"GET / HTTP/1.1\r\n\r\n", now);
    log.on_response_bytes(b"SSH-2.0-OpenSSH", now);
    assert!(log.is_passthrough());
}

#[test]
fn response_without_request_is_passthrough() {
    let mut log = run(b"", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert!(log.is_passthrough());
    assert!(summary(&mut log).is_empty());
    // One response too many.
    let mut log = run(
        b"GET / HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(summary(&mut log), vec![ex("GET", "/", 200, 0)]);
    assert!(log.is_passthrough());
}

#[test]
fn too_many_pipelined_requests_is_passthrough() {
    let mut requests = Vec::new();
    for _ in 0..MAX_PENDING {
        requests.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
    }
    let mut log = HttpLog::new();
    log.on_request_bytes(&requests, Instant::now());
    assert!(!log.is_passthrough());
    log.on_request_bytes(b"GET / HTTP/1.1\r\n\r\n", Instant::now());
    assert!(log.is_passthrough());
}

#[test]
fn undrained_exchanges_are_bounded() {
    let now = Instant::now();
    let mut log = HttpLog::new();
    for _ in 0..MAX_COMPLETED + 5 {
        log.on_request_bytes(b"GET / HTTP/1.1\r\n\r\n", now);
        log.on_response_bytes(b"HTTP/1.1 204 No Content\r\n\r\n", now);
    }
    assert_eq!(log.dropped_exchanges(), 5);
    assert_eq!(log.drain().count(), MAX_COMPLETED);
    log.on_request_bytes(b"GET / HTTP/1.1\r\n\r\n", now);
    log.on_response_bytes(b"HTTP/1.1 204 No Content\r\n\r\n", now);
    assert_eq!(log.drain().count(), 1);
}

#[test]
fn path_is_sanitized_and_truncated() {
    let mut log = run(
        b"GET /a\x1b[31mred\x7f\x01/\xff\xfe/\xe2\x80\xaeevil HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(
        summary(&mut log),
        vec![ex("GET", "/a[31mred/\u{FFFD}\u{FFFD}/evil", 200, 0)]
    );

    let long = format!("/{}", "x".repeat(500));
    let request = format!("GET {long} HTTP/1.1\r\n\r\n");
    let mut log = run(
        request.as_bytes(),
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    let got = log.drain().next().unwrap();
    assert_eq!(got.path.chars().count(), MAX_PATH_CHARS + 1);
    assert!(got.path.ends_with(ELLIPSIS));
    assert!(long.starts_with(got.path.trim_end_matches(ELLIPSIS)));

    // Exactly at the limit: no marker.
    assert_eq!(sanitize("é".repeat(5).as_bytes(), 5), "é".repeat(5));
    assert_eq!(sanitize(b"abcdef", 5), format!("abcde{ELLIPSIS}"));
}

#[test]
fn duration_uses_the_supplied_instants() {
    let t0 = Instant::now();
    let ms = |n| t0 + Duration::from_millis(n);
    let mut log = HttpLog::new();
    // The head completes at 10 ms; the body is done at 80 ms.
    log.on_request_bytes(b"GET /slow HTTP/1.1\r\nHost:", ms(0));
    log.on_request_bytes(b" x\r\n\r\n", ms(10));
    log.on_response_bytes(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n", ms(50));
    log.on_response_bytes(b"ab", ms(60));
    log.on_response_bytes(b"cd", ms(80));
    let got: Vec<Exchange> = log.drain().collect();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].duration, Duration::from_millis(70));
    // Pipelined requests each start when their own head is seen.
    log.on_request_bytes(b"GET /1 HTTP/1.1\r\n\r\n", ms(100));
    log.on_request_bytes(b"GET /2 HTTP/1.1\r\n\r\n", ms(120));
    log.on_response_bytes(b"HTTP/1.1 204 No Content\r\n\r\n", ms(150));
    log.on_response_bytes(b"HTTP/1.1 204 No Content\r\n\r\n", ms(200));
    let durations: Vec<Duration> = log.drain().map(|e| e.duration).collect();
    assert_eq!(
        durations,
        vec![Duration::from_millis(50), Duration::from_millis(80)]
    );
    // A clock that goes backwards gives zero, not a panic.
    log.on_request_bytes(b"GET / HTTP/1.1\r\n\r\n", ms(300));
    log.on_response_bytes(b"HTTP/1.1 204 No Content\r\n\r\n", ms(200));
    assert_eq!(log.drain().next().unwrap().duration, Duration::ZERO);
}
