//! frpc's hot reload through the real binary: `GET /api/reload`, `PUT /api/config` and the
//! `frpc reload` command against the in-repo test frps, with the sample files in tests/frpc/;
//! and `auth.tokenSource`.
#![cfg(unix)]

mod common;

use common::*;
use expose::proto::msg::{Message, MessageType};
use expose::testserver::{ServerConfig, TestServer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const TOKEN: &str = "frpc-reload-token-8c1";

async fn frps() -> TestServer {
    TestServer::start(ServerConfig {
        token: TOKEN.into(),
        subdomain_host: "frpc.test".into(),
        ..Default::default()
    })
    .await
    .unwrap()
}

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/frpc")
        .join(name)
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The binary as `expose frpc ARGS…` with the sample files' variables in its environment.
fn frpc(envs: &[(&str, String)], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_expose"));
    cmd.arg("frpc")
        .args(args)
        .env("FRPC_TEST_TOKEN", TOKEN)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .env_remove("EXPOSE_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// `expose frpc reload -c FILE`: (exit code, stdout).
async fn reload_cmd(envs: &[(&str, String)], file: &Path) -> (Option<i32>, String) {
    let out = frpc(envs, &["reload", "-c", file.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn new_proxies(srv: &TestServer, name: &str) -> Vec<expose::proto::msg::NewProxy> {
    srv.snapshot()
        .messages_of(MessageType::NewProxy)
        .filter_map(|m| match &m.message {
            Message::NewProxy(np) if np.proxy_name == name => Some(np.clone()),
            _ => None,
        })
        .collect()
}

/// An open echo connection through a proxy: writes and reads back `round` bytes.
async fn echo_once(conn: &mut tokio::net::TcpStream, round: u8) {
    let data = [round; 100];
    conn.write_all(&data).await.unwrap();
    let mut back = [0u8; 100];
    tokio::time::timeout(Duration::from_secs(10), conn.read_exact(&mut back))
        .await
        .expect("echo in time")
        .expect("connection still open");
    assert_eq!(back, data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_changes_the_proxy_set_without_touching_the_rest() {
    let srv = frps().await;
    let echo = echo_server().await;
    let admin_port = free_port();
    let envs = [
        ("FRPS_PORT", srv.bind_addr().port().to_string()),
        ("ADMIN_PORT", admin_port.to_string()),
        ("ECHO_PORT", echo.port().to_string()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("frpc.toml");
    std::fs::copy(sample("reload_before.toml"), &file).unwrap();
    let mut child = frpc(&envs, &["-c", file.to_str().unwrap()])
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let seen = read_until(&mut lines, "start proxy success", 3).await;
    let text = seen.join("\n");
    assert!(
        text.contains("visitor added: [rl.vkeep rl.vgone]"),
        "{text}"
    );
    let admin: SocketAddr = ([127, 0, 0, 1], admin_port).into();

    // A visitor connection through "keep" that must survive everything below.
    let keep_port = srv.snapshot().proxies["rl.keep"].remote_port.unwrap();
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", keep_port))
        .await
        .unwrap();
    echo_once(&mut conn, 1).await;

    // A file that is not TOML: frpc's 400, its error text, nothing closed or registered.
    std::fs::copy(sample("reload_broken.toml"), &file).unwrap();
    let (code, body) = admin_call(admin, "GET", "/api/reload", None, "").await;
    assert_eq!(code, 400, "{body}");
    assert!(body.starts_with("toml: "), "{body}");
    // The command reads webServer from the file it is given, as frpc does.
    let good = dir.path().join("cmd.toml");
    std::fs::copy(sample("reload_before.toml"), &good).unwrap();
    assert_eq!(
        reload_cmd(&envs, &good).await,
        (Some(1), "api status code [400]\n".to_owned())
    );
    let seen = read_until(&mut lines, "api response [/api/reload], code [400]", 2).await;
    assert!(
        seen.iter()
            .any(|l| l
                .contains("[W] [client/admin_api.go:92] reload frpc proxy config error: toml: ")),
        "{seen:#?}"
    );

    // An unknown field: refused with ?strictConfig=true (what `frpc reload` sends by default).
    let strict_bad =
        std::fs::read_to_string(sample("reload_after.toml")).unwrap() + "unknownThing = 1\n";
    std::fs::write(&file, &strict_bad).unwrap();
    let (code, body) = admin_call(admin, "GET", "/api/reload?strictConfig=true", None, "").await;
    assert_eq!(code, 400);
    // frpc's text, then where the field stands in the file.
    assert!(
        body.starts_with("unmarshal ProxyConfig error: json: unknown field \"unknownThing\" ("),
        "{body}"
    );
    assert!(body.ends_with(" line 50)"), "{body}");
    assert!(srv.snapshot().close_proxies.is_empty());
    assert_eq!(new_proxies(&srv, "rl.gone").len(), 1);
    echo_once(&mut conn, 2).await;

    // PUT /api/config writes the new file; `frpc reload` applies it.
    let (code, body) = admin_call(admin, "PUT", "/api/config", None, "").await;
    assert_eq!((code, body.as_str()), (400, "body can't be empty"));
    let after = std::fs::read_to_string(sample("reload_after.toml")).unwrap();
    assert_eq!(
        admin_call(admin, "PUT", "/api/config", None, &after).await,
        (200, String::new())
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), after);
    assert_eq!(
        admin_call(admin, "GET", "/api/config", None, "").await,
        (200, after.clone())
    );
    assert_eq!(
        reload_cmd(&envs, &file).await,
        (Some(0), "reload success\n".to_owned())
    );
    let seen = read_until(&mut lines, "api response [/api/reload], code [200]", 1).await;
    let text = seen.join("\n");
    assert!(
        text.contains("proxy removed: [rl.gone rl.change]"),
        "{text}"
    );
    assert!(text.contains("proxy added: [rl.web rl.change]"), "{text}");
    assert!(text.contains("visitor removed: [rl.vgone]"), "{text}");
    assert!(text.contains("visitor added: [rl.vnew]"), "{text}");
    assert!(text.contains("success reload conf"), "{text}");
    // The new proxies may be registered before or after the API logs its answer.
    let early = text.matches("start proxy success").count();
    if early < 2 {
        read_until(&mut lines, "start proxy success", 2 - early).await;
    }

    let snap = srv.snapshot();
    assert_eq!(snap.close_proxies, ["rl.gone", "rl.change"]);
    assert_eq!(snap.accepted_logins().count(), 1, "the session stayed up");
    assert!(!snap.proxies.contains_key("rl.gone"));
    assert!(snap.proxies["rl.change"].use_encryption);
    assert_eq!(new_proxies(&srv, "rl.keep").len(), 1, "keep was left alone");
    let change = new_proxies(&srv, "rl.change");
    assert_eq!(change.len(), 2);
    assert_eq!(
        (change[1].group.as_str(), change[1].group_key.as_str()),
        ("tcps", "tcp-key")
    );
    // The settings only NewProxy carries, with frp's JSON keys.
    let web = new_proxies(&srv, "rl.web").pop().unwrap();
    let json = serde_json::to_value(&web).unwrap();
    assert_eq!(json["route_by_http_user"], "alice");
    assert_eq!(
        json["response_headers"],
        serde_json::json!({"x-from-frps": "expose"})
    );
    assert_eq!(json["headers"], serde_json::json!({"x-to-local": "1"}));
    assert_eq!(
        json["annotations"],
        serde_json::json!({"example.com/owner": "team-a"})
    );
    assert_eq!(
        (json["group"].as_str(), json["group_key"].as_str()),
        (Some("webs"), Some("web-key"))
    );

    // The open connection never noticed; the status shows the new set.
    echo_once(&mut conn, 3).await;
    let (code, body) = admin_call(admin, "GET", "/api/status", None, "").await;
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = v["tcp"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["rl.change", "rl.keep"]);
    assert_eq!(v["http"][0]["name"], "rl.web");

    // frpc's default for the API is not strict: the unknown field is ignored, and the set is
    // the same, so nothing is closed or registered.
    std::fs::write(&file, &strict_bad).unwrap();
    assert_eq!(
        admin_call(admin, "GET", "/api/reload", None, "").await.0,
        200
    );
    assert_eq!(srv.snapshot().close_proxies.len(), 2);
    echo_once(&mut conn, 4).await;

    drop(conn);
    assert_eq!(
        frpc(&envs, &["stop", "-c", good.to_str().unwrap()])
            .output()
            .await
            .unwrap()
            .status
            .code(),
        Some(0)
    );
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_without_a_web_server_or_a_running_client() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("frpc.toml");
    std::fs::write(&file, "serverPort = 7000\n").unwrap();
    assert_eq!(
        reload_cmd(&[], &file).await,
        (
            Some(1),
            "web server port should be set if you want to use this feature\n".to_owned()
        )
    );
    // Nobody listens on the admin port: the connection error, exit 1.
    let port = dead_port().await;
    std::fs::write(&file, format!("webServer.port = {port}\n")).unwrap();
    assert_eq!(
        reload_cmd(&[], &file).await,
        (
            Some(1),
            format!(
                "Get \"http://127.0.0.1:{port}/api/reload?strictConfig=true\": dial tcp \
                 127.0.0.1:{port}: connect: connection refused\n"
            )
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_from_a_file_and_from_a_program() {
    let srv = frps().await;
    let echo = echo_server().await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let envs = [
        ("FRPS_PORT", srv.bind_addr().port().to_string()),
        ("ECHO_PORT", echo.port().to_string()),
        ("TOKEN_FILE", token_file.display().to_string()),
    ];
    let file_cfg = sample("token_source_file.toml");
    let mut child = frpc(&envs, &["-c", file_cfg.to_str().unwrap()])
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    read_until(&mut lines, "[ts] start proxy success", 1).await;
    drop(child);

    // A missing token file: frpc's error when the service starts, exit 1.
    let missing = dir.path().join("missing");
    let mut bad_envs = envs.clone();
    bad_envs[2].1 = missing.display().to_string();
    let out = frpc(&bad_envs, &["-c", file_cfg.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let m = missing.display();
    assert!(
        text.ends_with(&format!(
            "failed to resolve auth.tokenSource: failed to read file {m}: open {m}: no such file or directory\n"
        )),
        "{text}"
    );

    // A program's output needs --allow-unsafe TokenSourceExec, checked by verify too.
    let exec_cfg = sample("token_source_exec.toml");
    let exec = exec_cfg.to_str().unwrap();
    let out = frpc(&envs, &["verify", "-c", exec]).output().await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "unsafe feature \"TokenSourceExec\" is not enabled. To enable it, ensure it is allowed \
         in the configuration or command line flags\n"
    );
    let out = frpc(
        &envs,
        &["verify", "-c", exec, "--allow-unsafe", "TokenSourceExec"],
    )
    .output()
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let mut child = frpc(&envs, &["--allow-unsafe", "TokenSourceExec", "-c", exec])
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    read_until(&mut lines, "[tx] start proxy success", 1).await;
    drop(child);
    assert_eq!(srv.snapshot().accepted_logins().count(), 2);
}
