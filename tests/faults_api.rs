//! Faults of the Prime API, seen through `expose::Tunnel` (and once through the binary): slow,
//! hanging, failing, rate-limiting and nonsensical answers. Every case must end in bounded time
//! with a clear error, and no tunnel may be left registered when its creation succeeded but a
//! later step failed (a DELETE is sent).

mod common;

use expose::prime::{ClientOptions, PrimeClient, PrimeConfig, PrimeError};
use expose::testserver::{ServerConfig, TestServer};
use expose::{Tunnel, TunnelError};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "pk-faults-api-key-1f2e";
const FRP_TOKEN: &str = "frp-faults-token-3d4c";
const BINDING: &str = "bs-faults-binding-5b6a";
const ID: &str = "t-faults-0123456789";
const TIMEOUT: Duration = Duration::from_millis(400);

/// Short timeout, fast retries, no proxy from the environment.
fn options() -> ClientOptions {
    ClientOptions::default()
        .timeout(TIMEOUT)
        .backoff(Duration::from_millis(10), Duration::from_millis(40))
        .rate_limit_max_wait(Duration::from_millis(50))
        .rate_limit_default_wait(Duration::from_millis(10))
        .use_system_proxy(false)
}

fn api(base: &str) -> PrimeClient {
    PrimeClient::with_options(PrimeConfig::new(KEY, base), options()).unwrap()
}

/// Prime's engine settings, with steps short enough for tests.
fn fast_engine(cfg: &mut expose::frp::ClientConfig) {
    cfg.reconnect.base = Duration::from_millis(50);
    cfg.reconnect.max = Duration::from_millis(200);
    cfg.login_timeout = Duration::from_secs(1);
}

async fn start(base: &str, start_timeout: Duration) -> Result<Tunnel, TunnelError> {
    Tunnel::builder()
        .local_port(8765)
        .api(api(base))
        .start_timeout(start_timeout)
        .tune_frp(fast_engine)
        .start()
        .await
}

fn created(frps_port: u16) -> Value {
    json!({
        "tunnel_id": ID,
        "hostname": format!("{ID}.tunnel.test"),
        "url": format!("https://{ID}.tunnel.test"),
        "frp_token": FRP_TOKEN,
        "binding_secret": BINDING,
        "server_host": "127.0.0.1",
        "server_port": frps_port,
        "expires_at": "2099-01-01T00:00:00Z",
        "status": "pending",
    })
}

async fn frps() -> TestServer {
    TestServer::start(ServerConfig {
        token: FRP_TOKEN.into(),
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn count(api: &MockServer, verb: &str, p: &str) -> usize {
    api.received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.method.as_str() == verb && r.url.path() == p)
        .count()
}

const TUNNELS: &str = "/api/v1/tunnel";

fn one() -> String {
    format!("/api/v1/tunnel/{ID}")
}

async fn mount_create(api: &MockServer, response: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(TUNNELS))
        .respond_with(response)
        .mount(api)
        .await;
}

async fn mount_delete(api: &MockServer, response: ResponseTemplate) {
    Mock::given(method("DELETE"))
        .and(path(one()))
        .respond_with(response)
        .mount(api)
        .await;
}

fn assert_no_secrets(text: &str) {
    for s in [KEY, FRP_TOKEN, BINDING] {
        assert!(!text.contains(s), "secret {s:?} in {text}");
    }
}

// ---------------------------------------------------------------------------------------------
// Slow and hanging APIs

#[tokio::test]
async fn create_that_outlasts_the_timeout_fails_fast_and_is_not_resent() {
    let api = MockServer::start().await;
    mount_create(
        &api,
        ResponseTemplate::new(201)
            .set_body_json(created(9))
            .set_delay(Duration::from_secs(5)),
    )
    .await;
    let started = Instant::now();
    let err = start(&api.uri(), Duration::from_secs(5)).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(
            err,
            TunnelError::Api(PrimeError::Transport { timeout: true, .. })
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("no answer within 0.4 s"), "{msg}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    // A POST that may have been processed is never sent twice.
    assert_eq!(count(&api, "POST", TUNNELS).await, 1);
    assert_eq!(count(&api, "DELETE", &one()).await, 0);
}

/// A raw HTTP "server" that accepts, reads the request and then sends `prefix` and nothing
/// more, keeping the connection open.
async fn hanging_api(prefix: &'static [u8]) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let hits2 = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            hits2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(prefix).await;
                tokio::time::sleep(Duration::from_secs(60)).await;
            });
        }
    });
    (addr, hits)
}

#[tokio::test]
async fn api_that_hangs_before_or_during_its_answer_is_bounded() {
    for prefix in [
        &b""[..],
        b"HTTP/1.1 201 Created\r\n",
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 900\r\n\r\n{\"tunnel_id\": \"t-faults-0123456789\", \"frp_token\": \"",
    ] {
        let (addr, hits) = hanging_api(prefix).await;
        let started = Instant::now();
        let err = start(&format!("http://{addr}"), Duration::from_secs(5))
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert!(
            matches!(
                err,
                TunnelError::Api(PrimeError::Transport { timeout: true, .. })
            ),
            "after {:?}: {err:?}",
            String::from_utf8_lossy(prefix)
        );
        assert!(took < Duration::from_secs(2), "took {took:?}");
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1, "POST resent");
        assert_no_secrets(&err.to_string());
    }
}

#[tokio::test]
async fn get_and_delete_that_hang_are_retried_a_bounded_number_of_times() {
    let (addr, hits) = hanging_api(b"").await;
    let client = api(&format!("http://{addr}"));
    let started = Instant::now();
    let err = client.get_tunnel(ID).await.unwrap_err();
    assert!(
        matches!(err, PrimeError::Transport { timeout: true, .. }),
        "{err:?}"
    );
    let err = client.delete_tunnel(ID).await.unwrap_err();
    assert!(
        matches!(err, PrimeError::Transport { timeout: true, .. }),
        "{err:?}"
    );
    // Three attempts each (Prime's SDK rule), each bounded by the timeout.
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 6);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// 5xx and 429

#[tokio::test]
async fn server_errors_are_clear_and_the_post_is_not_resent() {
    for status in [500u16, 502, 503, 504] {
        let api = MockServer::start().await;
        mount_create(
            &api,
            ResponseTemplate::new(status)
                .set_body_raw("<html><h1>upstream is sad</h1></html>", "text/html"),
        )
        .await;
        let err = start(&api.uri(), Duration::from_secs(5)).await.unwrap_err();
        assert!(
            matches!(err, TunnelError::Api(PrimeError::Server { status: s, .. }) if s == status),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("Prime API server error (HTTP {status})")),
            "{msg}"
        );
        // The start of the body is quoted (it may be the only explanation), cleaned and short.
        assert!(msg.contains("upstream is sad"), "{msg}");
        assert!(!msg.chars().any(char::is_control), "{msg:?}");
        assert_eq!(count(&api, "POST", TUNNELS).await, 1);
        assert_eq!(count(&api, "DELETE", &one()).await, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_429_is_waited_out_and_the_tunnel_starts() {
    let srv = frps().await;
    let api = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TUNNELS))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .up_to_n_times(3)
        .with_priority(1)
        .mount(&api)
        .await;
    mount_create(
        &api,
        ResponseTemplate::new(201).set_body_json(created(srv.bind_addr().port())),
    )
    .await;
    mount_delete(&api, ResponseTemplate::new(204)).await;
    let tunnel = start(&api.uri(), Duration::from_secs(20)).await.unwrap();
    assert_eq!(tunnel.id(), ID);
    assert_eq!(count(&api, "POST", TUNNELS).await, 4);
    tunnel.close().await.unwrap();
    assert_eq!(count(&api, "DELETE", &one()).await, 1);
}

#[tokio::test]
async fn endless_429_gives_up_after_the_bounded_retries() {
    let api = MockServer::start().await;
    mount_create(
        &api,
        // An hour's Retry-After is capped (50 ms in these options, 10 s by default).
        ResponseTemplate::new(429).insert_header("retry-after", "3600"),
    )
    .await;
    let started = Instant::now();
    let err = start(&api.uri(), Duration::from_secs(5)).await.unwrap_err();
    assert!(
        matches!(
            err,
            TunnelError::Api(PrimeError::RateLimited { attempts: 4, .. })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("rate limited"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(count(&api, "POST", TUNNELS).await, 4);
}

// ---------------------------------------------------------------------------------------------
// Malformed answers

#[tokio::test]
async fn malformed_create_answers_are_clear_errors_and_leave_nothing_behind() {
    let mut missing_token = created(9);
    missing_token.as_object_mut().unwrap().remove("frp_token");
    let mut wrong_port_type = created(9);
    wrong_port_type["server_port"] = json!({"port": 7000});
    let huge = format!(
        "{{\"tunnel_id\": \"{ID}\", \"pad\": \"{}\"}}",
        "x".repeat(5 << 20)
    );
    // (body, content type, whether the id is readable so a DELETE must follow)
    let cases: Vec<(String, &str, bool)> = vec![
        ("{\"tunnel_id\": \"t-fau".into(), "application/json", false),
        ("<html>502 Bad Gateway</html>".into(), "text/html", false),
        ("[1, 2, 3]".into(), "application/json", false),
        (String::new(), "application/json", false),
        ("null".into(), "application/json", false),
        (huge, "application/json", false),
        (missing_token.to_string(), "application/json", true),
        (wrong_port_type.to_string(), "application/json", true),
    ];
    for (body, ctype, has_id) in cases {
        let api = MockServer::start().await;
        mount_create(
            &api,
            ResponseTemplate::new(201).set_body_raw(body.clone(), ctype),
        )
        .await;
        mount_delete(&api, ResponseTemplate::new(204)).await;
        let err = start(&api.uri(), Duration::from_secs(5)).await.unwrap_err();
        let shown: String = body.chars().take(40).collect();
        assert!(
            matches!(
                err,
                TunnelError::Api(PrimeError::UnexpectedResponse { status: 201, .. })
            ),
            "{shown:?}: {err:?}"
        );
        let msg = err.to_string();
        assert!(msg.len() < 600, "{shown:?}: error of {} bytes", msg.len());
        assert_no_secrets(&msg);
        assert_eq!(
            count(&api, "DELETE", &one()).await,
            usize::from(has_id),
            "{shown:?}: DELETE after an unusable create answer"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Created, then a later step fails: the tunnel is deleted

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_tunnel_server_times_out_and_deletes_the_tunnel() {
    let api = MockServer::start().await;
    let dead = common::dead_port().await;
    mount_create(
        &api,
        ResponseTemplate::new(201).set_body_json(created(dead)),
    )
    .await;
    mount_delete(&api, ResponseTemplate::new(204)).await;
    let started = Instant::now();
    let err = start(&api.uri(), Duration::from_millis(1500))
        .await
        .unwrap_err();
    assert!(matches!(err, TunnelError::StartTimeout(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(count(&api, "DELETE", &one()).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_tunnel_server_times_out_and_deletes_the_tunnel() {
    let srv = frps().await;
    srv.freeze();
    let api = MockServer::start().await;
    mount_create(
        &api,
        ResponseTemplate::new(201).set_body_json(created(srv.bind_addr().port())),
    )
    .await;
    mount_delete(&api, ResponseTemplate::new(204)).await;
    let started = Instant::now();
    let err = start(&api.uri(), Duration::from_millis(1500))
        .await
        .unwrap_err();
    assert!(matches!(err, TunnelError::StartTimeout(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(count(&api, "DELETE", &one()).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_proxy_deletes_the_tunnel() {
    let srv = frps().await;
    srv.set_new_proxy_hook(Some(Arc::new(|_| Err("tunnel not registered".into()))));
    let api = MockServer::start().await;
    mount_create(
        &api,
        ResponseTemplate::new(201).set_body_json(created(srv.bind_addr().port())),
    )
    .await;
    mount_delete(&api, ResponseTemplate::new(204)).await;
    let err = start(&api.uri(), Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TunnelError::Frp(expose::frp::Error::ProxyRejected { .. })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("tunnel not registered"), "{err}");
    assert_eq!(count(&api, "DELETE", &one()).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_or_hanging_delete_after_a_failed_start_is_bounded() {
    let dead = common::dead_port().await;
    // DELETE answers 503 (not retried) or hangs (retried twice, each bounded by the timeout).
    for (response, deletes) in [
        (ResponseTemplate::new(503), 1usize),
        (
            ResponseTemplate::new(204).set_delay(Duration::from_secs(30)),
            3usize,
        ),
    ] {
        let api = MockServer::start().await;
        mount_create(
            &api,
            ResponseTemplate::new(201).set_body_json(created(dead)),
        )
        .await;
        mount_delete(&api, response).await;
        let started = Instant::now();
        let err = start(&api.uri(), Duration::from_millis(500))
            .await
            .unwrap_err();
        // The caller learns why the start failed, not why the cleanup did.
        assert!(matches!(err, TunnelError::StartTimeout(_)), "{err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(count(&api, "DELETE", &one()).await, deletes);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_reports_a_failed_delete_after_closing_the_proxy() {
    let srv = frps().await;
    let api = MockServer::start().await;
    mount_create(
        &api,
        ResponseTemplate::new(201).set_body_json(created(srv.bind_addr().port())),
    )
    .await;
    mount_delete(&api, ResponseTemplate::new(503)).await;
    let tunnel = start(&api.uri(), Duration::from_secs(20)).await.unwrap();
    let err = tunnel.close().await.unwrap_err();
    assert!(
        matches!(
            err,
            TunnelError::Api(PrimeError::Server { status: 503, .. })
        ),
        "{err:?}"
    );
    srv.wait_for(
        |s| s.close_proxy_received(&format!("{ID}.{ID}")),
        Duration::from_secs(10),
    )
    .await
    .expect("CloseProxy before the DELETE");
    assert_eq!(count(&api, "DELETE", &one()).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_tunnel_is_deleted_in_the_background() {
    let srv = frps().await;
    let api = MockServer::start().await;
    mount_create(
        &api,
        ResponseTemplate::new(201).set_body_json(created(srv.bind_addr().port())),
    )
    .await;
    mount_delete(&api, ResponseTemplate::new(204)).await;
    let tunnel = start(&api.uri(), Duration::from_secs(20)).await.unwrap();
    drop(tunnel);
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(&api, "DELETE", &one()).await == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(count(&api, "DELETE", &one()).await, 1);
    srv.wait_for(
        |s| s.close_proxy_received(&format!("{ID}.{ID}")),
        Duration::from_secs(10),
    )
    .await
    .expect("CloseProxy from the dropped tunnel");
}

// ---------------------------------------------------------------------------------------------
// The binary

#[tokio::test]
async fn binary_reports_an_api_outage_in_one_clean_line() {
    let api = MockServer::start().await;
    mount_create(
        &api,
        ResponseTemplate::new(503).set_body_raw(
            "<html>\x1b[31mmaintenance\x1b[0m\r\nback soon</html>",
            "text/html",
        ),
    )
    .await;
    let home = tempfile::tempdir().unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_expose"))
            .arg("8765")
            .env_clear()
            .env("HOME", home.path())
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PRIME_API_BASE_URL", api.uri())
            .env("PRIME_API_KEY", KEY)
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let error_lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(error_lines.len(), 1, "{stderr}");
    assert!(
        error_lines[0].contains("Prime API server error (HTTP 503)"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\x1b'),
        "escape sequence printed: {stderr:?}"
    );
    assert!(
        !stderr.contains('\r'),
        "carriage return printed: {stderr:?}"
    );
    assert_no_secrets(&stderr);
    assert_no_secrets(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(count(&api, "POST", TUNNELS).await, 1);
}
