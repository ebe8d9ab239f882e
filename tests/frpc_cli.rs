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
use tokio::process::Command;

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
    // frpc's text, then the file and the line of the field.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("json: unknown field \"bogusField\" ({bad} line 2)\n")
    );
    // Lenient mode accepts the same file.
    let out = frpc(&link, &["verify", "-c", bad, "--strict_config=false"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0));

    // Something not supported: an xtcp visitor over kcp.
    let xtcp = dir.path().join("xtcp.toml");
    std::fs::write(
        &xtcp,
        "[[visitors]]\nname = \"p2p\"\ntype = \"xtcp\"\nserverName = \"s\"\nbindPort = 9\nprotocol = \"kcp\"\n",
    )
    .unwrap();
    let out = frpc(&link, &["-c", xtcp.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "visitor p2p: xtcp protocol \"kcp\" is not supported yet\n"
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
    assert_eq!(admin_call(admin, "GET", "/healthz", None, "").await.0, 200);
    assert_eq!(
        admin_call(admin, "GET", "/api/status", None, "").await.0,
        401
    );
    let bad = Some("YWRtaW46d3Jvbmc="); // admin:wrong
    assert_eq!(
        admin_call(admin, "GET", "/api/status", bad, "").await.0,
        401
    );
    let good = Some("YWRtaW46YWRtaW4="); // admin:admin
    let (code, body) = admin_call(admin, "GET", "/api/status", good, "").await;
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
    let (code, body) = admin_call(admin, "GET", "/api/config", good, "").await;
    assert_eq!(code, 200);
    assert!(body.contains("name = \"adm\""), "{body}");
    // The file is unchanged: the reload succeeds and changes nothing.
    assert_eq!(
        admin_call(admin, "GET", "/api/reload", good, "").await.0,
        200
    );
    assert_eq!(admin_call(admin, "GET", "/api/stop", good, "").await.0, 405);
    // expose's addition: /metrics, behind the same auth.
    assert_eq!(admin_call(admin, "GET", "/metrics", None, "").await.0, 401);
    let (code, body) = admin_call(admin, "GET", "/metrics", good, "").await;
    assert_eq!(code, 200);
    assert!(
        body.contains("expose_session_state{state=\"online\"} 1"),
        "{body}"
    );
    assert!(body.trim_end().ends_with("# EOF"), "{body}");

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
    // The server records the CloseProxy once it has read it, which may be just after the
    // client process is gone.
    assert!(
        eventually(Duration::from_secs(5), || srv
            .snapshot()
            .close_proxies
            .iter()
            .any(|c| c == "adm"))
        .await
    );
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

/// A sample file from `tests/frpc/`, run with its placeholders filled from the environment.
fn sample(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/frpc")
        .join(name)
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_ini_file_with_a_range_section_runs_like_frpc() {
    let srv = frps().await;
    let echo = echo_server().await;
    let web = http_server().await;
    let file = sample("legacy.ini");
    let with_env = |args: &[&str]| {
        let mut cmd = frpc(expose_bin(), args);
        cmd.env("FRPS_PORT", srv.bind_addr().port().to_string())
            .env("ECHO_PORT", echo.port().to_string())
            .env("WEB_PORT", web.port().to_string());
        cmd
    };
    // verify does not print the INI deprecation line; running does, as frpc.
    let out = with_env(&["frpc", "verify", "-c", &file])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("frpc: the configuration file {file} syntax is ok\n")
    );

    let mut child = with_env(&["frpc", "-c", &file]).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let text = read_until(&mut lines, "start proxy success", 4)
        .await
        .join("\n");
    assert!(
        text.starts_with("WARNING: ini format is deprecated and the support will be removed"),
        "{text}"
    );
    for name in ["old.echo", "old.many_0", "old.many_1", "old.web"] {
        assert!(
            text.contains(&format!("[{name}] start proxy success")),
            "{text}"
        );
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let state = srv.snapshot();
    for name in ["old.echo", "old.many_0", "old.many_1"] {
        let port = state.proxies[name].remote_port.expect("tcp port");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        assert_eq!(
            echo_roundtrip(addr, 64 * 1024, 3).await,
            64 * 1024,
            "{name}"
        );
    }
    let (status, body) = http_get(srv.vhost_http_addr(), "old.frpc.test", "/legacy").await;
    assert!(status.contains("200"), "{status}");
    assert_eq!(body, "hello /legacy via old.frpc.test\n");
    interrupt(&child);
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toml_range_template_makes_one_proxy_per_port() {
    let srv = frps().await;
    let (a, b) = (echo_server().await, echo_server().await);
    let file = sample("ranges.toml");
    let mut cmd = frpc(expose_bin(), &["frpc", "-c", &file]);
    cmd.env("FRPS_PORT", srv.bind_addr().port().to_string())
        .env("ECHO_PORTS", format!("{},{}", a.port(), b.port()));
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let text = read_until(&mut lines, "start proxy success", 2)
        .await
        .join("\n");
    assert!(
        text.contains("[ranged.echo-0] start proxy success"),
        "{text}"
    );
    assert!(
        text.contains("[ranged.echo-1] start proxy success"),
        "{text}"
    );
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let state = srv.snapshot();
    for name in ["ranged.echo-0", "ranged.echo-1"] {
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

/// Sends `CONNECT host:443` (with optional proxy credentials) to frps's tcpmux port and returns
/// the answer's status line and the connection.
async fn http_connect(
    addr: SocketAddr,
    host: &str,
    auth: Option<&str>,
) -> (String, tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = auth
        .map(|a| format!("Proxy-Authorization: Basic {a}\r\n"))
        .unwrap_or_default();
    s.write_all(
        format!("CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n{auth}\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).to_string();
    (text.lines().next().unwrap_or("").to_owned(), s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcpmux_proxies_route_http_connect_by_host_and_credentials() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let srv = frps().await;
    let echo = echo_server().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("frpc.yaml");
    std::fs::write(
        &file,
        format!(
            "serverAddr: 127.0.0.1\nserverPort: {}\nauth:\n  token: '{{{{ .Envs.FRPC_TEST_TOKEN }}}}'\n\
             proxies:\n\
             - name: open\n  type: tcpmux\n  multiplexer: httpconnect\n  localPort: {echo}\n  subdomain: open\n\
             - name: locked\n  type: tcpmux\n  multiplexer: httpconnect\n  localPort: {echo}\n  customDomains: [locked.example]\n  httpUser: u\n  httpPassword: pw\n  transport:\n    useEncryption: true\n",
            srv.bind_addr().port(),
            echo = echo.port()
        ),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let mut child = frpc(expose_bin(), &["frpc", "-c", file]).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let text = read_until(&mut lines, "start proxy success", 2)
        .await
        .join("\n");
    assert!(text.contains("[open] start proxy success"), "{text}");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let state = srv.snapshot();
    assert_eq!(state.proxies["open"].proxy_type, "tcpmux");
    let mux = srv.tcpmux_httpconnect_addr();

    for (host, auth) in [
        ("open.frpc.test", None),
        ("locked.example", Some("dTpwdw==")),
    ] {
        let (status, mut s) = http_connect(mux, host, auth).await;
        assert_eq!(status, "HTTP/1.1 200 OK", "{host}");
        let payload: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        s.write_all(&payload).await.unwrap();
        let mut back = vec![0u8; payload.len()];
        s.read_exact(&mut back).await.unwrap();
        assert_eq!(back, payload, "{host}");
    }
    let (status, _) = http_connect(mux, "locked.example", None).await;
    assert!(status.contains("407"), "{status}");
    let (status, _) = http_connect(mux, "locked.example", Some("dTp3cm9uZw==")).await;
    assert!(status.contains("407"), "{status}");
    let (status, _) = http_connect(mux, "nobody.example", None).await;
    assert!(status.contains("404"), "{status}");

    interrupt(&child);
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let closed = srv.snapshot().close_proxies;
    assert!(closed.iter().any(|c| c == "locked"), "{closed:?}");
}

/// The admin API's status of the one proxy, as `(status, err)`.
async fn proxy_status(admin: SocketAddr) -> (String, String) {
    let (code, body) = admin_call(admin, "GET", "/api/status", None, "").await;
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let p = &v["tcp"][0];
    (
        p["status"].as_str().unwrap_or("").to_owned(),
        p["err"].as_str().unwrap_or("").to_owned(),
    )
}

/// Some line of `seen` has frpc's level and caller `head`, then (after the run id) `tail`.
fn assert_line(seen: &str, head: &str, tail: &str) {
    assert!(
        seen.lines().any(|l| l.contains(head) && l.ends_with(tail)
            || l.contains(head) && l.contains(tail) && tail.ends_with(": ")),
        "{head}…{tail} not in:\n{seen}"
    );
}

/// Polls the admin API until the proxy's status is `want`.
async fn wait_status(admin: SocketAddr, want: &str) {
    let mut last = (String::new(), String::new());
    for _ in 0..200 {
        last = proxy_status(admin).await;
        if last.0 == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("status never {want:?}; last {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_check_lines_and_admin_statuses_like_frpc() {
    let srv = frps().await;
    // The local service starts down: a port that was free a moment ago.
    let local_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let admin_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("frpc.toml");
    std::fs::write(
        &file,
        format!(
            "serverAddr = \"127.0.0.1\"\nserverPort = {}\nauth.token = \"{TOKEN}\"\nuser = \"hu\"\n\
             webServer.port = {admin_port}\n\
             [[proxies]]\nname = \"hc\"\ntype = \"tcp\"\nlocalPort = {local_port}\n\
             healthCheck.type = \"tcp\"\nhealthCheck.intervalSeconds = 1\n\
             healthCheck.timeoutSeconds = 1\nhealthCheck.maxFailed = 1\n",
            srv.bind_addr().port(),
        ),
    )
    .unwrap();
    let mut child = frpc(expose_bin(), &["frpc", "-c", file.to_str().unwrap()])
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let admin: SocketAddr = ([127, 0, 0, 1], admin_port).into();

    // Down from the start: checks fail, the proxy is not registered and shows as "new".
    let seen = read_until(&mut lines, "do one health check failed", 1)
        .await
        .join("\n");
    assert_line(
        &seen,
        "[W] [health/health.go:128] ",
        "[hu.hc] do one health check failed: ",
    );
    assert_eq!(proxy_status(admin).await, ("new".into(), String::new()));
    assert!(!srv.snapshot().proxies.contains_key("hu.hc"));

    // The service comes up: frpc's two lines, then the registration.
    let service = tokio::net::TcpListener::bind(("127.0.0.1", local_port))
        .await
        .unwrap();
    let accept = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((c, _)) = service.accept().await {
            held.push(c);
        }
    });
    let seen = read_until(&mut lines, "start proxy success", 1)
        .await
        .join("\n");
    for (head, tail) in [
        (
            "[I] [health/health.go:123] ",
            "[hu.hc] health check status change to success",
        ),
        (
            "[I] [proxy/proxy_wrapper.go:245] ",
            "[hu.hc] health check success",
        ),
        (
            "[I] [client/control.go:172] ",
            "[hu.hc] start proxy success",
        ),
    ] {
        assert_line(&seen, head, tail);
    }
    wait_status(admin, "running").await;

    // It goes down again: frpc's two lines, CloseProxy, and "check failed".
    accept.abort();
    let _ = accept.await;
    let seen = read_until(&mut lines, "health check failed", 2)
        .await
        .join("\n");
    for (head, tail) in [
        (
            "[W] [health/health.go:131] ",
            "[hu.hc] health check status change to failed",
        ),
        (
            "[I] [proxy/proxy_wrapper.go:257] ",
            "[hu.hc] health check failed",
        ),
    ] {
        assert_line(&seen, head, tail);
    }
    wait_status(admin, "check failed").await;
    assert!(
        eventually(Duration::from_secs(10), || srv
            .snapshot()
            .close_proxies
            .iter()
            .any(|c| c == "hu.hc"))
        .await
    );
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    interrupt(&child);
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_to_a_file_instead_of_the_console() {
    let srv = frps().await;
    let echo = echo_server().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs").join("frpc.log");
    let file = dir.path().join("frpc.toml");
    std::fs::write(
        &file,
        format!(
            "serverAddr = \"127.0.0.1\"\nserverPort = {}\nauth.token = \"{TOKEN}\"\n\
             log.to = \"{}\"\nlog.maxDays = 2\n\
             transport.tls.enable = false\ntransport.tls.trustedCaFile = \"ca.pem\"\n\
             [[proxies]]\nname = \"lf\"\ntype = \"tcp\"\nlocalPort = {}\n",
            srv.bind_addr().port(),
            log.display(),
            echo.port()
        ),
    )
    .unwrap();
    let mut child = frpc(expose_bin(), &["frpc", "-c", file.to_str().unwrap()])
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut logged = String::new();
    for _ in 0..400 {
        logged = std::fs::read_to_string(&log).unwrap_or_default();
        if logged.contains("[lf] start proxy success") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(logged.contains("[lf] start proxy success"), "{logged}");
    assert!(logged.contains("[I] [sub/root.go:159] start frpc service for config file"));
    assert!(logged.contains("login to server success, get run id"));
    interrupt(&child);
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    // What frpc prints itself stays on the console; its log lines do not.
    let mut out = String::new();
    use tokio::io::AsyncReadExt;
    stdout.read_to_string(&mut out).await.unwrap();
    assert_eq!(
        out,
        "WARNING: transport.tls.trustedCaFile is invalid when transport.tls.enable is false\n"
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.ends_with("stopped\n"), "{logged}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_proxies_route_tls_by_server_name_and_pass_it_through() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let srv = frps().await;
    let (a, b) = (echo_server().await, echo_server().await);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("frpc.json");
    std::fs::write(
        &file,
        format!(
            r#"{{"serverAddr": "127.0.0.1", "serverPort": {},
                "auth": {{"token": "{{{{ .Envs.FRPC_TEST_TOKEN }}}}"}},
                "proxies": [
                  {{"name": "site", "type": "https", "localPort": {}, "subdomain": "site"}},
                  {{"name": "wild", "type": "https", "localPort": {}, "customDomains": ["*.wild.example"],
                    "transport": {{"useEncryption": true, "useCompression": true}}}}
                ]}}"#,
            srv.bind_addr().port(),
            a.port(),
            b.port()
        ),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let mut child = frpc(expose_bin(), &["frpc", "-c", file]).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let text = read_until(&mut lines, "start proxy success", 2)
        .await
        .join("\n");
    assert!(text.contains("[site] start proxy success"), "{text}");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    assert_eq!(srv.snapshot().proxies["wild"].proxy_type, "https");

    // The bytes (ClientHello first) reach the local service untouched, both ways.
    for host in ["site.frpc.test", "a.wild.example"] {
        let mut s = tokio::net::TcpStream::connect(srv.vhost_https_addr())
            .await
            .unwrap();
        let mut sent = expose::testserver::client_hello(host);
        sent.extend((0..40_000u32).map(|i| (i % 253) as u8));
        s.write_all(&sent).await.unwrap();
        let mut back = vec![0u8; sent.len()];
        tokio::time::timeout(Duration::from_secs(20), s.read_exact(&mut back))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back, sent, "{host}");
    }
    // An unknown name is closed without an answer.
    let mut s = tokio::net::TcpStream::connect(srv.vhost_https_addr())
        .await
        .unwrap();
    s.write_all(&expose::testserver::client_hello("nobody.test"))
        .await
        .unwrap();
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);

    interrupt(&child);
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// The YAML and JSON samples: two proxies of each of tcp and http, one https and one tcpmux,
/// all registered and carrying traffic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yaml_and_json_samples_with_several_proxies_of_each_type() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for (file, user) in [("several.yaml", "yml"), ("several.json", "jsn")] {
        let srv = frps().await;
        let echo = echo_server().await;
        let web = http_server().await;
        let path = sample(file);
        let mut cmd = frpc(expose_bin(), &["frpc", "-c", &path]);
        cmd.env("FRPS_PORT", srv.bind_addr().port().to_string())
            .env("ECHO_PORT", echo.port().to_string())
            .env("WEB_PORT", web.port().to_string());
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let text = read_until(&mut lines, "start proxy success", 6)
            .await
            .join("\n");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let state = srv.snapshot();
        for name in ["echo-a", "echo-b"] {
            let port = state.proxies[&format!("{user}.{name}")]
                .remote_port
                .expect("tcp port");
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            assert_eq!(
                echo_roundtrip(addr, 32 * 1024, 2).await,
                32 * 1024,
                "{file} {name}"
            );
        }
        for host in ["web-a.frpc.test", "web-b.example"] {
            let (status, body) = http_get(srv.vhost_http_addr(), host, "/s").await;
            assert!(status.contains("200"), "{file} {host}: {status}");
            assert_eq!(body, format!("hello /s via {host}\n"));
        }
        let tls_host = if user == "yml" {
            "tls-a.frpc.test"
        } else {
            "tls-a.example"
        };
        let mut s = tokio::net::TcpStream::connect(srv.vhost_https_addr())
            .await
            .unwrap();
        let hello = expose::testserver::client_hello(tls_host);
        s.write_all(&hello).await.unwrap();
        let mut back = vec![0u8; hello.len()];
        s.read_exact(&mut back).await.unwrap();
        assert_eq!(back, hello, "{file}");
        let (status, _) =
            http_connect(srv.tcpmux_httpconnect_addr(), "mux-a.frpc.test", None).await;
        assert_eq!(status, "HTTP/1.1 200 OK", "{file}: {text}");
        interrupt(&child);
        let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status.code(), Some(0));
    }
}

/// `frpc tcp -p quic` to frps's QUIC port: login, traffic, and on Ctrl-C the CloseProxy still
/// reaches frps before the QUIC connection closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_tcp_command_over_quic() {
    let srv = TestServer::start(ServerConfig {
        token: TOKEN.into(),
        quic_bind: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..Default::default()
    })
    .await
    .unwrap();
    let echo = echo_server().await;
    let port = srv.quic_addr().unwrap().port().to_string();
    let local = echo.port().to_string();
    let args = [
        "frpc",
        "tcp",
        "-s",
        "127.0.0.1",
        "-P",
        &port,
        "-p",
        "quic",
        "-t",
        TOKEN,
        "-n",
        "q",
        "-l",
        &local,
    ];
    let mut child = frpc(expose_bin(), &args).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let seen = read_until(&mut lines, "start proxy success", 1)
        .await
        .join("\n");
    assert!(seen.contains("[q] start proxy success"), "{seen}");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let counters = srv.snapshot().counters;
    assert!(counters.quic_connections >= 1, "{counters:?}");
    assert_eq!(counters.connections, 0, "nothing over TCP: {counters:?}");
    let remote = srv.snapshot().proxies["q"].remote_port.unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], remote).into();
    assert_eq!(echo_roundtrip(addr, 64 * 1024, 6).await, 64 * 1024);
    interrupt(&child);
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(srv.snapshot().close_proxy_received("q"));
}

/// A plugin that cannot start (https2http with a certificate file that does not exist): as
/// frpc, the proxy is closed on the server, `[name] start error: …` is logged and the admin
/// API shows "start error" with the plugin's error.
#[cfg(feature = "plugins")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_cannot_start_is_a_start_error_like_frpc() {
    let srv = frps().await;
    let admin_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let crt = dir.path().join("missing.crt");
    let key = dir.path().join("missing.key");
    let file = dir.path().join("frpc.toml");
    std::fs::write(
        &file,
        format!(
            "serverAddr = \"127.0.0.1\"\nserverPort = {}\nauth.token = \"{TOKEN}\"\nuser = \"pu\"\n\
             webServer.port = {admin_port}\n\
             [[proxies]]\nname = \"sec\"\ntype = \"tcp\"\n\
             [proxies.plugin]\ntype = \"https2http\"\nlocalAddr = \"127.0.0.1:1\"\n\
             crtPath = \"{}\"\nkeyPath = \"{}\"\n",
            srv.bind_addr().port(),
            crt.display(),
            key.display(),
        ),
    )
    .unwrap();
    let mut child = frpc(expose_bin(), &["frpc", "-c", file.to_str().unwrap()])
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let admin: SocketAddr = ([127, 0, 0, 1], admin_port).into();
    let error = format!(
        "gen TLS config error: open {}: no such file or directory",
        crt.display()
    );
    let seen = read_until(&mut lines, "start error", 1).await.join("\n");
    assert_line(
        &seen,
        "[W] [client/control.go:170] ",
        &format!("[pu.sec] start error: {error}"),
    );
    assert!(!seen.contains("start proxy success"), "{seen}");
    wait_status(admin, "start error").await;
    assert_eq!(proxy_status(admin).await, ("start error".into(), error));
    let (_, body) = admin_call(admin, "GET", "/api/status", None, "").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["tcp"][0]["plugin"], "https2http", "{body}");
    // Registered, then closed again: frps holds nothing for it.
    let state = srv
        .wait_for(
            |s| s.close_proxies.iter().any(|c| c == "pu.sec") && !s.proxies.contains_key("pu.sec"),
            Duration::from_secs(20),
        )
        .await;
    assert!(state.is_ok(), "{:?}", srv.snapshot().close_proxies);
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    interrupt(&child);
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// frpc's admin router: `/healthz` open, the dashboard's `/` (any method), `/favicon.ico` and
/// `/static/…` behind the same basic auth as the API, 405 for a known path with another method
/// and 404 for an unknown one before any auth. frp's e2e suite checks `GET /` answers 401
/// without credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_router_guards_the_dashboard_paths_like_frpc() {
    let admin_port = spare_port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("frpc.toml");
    std::fs::write(
        &file,
        format!(
            "serverAddr = \"127.0.0.1\"\nserverPort = {}\nloginFailExit = false\n\
             webServer.addr = \"0.0.0.0\"\nwebServer.port = {admin_port}\n\
             webServer.user = \"admin\"\nwebServer.password = \"admin\"\n",
            dead_port().await
        ),
    )
    .unwrap();
    let mut child = frpc(expose_bin(), &["frpc", "-c", file.to_str().unwrap()])
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    read_until(&mut lines, "admin server listen on", 1).await;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let admin: SocketAddr = ([127, 0, 0, 1], admin_port).into();
    let good = Some("YWRtaW46YWRtaW4="); // admin:admin
    assert_eq!(
        admin_call(admin, "GET", "/healthz", None, "").await,
        (200, String::new())
    );
    assert_eq!(
        admin_call(admin, "GET", "/", None, "").await,
        (401, "Unauthorized\n".to_owned())
    );
    assert_eq!(admin_call(admin, "POST", "/", None, "").await.0, 401);
    assert_eq!(
        admin_call(admin, "GET", "/static/index.html", None, "")
            .await
            .0,
        401
    );
    assert_eq!(
        admin_call(admin, "GET", "/favicon.ico", None, "").await.0,
        401
    );
    let (code, body) = admin_call(admin, "GET", "/", good, "").await;
    assert_eq!(code, 301, "{body}");
    assert_eq!(body, "<a href=\"/static/\">Moved Permanently</a>.\n\n");
    assert_eq!(admin_call(admin, "GET", "/static/", good, "").await.0, 404);
    assert_eq!(
        admin_call(admin, "GET", "/nothing", None, "").await,
        (404, "404 page not found\n".to_owned())
    );
    assert_eq!(
        admin_call(admin, "POST", "/api/status", None, "").await.0,
        405
    );
    assert_eq!(admin_call(admin, "GET", "/api/stop", None, "").await.0, 405);
    // The heads announce the bodies' real lengths (a Go client reads exactly that many).
    for (auth, want) in [("", 13), ("Authorization: Basic YWRtaW46YWRtaW4=\r\n", 43)] {
        let mut s = tokio::net::TcpStream::connect(admin).await.unwrap();
        let req = format!("GET / HTTP/1.1\r\nHost: x\r\n{auth}\r\n");
        tokio::io::AsyncWriteExt::write_all(&mut s, req.as_bytes())
            .await
            .unwrap();
        let mut resp = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut s, &mut resp)
            .await
            .unwrap();
        let (head, body) = resp.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("Content-Length: {want}\r\n")),
            "{head}"
        );
        assert_eq!(body.len(), want);
    }
    interrupt(&child);
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}
