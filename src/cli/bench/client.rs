//! The client under test: `expose tcp … --json` as a child process, and where it connects.

use super::plan::Plan;
use anyhow::{bail, Context as _};
use expose::bench::delay::DelayRelay;
use expose::bench::proc_stat::{self, CpuTime};
use expose::testserver::TestServer;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a client child may take to log in and register its proxy.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the tunnel goes.
pub(super) enum Target {
    /// The in-process test server; the client dials the relay instead when `--rtt` is given.
    InProcess(TestServer, Option<DelayRelay>),
    /// A frps given with `--server`.
    Server { host: String, port: u16 },
}

impl Target {
    fn server_arg(&self) -> String {
        match self {
            Target::InProcess(_, Some(relay)) => relay.addr().to_string(),
            Target::InProcess(s, None) => s.bind_addr().to_string(),
            Target::Server { host, port } if host.contains(':') => format!("[{host}]:{port}"),
            Target::Server { host, port } => format!("{host}:{port}"),
        }
    }
}

/// A client under test, running as a child process.
pub(super) struct ClientProc {
    child: Child,
    pid: u32,
    /// Public address of its tcp proxy.
    pub(super) remote: SocketAddr,
    /// From spawn to the ready line.
    pub(super) ready_after: Duration,
}

impl ClientProc {
    pub(super) fn cpu(&self) -> Option<CpuTime> {
        proc_stat::cpu_time(self.pid)
    }

    pub(super) fn memory(&self) -> Option<proc_stat::Memory> {
        proc_stat::memory(self.pid)
    }

    pub(super) async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// Starts `expose tcp <service> --server … --json` and waits for its ready line.
pub(super) async fn spawn(
    target: &Target,
    plan: &Plan,
    service_port: u16,
    name: &str,
) -> anyhow::Result<ClientProc> {
    let exe = std::env::current_exe().context("cannot find this program to start the client")?;
    let mut cmd = Command::new(exe);
    cmd.arg("tcp")
        .arg(service_port.to_string())
        .arg("--server")
        .arg(target.server_arg())
        .arg("--name")
        .arg(name)
        .arg("--json")
        .arg("-q")
        // The token travels in the environment, not on a command line anyone can read.
        .env("FRP_TOKEN", &plan.token)
        .env_remove("EXPOSE_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if !plan.tls {
        cmd.arg("--no-tls");
    }
    if !plan.mux {
        cmd.arg("--no-mux");
    }
    let started = Instant::now();
    let mut child = cmd.spawn().context("cannot start the client process")?;
    let pid = child.id().context("the client process exited at once")?;
    let stdout = child
        .stdout
        .take()
        .context("no stdout from the client process")?;
    let mut lines = BufReader::new(stdout).lines();
    let wait_ready = async {
        while let Some(line) = lines.next_line().await? {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            match v.get("event").and_then(|e| e.as_str()) {
                Some("ready") => {
                    let url = v.get("url").and_then(|u| u.as_str()).unwrap_or_default();
                    return Ok(Some(url.to_owned()));
                }
                Some("closed") => return Ok(None),
                _ => {}
            }
        }
        Ok::<_, std::io::Error>(None)
    };
    let url = match tokio::time::timeout(READY_TIMEOUT, wait_ready).await {
        Ok(Ok(Some(url))) => url,
        Ok(Ok(None)) | Ok(Err(_)) => {
            let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            bail!("the client stopped before its tunnel was ready ({status:?})")
        }
        Err(_) => bail!(
            "the client was not ready within {}s",
            READY_TIMEOUT.as_secs()
        ),
    };
    let ready_after = started.elapsed();
    // Keep reading so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let remote = tokio::net::lookup_host(url.as_str())
        .await
        .with_context(|| format!("cannot resolve the tunnel address {url:?}"))?
        .next()
        .with_context(|| format!("no address for the tunnel address {url:?}"))?;
    Ok(ClientProc {
        child,
        pid,
        remote,
        ready_after,
    })
}
