//! Security of the whole program, through the real binary:
//! - a full session at trace level (every crate's logs, not only ours), with basic auth, a
//!   lost and re-established session, and a failed DELETE, then a rejected login: no secret
//!   ever reaches stdout or stderr (the one-time basic-auth password only in its banner line);
//! - nothing is written to disk;
//! - hostile API answers (terminal escapes, CRLF, bogus host names) are refused with a clean
//!   error and nothing printed raw;
//! - hostile tunnel-server texts (proxy errors, login errors, addresses, run ids) never reach
//!   the terminal raw.
//!
//! `tests/cli_prime.rs` covers the happy path at `-vvv`; this file adds the other secrets, the
//! error paths and the hostile inputs.

mod common;

use common::*;
use expose::proto::crypto::{Decryptor, Encryptor, Key};
use expose::proto::frame::encode_to_vec;
use expose::proto::msg::{LoginResp, NewProxyResp, Pong};
use expose::proto::{decode_frame, Message};
use expose::testserver::{ServerConfig, TestServer};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const API_KEY: &str = "pk-SECURITY-api-key-0a9b";
const FRP_TOKEN: &str = "frp-SECURITY-token-8c7d";
const BINDING: &str = "bs-SECURITY-binding-6e5f";
const PASSWORD: &str = "pw-SECURITY-password-4a3b";
const ID: &str = "t-security-0123456789";

// ---------------------------------------------------------------------------------------------
// Helpers

struct Env {
    home: tempfile::TempDir,
    cwd: tempfile::TempDir,
    api: MockServer,
}

impl Env {
    async fn new() -> Env {
        Env {
            home: tempfile::tempdir().unwrap(),
            cwd: tempfile::tempdir().unwrap(),
            api: MockServer::start().await,
        }
    }

    /// The binary with a clean environment; `EXPOSE_LOG=trace` turns on every crate's logs.
    fn command(&self, args: &[&str], trace_everything: bool) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_expose"));
        cmd.args(args)
            .env_clear()
            .env("HOME", self.home.path())
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PRIME_API_BASE_URL", self.api.uri())
            .env("PRIME_API_KEY", API_KEY)
            .current_dir(self.cwd.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if trace_everything {
            cmd.env("EXPOSE_LOG", "trace");
        }
        cmd
    }

    async fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = tokio::time::timeout(Duration::from_secs(60), self.command(args, true).output())
            .await
            .expect("expose finished in time")
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    async fn deletes(&self) -> usize {
        self.api
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.method.as_str() == "DELETE")
            .count()
    }

    /// Nothing was created in HOME or in the working directory.
    fn assert_no_files_written(&self) {
        for dir in [self.home.path(), self.cwd.path()] {
            let found = list_files(dir);
            assert!(found.is_empty(), "files written: {found:?}");
        }
    }
}

fn list_files(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let p = entry.path();
        out.insert(p.display().to_string());
        if p.is_dir() {
            out.extend(list_files(&p));
        }
    }
    out
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
        "http_user": "alice",
        "http_password": PASSWORD,
        "status": "pending",
    })
}

/// The test frps on `bind`, checking the binding secret as Prime's Login plugin does.
async fn frps_at(bind: std::net::SocketAddr, vhost: Option<std::net::SocketAddr>) -> TestServer {
    let srv = TestServer::start(ServerConfig {
        bind,
        vhost_http_bind: vhost,
        token: FRP_TOKEN.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    srv.set_login_hook(Some(Arc::new(|login: &expose::proto::msg::Login| {
        if login.metas.get("binding_secret").map(String::as_str) == Some(BINDING) {
            Ok(())
        } else {
            Err("invalid binding secret".into())
        }
    })));
    srv
}

/// Terminal control in output: ESC, BEL, CR, C1 controls, bidi overrides.
fn assert_no_raw_control(what: &str, text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|c| {
            (c.is_control() && *c != '\n' && *c != '\t')
                || ('\u{202A}'..='\u{202E}').contains(c)
                || ('\u{2066}'..='\u{2069}').contains(c)
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: raw control characters {bad:?} in:\n{text}"
    );
}

/// Terminal control only (ESC, BEL, CR, C1): what can move the cursor, retitle the terminal
/// or overwrite a line. Bidirectional overrides are not in this set: the CLI's own lines
/// (`cli::output::clean`) drop control characters but keep those (see docs/reliability.md).
fn assert_no_terminal_control(what: &str, text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|c| c.is_control() && *c != '\n' && *c != '\t')
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: raw control characters {bad:?} in:\n{text}"
    );
}

/// Every secret, and anything derived from one that would do as well (the login proof, the
/// Authorization header), is absent.
fn assert_no_secrets(what: &str, text: &str) {
    for s in [API_KEY, FRP_TOKEN, BINDING, PASSWORD] {
        assert!(!text.contains(s), "{what}: secret {s:?} printed:\n{text}");
    }
    assert!(
        !text.contains("Bearer"),
        "{what}: an Authorization header was printed"
    );
    // The privilege_key is md5(token + timestamp): 32 hex digits after the field name.
    for (i, _) in text.match_indices("privilege_key") {
        let tail: String = text[i..].chars().take(60).collect();
        let hex_run = tail
            .split(|c: char| !c.is_ascii_hexdigit())
            .any(|run| run.len() >= 32);
        assert!(!hex_run, "{what}: privilege_key value printed: {tail}");
    }
}

/// Standard base64 with padding (for a Basic auth header).
fn base64(data: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

async fn read_all(child: &mut Child) -> (String, String) {
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out).await;
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err).await;
    }
    (out, err)
}

fn interrupt(child: &Child) {
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
}

// ---------------------------------------------------------------------------------------------
// Secrets

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_session_at_trace_level_prints_no_secret() {
    let env = Env::new().await;
    let srv = frps_at("127.0.0.1:0".parse().unwrap(), None).await;
    let (bind, vhost) = (srv.bind_addr(), srv.vhost_http_addr());
    Mock::given(method("POST"))
        .and(path("/api/v1/tunnel"))
        .respond_with(ResponseTemplate::new(201).set_body_json(created(bind.port())))
        .mount(&env.api)
        .await;
    // The DELETE at the end fails: an error path at trace level too.
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"detail": "db down"})))
        .mount(&env.api)
        .await;
    let web = http_server().await;

    // Plain text output (not --json), so the banner with the one-time password is printed.
    let mut child = env
        .command(&["-vvv", "--auth", "alice", &web.port().to_string()], true)
        .spawn()
        .unwrap();
    // Trace logs are plenty: drain stderr all along, or a full pipe would stall the binary.
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr_task = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text).await;
        text
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            let done = line.contains("Basic auth");
            seen.push(line);
            if done {
                return;
            }
        }
        panic!("stdout ended before the banner: {seen:?}");
    })
    .await
    .expect("banner printed");

    // A visitor with the right basic auth gets through.
    let host = format!("{ID}.tunnel.test");
    let auth = format!("Basic {}", base64(format!("alice:{PASSWORD}").as_bytes()));
    let mut s = tokio::net::TcpStream::connect(vhost).await.unwrap();
    let req = format!(
        "GET /secret?token=abc HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut resp))
        .await
        .unwrap()
        .unwrap();
    assert!(
        resp.starts_with(b"HTTP/1.1 200 OK"),
        "{}",
        String::from_utf8_lossy(&resp)
    );

    // The server dies and comes back: loss, reconnect and re-login are logged at trace.
    srv.kill_and_wait().await;
    drop(srv);
    let srv = frps_at(bind, Some(vhost)).await;
    srv.wait_for(
        |s| s.proxies.contains_key(&format!("{ID}.{ID}")),
        Duration::from_secs(30),
    )
    .await
    .expect("re-registered after the restart");

    interrupt(&child);
    let status = match tokio::time::timeout(Duration::from_secs(30), child.wait()).await {
        Ok(s) => s.unwrap(),
        Err(_) => {
            let _ = child.start_kill();
            let stderr = stderr_task.await.unwrap();
            let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
            panic!(
                "expose did not stop after Ctrl-C; last log lines:\n{}",
                tail.join("\n")
            );
        }
    };
    while let Ok(Some(line)) = stdout.next_line().await {
        seen.push(line);
    }
    let stderr = stderr_task.await.unwrap();
    // Closing worked, the DELETE did not: non-zero, and said so.
    assert_ne!(status.code(), Some(0));
    assert!(stderr.contains("HTTP 500"), "{stderr}");
    assert!(env.deletes().await >= 1);
    assert!(
        stderr.contains("TRACE") && stderr.lines().count() > 50,
        "expected trace logs from every crate, got:\n{stderr}"
    );

    // The generated password is shown once, in its banner line, and nowhere else.
    let banner: Vec<&String> = seen.iter().filter(|l| l.contains(PASSWORD)).collect();
    assert_eq!(banner.len(), 1, "{seen:?}");
    assert!(banner[0].contains("Basic auth"), "{seen:?}");
    let stdout_without_banner: String = seen
        .iter()
        .filter(|l| !l.contains("Basic auth"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_no_secrets("stdout", &stdout_without_banner);
    assert_no_secrets("stderr", &stderr);
    // The visitor's Authorization header and query string stay out of the logs too.
    assert!(!stderr.contains(&auth) && !seen.iter().any(|l| l.contains(&auth)));
    assert!(!stderr.contains("token=abc"), "query string logged");
    assert_no_raw_control("stderr", &stderr);
    env.assert_no_files_written();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_login_at_trace_level_prints_no_secret() {
    let env = Env::new().await;
    let srv = frps_at("127.0.0.1:0".parse().unwrap(), None).await;
    srv.set_login_hook(Some(Arc::new(|_: &expose::proto::msg::Login| {
        Err("invalid binding secret".into())
    })));
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(created(srv.bind_addr().port())))
        .mount(&env.api)
        .await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&env.api)
        .await;
    let (code, out, err) = env.run(&["-vvv", "--auth", "alice", "8765"]).await;
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("invalid binding secret"), "{err}");
    assert_eq!(env.deletes().await, 1);
    assert_no_secrets("stdout", &out);
    assert_no_secrets("stderr", &err);
    env.assert_no_files_written();
}

#[tokio::test]
async fn api_errors_at_trace_level_print_no_secret() {
    // The API echoes the key back in its error text, as a careless proxy might.
    for (status, body) in [
        (401, json!({"detail": format!("bad key {API_KEY}")})),
        (
            500,
            json!({"detail": format!("upstream said Bearer {API_KEY}")}),
        ),
        (
            422,
            json!({"detail": [{"loc": ["body", "x"], "msg": API_KEY, "type": "t"}]}),
        ),
    ] {
        let env = Env::new().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .mount(&env.api)
            .await;
        let (code, out, err) = env.run(&["-vvv", "8765"]).await;
        assert_ne!(code, 0);
        // What the server said is its business; what we log ourselves must not add the key.
        // The key may appear only inside the quoted server text, never as our own output.
        let ours: String = err
            .lines()
            .filter(|l| !l.starts_with("error:"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_no_secrets(&format!("HTTP {status} logs"), &ours);
        assert_no_secrets(&format!("HTTP {status} stdout"), &out);
        assert_no_raw_control("stderr", &err);
        env.assert_no_files_written();
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile API answers

#[tokio::test]
async fn hostile_api_answers_are_refused_with_a_clean_error() {
    let base = created(7000);
    let with = |field: &str, value: Value| {
        let mut v = base.clone();
        v[field] = value;
        v
    };
    // (case, answer, whether the id is usable so a DELETE must follow)
    let cases: Vec<(&str, Value, bool)> = vec![
        (
            "url with an OSC title escape",
            with("url", json!("https://x\u{1b}]0;pwned\u{7}.tunnel.test")),
            true,
        ),
        (
            "url with a screen-clearing CSI",
            with("url", json!("https://\u{1b}[2J\u{1b}[Ht.tunnel.test")),
            true,
        ),
        (
            "url of another scheme",
            with("url", json!("javascript:alert(1)")),
            true,
        ),
        (
            "hostname with CRLF header injection",
            with("hostname", json!("t.tunnel.test\r\nX-Injected: 1")),
            true,
        ),
        (
            "hostname with spaces",
            with("hostname", json!("not a host")),
            true,
        ),
        (
            "hostname with an empty label",
            with("hostname", json!("a..b")),
            true,
        ),
        (
            "hostname label starting with '-'",
            with("hostname", json!("-x.tunnel.test")),
            true,
        ),
        (
            "hostname of 300 characters",
            with("hostname", json!("a".repeat(300))),
            true,
        ),
        (
            "server_host with a shell command",
            with("server_host", json!("evil.example;rm -rf ~")),
            true,
        ),
        (
            "server_host with CRLF",
            with("server_host", json!("127.0.0.1\r\n")),
            true,
        ),
        ("server_port 0", with("server_port", json!(0)), true),
        (
            "frp_token with CRLF",
            with("frp_token", json!("tok\r\nen")),
            true,
        ),
        (
            "binding_secret with ESC",
            with("binding_secret", json!("b\u{1b}[31mred")),
            true,
        ),
        (
            "expires_at with a bidi override",
            with("expires_at", json!("\u{202e}2099-01-01T00:00:00Z")),
            true,
        ),
        ("name with BEL", with("name", json!("my\u{7}tunnel")), true),
        (
            "label with ESC",
            with("labels", json!(["ok", "\u{1b}[5mblink"])),
            true,
        ),
        (
            "tunnel_id with an escape (no usable id: nothing to delete)",
            with("tunnel_id", json!("t-\u{1b}[2J")),
            false,
        ),
        (
            "tunnel_id with a path (no usable id)",
            with("tunnel_id", json!("../../admin")),
            false,
        ),
    ];
    for (case, answer, deletable) in cases {
        let env = Env::new().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(201).set_body_json(answer))
            .mount(&env.api)
            .await;
        Mock::given(method("DELETE"))
            .respond_with(ResponseTemplate::new(204))
            .mount(&env.api)
            .await;
        let (code, out, err) = env.run(&["8765"]).await;
        assert_eq!(code, 1, "{case}: {err}");
        assert!(
            err.contains("error: could not start the tunnel: invalid response from the API"),
            "{case}: {err}"
        );
        assert!(!err.contains("panicked"), "{case}: {err}");
        assert_no_raw_control(case, &out);
        assert_no_raw_control(case, &err);
        assert_no_secrets(case, &out);
        assert_no_secrets(case, &err);
        for s in ["tok\r\nen", "b\u{1b}[31mred"] {
            assert!(!err.contains(s), "{case}: a malformed secret was shown");
        }
        assert_eq!(
            env.deletes().await,
            usize::from(deletable),
            "{case}: DELETE of the unusable registration"
        );
        env.assert_no_files_written();
    }
}

#[tokio::test]
async fn hostile_values_in_list_and_status_are_never_printed_raw() {
    let info = |name: &str| {
        json!({
            "tunnel_id": "t-a", "hostname": "t-a.tunnel.test", "url": "https://t-a.tunnel.test",
            "status": "connected", "local_port": 8765, "labels": [], "name": name,
            "created_at": "2026-11-28T10:00:00Z", "expires_at": "2099-01-01T00:00:00Z"
        })
    };
    let env = Env::new().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/tunnel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "tunnels": [info("\u{1b}]0;pwned\u{7}")], "total": 1, "page": 1,
            "per_page": 50, "has_next": false
        })))
        .mount(&env.api)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/tunnel/t-a"))
        .respond_with(ResponseTemplate::new(200).set_body_json(info("x\r\nFAKE LINE")))
        .mount(&env.api)
        .await;
    for args in [
        &["list"][..],
        &["list", "--json"],
        &["status", "t-a"],
        &["status", "t-a", "--json"],
    ] {
        let (code, out, err) = env.run(args).await;
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert!(
            err.contains("invalid response from the API"),
            "{args:?}: {err}"
        );
        assert_no_raw_control(&format!("{args:?}"), &out);
        assert_no_raw_control(&format!("{args:?}"), &err);
    }
    // An id given on the command line is checked before any request.
    let (code, _, err) = env.run(&["status", "t-a\u{1b}[2J"]).await;
    assert_ne!(code, 0);
    assert_no_raw_control("status with a hostile id", &err);
    env.assert_no_files_written();
}

// ---------------------------------------------------------------------------------------------
// Hostile tunnel server

/// What the scripted frps puts in its answers.
#[derive(Clone, Copy, Debug)]
enum Hostile {
    /// LoginResp with this error text.
    LoginError,
    /// LoginResp with a version full of escapes, then NewProxyResp with this remote address.
    RunIdAndAddress,
    /// LoginResp with a run id full of escapes: refused (never stored, never echoed).
    RunId,
    /// NewProxyResp with this error text (not fatal: the CLI gives up and prints it).
    ProxyError,
}

const NASTY: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[31mred\r\nFAKE: line\u{202e}";

/// A plain, no-tcpMux frps that speaks correctly but puts [`NASTY`] text where it can.
async fn hostile_frps(how: Hostile) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let key = Key::derive(FRP_TOKEN);
                let mut buf = bytes::BytesMut::new();
                let mut chunk = vec![0u8; 16 * 1024];
                let mut dec: Option<Decryptor> = None;
                let mut enc: Option<Encryptor> = None;
                loop {
                    let msg = loop {
                        if let Ok(Some(m)) = decode_frame(&mut buf) {
                            break m;
                        }
                        let n = match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        let data: &[u8] = match dec.as_mut() {
                            Some(d) => d.decrypt(&mut chunk[..n]),
                            None => &chunk[..n],
                        };
                        buf.extend_from_slice(data);
                    };
                    let reply: Option<Message> = match msg {
                        Message::Login(_) => {
                            let resp = match how {
                                Hostile::LoginError => LoginResp {
                                    version: "0.66.0".into(),
                                    run_id: String::new(),
                                    error: format!("{NASTY} invalid binding secret"),
                                },
                                Hostile::RunId => LoginResp {
                                    version: "0.66.0".into(),
                                    run_id: format!("run{NASTY}"),
                                    error: String::new(),
                                },
                                _ => LoginResp {
                                    version: format!("0.66.0{NASTY}"),
                                    run_id: "0123456789abcdef".into(),
                                    error: String::new(),
                                },
                            };
                            let bytes = encode_to_vec(&resp.into()).unwrap();
                            if sock.write_all(&bytes).await.is_err() {
                                return;
                            }
                            if matches!(how, Hostile::LoginError | Hostile::RunId) {
                                return;
                            }
                            dec = Some(Decryptor::new(&key));
                            enc = Some(Encryptor::new(&key, rand::random()));
                            None
                        }
                        Message::NewProxy(np) => Some(
                            match how {
                                Hostile::ProxyError => NewProxyResp {
                                    proxy_name: np.proxy_name,
                                    remote_addr: String::new(),
                                    error: format!("port taken {NASTY}"),
                                },
                                _ => NewProxyResp {
                                    proxy_name: np.proxy_name,
                                    remote_addr: format!(":4242{NASTY}"),
                                    error: String::new(),
                                },
                            }
                            .into(),
                        ),
                        Message::Ping(_) => Some(Pong::default().into()),
                        _ => None,
                    };
                    if let (Some(m), Some(e)) = (reply, enc.as_mut()) {
                        let mut out = e.take_iv().map(|iv| iv.to_vec()).unwrap_or_default();
                        let mut bytes = encode_to_vec(&m).unwrap();
                        e.encrypt(&mut bytes);
                        out.extend_from_slice(&bytes);
                        if sock.write_all(&out).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_tunnel_server_texts_never_reach_the_terminal_raw() {
    let echo = echo_server().await;
    for how in [
        Hostile::LoginError,
        Hostile::ProxyError,
        Hostile::RunIdAndAddress,
        Hostile::RunId,
    ] {
        let env = Env::new().await;
        let frps = hostile_frps(how).await;
        let server = format!("127.0.0.1:{}", frps.port());
        let port = echo.port().to_string();
        let mut child = env
            .command(
                // (Global flags go after the subcommand: `expose -v tcp …` is a usage error.)
                &[
                    "tcp", &port, "--server", &server, "--no-tls", "--no-mux", "-vvv",
                ],
                true,
            )
            .env("FRP_TOKEN", FRP_TOKEN)
            .spawn()
            .unwrap();
        if matches!(how, Hostile::RunIdAndAddress) {
            // This one succeeds: let it run a moment (pings, logs), then stop it.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            interrupt(&child);
        }
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .unwrap_or_else(|_| panic!("{how:?}: expose did not finish"))
            .unwrap();
        let (out, err) = read_all(&mut child).await;
        match how {
            Hostile::LoginError => {
                assert_eq!(status.code(), Some(5), "{how:?}: {err}");
                assert!(err.contains("invalid binding secret"), "{err}");
            }
            Hostile::ProxyError => {
                assert_eq!(status.code(), Some(5), "{how:?}: {err}");
                assert!(err.contains("port taken"), "{err}");
            }
            Hostile::RunIdAndAddress => {
                assert_eq!(status.code(), Some(0), "{how:?}: {err}");
                assert!(out.contains("4242") || err.contains("4242"), "{out}{err}");
            }
            Hostile::RunId => {
                assert_eq!(status.code(), Some(1), "{how:?}: {err}");
                assert!(err.contains("unusable run_id"), "{err}");
            }
        }
        assert_no_terminal_control(&format!("{how:?} stdout"), &out);
        assert_no_terminal_control(&format!("{how:?} stderr"), &err);
        // Log lines and the final error line escape bidi overrides too.
        let logs_and_error: String = err
            .lines()
            .filter(|l| {
                l.starts_with("error:")
                    || l.contains(" TRACE ")
                    || l.contains(" DEBUG ")
                    || l.contains(" INFO ")
                    || l.contains(" WARN ")
                    || l.contains(" ERROR ")
            })
            .map(|l| format!("{l}\n"))
            .collect();
        assert_no_raw_control(&format!("{how:?} logs"), &logs_and_error);
        assert!(!out.contains(FRP_TOKEN) && !err.contains(FRP_TOKEN));
        env.assert_no_files_written();
    }
}
