//! The real binary as a drop-in frpc: `expose frpc -c FILE` (and the binary named `frpc`) with a
//! config file holding several proxies, against the in-repo test frps on loopback.
#![cfg(unix)]

mod common;

use common::*;
use expose::testserver::{ServerConfig, TestServer};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const TOKEN: &str = "frpc-cli-token-5b2";

async fn frps() -> TestServer {
    TestServer::start(ServerConfig {
        token: TOKEN.into(),
        subdomain_host: "frpc.test".into(),
        ..Default::default()
    })
    .await
    .unwrap()
}

fn frpc(program: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("FRPC_TEST_TOKEN", TOKEN)
        .env_remove("EXPOSE_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

fn expose_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_expose"))
}

fn interrupt(child: &Child) {
    let pid = child.id().unwrap().to_string();
    let ok = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// A config with two tcp proxies and one http proxy, the token from the environment.
fn config(srv: &TestServer, echo: SocketAddr, web: SocketAddr) -> String {
    format!(
        r#"
serverAddr = "127.0.0.1"
serverPort = {port}
user = "cli"
auth.token = "{{{{ .Envs.FRPC_TEST_TOKEN }}}}"

[[proxies]]
name = "echo-a"
type = "tcp"
localPort = {echo}

[[proxies]]
name = "echo-b"
type = "tcp"
localIP = "127.0.0.1"
localPort = {echo}
transport.useEncryption = true
transport.useCompression = true

[[proxies]]
name = "web"
type = "http"
localPort = {web}
subdomain = "web"
"#,
        port = srv.bind_addr().port(),
        echo = echo.port(),
        web = web.port(),
    )
}

/// Reads stdout lines until `count` lines contain `needle`; returns everything read.
async fn read_until(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    needle: &str,
    count: usize,
) -> Vec<String> {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        let mut n = 0;
        while let Ok(Some(line)) = lines.next_line().await {
            n += usize::from(line.contains(needle));
            seen.push(line);
            if n == count {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(
        found,
        "wanted {count}× {needle:?}, got:\n{}",
        seen.join("\n")
    );
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frpc_file_with_several_proxies_carries_traffic_and_stops_on_ctrl_c() {
    let srv = frps().await;
    let echo = echo_server().await;
    let web = http_server().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("frpc.toml");
    std::fs::write(&file, config(&srv, echo, web)).unwrap();
    let file = file.to_str().unwrap();

    let out = frpc(expose_bin(), &["frpc", "verify", "-c", file])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("frpc: the configuration file {file} syntax is ok\n")
    );

    let mut child = frpc(expose_bin(), &["frpc", "-c", file]).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let seen = read_until(&mut lines, "start proxy success", 3).await;
    let text = seen.join("\n");
    assert!(
        text.contains("login to server success, get run id ["),
        "{text}"
    );
    for name in ["cli.echo-a", "cli.echo-b", "cli.web"] {
        assert!(
            text.contains(&format!("[{name}] start proxy success")),
            "{text}"
        );
    }

    // A lost control connection: frpc's reconnect lines, then every proxy registered again.
    let run_id = srv.snapshot().controls.keys().next().unwrap().clone();
    assert!(srv.close_control(&run_id));
    let seen = read_until(&mut lines, "start proxy success", 3)
        .await
        .join("\n");
    assert!(seen.contains("control is closed: "), "{seen}");
    assert!(seen.contains("try to connect to server..."), "{seen}");
    assert!(seen.contains("login to server success"), "{seen}");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let state = srv.snapshot();
    for name in ["cli.echo-a", "cli.echo-b"] {
        let port = state.proxies[name].remote_port.expect("tcp port");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        assert_eq!(
            echo_roundtrip(addr, 256 * 1024, 7).await,
            256 * 1024,
            "{name}"
        );
    }
    let (status, body) = http_get(srv.vhost_http_addr(), "web.frpc.test", "/hi").await;
    assert!(status.contains("200"), "{status}");
    assert_eq!(body, "hello /hi via web.frpc.test\n");

    interrupt(&child);
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    // Every proxy was closed at frps before the process ended.
    assert!(
        eventually(Duration::from_secs(5), || srv.snapshot().proxies.is_empty()).await,
        "proxies left at frps: {:?}",
        srv.snapshot().proxies.keys().collect::<Vec<_>>()
    );
    let closed = srv.snapshot().close_proxies;
    for name in ["cli.echo-a", "cli.echo-b", "cli.web"] {
        assert!(closed.iter().any(|c| c == name), "{closed:?}");
    }
}

#[tokio::test]
async fn named_frpc_verify_and_errors_exit_like_frpc() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("frpc");
    std::os::unix::fs::symlink(expose_bin(), &link).unwrap();

    let good = dir.path().join("ok.yaml");
    std::fs::write(
        &good,
        "serverAddr: 127.0.0.1\nproxies:\n  - name: ssh\n    type: tcp\n    localPort: 22\n",
    )
    .unwrap();
    let good = good.to_str().unwrap();
    let out = frpc(&link, &["verify", "-c", good]).output().await.unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("frpc: the configuration file {good} syntax is ok\n")
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "serverAddr = \"x\"\nbogusField = 1\n").unwrap();
    let bad = bad.to_str().unwrap();
    let out = frpc(&link, &["verify", "-c", bad]).output().await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "json: unknown field \"bogusField\"\n"
    );
    // Lenient mode accepts the same file.
    let out = frpc(&link, &["verify", "-c", bad, "--strict_config=false"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0));

    let udp = dir.path().join("udp.toml");
    std::fs::write(
        &udp,
        "[[proxies]]\nname = \"dns\"\ntype = \"udp\"\nlocalPort = 53\n",
    )
    .unwrap();
    let out = frpc(&link, &["-c", udp.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "proxy dns: type \"udp\" is not supported yet\n"
    );

    let out = frpc(&link, &["-v"]).output().await.unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0.66.0\n");

    // A refused login ends the client at once (loginFailExit defaults to true), exit 1.
    let srv = frps().await;
    let wrong = dir.path().join("wrong.toml");
    std::fs::write(
        &wrong,
        format!(
            "serverAddr = \"127.0.0.1\"\nserverPort = {}\nauth.token = \"wrong\"\n",
            srv.bind_addr().port()
        ),
    )
    .unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        frpc(&link, &["-c", wrong.to_str().unwrap()]).output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("With loginFailExit enabled, no additional retries will be attempted"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_dir_runs_one_client_per_file() {
    let srv = frps().await;
    let echo = echo_server().await;
    let dir = tempfile::tempdir().unwrap();
    for (file, name) in [("a.toml", "dir-a"), ("b.toml", "dir-b")] {
        std::fs::write(
            dir.path().join(file),
            format!(
                "serverAddr = \"127.0.0.1\"\nserverPort = {}\nauth.token = \"{TOKEN}\"\n\
                 [[proxies]]\nname = \"{name}\"\ntype = \"tcp\"\nlocalPort = {}\n",
                srv.bind_addr().port(),
                echo.port()
            ),
        )
        .unwrap();
    }
    let mut child = frpc(
        expose_bin(),
        &["frpc", "--config_dir", dir.path().to_str().unwrap()],
    )
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    read_until(&mut lines, "start proxy success", 2).await;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let state = srv.snapshot();
    assert_eq!(state.controls.len(), 2, "one session per file");
    for name in ["dir-a", "dir-b"] {
        let port = state.proxies[name].remote_port.expect("tcp port");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        assert_eq!(
            echo_roundtrip(addr, 64 * 1024, 3).await,
            64 * 1024,
            "{name}"
        );
    }
    interrupt(&child);
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// One request to the admin API; returns (status code, body).
async fn admin_call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = auth
        .map(|a| format!("Authorization: Basic {a}\r\n"))
        .unwrap_or_default();
    let req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 0\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut resp))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&resp).to_string();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_status_and_stop_like_frpc() {
    let srv = frps().await;
    let echo = echo_server().await;
    let admin_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("frpc.toml");
    std::fs::write(
        &file,
        format!(
            "serverAddr = \"127.0.0.1\"\nserverPort = {}\nauth.token = \"{TOKEN}\"\n\
             webServer.port = {admin_port}\nwebServer.user = \"admin\"\nwebServer.password = \"admin\"\n\
             [[proxies]]\nname = \"adm\"\ntype = \"tcp\"\nlocalPort = {}\n",
            srv.bind_addr().port(),
            echo.port()
        ),
    )
    .unwrap();
    let mut child = frpc(expose_bin(), &["frpc", "-c", file.to_str().unwrap()])
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let seen = read_until(&mut lines, "start proxy success", 1)
        .await
        .join("\n");
    assert!(
        seen.contains(&format!("admin server listen on 127.0.0.1:{admin_port}")),
        "{seen}"
    );
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let admin: SocketAddr = ([127, 0, 0, 1], admin_port).into();
    assert_eq!(admin_call(admin, "GET", "/healthz", None).await.0, 200);
    assert_eq!(admin_call(admin, "GET", "/api/status", None).await.0, 401);
    let bad = Some("YWRtaW46d3Jvbmc="); // admin:wrong
    assert_eq!(admin_call(admin, "GET", "/api/status", bad).await.0, 401);
    let good = Some("YWRtaW46YWRtaW4="); // admin:admin
    let (code, body) = admin_call(admin, "GET", "/api/status", good).await;
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let port = srv.snapshot().proxies["adm"].remote_port.unwrap();
    assert_eq!(
        v,
        serde_json::json!({"tcp": [{
            "name": "adm", "type": "tcp", "status": "running", "err": "",
            "local_addr": format!("127.0.0.1:{}", echo.port()), "plugin": "",
            "remote_addr": format!("127.0.0.1:{port}"),
        }]})
    );
    let (code, body) = admin_call(admin, "GET", "/api/config", good).await;
    assert_eq!(code, 200);
    assert!(body.contains("name = \"adm\""), "{body}");
    assert_eq!(admin_call(admin, "GET", "/api/reload", good).await.0, 500);
    assert_eq!(admin_call(admin, "GET", "/api/stop", good).await.0, 405);

    // frpc's own `status` and `stop` commands, reading webServer from the same file.
    let out = frpc(
        expose_bin(),
        &["frpc", "status", "-c", file.to_str().unwrap()],
    )
    .output()
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("Proxy Status...\n\nTCP\nName  Status "),
        "{text}"
    );
    assert!(
        text.contains(&format!("adm   running  127.0.0.1:{}", echo.port())),
        "{text}"
    );
    let out = frpc(
        expose_bin(),
        &["frpc", "stop", "-c", file.to_str().unwrap()],
    )
    .output()
    .await
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "stop success\n");
    assert_eq!(out.status.code(), Some(0));
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(srv.snapshot().close_proxies.iter().any(|c| c == "adm"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_tcp_command_without_a_file() {
    let srv = frps().await;
    let echo = echo_server().await;
    let port = srv.bind_addr().port().to_string();
    let local = echo.port().to_string();
    let args = [
        "frpc",
        "tcp",
        "-s",
        "127.0.0.1",
        "-P",
        &port,
        "-t",
        TOKEN,
        "-n",
        "quick",
        "-l",
        &local,
    ];
    let mut child = frpc(expose_bin(), &args).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let seen = read_until(&mut lines, "start proxy success", 1)
        .await
        .join("\n");
    assert!(seen.contains("[quick] start proxy success"), "{seen}");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let remote = srv.snapshot().proxies["quick"].remote_port.unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], remote).into();
    assert_eq!(echo_roundtrip(addr, 64 * 1024, 5).await, 64 * 1024);
    interrupt(&child);
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}
