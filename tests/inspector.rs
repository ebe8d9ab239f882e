//! The local inspector end to end: the real `expose http` binary against the in-process test
//! frps and a local HTTP service; the JSON API, replay (as recorded and edited), secret
//! masking, `--no-inspect`, a taken port, `/metrics`; and the capture store's memory bound
//! under 10 000 requests with 1 MiB bodies.
#![cfg(unix)]

mod inspect_support;

use expose::capture::{CaptureStore, StoreLimits};
use expose::httplog::HttpLog;
use inspect_support::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

async fn get_json(url: &str) -> Value {
    let r = api().get(url).send().await.unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.json().await.unwrap()
}

/// Waits until the inspector lists `n` records; returns the list.
async fn wait_for(base: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = get_json(&format!("{base}/api/requests")).await["requests"]
            .as_array()
            .unwrap()
            .clone();
        if list.len() >= n {
            return list;
        }
        assert!(
            Instant::now() < deadline,
            "wanted {n} records, have {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn header<'a>(message: &'a Value, name: &str) -> Option<&'a str> {
    message["headers"]
        .as_array()?
        .iter()
        .find(|h| h[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .and_then(|h| h[1].as_str())
}

/// Checks every line of an OpenMetrics/Prometheus text exposition strictly and returns the
/// samples as `name{labels}` → value.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let is_name = |s: &str| {
        let mut c = s.chars();
        c.next()
            .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
            && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
    };
    let mut families: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "ends with # EOF");
    for line in &lines[..lines.len() - 1] {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name, value) = (parts.next(), parts.next(), parts.next());
            let name = name.unwrap_or_else(|| panic!("bad comment line {line:?}"));
            assert!(is_name(name), "bad family name in {line:?}");
            match kind {
                Some("TYPE") => {
                    let t = value.unwrap();
                    assert!(
                        ["counter", "gauge", "histogram", "info", "unknown"].contains(&t),
                        "{line:?}"
                    );
                    families.insert(name.to_owned(), t.to_owned());
                }
                Some("HELP") | Some("UNIT") => {}
                _ => panic!("unknown comment line {line:?}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, Some(l.strip_suffix('}').expect("labels end with }"))),
            None => (series, None),
        };
        assert!(is_name(name), "bad sample name in {line:?}");
        for label in labels.into_iter().flat_map(|l| l.split(',')) {
            let (k, v) = label.split_once('=').unwrap_or_else(|| panic!("{line:?}"));
            assert!(is_name(k), "bad label name in {line:?}");
            assert!(
                v.len() >= 2 && v.starts_with('"') && v.ends_with('"'),
                "{line:?}"
            );
        }
        let family = families
            .iter()
            .filter(|(f, _)| name.starts_with(f.as_str()))
            .max_by_key(|(f, _)| f.len())
            .unwrap_or_else(|| panic!("sample without a TYPE: {line:?}"));
        let suffix = &name[family.0.len()..];
        let allowed: &[&str] = match family.1.as_str() {
            "counter" => &["_total", "_created"],
            "histogram" => &["_bucket", "_sum", "_count", "_created"],
            _ => &[""],
        };
        assert!(allowed.contains(&suffix), "{name} in a {} family", family.1);
        assert!(name.starts_with("expose_"), "{name}");
        samples.insert(series.to_owned(), value);
    }
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_lists_details_masks_and_replays_and_metrics_count() {
    let srv = frps().await;
    let (local, served) = echo_service().await;
    let mut child = expose_http(&srv, local.port(), "insp", &["--inspect", "127.0.0.1:0"]);
    let ready = ready(&mut child).await;
    let base = ready["inspector"]
        .as_str()
        .expect("inspector URL in the ready event");
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");

    let (code, body) = through_tunnel(
        &srv,
        "insp",
        "POST",
        "/hook?x=1",
        &[
            ("Authorization", BEARER),
            ("Cookie", "sid=cookie-value-2"),
            ("Content-Type", "application/json"),
        ],
        r#"{"event":"push","n":[1,2]}"#,
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let list = wait_for(base, 1).await;
    let first = &list[0];
    assert_eq!(first["kind"], "http");
    assert_eq!(first["method"], "POST");
    assert_eq!(first["path"], "/hook?x=1");
    assert_eq!(first["status"], 201);
    assert_eq!(first["request_bytes"], 26);
    assert!(first["response_bytes"].as_u64().unwrap() > 0);

    let id = first["id"].as_u64().unwrap();
    let detail = get_json(&format!("{base}/api/requests/{id}")).await;
    let text = detail.to_string();
    assert!(
        !text.contains("s3cr3t") && !text.contains("cookie-value-2"),
        "{text}"
    );
    assert!(
        !text.contains("cookie-secret-9"),
        "Set-Cookie is masked: {text}"
    );
    assert_eq!(
        header(&detail["request"], "authorization"),
        Some("[masked]")
    );
    assert_eq!(header(&detail["response"], "set-cookie"), Some("[masked]"));
    assert_eq!(detail["request"]["start_line"], "POST /hook?x=1 HTTP/1.1");
    assert_eq!(detail["request"]["body"]["encoding"], "json");
    assert!(detail["request"]["body"]["text"]
        .as_str()
        .unwrap()
        .contains("\n  \"event\": \"push\""));
    assert_eq!(detail["response"]["body"]["encoding"], "json");
    assert!(!text.contains(TOKEN), "the frp token never shows");

    // Replay as recorded: the service sees the real (unmasked) credentials again.
    let before = served.load(std::sync::atomic::Ordering::SeqCst);
    let r = api()
        .post(format!("{base}/api/requests/{id}/replay"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let replayed: Value = r.json().await.unwrap();
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), before + 1);
    assert_eq!(replayed["status"], 201);
    assert!(replayed["id"].as_u64().unwrap() > id);
    let answer: Value =
        serde_json::from_str(replayed["response"]["body"]["text"].as_str().unwrap()).unwrap();
    assert_eq!(answer["method"], "POST");
    assert_eq!(
        answer["auth_ok"], true,
        "the mask stands for the recorded value"
    );
    assert_eq!(answer["body"], r#"{"event":"push","n":[1,2]}"#);

    // Edited: another method, path and body; the masked Authorization keeps its value.
    let edits = serde_json::json!({
        "method": "PUT",
        "path": "/edited",
        "headers": [["Authorization", "[masked]"], ["X-Edited", "yes"]],
        "body": "changed body",
    });
    let r = api()
        .post(format!("{base}/api/requests/{id}/replay"))
        .json(&edits)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let edited: Value = r.json().await.unwrap();
    let answer: Value =
        serde_json::from_str(edited["response"]["body"]["text"].as_str().unwrap()).unwrap();
    assert_eq!(answer["method"], "PUT");
    assert_eq!(answer["path"], "/edited");
    assert_eq!(answer["body"], "changed body");
    assert_eq!(answer["auth_ok"], true);
    assert_eq!(wait_for(base, 3).await.len(), 3, "replays are listed too");

    // Errors are JSON with a status.
    let r = api()
        .get(format!("{base}/api/requests/999999"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = api()
        .post(format!("{base}/api/requests/{id}/replay"))
        .body("{\"method\":\"G T\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Metrics parse, and move with traffic.
    let scrape = || async {
        let r = api().get(format!("{base}/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        parse_metrics(&r.text().await.unwrap())
    };
    let m1 = scrape().await;
    let requests = |m: &BTreeMap<String, f64>| m["expose_http_requests_total{proxy=\"insp\"}"];
    assert_eq!(requests(&m1), 1.0, "{m1:?}");
    assert_eq!(m1["expose_session_state{state=\"online\"}"], 1.0);
    assert!(m1["expose_to_local_bytes_total"] > 0.0);
    assert_eq!(
        m1["expose_http_request_duration_seconds_count{proxy=\"insp\"}"],
        1.0
    );
    assert_eq!(
        m1["expose_http_request_duration_seconds_bucket{le=\"+Inf\",proxy=\"insp\"}"], 1.0,
        "{m1:?}"
    );
    for _ in 0..3 {
        let (code, _) = through_tunnel(&srv, "insp", "GET", "/again", &[], "").await;
        assert_eq!(code, 201);
    }
    wait_for(base, 6).await;
    let m2 = scrape().await;
    assert_eq!(requests(&m2), 4.0);
    assert!(m2["expose_proxy_connections_total{proxy=\"insp\"}"] >= 4.0);
    assert!(m2["expose_proxy_from_local_bytes_total{proxy=\"insp\"}"] > 0.0);
    assert!(m2["expose_to_local_bytes_total"] > m1["expose_to_local_bytes_total"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_secrets_shows_the_values() {
    let srv = frps().await;
    let (local, _) = echo_service().await;
    let mut child = expose_http(
        &srv,
        local.port(),
        "shown",
        &["--inspect", "127.0.0.1:0", "--inspect-secrets"],
    );
    let ready = ready(&mut child).await;
    let base = ready["inspector"].as_str().unwrap();
    through_tunnel(&srv, "shown", "GET", "/", &[("Authorization", BEARER)], "").await;
    let id = wait_for(base, 1).await[0]["id"].as_u64().unwrap();
    let detail = get_json(&format!("{base}/api/requests/{id}")).await;
    assert_eq!(header(&detail["request"], "authorization"), Some(BEARER));
    assert_eq!(
        header(&detail["response"], "set-cookie"),
        Some("session=cookie-secret-9")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_inspect_serves_nothing() {
    let srv = frps().await;
    let (local, _) = echo_service().await;
    let mut child = expose_http(&srv, local.port(), "off", &["--no-inspect"]);
    let ready = ready(&mut child).await;
    assert!(ready["inspector"].is_null(), "{ready}");
    // The tunnel itself works as before.
    let (code, _) = through_tunnel(&srv, "off", "GET", "/", &[], "").await;
    assert_eq!(code, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_moves_to_the_next_free_one() {
    let srv = frps().await;
    let (local, _) = echo_service().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let wanted = format!("127.0.0.1:{port}");
    let mut child = expose_http(&srv, local.port(), "moved", &["--inspect", &wanted]);
    let ready = ready(&mut child).await;
    let url = ready["inspector"]
        .as_str()
        .expect("an inspector despite the taken port");
    let got: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    assert!(got > port && got <= port + 20, "{url} after {port}");
    // It is the inspector that answers there.
    let list = get_json(&format!("{url}/api/requests")).await;
    assert!(list["requests"].is_array());
    drop(taken);
}

/// 10 000 requests with 1 MiB bodies each way, recorded through the same observer the splice
/// uses: the store stays within its byte cap, recordings in flight give their budget back, and
/// the process does not grow by more than a few caps.
#[test]
fn memory_stays_bounded_under_ten_thousand_large_requests() {
    let limits = StoreLimits::default();
    let store = CaptureStore::new(limits);
    let rss_before = rss_bytes();
    let chunk = vec![b'x'; 64 * 1024];
    const BODY: usize = 1024 * 1024;
    let head = format!("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: {BODY}\r\n\r\n");
    let resp = format!("HTTP/1.1 200 OK\r\nContent-Length: {BODY}\r\n\r\n");
    let mut log = HttpLog::with_capture(store.capture_options());
    let now = Instant::now();
    let mut max_bytes = 0;
    for i in 0..10_000 {
        log.on_request_bytes(head.as_bytes(), now);
        for _ in 0..BODY / chunk.len() {
            log.on_request_bytes(&chunk, now);
        }
        log.on_response_bytes(resp.as_bytes(), now);
        for _ in 0..BODY / chunk.len() {
            log.on_response_bytes(&chunk, now);
        }
        for ex in log.drain() {
            store.push_exchange("p", "127.0.0.1:1", ex);
        }
        max_bytes = max_bytes.max(store.bytes());
        assert!(!log.is_passthrough(), "request {i} was followed");
    }
    let list = store.list();
    assert_eq!(
        list.last().unwrap().id,
        10_000,
        "every exchange was recorded"
    );
    assert!(
        max_bytes <= limits.max_bytes,
        "{max_bytes} > {}",
        limits.max_bytes
    );
    assert!(list.len() <= limits.max_records);
    assert_eq!(store.inflight_bytes(), 0, "no reservation left behind");
    let expose::capture::RecordKind::Http { captured, .. } = &list.last().unwrap().kind else {
        panic!("an http record");
    };
    assert_eq!(captured.request.body.bytes.len(), limits.body_limit);
    assert!(captured.request.body.truncated);
    assert_eq!(captured.request.body.total, BODY as u64);
    if let (Some(before), Some(after)) = (rss_before, rss_bytes()) {
        let grown = after.saturating_sub(before);
        assert!(
            grown < 3 * limits.max_bytes as u64,
            "RSS grew by {grown} bytes"
        );
    }
}

fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Bytes the observer cannot follow are counted and reported as passthrough, with the reason;
/// a websocket upgrade is one exchange (101) and then passthrough.
#[test]
fn unfollowed_bytes_are_reported_as_passthrough() {
    let store = CaptureStore::new(StoreLimits::default());
    let now = Instant::now();
    let mut log = HttpLog::with_capture(store.capture_options());
    log.on_request_bytes(b"\x16\x03\x01\x02\x00binary tls hello", now);
    log.on_request_bytes(b"more", now);
    log.on_response_bytes(b"answer!", now);
    log.on_close(now);
    let p = log.take_passthrough().expect("passthrough reported");
    assert!(p.reason.contains("not HTTP"), "{}", p.reason);
    assert_eq!((p.request_bytes, p.response_bytes), (4, 7));
    assert_eq!(log.drain().count(), 0);

    let mut log = HttpLog::with_capture(store.capture_options());
    log.on_request_bytes(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        now,
    );
    log.on_response_bytes(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi",
        now,
    );
    log.on_request_bytes(b"\x81\x82abcdxy", now);
    let ex: Vec<_> = log.drain().collect();
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].status, 101);
    let captured = ex[0].captured.as_ref().expect("recorded");
    assert!(captured.request.head.starts_with(b"GET /ws HTTP/1.1\r\n"));
    let p = log
        .take_passthrough()
        .expect("passthrough after the switch");
    assert!(p.reason.contains("switched"), "{}", p.reason);
    assert_eq!(p.request_bytes, 8);
    // Without capture nothing is counted or kept.
    let mut plain = HttpLog::new();
    plain.on_request_bytes(b"\x16\x03\x01", now);
    assert!(plain.take_passthrough().is_none());
    assert!(store.inflight_bytes() == 0);
}

/// Stdout lines of a frpc-mode child until one contains `needle` (30 s at most).
async fn frpc_lines_until(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    needle: &str,
) -> Vec<String> {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let hit = line.contains(needle);
            seen.push(line);
            if hit {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(found, "no {needle:?} in:\n{}", seen.join("\n"));
    seen
}

/// frpc mode stays a drop-in (no inspector, nothing new printed) unless `--inspect` asks; then
/// its http proxies are recorded and it logs where the inspector listens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frpc_mode_inspects_only_when_asked() {
    use tokio::io::AsyncBufReadExt as _;
    let srv = frps().await;
    let (local, _) = echo_service().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("frpc.toml");
    std::fs::write(
        &file,
        format!(
            "serverAddr = \"127.0.0.1\"\nserverPort = {}\nauth.token = \"{TOKEN}\"\n\n\
             [[proxies]]\nname = \"fr\"\ntype = \"http\"\nlocalPort = {}\nsubdomain = \"fr\"\n",
            srv.bind_addr().port(),
            local.port()
        ),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let spawn = |extra: &[&str]| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_expose"))
            .args(["frpc", "-c", file])
            .args(extra)
            .env_remove("EXPOSE_LOG")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };

    let mut plain = spawn(&[]);
    let mut lines = tokio::io::BufReader::new(plain.stdout.take().unwrap()).lines();
    let seen = frpc_lines_until(&mut lines, "start proxy success").await;
    assert!(
        !seen.iter().any(|l| l.contains("inspector")),
        "{}",
        seen.join("\n")
    );
    drop(plain);

    let mut child = spawn(&["--inspect", "127.0.0.1:0"]);
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let seen = frpc_lines_until(&mut lines, "start proxy success").await;
    let url = seen
        .iter()
        .find_map(|l| {
            l.split_once("inspector listen on ")
                .map(|(_, u)| u.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no inspector line in:\n{}", seen.join("\n")));
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let (code, _) = through_tunnel(&srv, "fr", "GET", "/from-frpc", &[], "").await;
    assert_eq!(code, 201);
    let list = wait_for(&url, 1).await;
    assert_eq!(list[0]["proxy"], "fr");
    assert_eq!(list[0]["path"], "/from-frpc");
}

/// A raw HTTP/1.1 request to the inspector with the given extra head lines; returns the status.
async fn raw_status(base: &str, method: &str, path: &str, head: &str) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req =
        format!("{method} {path} HTTP/1.1\r\n{head}Content-Length: 0\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut resp))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&resp)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Other web pages cannot use the inspector through the user's browser: a DNS name other than
/// localhost in Host (rebinding) and a replay from another origin are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_requests_are_refused() {
    let srv = frps().await;
    let (local, served) = echo_service().await;
    let mut child = expose_http(&srv, local.port(), "xsite", &["--inspect", "127.0.0.1:0"]);
    let ready = ready(&mut child).await;
    let base = ready["inspector"].as_str().unwrap();
    let host = base.trim_start_matches("http://");
    through_tunnel(&srv, "xsite", "GET", "/", &[], "").await;
    let id = wait_for(base, 1).await[0]["id"].as_u64().unwrap();
    let list = "/api/requests";
    assert_eq!(
        raw_status(base, "GET", list, &format!("Host: {host}\r\n")).await,
        200
    );
    assert_eq!(
        raw_status(base, "GET", list, "Host: localhost:4040\r\n").await,
        200
    );
    assert_eq!(
        raw_status(base, "GET", list, "Host: evil.example:4040\r\n").await,
        403
    );
    let replay = format!("/api/requests/{id}/replay");
    let before = served.load(std::sync::atomic::Ordering::SeqCst);
    let evil = format!("Host: {host}\r\nOrigin: http://evil.example\r\n");
    assert_eq!(raw_status(base, "POST", &replay, &evil).await, 403);
    assert_eq!(
        served.load(std::sync::atomic::Ordering::SeqCst),
        before,
        "not replayed"
    );
    let own = format!("Host: {host}\r\nOrigin: http://{host}\r\n");
    assert_eq!(raw_status(base, "POST", &replay, &own).await, 200);
}

/// Recordings still in flight share one budget: pipelined requests beyond it are kept
/// truncated, and every reservation comes back when the exchanges complete.
#[test]
fn the_in_flight_budget_truncates_and_is_given_back() {
    let mut limits = StoreLimits::default();
    limits.inflight_bytes = 2000;
    let store = CaptureStore::new(limits);
    let now = Instant::now();
    let mut log = HttpLog::with_capture(store.capture_options());
    let body = "b".repeat(800);
    let req = format!("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 800\r\n\r\n{body}");
    for _ in 0..3 {
        log.on_request_bytes(req.as_bytes(), now);
    }
    assert!(store.inflight_bytes() <= 2000, "{}", store.inflight_bytes());
    assert!(store.inflight_bytes() > 0);
    for _ in 0..3 {
        log.on_response_bytes(b"HTTP/1.1 204 No Content\r\n\r\n", now);
    }
    let ex: Vec<_> = log.drain().collect();
    assert_eq!(ex.len(), 3);
    let kept: Vec<_> = ex
        .iter()
        .map(|e| e.captured.as_ref().unwrap().request.body.clone())
        .collect();
    assert_eq!(kept[0].bytes.len(), 800);
    assert!(!kept[0].truncated);
    assert!(kept[2].truncated, "the third did not fit the budget");
    assert!(kept.iter().all(|b| b.total == 800));
    assert_eq!(store.inflight_bytes(), 0, "given back on completion");
    // A connection that ends mid-request gives its reservation back too.
    let mut cut = HttpLog::with_capture(store.capture_options());
    cut.on_request_bytes(&req.as_bytes()[..200], now);
    assert!(store.inflight_bytes() > 0);
    cut.on_close(now);
    drop(cut);
    assert_eq!(store.inflight_bytes(), 0);
}
