//! The real `expose` binary as a new user meets it: global flags anywhere, `-q` really quiet,
//! one `error:` line with each cause once, `--server HOST` taking frp's default port, and
//! `EXPOSE_LOG` choosing the log lines.
#![cfg(unix)]

mod common;

use common::*;
use expose::testserver::{ServerConfig, TestServer};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

const TOKEN: &str = "polish-token-51c2";
const WAIT: Duration = Duration::from_secs(30);

async fn frps() -> TestServer {
    TestServer::start(ServerConfig {
        token: TOKEN.into(),
        ..Default::default()
    })
    .await
    .unwrap()
}

/// `expose ARGS…` with the token in the environment, stdout and stderr piped.
fn expose(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_expose"))
        .args(args)
        .env("FRP_TOKEN", TOKEN)
        .env_remove("EXPOSE_LOG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Everything the child writes on stdout (what is still unread) and stderr until it exits,
/// and its exit code.
async fn finish(mut child: Child) -> (String, String, i32) {
    let out = child.stdout.take();
    let mut err = child.stderr.take().unwrap();
    let (mut o, mut e) = (String::new(), String::new());
    let read_out = async {
        match out {
            Some(mut out) => out.read_to_string(&mut o).await.map(|_| ()),
            None => Ok(()),
        }
    };
    let (ro, re, status) = tokio::time::timeout(WAIT, async {
        tokio::join!(read_out, err.read_to_string(&mut e), child.wait())
    })
    .await
    .expect("expose exits in time");
    ro.unwrap();
    re.unwrap();
    (o, e, status.unwrap().code().unwrap_or(-1))
}

/// Reads the child's stdout until a line contains `needle`.
async fn stdout_until(
    child: &mut Child,
    needle: &str,
) -> tokio::io::Lines<BufReader<tokio::process::ChildStdout>> {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    read_until(&mut lines, needle, 1).await;
    lines
}

#[tokio::test]
async fn verbose_goes_before_or_after_the_subcommand() {
    let srv = frps().await;
    let local = echo_server().await;
    let server = srv.bind_addr().to_string();
    let port = local.port().to_string();
    for args in [
        vec!["-v", "tcp", &port, "--server", &server, "--json"],
        vec!["tcp", &port, "--server", &server, "--json", "-v"],
        vec!["--json", "-v", "tcp", &port, "--server", &server],
    ] {
        let mut child = expose(&args);
        let _lines = stdout_until(&mut child, "\"ready\"").await;
        interrupt(&child);
        let (_, err, code) = finish(child).await;
        assert_eq!(code, 0, "{args:?}: {err}");
        // -v means info logs on stderr, wherever it stood.
        assert!(err.contains("INFO"), "{args:?}: no info logs in {err:?}");
    }
}

#[tokio::test]
async fn quiet_prints_no_notes_and_no_warnings() {
    let srv = frps().await;
    let server = srv.bind_addr().to_string();
    // Nothing listens on the local port: without -q this warns.
    let nobody = dead_port().await.to_string();
    let mut loud = expose(&["tcp", &nobody, "--server", &server]);
    let mut err = BufReader::new(loud.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let line = tokio::time::timeout(WAIT, err.next_line())
            .await
            .unwrap()
            .unwrap();
        seen.push(line.expect("stderr open"));
    }
    assert!(seen[0].contains("nothing is listening"), "{seen:?}");
    assert!(seen[1].starts_with("connecting to"), "{seen:?}");
    drop(loud);

    for args in [
        vec!["-q", "tcp", &nobody, "--server", &server],
        vec!["tcp", &nobody, "--server", &server, "-q"],
    ] {
        let mut child = expose(&args);
        // The banner is the output (stdout), not a note: still there.
        let _lines = stdout_until(&mut child, "Forwarding").await;
        interrupt(&child);
        let (_, err, code) = finish(child).await;
        assert_eq!(code, 0);
        assert_eq!(err, "", "{args:?}: -q printed on stderr");
    }
}

#[tokio::test]
async fn a_failure_is_one_error_line_with_each_cause_once() {
    let dead = dead_port().await;
    let server = format!("127.0.0.1:{dead}");
    let local = echo_server().await.port().to_string();
    let child = expose(&["tcp", &local, "--server", &server]);
    let (out, err, code) = finish(child).await;
    assert_eq!(code, 1);
    assert_eq!(out, "");
    let lines: Vec<&str> = err.lines().collect();
    // The progress note, then the error; no log lines.
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].starts_with("connecting to"), "{err}");
    let error = lines[1];
    assert!(
        error.starts_with("error: the tunnel did not start: "),
        "{err}"
    );
    assert!(error.contains(&server), "{err}");
    // The operating system's reason appears once, however many layers wrapped it.
    let reason = "Connection refused";
    assert_eq!(error.matches(reason).count(), 1, "{err}");

    // -q: the error line alone.
    let child = expose(&["-q", "tcp", &local, "--server", &server]);
    let (_, err, code) = finish(child).await;
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");

    // -v: the logs come back.
    let child = expose(&["tcp", &local, "--server", &server, "-v"]);
    let (_, err, code) = finish(child).await;
    assert_eq!(code, 1);
    assert!(err.contains("login failed"), "{err}");
}

#[tokio::test]
async fn server_without_a_port_uses_7000() {
    let local = echo_server().await.port().to_string();
    let mut child = expose(&["tcp", &local, "--server", "127.0.0.1"]);
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let found = tokio::time::timeout(WAIT, async {
        while let Some(line) = err.next_line().await.unwrap() {
            if line.starts_with("connecting to") {
                return line;
            }
        }
        String::new()
    })
    .await
    .unwrap();
    assert_eq!(found, "connecting to 127.0.0.1:7000 …");
}

#[tokio::test]
async fn prime_options_do_not_mix_with_a_subcommand() {
    let child = expose(&["--label", "x", "tcp", "80", "--server", "127.0.0.1:1"]);
    let (_, err, code) = finish(child).await;
    assert_eq!(code, 2);
    assert!(
        err.contains("--label before `tcp` is an option of `expose <PORT>`"),
        "{err}"
    );
}

#[tokio::test]
async fn expose_log_chooses_the_logs_and_a_bad_filter_keeps_the_default() {
    let dead = dead_port().await;
    let server = format!("127.0.0.1:{dead}");
    let local = echo_server().await.port().to_string();
    let run = |filter: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_expose"));
        cmd.args(["tcp", &local, "--server", &server])
            .env("FRP_TOKEN", TOKEN)
            .env("EXPOSE_LOG", filter)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        finish(cmd.spawn().unwrap())
    };
    // The login's warning is `expose::frp::control`'s: shown by a level, a target or a prefix of
    // it, hidden when the most specific directive turns it off.
    for (filter, shown) in [
        ("warn", true),
        ("expose=debug", true),
        ("off,expose::frp=warn,yamux=warn", true),
        (" info , ", true),
        ("error", false),
        ("off", false),
        ("", false),
        ("info,expose::frp::control=off", false),
        ("hyper=trace", false),
    ] {
        let (_, err, code) = run(filter).await;
        assert_eq!(code, 1);
        assert_eq!(
            err.contains("login failed"),
            shown,
            "EXPOSE_LOG={filter:?}: {err}"
        );
    }
    // Not a filter: one warning, then what the default shows (the note and the error).
    let (_, err, code) = run("expose=loud").await;
    assert_eq!(code, 1);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines[0].starts_with("warning: EXPOSE_LOG=expose=loud is not a log filter"),
        "{err}"
    );
    assert!(lines[1].starts_with("connecting to"), "{err}");
    assert!(lines[2].starts_with("error: "), "{err}");
}
