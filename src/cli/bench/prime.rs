//! `expose bench --prime`: HTTP load through a real Prime tunnel's public URL.
//!
//! The tunnel is this binary's own `expose <PORT> --json` as a child process, exposing an HTTP
//! service of the bench ([`HttpService`]): it creates the tunnel through the Prime API exactly
//! as a user's `expose <PORT>` does, and its CPU time and memory are read from `/proc` without
//! the load generator mixed in. The child runs in its own process group, so a Ctrl-C at the
//! terminal reaches the bench alone, which then stops the child with one SIGTERM: the child
//! unregisters and deletes its tunnel as on any interrupt. If the child could not say that the
//! DELETE succeeded, the bench deletes the tunnel by id itself. A bench that dies without
//! cleaning up (a panic) still sends that SIGTERM from `Drop`.
//!
//! Phases, each directly against the service (the baseline) and then through the URL: small
//! requests (`GET` of `--msg-size` bytes), downloads and uploads (4 MiB bodies), with
//! `--concurrency` requests in flight.

use super::client::{rustix_signal, signal_group};
use super::prime_report::{PhaseRow, PrimeClientCost, PrimeReport};
use super::progress::Progress;
use crate::cli::args::{BenchArgs, OutputArgs};
use crate::cli::run::{exit_on_second_interrupt, interrupted};
use anyhow::{anyhow, Context as _};
use bytes::Bytes;
use expose::bench::http_load::{self, Bounds, PhaseResult, Work};
use expose::bench::http_service::HttpService;
use expose::bench::proc_stat;
use expose::prime::{PrimeClient, PrimeConfig};
use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tokio::task::JoinHandle;

/// Body size of a download or upload request.
const BULK_BODY: u64 = 4 << 20;
/// How long the child may take to create its tunnel and register it (the child itself gives
/// the tunnel server 30 s).
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the public URL may take to answer once the tunnel is registered.
const URL_READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the child may take to close and delete its tunnel after SIGTERM (it gives the API
/// DELETE 10 s).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);
/// Per request: a bulk request on a slow link takes a while.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The API DELETE the bench sends itself when the child could not.
const DELETE_TIMEOUT: Duration = Duration::from_secs(15);

/// The tunnel client exited before its tunnel was ready; it said why on stderr.
#[derive(Debug, thiserror::Error)]
#[error("the tunnel client (`expose <PORT>`) exited before its tunnel was ready ({status})")]
pub struct ClientExited {
    status: ExitStatus,
}

impl ClientExited {
    /// The child's own exit code (3 no key or 401, 4 limit, 5 refused by the tunnel server), so
    /// that scripts see the same codes as from `expose <PORT>`.
    pub fn exit_code(&self) -> u8 {
        match self.status.code() {
            Some(c @ 1..=5) => c as u8,
            _ => 1,
        }
    }
}

/// Runs the benchmark through a Prime tunnel.
pub(super) async fn run(
    args: &BenchArgs,
    out: &OutputArgs,
    progress: &Progress,
) -> anyhow::Result<()> {
    // A missing key fails here, before anything starts, with the same error and exit code as
    // `expose <PORT>`.
    let api = PrimeClient::new(PrimeConfig::load()?)?;
    let service = HttpService::loopback()
        .await
        .context("cannot start the local HTTP service")?;
    progress.say("creating a Prime tunnel (`expose <PORT>` as a child process)");
    let mut tunnel = TunnelProc::start(service.addr().port(), progress).await?;
    progress.say(&format!("tunnel {} is ready at {}", tunnel.id, tunnel.url));
    let measured = tokio::select! {
        r = measure(args, &tunnel, &service, progress) => r,
        _ = interrupted() => {
            exit_on_second_interrupt();
            Err(anyhow!("interrupted"))
        }
    };
    progress.say("closing and deleting the tunnel");
    let deleted = tunnel.close(&api, progress).await;
    let failure = match (measured, deleted) {
        (Ok(report), deleted) => {
            if out.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", super::prime_report::table(&report));
            }
            return deleted;
        }
        (Err(e), Ok(())) => e,
        (Err(e), Err(not_deleted)) => not_deleted.context(format!("{e:#}")),
    };
    Err(failure)
}

/// `expose <PORT> --json` running as a child, once its tunnel is ready.
struct TunnelProc {
    child: Child,
    pid: u32,
    /// The public URL, as the child's `ready` event gave it.
    url: String,
    /// The tunnel id (not a secret: it is in the URL).
    id: String,
    /// Reads the child's stdout until it ends; yields the `closed` event's `ok`.
    drain: Option<JoinHandle<Option<bool>>>,
    /// Set once the child was asked to stop, so that `Drop` does not ask again.
    stopped: bool,
}

impl TunnelProc {
    /// Starts the child and waits for its `ready` event. Ctrl-C or a timeout meanwhile stops it
    /// (it deletes what it created); an early exit is [`ClientExited`].
    async fn start(port: u16, progress: &Progress) -> anyhow::Result<TunnelProc> {
        let exe = std::env::current_exe().context("cannot find this program to start it")?;
        let mut cmd = Command::new(exe);
        cmd.arg(port.to_string())
            .args(["--json", "-q", "--no-inspect"])
            .args(["--name", "expose-bench", "--label", "expose-bench"])
            .env_remove("EXPOSE_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // Its own process group: a Ctrl-C at the terminal reaches the bench alone, which then
        // stops the child exactly once (a second interrupt would make it exit without
        // deleting).
        #[cfg(unix)]
        cmd.process_group(0);
        let mut child = cmd.spawn().context("cannot start the tunnel client")?;
        let pid = child.id().context("the tunnel client exited at once")?;
        let stdout = child
            .stdout
            .take()
            .context("no stdout from the tunnel client")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::select! {
            r = tokio::time::timeout(READY_TIMEOUT, wait_ready(&mut lines)) => r,
            _ = interrupted() => {
                exit_on_second_interrupt();
                progress.say("interrupted; waiting for the tunnel client to clean up");
                stop_child(&mut child, pid).await;
                return Err(anyhow!("interrupted before the tunnel was ready"));
            }
        };
        match ready {
            Ok(Some((url, id))) => Ok(TunnelProc {
                child,
                pid,
                url,
                id,
                drain: Some(tokio::spawn(drain(lines))),
                stopped: false,
            }),
            Ok(None) => {
                let status = match tokio::time::timeout(CLOSE_TIMEOUT, child.wait()).await {
                    Ok(Ok(status)) => status,
                    _ => {
                        stop_child(&mut child, pid).await;
                        return Err(anyhow!("the tunnel client stopped before it was ready"));
                    }
                };
                Err(ClientExited { status }.into())
            }
            Err(_) => {
                stop_child(&mut child, pid).await;
                Err(anyhow!(
                    "the tunnel was not ready within {}s",
                    READY_TIMEOUT.as_secs()
                ))
            }
        }
    }

    fn cpu(&self) -> Option<proc_stat::CpuTime> {
        proc_stat::cpu_time(self.pid)
    }

    fn memory(&self) -> Option<proc_stat::Memory> {
        proc_stat::memory(self.pid)
    }

    /// Stops the child (it sends CloseProxy and DELETEs the tunnel); if it could not confirm
    /// the DELETE, the bench deletes the tunnel itself.
    async fn close(&mut self, api: &PrimeClient, progress: &Progress) -> anyhow::Result<()> {
        self.stopped = true;
        stop_child(&mut self.child, self.pid).await;
        let closed_ok = match self.drain.take() {
            Some(task) => tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .ok()
                .and_then(Result::ok)
                .flatten(),
            None => None,
        };
        if closed_ok == Some(true) {
            return Ok(());
        }
        progress.say("the tunnel client did not confirm the delete; deleting the tunnel");
        match tokio::time::timeout(DELETE_TIMEOUT, api.delete_tunnel(&self.id)).await {
            // `false`: already gone (404), which is what we wanted.
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(anyhow!(e)).with_context(|| self.leftover()),
            Err(_) => Err(anyhow!("the DELETE timed out")).with_context(|| self.leftover()),
        }
    }

    fn leftover(&self) -> String {
        format!(
            "could not delete tunnel {}; run `expose stop {}`",
            self.id, self.id
        )
    }
}

impl Drop for TunnelProc {
    fn drop(&mut self) {
        // Only reached without `close` (a panic): the child deletes its tunnel on SIGTERM
        // even after this process is gone.
        if !self.stopped {
            signal_group(self.pid, rustix_signal::TERM);
        }
    }
}

/// SIGTERM once, wait for the exit (the child closes and deletes its tunnel meanwhile), kill
/// it if it does not end in time.
async fn stop_child(child: &mut Child, pid: u32) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    signal_group(pid, rustix_signal::TERM);
    if cfg!(not(unix)) {
        let _ = child.start_kill();
    }
    if !matches!(
        tokio::time::timeout(CLOSE_TIMEOUT, child.wait()).await,
        Ok(Ok(_))
    ) {
        let _ = child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    }
}

type Lines = tokio::io::Lines<BufReader<ChildStdout>>;

/// The `ready` event's URL and tunnel id; `None` if the child closed or stopped first.
async fn wait_ready(lines: &mut Lines) -> Option<(String, String)> {
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        match v.get("event").and_then(|e| e.as_str()) {
            Some("ready") => {
                let text = |k: &str| v.get(k).and_then(|u| u.as_str()).map(str::to_owned);
                return text("url").zip(text("id"));
            }
            Some("closed") => return None,
            _ => {}
        }
    }
    None
}

/// Reads the child's stdout to its end (its request lines are not needed; a full pipe would
/// stall it) and returns the `closed` event's `ok`.
async fn drain(mut lines: Lines) -> Option<bool> {
    let mut closed = None;
    while let Ok(Some(line)) = lines.next_line().await {
        // Only the rare `closed` line is parsed, not every request line.
        if !line.contains("\"closed\"") {
            continue;
        }
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
            if v.get("event").and_then(|e| e.as_str()) == Some("closed") {
                closed = v.get("ok").and_then(|o| o.as_bool());
            }
        }
    }
    closed
}

/// Every phase, directly and through the tunnel.
async fn measure(
    args: &BenchArgs,
    tunnel: &TunnelProc,
    service: &HttpService,
    progress: &Progress,
) -> anyhow::Result<PrimeReport> {
    let url = reqwest::Url::parse(&tunnel.url)
        .with_context(|| format!("the tunnel URL {:?} is not a URL", tunnel.url))?;
    let base = url.origin().ascii_serialization();
    let resolve = resolve_for(&url, &args.resolve, progress);
    let concurrency = usize::from(args.concurrency);
    let through = http_load::client(concurrency, REQUEST_TIMEOUT, &resolve)?;
    let direct = http_load::client(concurrency, REQUEST_TIMEOUT, &[])?;
    let direct_base = format!("http://{}", service.addr());

    progress.say("waiting for the public URL to answer");
    wait_for_url(&through, &base).await;
    let idle = tunnel.memory();

    let timed = |d: Duration| Bounds {
        max_time: d,
        max_bytes: None,
        max_requests: None,
    };
    let (time, bulk) = if args.quick {
        (
            timed(Duration::from_secs(1)),
            Bounds {
                max_bytes: Some(64 << 20),
                ..timed(Duration::from_secs(1))
            },
        )
    } else if let Some(gib) = args.bytes {
        let t = timed(Duration::from_secs_f64(args.duration));
        let b = Bounds {
            max_bytes: Some((gib * super::report::GIB) as u64),
            ..timed(Duration::from_secs(3600))
        };
        (t, b)
    } else {
        let t = timed(Duration::from_secs_f64(args.duration));
        (t, t)
    };
    let upload = Bytes::from(vec![b'U'; BULK_BODY as usize]);
    let phases = [
        ("small", Work::Get(u64::from(args.msg_size)), time),
        ("download", Work::Get(BULK_BODY), bulk),
        ("upload", Work::Post(upload), bulk),
    ];
    let mut rows = Vec::new();
    for (name, work, bounds) in phases {
        progress.say(&format!("{name}: direct"));
        let d = http_load::run(&direct, &direct_base, &work, concurrency, bounds).await;
        progress.say(&format!("{name}: tunnel"));
        let cpu0 = tunnel.cpu();
        let t = http_load::run(&through, &base, &work, concurrency, bounds).await;
        let cpu = cpu0.zip(tunnel.cpu()).map(|(a, b)| b.since(&a));
        rows.push(PhaseRow::new(name, &work, d, t, cpu));
    }
    let peak = tunnel.memory().map(|m| m.peak_rss_bytes);
    // Small requests cost per request, not per byte: only the bulk phases make the per-GiB
    // figure.
    let bulk_rows = || rows.iter().filter(|r| r.name != "small");
    let cpu_total: Option<f64> = bulk_rows().map(|r| r.client_cpu_secs).sum();
    let bytes_total: u64 = bulk_rows().map(|r| r.tunnel.bytes).sum();
    Ok(PrimeReport {
        target: "Prime tunnel".into(),
        url: tunnel.url.clone(),
        tunnel_id: tunnel.id.clone(),
        resolved: !resolve.is_empty(),
        quick: args.quick,
        concurrency,
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        os: std::env::consts::OS,
        note: "the client (`expose <PORT>`, request log on, inspector off) and the local \
               service run on this machine; the path goes through the tunnel server and back"
            .into(),
        phases: rows,
        client: PrimeClientCost {
            cpu_secs_per_gib: cpu_total.map(|c| super::report::per_gib(c, bytes_total)),
            idle_rss_bytes: idle.map(|m| m.rss_bytes),
            idle_rss_anon_bytes: idle.and_then(|m| m.rss_anon_bytes),
            idle_rss_file_bytes: idle.and_then(|m| m.rss_file_bytes),
            peak_rss_bytes: peak,
        },
    })
}

/// The `--resolve` entries that match the URL's host and port, as the HTTP client takes them.
fn resolve_for(
    url: &reqwest::Url,
    entries: &[(String, u16, std::net::IpAddr)],
    progress: &Progress,
) -> Vec<(String, SocketAddr)> {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let port = url.port_or_known_default().unwrap_or(0);
    let mut out = Vec::new();
    for (h, p, ip) in entries {
        if *h == host && *p == port {
            out.push((host.clone(), SocketAddr::new(*ip, *p)));
        } else {
            progress.say(&format!(
                "--resolve {h}:{p} does not match the tunnel URL ({host}:{port}); ignored"
            ));
        }
    }
    out
}

/// Until a small request through the URL succeeds (DNS and the edge may lag the
/// registration a little), for at most [`URL_READY_TIMEOUT`]. A URL that never answers is not
/// an error here: the phases count its failures.
async fn wait_for_url(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + URL_READY_TIMEOUT;
    let once = Bounds {
        max_time: Duration::from_secs(5),
        max_bytes: None,
        max_requests: Some(1),
    };
    while Instant::now() < deadline {
        let r: PhaseResult = http_load::run(client, base, &Work::Get(1), 1, once).await;
        if r.requests > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
