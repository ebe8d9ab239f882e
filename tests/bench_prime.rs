//! `expose bench --prime --quick --json` with the real binary against a mock Prime API and the
//! in-repo test frps: every phase runs through the tunnel's URL (reached with `--resolve`, as
//! the tunnel server's HTTP vhost is on a loopback port), and the tunnel is deleted whether the
//! run succeeds or fails. Speed is never asserted.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

/// The bench's tunnel: the mock API's answer points at the test server's vhost with a plain
/// `http://` URL on its port; the returned `--resolve` entry maps its host to loopback.
fn tunnel_body(srv: &expose::testserver::TestServer) -> (Value, String) {
    let port = srv.vhost_http_addr().port();
    let host = format!("{TUNNEL_ID}.tunnel.test");
    let mut body = created_body(srv, Duration::from_secs(3600));
    body["url"] = json!(format!("http://{host}:{port}"));
    (body, format!("{host}:{port}:127.0.0.1"))
}

async fn bench(env: &Env, resolve: &str) -> (i32, String, String) {
    let args = [
        "bench",
        "--prime",
        "--quick",
        "--json",
        "--resolve",
        resolve,
    ];
    let out = tokio::time::timeout(Duration::from_secs(180), env.command(&args, true).output())
        .await
        .expect("the bench finished in time")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_json_run_through_the_tunnel_url_then_deletes_it() {
    let env = Env::new().await;
    let srv = frps().await;
    let (body, resolve) = tunnel_body(&srv);
    env.mount_create(201, body).await;
    env.mount_delete().await;

    let (code, stdout, stderr) = bench(&env, &resolve).await;
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert_no_secrets(&stdout);
    assert_no_secrets(&stderr);
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one JSON object on stdout: {stdout}");
    let r: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(r["tunnel_id"], TUNNEL_ID);
    assert_eq!(r["quick"], true);
    assert_eq!(r["resolved"], true);
    let phases = r["phases"].as_array().unwrap();
    let names: Vec<&str> = phases.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["small", "download", "upload"]);
    for p in phases {
        for side in ["direct", "tunnel"] {
            let m = &p[side];
            assert!(num(m, "requests") > 0.0, "{side}: {p}");
            assert!(num(m, "bytes") > 0.0, "{side}: {p}");
            assert!(num(m, "bytes_per_sec") > 0.0, "{side}: {p}");
            assert!(num(&m["latency"], "p99_us") > 0.0, "{side}: {p}");
            assert_eq!(m["errors"]["total"], 0, "{side}: {p}");
        }
        assert!(num(p, "ratio") > 0.0, "{p}");
    }
    assert_eq!(phases[2]["method"], "POST");
    // The requests really went through the tunnel: the test server's vhost saw them.
    assert!(srv.snapshot().counters.user_conns > 0);
    if cfg!(target_os = "linux") {
        assert!(num(&r["client"], "idle_rss_bytes") > 0.0, "{r}");
        assert!(num(&r["client"], "peak_rss_bytes") > 0.0, "{r}");
    }
    assert_eq!(
        env.requests("DELETE", &format!("/api/v1/tunnel/{TUNNEL_ID}"))
            .await,
        1,
        "the tunnel is deleted once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tunnel_the_client_cannot_log_in_to_is_deleted_and_the_bench_fails() {
    let env = Env::new().await;
    let srv = frps().await;
    let (mut body, resolve) = tunnel_body(&srv);
    body["binding_secret"] = json!("bs-SECRET-wrong");
    env.mount_create(201, body).await;
    env.mount_delete().await;

    let (code, stdout, stderr) = bench(&env, &resolve).await;
    // The client's own exit code: refused by the tunnel server.
    assert_eq!(code, 5, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.trim().is_empty(), "no report: {stdout}");
    assert!(stderr.contains("invalid binding secret"), "{stderr}");
    assert!(!stderr.contains("bs-SECRET-wrong"), "{stderr}");
    assert_no_secrets(&stderr);
    assert_eq!(
        env.requests("DELETE", &format!("/api/v1/tunnel/{TUNNEL_ID}"))
            .await,
        1,
        "the half-created tunnel is deleted"
    );
}

#[tokio::test]
async fn without_an_api_key_nothing_starts() {
    let env = Env::new().await;
    let out = env
        .command(&["bench", "--prime", "--quick"], false)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("PRIME_API_KEY"), "{stderr}");
    assert!(env.api.received_requests().await.unwrap().is_empty());
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_mid_run_deletes_the_tunnel() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let env = Env::new().await;
    let srv = frps().await;
    let (body, resolve) = tunnel_body(&srv);
    env.mount_create(201, body).await;
    env.mount_delete().await;
    let args = [
        "bench",
        "--prime",
        "--duration",
        "60",
        "--resolve",
        &resolve,
    ];
    let mut child = env.command(&args, true).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("small: direct") {
                return;
            }
        }
        panic!("stderr ended first:\n{seen}");
    })
    .await
    .unwrap_or_else(|_| panic!("no phase started:\n{seen}"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    interrupt(&child);
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("the bench ended after Ctrl-C")
        .unwrap();
    while let Ok(Some(line)) = lines.next_line().await {
        seen.push_str(&line);
        seen.push('\n');
    }
    assert_eq!(status.code(), Some(1), "{seen}");
    assert!(seen.contains("interrupted"), "{seen}");
    assert_no_secrets(&seen);
    assert_eq!(
        env.requests("DELETE", &format!("/api/v1/tunnel/{TUNNEL_ID}"))
            .await,
        1,
        "{seen}"
    );
}
