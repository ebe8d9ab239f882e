//! `expose bench`: measure a tunnel end to end and print a table (or one JSON object).
//!
//! The client under test always runs as its own process (this binary's `expose tcp … --json`),
//! so its CPU time and memory can be read from `/proc` without the load generator, the local
//! service or the in-process test server mixed in. Everything else (the service being exposed,
//! the visitors, the default frps double) runs inside this process. Every phase runs twice:
//! directly against the local service (the baseline) and through the tunnel.
//!
//! - `plan`: what to run, after defaults.
//! - `client`: the client process under test and the server it dials.
//! - `report`: the rows, the JSON document and the table.
//! - `progress`: the progress lines on stderr.
//! - `prime` and `prime_report`: `--prime`, HTTP load through a real Prime tunnel's URL.

mod client;
mod compare;
mod plan;
mod prime;
mod prime_report;
mod progress;
mod report;

pub use prime::ClientExited;

use super::args::{BenchArgs, BenchPhase, OutputArgs};
use anyhow::{bail, Context as _};
use client::{ClientProc, Launch, Target};
use expose::bench::delay::DelayRelay;
use expose::bench::load::{self, Direction};
use expose::bench::proc_stat;
use expose::bench::summary::Spread;
use expose::bench::LocalService;
use expose::testserver::{ServerConfig, TestServer, TlsMode};
use plan::Plan;
use progress::Progress;
use report::{
    per_gib, ratio, table, ClientCost, ConnectRow, FirstByteRow, IdleRow, LatencyRow, Report,
    RttInfo, ThroughputRow,
};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// Let a freshly started client settle (pooled work connections, allocator) before reading
/// its idle memory.
const SETTLE: Duration = Duration::from_millis(500);

/// Round trips before the measured ones in the latency phase.
const LATENCY_WARMUP: usize = 200;

/// Runs the benchmark.
pub async fn run(args: BenchArgs, out: &OutputArgs) -> anyhow::Result<()> {
    let progress = Progress { quiet: out.quiet };
    if args.prime {
        return prime::run(&args, out, &progress).await;
    }
    let (mut rtt, rtt_delay) = rtt_plan(&args, &progress);
    let token = match (&args.server, &args.token) {
        (Some(_), Some(t)) => t.clone(),
        (Some(_), None) => bail!("--server needs --token (or FRP_TOKEN)"),
        _ => format!("bench-{:016x}", rand::random::<u64>()),
    };
    let plan = Plan::from_args(&args, token);
    let setup = Setup::start(&args, &plan, rtt_delay).await?;
    rtt.applied = matches!(setup.target, Target::InProcess(_, Some(_)));

    let report = measure(&args, &setup, &plan, &progress, Launch::Expose, rtt).await?;
    let Some(template) = args.client_cmd.as_deref() else {
        drop(setup);
        if out.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            print!("{}", table(&report));
        }
        return Ok(());
    };
    progress.say(&format!("the same phases with --client-cmd {template:?}"));
    let rtt = RttInfo {
        requested_ms: report.rtt.requested_ms,
        applied: report.rtt.applied,
        note: report.rtt.note.clone(),
    };
    let other = measure(
        &args,
        &setup,
        &plan,
        &progress,
        Launch::Command(template),
        rtt,
    )
    .await?;
    drop(setup);
    let pair = compare::Pair::new(report, other, template);
    if out.json {
        println!("{}", serde_json::to_string(&pair)?);
    } else {
        print!("{}", compare::table(&pair));
    }
    Ok(())
}

/// Every phase with one kind of client process.
async fn measure(
    args: &BenchArgs,
    setup: &Setup,
    plan: &Plan,
    progress: &Progress,
    launch: Launch<'_>,
    rtt: RttInfo,
) -> anyhow::Result<Report> {
    let plan = &Plan {
        launch_tag: match launch {
            Launch::Expose => "",
            Launch::Command(_) => "other-",
        },
        ..plan.clone()
    };
    let first_byte = match plan.runs(BenchPhase::FirstByte) {
        true => Some(first_byte(setup, plan, progress, launch).await?),
        false => None,
    };
    let (idle_mem, idle_conns) = match plan.runs(BenchPhase::Idle) {
        true => idle_memory(setup, plan, progress, launch).await?,
        false => (None, None),
    };

    // The main client: throughput, latency, connection rate.
    let client = setup.spawn_client(plan, "main", launch).await?;
    let throughput = throughput(setup, &client, plan, progress).await?;
    let latency = match plan.runs(BenchPhase::Latency) {
        true => Some(latency(setup, &client, plan, progress).await?),
        false => None,
    };
    let connect_rate = match plan.runs(BenchPhase::Connect) {
        true => Some(connect_rate(setup, &client, plan, progress).await?),
        false => None,
    };
    let peak = client.memory().map(|m| m.peak_rss_bytes);
    client.stop().await;
    let in_process = matches!(setup.target, Target::InProcess(..));

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
            idle_rss_bytes: idle_mem.map(|m| m.rss_bytes),
            idle_rss_anon_bytes: idle_mem.and_then(|m| m.rss_anon_bytes),
            idle_rss_file_bytes: idle_mem.and_then(|m| m.rss_file_bytes),
            peak_rss_bytes: peak,
            idle_conns,
        },
    };
    Ok(report)
}

/// What `--rtt` asks for, and the delay to apply (none through a remote `--server`).
fn rtt_plan(args: &BenchArgs, progress: &Progress) -> (RttInfo, Option<Duration>) {
    let mut rtt = RttInfo {
        requested_ms: args.rtt,
        applied: false,
        note: None,
    };
    let delay = match args.rtt {
        Some(_) if args.server.is_some() => {
            let why = "skipped: --rtt applies to the in-process server only";
            progress.say(why);
            rtt.note = Some(why.into());
            None
        }
        Some(ms) => Some(Duration::from_secs_f64(ms / 1e3)),
        None => None,
    };
    (rtt, delay)
}

/// The fixed parts of a run: the local service, the direct path to it and the tunnel's server.
///
/// Fields drop in order: the server first, the service last.
struct Setup {
    /// Where the client under test connects.
    target: Target,
    /// Proxy names of this run's clients start with this.
    tag: String,
    /// Where the baseline connects: the service, or its relay.
    direct: SocketAddr,
    /// With `--rtt`, the direct baseline goes through a relay with the same delay; held so
    /// it runs until the end.
    _direct_relay: Option<DelayRelay>,
    /// The service being exposed.
    service: LocalService,
}

impl Setup {
    async fn start(
        args: &BenchArgs,
        plan: &Plan,
        rtt_delay: Option<Duration>,
    ) -> anyhow::Result<Setup> {
        let lo = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let service = LocalService::start(&[lo])
            .await
            .context("cannot start the local bench service")?;
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
                Target::InProcess(server, relay)
            }
        };
        Ok(Setup {
            target,
            tag: format!("expose-bench-{}", std::process::id()),
            direct,
            _direct_relay: direct_relay,
            service,
        })
    }

    /// A fresh client process exposing the service, its proxy named `<tag>-<suffix>`.
    async fn spawn_client(
        &self,
        plan: &Plan,
        suffix: &str,
        launch: Launch<'_>,
    ) -> anyhow::Result<ClientProc> {
        let name = format!("{}-{}{suffix}", self.tag, plan.launch_tag);
        client::start(
            launch,
            &self.target,
            plan,
            self.service.addr().port(),
            &name,
        )
        .await
    }
}

/// Time to first byte, each time with a fresh client process.
async fn first_byte(
    setup: &Setup,
    plan: &Plan,
    progress: &Progress,
    launch: Launch<'_>,
) -> anyhow::Result<FirstByteRow> {
    progress.say("time to first byte");
    let direct_first = {
        let t = Instant::now();
        drop(load::open_echo(setup.direct).await?);
        t.elapsed()
    };
    let mut ready_ms = Vec::new();
    let mut first_ms = Vec::new();
    for i in 0..plan.ttfb_runs {
        let started = Instant::now();
        let c = setup
            .spawn_client(plan, &format!("ttfb{i}"), launch)
            .await?;
        drop(load::open_echo(c.remote).await?);
        first_ms.push(started.elapsed().as_secs_f64() * 1e3);
        ready_ms.push(c.ready_after.as_secs_f64() * 1e3);
        c.stop().await;
    }
    let tunnel_first = Spread::of(&first_ms);
    Ok(FirstByteRow {
        direct_us: direct_first.as_secs_f64() * 1e6,
        ready_ms: Spread::of(&ready_ms),
        ratio: tunnel_first.median / (direct_first.as_secs_f64() * 1e3),
        tunnel_ms: tunnel_first,
    })
}

/// Idle memory of a fresh client, and its memory per idle connection through it.
async fn idle_memory(
    setup: &Setup,
    plan: &Plan,
    progress: &Progress,
    launch: Launch<'_>,
) -> anyhow::Result<(Option<proc_stat::Memory>, Option<IdleRow>)> {
    progress.say("idle memory");
    let fresh = setup.spawn_client(plan, "idle", launch).await?;
    tokio::time::sleep(SETTLE).await;
    let idle_mem = fresh.memory();
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
    Ok((idle_mem, idle_conns))
}

/// Upload and download, one stream and many, direct and through the tunnel.
async fn throughput(
    setup: &Setup,
    client: &ClientProc,
    plan: &Plan,
    progress: &Progress,
) -> anyhow::Result<Vec<ThroughputRow>> {
    let mut rows = Vec::new();
    let phases = [
        (BenchPhase::Upload1, Direction::Upload, 1),
        (BenchPhase::Download1, Direction::Download, 1),
        (BenchPhase::UploadMany, Direction::Upload, plan.streams),
        (BenchPhase::DownloadMany, Direction::Download, plan.streams),
    ];
    for (phase, dir, streams) in phases {
        if !plan.runs(phase) {
            continue;
        }
        let name = format!(
            "{} x{streams}",
            match dir {
                Direction::Upload => "upload",
                Direction::Download => "download",
            }
        );
        progress.say(&format!("{name}: direct"));
        let d = load::transfer(setup.direct, dir, streams, plan.budget).await?;
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
        rows.push(ThroughputRow {
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
    Ok(rows)
}

/// Request/response round trips, direct and through the tunnel.
async fn latency(
    setup: &Setup,
    client: &ClientProc,
    plan: &Plan,
    progress: &Progress,
) -> anyhow::Result<LatencyRow> {
    progress.say(&format!(
        "latency: {} round trips of {} B",
        plan.rounds, plan.msg_size
    ));
    let ld = load::round_trips(setup.direct, plan.msg_size, LATENCY_WARMUP, plan.rounds).await?;
    let lt = load::round_trips(client.remote, plan.msg_size, LATENCY_WARMUP, plan.rounds)
        .await
        .context("latency through the tunnel")?;
    Ok(LatencyRow {
        msg_size: plan.msg_size,
        added_p50_us: lt.p50_us - ld.p50_us,
        added_p90_us: lt.p90_us - ld.p90_us,
        added_p99_us: lt.p99_us - ld.p99_us,
        added_max_us: lt.max_us - ld.max_us,
        direct: ld,
        tunnel: lt,
    })
}

/// New connections per second, direct and through the tunnel.
async fn connect_rate(
    setup: &Setup,
    client: &ClientProc,
    plan: &Plan,
    progress: &Progress,
) -> anyhow::Result<ConnectRow> {
    progress.say("new connections");
    let cd = load::connect_rate(setup.direct, plan.conn_max, plan.conn_time).await?;
    let cpu0 = client.cpu();
    let ct = load::connect_rate(client.remote, plan.conn_max, plan.conn_time)
        .await
        .context("connections through the tunnel")?;
    let conn_cpu = cpu0.zip(client.cpu()).map(|(a, b)| b.since(&a));
    Ok(ConnectRow {
        direct_per_sec: cd.per_sec(),
        tunnel_per_sec: ct.per_sec(),
        ratio: ratio(ct.per_sec(), cd.per_sec()),
        client_cpu_us_per_conn: conn_cpu
            .filter(|_| ct.connections > 0)
            .map(|c| c * 1e6 / ct.connections as f64),
        direct: cd,
        tunnel: ct,
    })
}
