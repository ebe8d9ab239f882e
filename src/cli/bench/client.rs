//! The client under test: `expose tcp … --json` as a child process (or the command given with
//! `--client-cmd`), and where it connects.

use super::plan::Plan;
use anyhow::{bail, Context as _};
use expose::bench::delay::DelayRelay;
use expose::bench::proc_stat::{self, CpuTime};
use expose::testserver::TestServer;
use std::net::SocketAddr;
use std::path::PathBuf;
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
        let (host, port) = self.host_port();
        if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    }

    /// Where clients dial, as host and port.
    fn host_port(&self) -> (String, u16) {
        match self {
            Target::InProcess(_, Some(relay)) => {
                (relay.addr().ip().to_string(), relay.addr().port())
            }
            Target::InProcess(s, None) => (s.bind_addr().ip().to_string(), s.bind_addr().port()),
            Target::Server { host, port } => (host.clone(), *port),
        }
    }

    /// Where the server opens a proxy's remote port.
    fn public_host(&self) -> String {
        match self {
            Target::InProcess(s, _) => s.bind_addr().ip().to_string(),
            Target::Server { host, .. } => host.clone(),
        }
    }
}

/// How a client process is started.
#[derive(Clone, Copy)]
pub(super) enum Launch<'a> {
    /// This binary's `expose tcp … --json`: its ready line gives the public address.
    Expose,
    /// A `--client-cmd` template: ready once a byte echoes through the remote port it was
    /// given.
    Command(&'a str),
}

/// A client under test, running as a child process.
pub(super) struct ClientProc {
    child: Child,
    pid: u32,
    /// Public address of its tcp proxy.
    pub(super) remote: SocketAddr,
    /// From spawn to the ready line (to the first echo through a `--client-cmd` client).
    pub(super) ready_after: Duration,
    /// The config file generated for a `--client-cmd` client, removed when it stops.
    config: Option<PathBuf>,
}

impl ClientProc {
    pub(super) fn cpu(&self) -> Option<CpuTime> {
        proc_stat::cpu_time(self.pid)
    }

    pub(super) fn memory(&self) -> Option<proc_stat::Memory> {
        proc_stat::memory(self.pid)
    }

    pub(super) async fn stop(mut self) {
        if self.config.is_some() {
            // Asked to end first, so that a profiler around the client (valgrind, strace -c)
            // writes its results; killed if it is not gone by then.
            signal_group(self.pid, rustix_signal::TERM);
            let ended = tokio::time::timeout(GRACE, self.child.wait()).await;
            if !matches!(ended, Ok(Ok(_))) {
                signal_group(self.pid, rustix_signal::KILL);
            }
            // The rest of the group (a forking wrapper's client) does not outlive it.
            signal_group(self.pid, rustix_signal::KILL);
        }
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        if let Some(path) = self.config.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// How long a `--client-cmd` client may take to end after SIGTERM (a profiler writing its
/// output) before it is killed.
const GRACE: Duration = Duration::from_secs(30);

/// The signals sent to a `--client-cmd` client's group.
#[cfg(unix)]
pub(super) mod rustix_signal {
    pub(crate) use rustix::process::Signal;
    pub(crate) const TERM: Signal = Signal::TERM;
    pub(crate) const KILL: Signal = Signal::KILL;
}

#[cfg(not(unix))]
pub(super) mod rustix_signal {
    pub(crate) const TERM: () = ();
    pub(crate) const KILL: () = ();
}

/// Signals the process group a `--client-cmd` runs in (its own): a wrapper that forks (strace,
/// time) must not leave the client behind.
#[cfg(unix)]
pub(super) fn signal_group(pid: u32, signal: rustix_signal::Signal) {
    if let Some(group) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(group, signal);
    }
}

/// Elsewhere, the child alone is killed by [`ClientProc::stop`].
#[cfg(not(unix))]
pub(super) fn signal_group(_pid: u32, _signal: ()) {}

/// Starts a client process, the built-in one or a `--client-cmd`, and waits until it is ready.
pub(super) async fn start(
    launch: Launch<'_>,
    target: &Target,
    plan: &Plan,
    service_port: u16,
    name: &str,
) -> anyhow::Result<ClientProc> {
    match launch {
        Launch::Expose => spawn(target, plan, service_port, name).await,
        Launch::Command(template) => {
            spawn_command(template, target, plan, service_port, name).await
        }
    }
}

/// The values a `--client-cmd` template's placeholders stand for.
struct Fill<'a> {
    config: &'a str,
    server_addr: &'a str,
    server_port: u16,
    token: &'a str,
    local_port: u16,
    remote_port: u16,
    name: &'a str,
    tls: bool,
    mux: bool,
    expose: &'a str,
}

impl Fill<'_> {
    /// `template` with every placeholder replaced, in one pass (a value that contains a
    /// placeholder's text is not expanded again).
    fn apply(&self, template: &str) -> String {
        let mut out = String::with_capacity(template.len() + 64);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let value = after.find('}').and_then(|close| {
                let v = match &after[..close] {
                    "config" => self.config.to_owned(),
                    "server_addr" => self.server_addr.to_owned(),
                    "server_port" => self.server_port.to_string(),
                    "token" => self.token.to_owned(),
                    "local_port" => self.local_port.to_string(),
                    "remote_port" => self.remote_port.to_string(),
                    "name" => self.name.to_owned(),
                    "tls" => self.tls.to_string(),
                    "mux" => self.mux.to_string(),
                    "expose" => self.expose.to_owned(),
                    _ => return None,
                };
                Some((v, close))
            });
            match value {
                Some((v, close)) => {
                    out.push_str(&v);
                    rest = &after[close + 1..];
                }
                None => {
                    out.push('{');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// A frpc (v1 TOML) config with one tcp proxy, as Go frpc and `expose frpc` read it.
    fn frpc_toml(&self) -> String {
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        format!(
            "serverAddr = {}\nserverPort = {}\nloginFailExit = true\nauth.token = {}\n\
             transport.tls.enable = {}\ntransport.tcpMux = {}\n\n[[proxies]]\nname = {}\n\
             type = \"tcp\"\nlocalIP = \"127.0.0.1\"\nlocalPort = {}\nremotePort = {}\n",
            q(self.server_addr),
            self.server_port,
            q(self.token),
            self.tls,
            self.mux,
            q(self.name),
            self.local_port,
            self.remote_port,
        )
    }
}

/// Starts a `--client-cmd` client with a config for a free remote port, and waits until a byte
/// echoes through that port.
async fn spawn_command(
    template: &str,
    target: &Target,
    plan: &Plan,
    service_port: u16,
    name: &str,
) -> anyhow::Result<ClientProc> {
    let public = target.public_host();
    // A port free here now; the server binds it when the proxy registers.
    let remote_port = std::net::TcpListener::bind((public.as_str(), 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .with_context(|| format!("cannot find a free port on {public}"))?;
    let (server_addr, server_port) = target.host_port();
    let exe = std::env::current_exe().context("cannot find this program")?;
    let config = std::env::temp_dir().join(format!("{name}.toml"));
    let config_text = config.to_string_lossy().into_owned();
    let exe_text = exe.to_string_lossy().into_owned();
    let fill = Fill {
        config: &config_text,
        server_addr: &server_addr,
        server_port,
        token: &plan.token,
        local_port: service_port,
        remote_port,
        name,
        tls: plan.tls,
        mux: plan.mux,
        expose: &exe_text,
    };
    std::fs::write(&config, fill.frpc_toml())
        .with_context(|| format!("cannot write {}", config.display()))?;
    let started = Instant::now();
    let mut cmd = Command::new("sh");
    #[cfg(unix)]
    cmd.process_group(0);
    let mut child = cmd
        .arg("-c")
        // `exec`: the measured process is the client itself, not a shell waiting for it.
        .arg(format!("exec {}", fill.apply(template)))
        .env("FRP_TOKEN", &plan.token)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the --client-cmd process")?;
    let pid = child
        .id()
        .context("the --client-cmd process exited at once")?;
    let remote = tokio::net::lookup_host((public.as_str(), remote_port))
        .await?
        .next()
        .with_context(|| format!("no address for {public}"))?;
    let deadline = started + READY_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            signal_group(pid, rustix_signal::KILL);
            let _ = std::fs::remove_file(&config);
            bail!("the --client-cmd process exited before its tunnel was ready ({status})");
        }
        let probe = tokio::time::timeout(
            Duration::from_secs(1),
            expose::bench::load::open_echo(remote),
        );
        if let Ok(Ok(_)) = probe.await {
            break;
        }
        if Instant::now() >= deadline {
            signal_group(pid, rustix_signal::KILL);
            let _ = std::fs::remove_file(&config);
            bail!(
                "the --client-cmd process was not ready within {}s",
                READY_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(ClientProc {
        child,
        pid,
        remote,
        ready_after: started.elapsed(),
        config: Some(config),
    })
}

/// Starts `expose tcp <service> --server … --json` and waits for its ready line.
async fn spawn(
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
        config: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_once_and_unknown_ones_kept() {
        let fill = Fill {
            config: "/tmp/c.toml",
            server_addr: "127.0.0.1",
            server_port: 7000,
            token: "{name}",
            local_port: 8080,
            remote_port: 9000,
            name: "p",
            tls: true,
            mux: false,
            expose: "/bin/expose",
        };
        assert_eq!(
            fill.apply("{expose} frpc -c {config} {server_addr}:{server_port} {token} {x} {"),
            "/bin/expose frpc -c /tmp/c.toml 127.0.0.1:7000 {name} {x} {"
        );
        let toml = fill.frpc_toml();
        assert!(toml.contains("remotePort = 9000") && toml.contains("transport.tcpMux = false"));
        assert!(toml.contains("auth.token = \"{name}\""), "{toml}");
    }
}
