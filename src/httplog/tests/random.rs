//! Random and mutated input never panics and never breaks the bounds.

use super::*;

/// Bytes that are mostly HTTP-shaped messages, so random inputs get deep into the state
/// machine: start lines, framing fields, blank lines and body-like pieces, in random order
/// and with random bytes sprinkled in.
fn random_http_ish(rng: &mut XorShift, requests: bool, len: usize) -> Vec<u8> {
    const REQUEST_LINES: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\n",
        b"HEAD /h HTTP/1.1\r\n",
        b"POST /p HTTP/1.0\n",
        b"CONNECT a:1 HTTP/1.1\r\n",
    ];
    const STATUS_LINES: &[&[u8]] = &[
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/1.1 101 S\r\n",
        b"HTTP/1.1 100 C\r\n",
        b"HTTP/1.0 304 N\n",
        b"HTTP/1.1 204\r\n",
    ];
    const FIELDS: &[&[u8]] = &[
        b"Content-Length: 3\r\n",
        b"content-length: 0\n",
        b"Content-Length: 18446744073709551615\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: gzip\r\n",
        b"Upgrade: x\r\n",
        b"Host: h\r\n",
    ];
    const BODIES: &[&[u8]] = &[
        b"abc",
        b"3\r\nabc\r\n",
        b"5;e=1\r\nhello\n",
        b"0\r\n\r\n",
        b"0\r\nT: 1\r\n\n",
        b"ffffffffffffffff\r\n",
        b"\r\n",
    ];
    let pick = |rng: &mut XorShift, from: &[&'static [u8]]| from[rng.below(from.len())];
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let mut pieces = vec![pick(
            rng,
            if requests {
                REQUEST_LINES
            } else {
                STATUS_LINES
            },
        )];
        for _ in 0..rng.below(3) {
            pieces.push(pick(rng, FIELDS));
        }
        pieces.push(if rng.below(2) == 0 { b"\r\n" } else { b"\n" });
        for _ in 0..rng.below(3) {
            pieces.push(pick(rng, BODIES));
        }
        for piece in pieces {
            if rng.below(30) == 0 {
                out.push(rng.next() as u8);
            }
            out.extend_from_slice(piece);
        }
    }
    out
}

#[test]
fn random_input_never_panics() {
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let start = Instant::now();
    let mut reported = 0;
    for round in 0..3000 {
        let mut log = HttpLog::new();
        let requests = if round % 3 == 0 {
            (0..rng.below(600)).map(|_| rng.next() as u8).collect()
        } else {
            let len = rng.below(600);
            random_http_ish(&mut rng, true, len)
        };
        let len = rng.below(600);
        let responses = random_http_ish(&mut rng, false, len);
        let mut req = random_chunks(&mut rng, &requests, 64).into_iter();
        let mut resp = random_chunks(&mut rng, &responses, 64).into_iter();
        let mut t = 0;
        loop {
            t += rng.below(5) as u64;
            let now = start + Duration::from_millis(t);
            let next = if rng.below(3) != 0 {
                req.next().map(|c| (true, c))
            } else {
                resp.next().map(|c| (false, c))
            };
            match next {
                Some((true, c)) => log.on_request_bytes(c, now),
                Some((false, c)) => log.on_response_bytes(c, now),
                None if req.len() == 0 && resp.len() == 0 => break,
                None => {}
            }
            for e in log.drain() {
                reported += 1;
                assert!(e.path.chars().count() <= MAX_PATH_CHARS + 1);
                assert!(e.path.chars().all(|c| !c.is_control()));
                assert!((100..1000).contains(&e.status));
            }
            assert!(log.req.head.lines.buf.capacity() <= 2 * MAX_HEAD_BYTES);
            assert!(log.resp.head.lines.buf.capacity() <= 2 * MAX_HEAD_BYTES);
            assert!(log.pending.len() <= MAX_PENDING);
        }
        log.on_close(start);
        reported += log.drain().count();
        assert!(log.is_passthrough());
    }
    // The inputs are HTTP-shaped enough to get past the first head now and then.
    assert!(reported > 100);
}

#[test]
fn mutated_valid_traffic_never_panics() {
    let mut rng = XorShift(0xDEAD_BEEF_CAFE_F00D);
    let now = Instant::now();
    let mut reported = 0;
    for _ in 0..3000 {
        let mut requests = KEEP_ALIVE_REQUESTS.to_vec();
        let mut responses = [KEEP_ALIVE_RESPONSES, CHUNKED_RESPONSES].concat();
        for _ in 0..1 + rng.below(4) {
            let target = if rng.below(2) == 0 {
                &mut requests
            } else {
                &mut responses
            };
            let i = rng.below(target.len());
            match rng.below(3) {
                0 => target[i] = rng.next() as u8,
                1 => {
                    target.remove(i);
                }
                _ => target.insert(i, rng.next() as u8),
            }
        }
        let mut log = HttpLog::new();
        for c in random_chunks(&mut rng, &requests, 32) {
            log.on_request_bytes(c, now);
        }
        for c in random_chunks(&mut rng, &responses, 32) {
            log.on_response_bytes(c, now);
        }
        log.on_close(now);
        let n = log.drain().count();
        assert!(n <= 5);
        reported += n;
    }
    // Most single mutations leave at least the first exchange intact.
    assert!(reported > 1000);
}

#[test]
fn is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<HttpLog>();
}
