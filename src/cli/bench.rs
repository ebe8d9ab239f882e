//! `expose bench`: measure a tunnel end to end and print a table (or one JSON object).
//!
//! The client under test always runs as its own process (this binary's `expose tcp … --json`),
//! so its CPU time and memory can be read from `/proc` without the load generator, the local
//! service or the in-process test server mixed in. Everything else (the service being exposed,
//! the visitors, the default frps double) runs inside this process. Every phase runs twice:
//! directly against the local service (the baseline) and through the tunnel.

use super::args::OutputArgs;
use anyhow::{bail, Context as _};
use clap::Args;
use expose::bench::delay::DelayRelay;
use expose::bench::load::{self, Budget, ConnectRate, Direction, Transfer};
use expose::bench::proc_stat::{self, CpuTime};
use expose::bench::summary::{Percentiles, Spread};
use expose::bench::LocalService;
use expose::testserver::{ServerConfig, TestServer, TlsMode};
use serde::Serialize;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Bytes per GiB.
const GIB: f64 = (1u64 << 30) as f64;
/// How long a client child may take to log in and register its proxy.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Let a freshly started client settle (pooled work connections, allocator) before reading
/// its idle memory.
const SETTLE: Duration = Duration::from_millis(500);

/// Options of `expose bench`.
#[derive(Debug, Args)]
#[command(after_help = "\
By default everything runs on this machine: an in-process frps-compatible test server on \
loopback, an in-process local service, and the client as a separate process (so its CPU and \
memory can be measured alone). The test server and the load generator share the CPUs with the \
client, so loopback figures are a lower bound for the client.")]
pub struct BenchArgs {
    /// Benchmark through this frps (a tcp proxy) instead of the in-process test server.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_server, requires = "token")]
    pub server: Option<(String, u16)>,
    /// frps auth token for --server (or set FRP_TOKEN).
    #[arg(long, env = "FRP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Benchmark through a Prime tunnel (uses the Prime API).
    #[arg(long, conflicts_with = "server")]
    pub prime: bool,
    /// Client talks to the server without TLS.
    #[arg(long)]
    pub no_tls: bool,
    /// Client does not multiplex (one connection per work connection).
    #[arg(long)]
    pub no_mux: bool,
    /// Seconds per throughput phase.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = parse_positive)]
    pub duration: f64,
    /// Stop each throughput phase after this many GiB instead of after --duration.
    #[arg(long, value_name = "GIB", value_parser = parse_positive)]
    pub bytes: Option<f64>,
    /// A quick smoke run: ~1 s or 64 MiB per throughput phase, 2000 round trips, fewer
    /// connections.
    #[arg(long)]
    pub quick: bool,
    /// Parallel streams in the multi-stream phases.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub streams: u16,
    /// Request/response round trips in the latency phase (at least 2000 are always run).
    #[arg(long, default_value_t = 5000)]
    pub rounds: usize,
    /// Message size of the latency phase, bytes.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub msg_size: u32,
    /// Open this many idle connections through a fresh client and report its memory per
    /// connection (default 1000, 100 with --quick; 0 skips).
    #[arg(long, value_name = "N")]
    pub idle_conns: Option<usize>,
    /// Add this round-trip time (ms) between the client and the in-process server, and on the
    /// direct baseline, with an in-process delay-line relay.
    #[arg(long, value_name = "MS", value_parser = parse_positive)]
    pub rtt: Option<f64>,
}

fn parse_server(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("{s:?}: expected HOST:PORT"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{s:?}: missing host"));
    }
    let port = super::args::parse_port(port)?;
    Ok((host.to_owned(), port))
}

fn parse_positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a positive number")),
    }
}

/// Progress lines on stderr; silent with `-q`.
struct Progress {
    quiet: bool,
}

impl Progress {
    fn say(&self, text: &str) {
        if !self.quiet {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "bench: {text}");
        }
    }
}

/// Where the tunnel goes.
enum Target {
    /// The in-process test server; the client dials the relay instead when `--rtt` is given.
    InProcess(TestServer, Option<DelayRelay>),
    Server {
        host: String,
        port: u16,
    },
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

/// Everything the run needs to know, after defaults.
struct Plan {
    budget: Budget,
    streams: usize,
    rounds: usize,
    msg_size: usize,
    conn_max: u64,
    conn_time: Duration,
    ttfb_runs: usize,
    idle_conns: usize,
    token: String,
    tls: bool,
    mux: bool,
}

impl Plan {
    fn from_args(a: &BenchArgs, token: String) -> Plan {
        let budget = if a.quick {
            Budget {
                max_bytes: Some(64 << 20),
                max_time: Duration::from_secs(1),
            }
        } else if let Some(gib) = a.bytes {
            Budget {
                max_bytes: Some((gib * GIB) as u64),
                max_time: Duration::from_secs(3600),
            }
        } else {
            Budget {
                max_bytes: None,
                max_time: Duration::from_secs_f64(a.duration),
            }
        };
        Plan {
            budget,
            streams: usize::from(a.streams),
            rounds: if a.quick { 2000 } else { a.rounds.max(2000) },
            msg_size: a.msg_size as usize,
            conn_max: if a.quick { 300 } else { 5000 },
            conn_time: if a.quick {
                Duration::from_secs(1)
            } else {
                Duration::from_secs(5)
            },
            ttfb_runs: if a.quick { 1 } else { 3 },
            idle_conns: a.idle_conns.unwrap_or(if a.quick { 100 } else { 1000 }),
            token,
            tls: !a.no_tls,
            mux: !a.no_mux,
        }
    }
}

/// A client under test, running as a child process.
struct ClientProc {
    child: Child,
    pid: u32,
    /// Public address of its tcp proxy.
    remote: SocketAddr,
    /// From spawn to the ready line.
    ready_after: Duration,
}

impl ClientProc {
    fn cpu(&self) -> Option<CpuTime> {
        proc_stat::cpu_time(self.pid)
    }

    fn memory(&self) -> Option<proc_stat::Memory> {
        proc_stat::memory(self.pid)
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// Starts `expose tcp <service> --server … --json` and waits for its ready line.
async fn spawn_client(
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

/// One throughput phase: both measurements and what the client spent.
#[derive(Debug, Serialize)]
struct ThroughputRow {
    name: String,
    direction: Direction,
    streams: usize,
    direct: Measured,
    tunnel: Measured,
    /// tunnel / direct.
    ratio: f64,
    client_cpu_secs: Option<f64>,
    client_cpu_secs_per_gib: Option<f64>,
    /// CPU of this process (visitors, local service and, by default, the test server) per GiB
    /// through the tunnel: where the rest of the machine went.
    bench_cpu_secs_per_gib: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Measured {
    bytes: u64,
    secs: f64,
    bytes_per_sec: f64,
}

impl From<Transfer> for Measured {
    fn from(t: Transfer) -> Self {
        Measured {
            bytes: t.bytes,
            secs: t.secs,
            bytes_per_sec: t.bytes_per_sec(),
        }
    }
}

#[derive(Debug, Serialize)]
struct LatencyRow {
    msg_size: usize,
    direct: Percentiles,
    tunnel: Percentiles,
    added_p50_us: f64,
    added_p90_us: f64,
    added_p99_us: f64,
    added_max_us: f64,
}

#[derive(Debug, Serialize)]
struct ConnectRow {
    direct: ConnectRate,
    direct_per_sec: f64,
    tunnel: ConnectRate,
    tunnel_per_sec: f64,
    ratio: f64,
    client_cpu_us_per_conn: Option<f64>,
}

#[derive(Debug, Serialize)]
struct FirstByteRow {
    /// Direct connect + 1-byte echo to the service, µs.
    direct_us: f64,
    /// Spawn of `expose tcp` → its ready line, ms.
    ready_ms: Spread,
    /// Spawn of `expose tcp` → a byte echoed through the tunnel, ms.
    tunnel_ms: Spread,
    ratio: f64,
}

#[derive(Debug, Serialize)]
struct IdleRow {
    connections: usize,
    rss_before_bytes: u64,
    rss_after_bytes: u64,
    per_conn_bytes: f64,
}

#[derive(Debug, Serialize)]
struct ClientCost {
    /// CPU seconds per GiB over all throughput phases together.
    cpu_secs_per_gib: Option<f64>,
    /// RSS of a freshly started client after it settled.
    idle_rss_bytes: Option<u64>,
    /// Of which anonymous (heap, stacks: private to the client).
    idle_rss_anon_bytes: Option<u64>,
    /// Of which file-backed (binary and libraries: shared page cache).
    idle_rss_file_bytes: Option<u64>,
    /// VmHWM of the main client after every phase.
    peak_rss_bytes: Option<u64>,
    idle_conns: Option<IdleRow>,
}

#[derive(Debug, Serialize)]
struct RttInfo {
    requested_ms: Option<f64>,
    applied: bool,
    note: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    target: String,
    in_process_server: bool,
    tls: bool,
    mux: bool,
    quick: bool,
    cpus: usize,
    os: &'static str,
    note: String,
    rtt: RttInfo,
    throughput: Vec<ThroughputRow>,
    latency: LatencyRow,
    connect_rate: ConnectRow,
    first_byte: FirstByteRow,
    client: ClientCost,
}

/// Runs the benchmark.
pub async fn run(args: BenchArgs, out: &OutputArgs) -> anyhow::Result<()> {
    let progress = Progress { quiet: out.quiet };
    if args.prime {
        bail!(
            "expose bench --prime is not available yet: Prime tunnels are HTTP-only and the \
             bench drives raw TCP; use the default in-process server or --server HOST:PORT"
        );
    }
    let mut rtt = RttInfo {
        requested_ms: args.rtt,
        applied: false,
        note: None,
    };
    let rtt_delay = match args.rtt {
        Some(_) if args.server.is_some() => {
            let why = "skipped: --rtt applies to the in-process server only";
            progress.say(why);
            rtt.note = Some(why.into());
            None
        }
        Some(ms) => Some(Duration::from_secs_f64(ms / 1e3)),
        None => None,
    };

    let token = match (&args.server, &args.token) {
        (Some(_), Some(t)) => t.clone(),
        (Some(_), None) => bail!("--server needs --token (or FRP_TOKEN)"),
        _ => format!("bench-{:016x}", rand::random::<u64>()),
    };
    let plan = Plan::from_args(&args, token);
    let lo = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let service = LocalService::start(&[lo])
        .await
        .context("cannot start the local bench service")?;
    let tunnel_port = service.addr().port();
    // With --rtt the direct baseline goes through a relay with the same delay.
    let direct_relay = match rtt_delay {
        Some(d) => Some(DelayRelay::start(service.addr(), d).await?),
        None => None,
    };
    let direct = direct_relay.as_ref().map_or(service.addr(), |r| r.addr());
    let target = match &args.server {
        Some((host, port)) => Target::Server {
            host: host.clone(),
            port: *port,
        },
        None => {
            let server = TestServer::start(ServerConfig {
                bind: lo,
                token: plan.token.clone(),
                tcp_mux: plan.mux,
                tls: TlsMode::Optional,
                ..Default::default()
            })
            .await
            .context("cannot start the in-process test server")?;
            let relay = match rtt_delay {
                Some(d) => Some(DelayRelay::start(server.bind_addr(), d).await?),
                None => None,
            };
            rtt.applied = relay.is_some();
            Target::InProcess(server, relay)
        }
    };
    let in_process = matches!(target, Target::InProcess(..));
    let tag = format!("expose-bench-{}", std::process::id());

    // Time to first byte, each time with a fresh client process.
    progress.say("time to first byte");
    let direct_first = {
        let t = Instant::now();
        drop(load::open_echo(direct).await?);
        t.elapsed()
    };
    let mut ready_ms = Vec::new();
    let mut first_ms = Vec::new();
    for i in 0..plan.ttfb_runs {
        let started = Instant::now();
        let c = spawn_client(&target, &plan, tunnel_port, &format!("{tag}-ttfb{i}")).await?;
        drop(load::open_echo(c.remote).await?);
        first_ms.push(started.elapsed().as_secs_f64() * 1e3);
        ready_ms.push(c.ready_after.as_secs_f64() * 1e3);
        c.stop().await;
    }
    let tunnel_first = Spread::of(&first_ms);
    let first_byte = FirstByteRow {
        direct_us: direct_first.as_secs_f64() * 1e6,
        ready_ms: Spread::of(&ready_ms),
        ratio: tunnel_first.median / (direct_first.as_secs_f64() * 1e3),
        tunnel_ms: tunnel_first,
    };

    // Idle memory and memory per idle connection, on a fresh client.
    progress.say("idle memory");
    let fresh = spawn_client(&target, &plan, tunnel_port, &format!("{tag}-idle")).await?;
    tokio::time::sleep(SETTLE).await;
    let idle_mem = fresh.memory();
    let idle_rss = idle_mem.map(|m| m.rss_bytes);
    let idle_conns = if plan.idle_conns > 0 {
        progress.say(&format!(
            "{} idle connections through the tunnel",
            plan.idle_conns
        ));
        let before = fresh.memory();
        let held = load::hold_idle(fresh.remote, plan.idle_conns, 32)
            .await
            .context("opening idle connections through the tunnel")?;
        tokio::time::sleep(SETTLE).await;
        let after = fresh.memory();
        drop(held);
        match (before, after) {
            (Some(b), Some(a)) => Some(IdleRow {
                connections: plan.idle_conns,
                rss_before_bytes: b.rss_bytes,
                rss_after_bytes: a.rss_bytes,
                per_conn_bytes: a.rss_bytes.saturating_sub(b.rss_bytes) as f64
                    / plan.idle_conns as f64,
            }),
            _ => None,
        }
    } else {
        None
    };
    fresh.stop().await;

    // The main client: throughput, latency, connection rate.
    let client = spawn_client(&target, &plan, tunnel_port, &format!("{tag}-main")).await?;
    let mut throughput = Vec::new();
    let phases = [
        (Direction::Upload, 1),
        (Direction::Download, 1),
        (Direction::Upload, plan.streams),
        (Direction::Download, plan.streams),
    ];
    for (dir, streams) in phases {
        let name = format!(
            "{} x{streams}",
            match dir {
                Direction::Upload => "upload",
                Direction::Download => "download",
            }
        );
        progress.say(&format!("{name}: direct"));
        let d = load::transfer(direct, dir, streams, plan.budget).await?;
        progress.say(&format!("{name}: tunnel"));
        let cpu0 = client.cpu();
        let own0 = proc_stat::cpu_time(std::process::id());
        let t = load::transfer(client.remote, dir, streams, plan.budget)
            .await
            .with_context(|| format!("{name} through the tunnel"))?;
        let cpu = cpu0.zip(client.cpu()).map(|(a, b)| b.since(&a));
        let own = own0
            .zip(proc_stat::cpu_time(std::process::id()))
            .map(|(a, b)| b.since(&a));
        throughput.push(ThroughputRow {
            name,
            direction: dir,
            streams,
            ratio: ratio(t.bytes_per_sec(), d.bytes_per_sec()),
            client_cpu_secs: cpu,
            client_cpu_secs_per_gib: cpu.map(|c| per_gib(c, t.bytes)),
            bench_cpu_secs_per_gib: own.map(|c| per_gib(c, t.bytes)),
            direct: d.into(),
            tunnel: t.into(),
        });
    }

    progress.say(&format!(
        "latency: {} round trips of {} B",
        plan.rounds, plan.msg_size
    ));
    let warmup = 200;
    let ld = load::round_trips(direct, plan.msg_size, warmup, plan.rounds).await?;
    let lt = load::round_trips(client.remote, plan.msg_size, warmup, plan.rounds)
        .await
        .context("latency through the tunnel")?;
    let latency = LatencyRow {
        msg_size: plan.msg_size,
        added_p50_us: lt.p50_us - ld.p50_us,
        added_p90_us: lt.p90_us - ld.p90_us,
        added_p99_us: lt.p99_us - ld.p99_us,
        added_max_us: lt.max_us - ld.max_us,
        direct: ld,
        tunnel: lt,
    };

    progress.say("new connections");
    let cd = load::connect_rate(direct, plan.conn_max, plan.conn_time).await?;
    let cpu0 = client.cpu();
    let ct = load::connect_rate(client.remote, plan.conn_max, plan.conn_time)
        .await
        .context("connections through the tunnel")?;
    let conn_cpu = cpu0.zip(client.cpu()).map(|(a, b)| b.since(&a));
    let connect_rate = ConnectRow {
        direct_per_sec: cd.per_sec(),
        tunnel_per_sec: ct.per_sec(),
        ratio: ratio(ct.per_sec(), cd.per_sec()),
        client_cpu_us_per_conn: conn_cpu
            .filter(|_| ct.connections > 0)
            .map(|c| c * 1e6 / ct.connections as f64),
        direct: cd,
        tunnel: ct,
    };

    let peak = client.memory().map(|m| m.peak_rss_bytes);
    client.stop().await;
    drop(target);
    drop(direct_relay);
    drop(service);

    let cpu_total: Option<f64> = throughput.iter().map(|r| r.client_cpu_secs).sum();
    let bytes_total: u64 = throughput.iter().map(|r| r.tunnel.bytes).sum();
    let report = Report {
        target: if in_process {
            "in-process test server on loopback".into()
        } else {
            format!(
                "frps at {}",
                args.server.as_ref().map(|s| s.0.as_str()).unwrap_or("")
            )
        },
        in_process_server: in_process,
        tls: plan.tls,
        mux: plan.mux,
        quick: args.quick,
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        os: std::env::consts::OS,
        note: if in_process {
            "the in-process test server, the local service and the load generator share this \
             machine's CPUs with the client"
                .into()
        } else {
            "the local service and the load generator share this machine's CPUs with the client"
                .into()
        },
        rtt,
        throughput,
        latency,
        connect_rate,
        first_byte,
        client: ClientCost {
            cpu_secs_per_gib: cpu_total.map(|c| per_gib(c, bytes_total)),
            idle_rss_bytes: idle_rss,
            idle_rss_anon_bytes: idle_mem.and_then(|m| m.rss_anon_bytes),
            idle_rss_file_bytes: idle_mem.and_then(|m| m.rss_file_bytes),
            peak_rss_bytes: peak,
            idle_conns,
        },
    };
    if out.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", table(&report));
    }
    Ok(())
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

fn per_gib(cpu_secs: f64, bytes: u64) -> f64 {
    if bytes == 0 {
        0.0
    } else {
        cpu_secs / (bytes as f64 / GIB)
    }
}

fn rate(bytes_per_sec: f64) -> String {
    let mib = bytes_per_sec / (1 << 20) as f64;
    if mib >= 1024.0 {
        format!("{:.2} GiB/s", mib / 1024.0)
    } else {
        format!("{mib:.0} MiB/s")
    }
}

fn mem(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "n/a".into(), super::output::bytes)
}

fn opt(v: Option<f64>, digits: usize, unit: &str) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.digits$}{unit}"))
}

/// The human report.
fn table(r: &Report) -> String {
    let mut s = String::new();
    let mut line = |t: String| {
        s.push_str(&t);
        s.push('\n');
    };
    line(format!(
        "expose bench: {} ({}, {}; {} CPUs, {})",
        r.target,
        if r.tls { "TLS" } else { "plain TCP" },
        if r.mux { "yamux" } else { "no mux" },
        r.cpus,
        r.os
    ));
    line(format!("note: {}", r.note));
    line(
        "      (client CPU: the client process alone; bench CPU: this process, i.e. visitors, \
         service and, by default, the server)"
            .into(),
    );
    if let Some(ms) = r.rtt.requested_ms {
        line(match (&r.rtt.note, r.rtt.applied) {
            (_, true) => format!(
                "rtt: {ms} ms added (delay-line relay) on the client-server and direct paths"
            ),
            (Some(n), _) => format!("rtt: {ms} ms {n}"),
            (None, false) => format!("rtt: {ms} ms not applied"),
        });
    }
    line(String::new());
    line(format!(
        "{:<22} {:>13} {:>13} {:>9} {:>12} {:>12}",
        "throughput", "direct", "tunnel", "ratio", "client CPU", "bench CPU"
    ));
    for t in &r.throughput {
        line(format!(
            "{:<22} {:>13} {:>13} {:>8.0}% {:>12} {:>12}",
            t.name,
            rate(t.direct.bytes_per_sec),
            rate(t.tunnel.bytes_per_sec),
            t.ratio * 100.0,
            opt(t.client_cpu_secs_per_gib, 2, " s/GiB"),
            opt(t.bench_cpu_secs_per_gib, 2, " s/GiB"),
        ));
    }
    line(String::new());
    let l = &r.latency;
    line(format!(
        "{:<22} {:>13} {:>13} {:>9}",
        format!("round trip ({} B)", l.msg_size),
        "direct",
        "tunnel",
        "added"
    ));
    for (name, d, t) in [
        ("p50", l.direct.p50_us, l.tunnel.p50_us),
        ("p90", l.direct.p90_us, l.tunnel.p90_us),
        ("p99", l.direct.p99_us, l.tunnel.p99_us),
        ("max", l.direct.max_us, l.tunnel.max_us),
    ] {
        line(format!(
            "{:<22} {:>10.1} µs {:>10.1} µs {:>+6.1} µs",
            format!("  {name} ({} trips)", l.tunnel.count),
            d,
            t,
            t - d
        ));
    }
    line(String::new());
    let c = &r.connect_rate;
    line(format!(
        "{:<22} {:>11.0}/s {:>11.0}/s {:>8.0}% {:>12}",
        "new connections",
        c.direct_per_sec,
        c.tunnel_per_sec,
        c.ratio * 100.0,
        opt(c.client_cpu_us_per_conn, 0, " µs/conn")
    ));
    let f = &r.first_byte;
    line(format!(
        "{:<22} {:>10.2} ms {:>10.1} ms {:>8.0}x   (start → echo; ready after {:.1} ms)",
        "first byte",
        f.direct_us / 1e3,
        f.tunnel_ms.median,
        f.ratio,
        f.ready_ms.median
    ));
    line(String::new());
    line("client process".into());
    line(format!(
        "  CPU per GiB forwarded  {}",
        opt(r.client.cpu_secs_per_gib, 2, " s")
    ));
    line(format!(
        "  idle RSS               {} ({} anonymous, {} file-backed)",
        mem(r.client.idle_rss_bytes),
        mem(r.client.idle_rss_anon_bytes),
        mem(r.client.idle_rss_file_bytes)
    ));
    line(format!(
        "  peak RSS               {}",
        mem(r.client.peak_rss_bytes)
    ));
    match &r.client.idle_conns {
        Some(i) => line(format!(
            "  idle connections       {}: {} → {}, {:.1} KiB each",
            i.connections,
            super::output::bytes(i.rss_before_bytes),
            super::output::bytes(i.rss_after_bytes),
            i.per_conn_bytes / 1024.0
        )),
        None => line("  idle connections       n/a".into()),
    }
    s
}
