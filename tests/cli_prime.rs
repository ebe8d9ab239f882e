//! The real `expose` binary against a mock Prime API (wiremock, real HTTP on loopback) that hands
//! out credentials for the in-repo test frps.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Child;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

/// Reads JSON lines from the child's stdout until one with `event == want`.
async fn next_event(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    want: &str,
) -> Value {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("stdout ended before a {want} event"));
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
            if v["event"] == want {
                return v;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {want} event"))
}

async fn stderr_of(child: &mut Child) -> String {
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut s).await;
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expose_port_serves_traffic_and_cleans_up_on_ctrl_c() {
    let env = Env::new().await;
    let srv = frps().await;
    env.mount_create(201, created_body(&srv, Duration::from_secs(3600)))
        .await;
    env.mount_delete().await;
    let web = http_server().await;

    let mut child = env
        .command(&["--json", "-vvv", &web.port().to_string()], true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = next_event(&mut lines, "ready").await;
    assert_eq!(ready["url"], format!("https://{TUNNEL_ID}.tunnel.test"));
    assert_eq!(ready["id"], TUNNEL_ID);
    assert!(ready["expires_at"].as_str().unwrap().ends_with('Z'));

    // Prime's settings on the wire: user = tunnel id, binding secret in metas, pool 10,
    // proxy `<id>.<id>` with subdomain `<id>`.
    let state = srv.snapshot();
    let login = &state.logins[0].login;
    assert_eq!(login.user, TUNNEL_ID);
    assert_eq!(login.pool_count, 10);
    let proxy_name = format!("{TUNNEL_ID}.{TUNNEL_ID}");
    assert_eq!(state.proxies[&proxy_name].proxy_type, "http");
    assert_eq!(
        state.counters.tls_connections, 1,
        "TLS on, one mux connection"
    );

    let (status, body) = http_get(
        srv.vhost_http_addr(),
        &format!("{TUNNEL_ID}.tunnel.test"),
        "/x",
    )
    .await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.starts_with("hello /x"), "{body}");
    let request = next_event(&mut lines, "request").await;
    assert_eq!(request["method"], "GET");
    assert_eq!(request["path"], "/x");
    assert_eq!(request["status"], 200);
    // The inspector is on by default for `expose <PORT>` (4040 or the next free port) and has
    // recorded the request.
    let inspector = ready["inspector"].as_str().expect("an inspector URL");
    assert!(inspector.starts_with("http://127.0.0.1:"), "{inspector}");
    let list: Value = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{inspector}/api/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["requests"][0]["path"], "/x", "{list}");

    interrupt(&child);
    let closed = next_event(&mut lines, "closed").await;
    assert_eq!(closed["ok"], true);
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        srv.snapshot().close_proxy_received(&proxy_name),
        "CloseProxy sent"
    );
    assert_eq!(
        env.requests("DELETE", &format!("/api/v1/tunnel/{TUNNEL_ID}"))
            .await,
        1
    );
    let stderr = stderr_of(&mut child).await;
    assert!(
        stderr.contains("TRACE") || stderr.contains("DEBUG"),
        "verbose logs expected"
    );
    assert_no_secrets(&stderr);
    // Every stdout line was JSON (next_event asserts that for each line it read).
    while let Ok(Some(line)) = lines.next_line().await {
        serde_json::from_str::<Value>(&line).expect("only JSON on stdout");
        assert_no_secrets(&line);
    }
}

#[tokio::test]
async fn bad_ports_are_usage_errors_without_api_calls() {
    let env = Env::new().await;
    for bad in ["0", "70000", "abc"] {
        let (code, _out, err) = env.run(&[bad], true).await;
        assert_eq!(code, 2, "port {bad}: {err}");
        assert!(err.contains("port") || err.contains("65535"), "{err}");
    }
    assert!(env.api.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn missing_api_key_says_how_to_set_one() {
    let env = Env::new().await;
    let (code, _out, err) = env.run(&["8765"], false).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("PRIME_API_KEY"), "{err}");
    assert!(env.api.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn api_errors_map_to_exit_codes() {
    let cases: [(u16, Value, i32, &str); 4] = [
        (401, json!({"detail": "Invalid API key"}), 3, "unauthorized"),
        (402, json!({"detail": "Payment required"}), 3, "ayment"),
        (
            400,
            json!({"detail": "You have reached the maximum number of tunnels (5)"}),
            4,
            "maximum number of",
        ),
        (
            422,
            json!({"detail": [{"loc": ["body", "local_port"], "msg": "must be <= 65535", "type": "x"}]}),
            1,
            "local_port",
        ),
    ];
    for (status, body, want, text) in cases {
        let env = Env::new().await;
        env.mount_create(status, body).await;
        let (code, out, err) = env.run(&["8765"], true).await;
        assert_eq!(code, want, "HTTP {status}: {err}");
        assert!(
            err.to_lowercase().contains(&text.to_lowercase()),
            "HTTP {status}: {err}"
        );
        assert_no_secrets(&out);
        assert_no_secrets(&err);
    }
}

#[tokio::test]
async fn rate_limited_exits_4() {
    let env = Env::new().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/tunnel"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .mount(&env.api)
        .await;
    let (code, _out, err) = env.run(&["8765"], true).await;
    assert_eq!(code, 4, "{err}");
}

#[tokio::test]
async fn malformed_api_answers_are_readable_errors() {
    for (ctype, body) in [
        ("application/json", "{\"tunnel_id\": "),
        (
            "text/html",
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
        ),
    ] {
        let env = Env::new().await;
        Mock::given(method("POST"))
            .and(path("/api/v1/tunnel"))
            .respond_with(ResponseTemplate::new(201).set_body_raw(body, ctype))
            .mount(&env.api)
            .await;
        let (code, _out, err) = env.run(&["8765"], true).await;
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains("error: could not start the tunnel: unexpected response from the API"),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_login_deletes_the_tunnel_and_exits_5() {
    let env = Env::new().await;
    let srv = frps().await;
    let mut body = created_body(&srv, Duration::from_secs(3600));
    body["binding_secret"] = json!("bs-SECRET-wrong");
    env.mount_create(201, body).await;
    env.mount_delete().await;
    let (code, out, err) = env.run(&["8765"], true).await;
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("invalid binding secret"), "{err}");
    assert_eq!(
        env.requests("DELETE", &format!("/api/v1/tunnel/{TUNNEL_ID}"))
            .await,
        1
    );
    assert!(!err.contains("bs-SECRET-wrong") && !out.contains("bs-SECRET-wrong"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_warns_and_visitors_get_502() {
    let env = Env::new().await;
    let srv = frps().await;
    env.mount_create(201, created_body(&srv, Duration::from_secs(3600)))
        .await;
    env.mount_delete().await;
    let port = dead_port().await;
    let mut child = env
        .command(&["--json", &port.to_string()], true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let warning = next_event(&mut lines, "warning").await;
    assert!(warning["message"]
        .as_str()
        .unwrap()
        .contains(&port.to_string()));
    next_event(&mut lines, "ready").await;
    let (status, body) = http_get(
        srv.vhost_http_addr(),
        &format!("{TUNNEL_ID}.tunnel.test"),
        "/",
    )
    .await;
    assert_eq!(status, "HTTP/1.1 502 Bad Gateway");
    assert!(body.contains(&format!("127.0.0.1:{port}")));
    interrupt(&child);
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_is_announced_and_ends_the_tunnel_non_zero() {
    let env = Env::new().await;
    let srv = frps().await;
    env.mount_create(201, created_body(&srv, Duration::from_secs(4)))
        .await;
    env.mount_delete().await;
    let web = http_server().await;
    let mut child = env
        .command(&["--json", &web.port().to_string()], true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    next_event(&mut lines, "ready").await;
    let warn = next_event(&mut lines, "expiring").await;
    assert!(warn["seconds_left"].as_u64().unwrap() <= 300);
    let closed = next_event(&mut lines, "closed").await;
    assert_eq!(closed["reason"], "expired");
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        env.requests("DELETE", &format!("/api/v1/tunnel/{TUNNEL_ID}"))
            .await,
        1
    );
}

fn info(id: &str, status: &str) -> Value {
    json!({
        "tunnel_id": id, "hostname": format!("{id}.tunnel.test"), "url": format!("https://{id}.tunnel.test"),
        "status": status, "local_port": 8765, "labels": ["a"], "created_at": "2026-11-28T10:00:00Z",
        "expires_at": "2099-01-01T00:00:00Z", "user_id": "u", "name": "n"
    })
}

#[tokio::test]
async fn list_status_and_stop() {
    let env = Env::new().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/tunnel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "tunnels": [info("t-a", "connected"), info("t-b", "EXPIRED")],
            "total": 2, "page": 1, "per_page": 50, "has_next": false
        })))
        .mount(&env.api)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/tunnel/t-a"))
        .respond_with(ResponseTemplate::new(200).set_body_json(info("t-a", "connected")))
        .mount(&env.api)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/tunnel/t-zz"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"detail": "not found"})))
        .mount(&env.api)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/api/v1/tunnel"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"succeeded": ["t-a"], "failed": []})),
        )
        .mount(&env.api)
        .await;

    let (code, out, err) = env.run(&["list", "--json"], true).await;
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["tunnels"].as_array().unwrap().len(), 2);
    assert_eq!(v["tunnels"][1]["status"], "expired");

    let (code, out, _) = env.run(&["list"], true).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("t-a") && out.contains("connected") && out.contains("URL"),
        "{out}"
    );

    let (code, out, _) = env.run(&["status", "t-a", "--json"], true).await;
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(out.trim()).unwrap()["id"],
        "t-a"
    );

    let (code, _, err) = env.run(&["status", "t-zz"], true).await;
    assert_eq!(code, 1);
    assert!(err.contains("not found"), "{err}");

    // --all deletes the live ones only (t-b is expired).
    let (code, out, err) = env.run(&["stop", "--all", "--json"], true).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(out.trim()).unwrap()["deleted"][0],
        "t-a"
    );
    let bulk = env
        .api
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.method.as_str() == "DELETE")
        .unwrap();
    let body: Value = serde_json::from_slice(&bulk.body).unwrap();
    assert_eq!(body["tunnel_ids"], json!(["t-a"]));

    let (code, _, err) = env.run(&["stop"], true).await;
    assert_eq!(code, 2, "{err}");
}

const AUTH_USER: &str = "alice";
const AUTH_PASSWORD: &str = "pw-SECRET-once-5a7c";

/// Runs `expose PORT --auth alice` (plus `extra` arguments) against an API whose create answer
/// carries the generated password (and the user when `echo_user`), until `ready_marker` is on
/// stdout; then stops it with Ctrl-C and returns (stdout, stderr).
async fn run_with_basic_auth(
    extra: &[&str],
    echo_user: bool,
    ready_marker: &str,
) -> (String, String) {
    let env = Env::new().await;
    let srv = frps().await;
    let mut body = created_body(&srv, Duration::from_secs(3600));
    body["http_password"] = json!(AUTH_PASSWORD);
    if echo_user {
        body["http_user"] = json!(AUTH_USER);
    }
    env.mount_create(201, body).await;
    env.mount_delete().await;
    let web = http_server().await;
    let port = web.port().to_string();
    let mut args = vec!["-vvv", "--auth", AUTH_USER, port.as_str()];
    args.extend_from_slice(extra);
    let mut child = env.command(&args, true).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stdout = String::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            stdout.push_str(&line);
            stdout.push('\n');
            if line.contains(ready_marker) {
                return;
            }
        }
        panic!("stdout ended before {ready_marker:?}:\n{stdout}");
    })
    .await
    .unwrap_or_else(|_| panic!("no {ready_marker:?} on stdout"));
    interrupt(&child);
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    while let Ok(Some(line)) = lines.next_line().await {
        stdout.push_str(&line);
        stdout.push('\n');
    }
    (stdout, stderr_of(&mut child).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_time_password_is_in_the_json_ready_event_only() {
    let (stdout, stderr) = run_with_basic_auth(&["--json"], true, "\"ready\"").await;
    let mut ready = None;
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).expect("only JSON on stdout");
        if v["event"] == "ready" {
            ready = Some(v);
        } else {
            assert!(
                !line.contains(AUTH_PASSWORD),
                "password outside ready: {line}"
            );
        }
    }
    let ready = ready.expect("a ready event");
    assert_eq!(ready["http_user"], AUTH_USER);
    assert_eq!(ready["http_password"], AUTH_PASSWORD);
    assert_eq!(stdout.matches(AUTH_PASSWORD).count(), 1, "{stdout}");
    // Logs at trace level carry neither the password nor any other secret.
    assert!(stderr.contains("TRACE") || stderr.contains("DEBUG"));
    assert!(
        !stderr.contains(AUTH_PASSWORD),
        "password logged:\n{stderr}"
    );
    assert_no_secrets(&stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_time_password_is_in_the_banner_even_without_the_user_echoed() {
    // The API may leave `http_user` out of its answer: the banner names the user we asked for.
    let (stdout, stderr) = run_with_basic_auth(&[], false, "Basic auth").await;
    let line = stdout
        .lines()
        .find(|l| l.contains("Basic auth"))
        .expect("a basic-auth line in the banner");
    assert!(
        line.contains(AUTH_USER) && line.contains(AUTH_PASSWORD),
        "{line}"
    );
    assert_eq!(stdout.matches(AUTH_PASSWORD).count(), 1, "{stdout}");
    assert!(
        !stderr.contains(AUTH_PASSWORD),
        "password logged:\n{stderr}"
    );
    assert_no_secrets(&stderr);
}

#[tokio::test]
async fn list_of_an_endless_account_stops_at_its_bound_and_says_what_was_cut() {
    let env = Env::new().await;
    let page: Vec<Value> = (0..50)
        .map(|i| info(&format!("t-{i}"), "connected"))
        .collect();
    Mock::given(method("GET"))
        .and(path("/api/v1/tunnel"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"tunnels": page, "per_page": 50, "has_next": true})),
        )
        .mount(&env.api)
        .await;

    let (code, out, err) = env.run(&["list", "--json"], true).await;
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        v["tunnels"].as_array().unwrap().len(),
        expose::prime::DEFAULT_LIST_MAX_ENTRIES
    );
    assert_eq!(v["truncated"]["reason"], "max_entries");
    assert!(v["truncated"]["message"]
        .as_str()
        .unwrap()
        .contains("more exist"));

    let (code, out, err) = env.run(&["list"], true).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("t-49"), "{out}");
    assert!(
        err.contains("warning: the list stops at 10000 tunnels"),
        "{err}"
    );
}
