//! Scale figures for one client process: many proxies, or many idle connections through one.
//!
//! ```sh
//! cargo build --release
//! cargo run --release --example scale -- proxies 1000
//! cargo run --release --example scale -- idle 10000
//! # any client, e.g. Go frpc: {config} is a generated frpc TOML file
//! cargo run --release --example scale -- proxies 1000 --client-cmd 'frpc -c {config}'
//! ```
//!
//! The frps double (`expose::testserver`, TLS + tcpMux as frps's defaults) runs in this
//! process; the client runs as its own process (by default `target/release/expose frpc -c
//! {config}`), so its memory and CPU time are read from `/proc` alone.
//!
//! - `proxies N`: a client with one tcp proxy, then a client with N (each with `remotePort = 0`);
//!   reports the time from the client's start until the server holds every proxy, the RSS of
//!   both clients (and the difference per proxy), and the client's CPU time over an idle window
//!   (heartbeats and timers only).
//! - `idle N`: N connections opened through one tcp proxy, each echoing a byte, then held;
//!   reports the client's RSS before, while held (and per connection) and after they close,
//!   and its CPU time over an idle window with N open. A process may hold only as many
//!   sockets as its open-file limit allows, and a connection has four: the visitor, the
//!   server's side of it, the client's dial and the service's side. Here the visitors and the
//!   echo service each run in a child process (this same program), so this process and each
//!   child hold one socket per connection.
//!
//! Options: `--client-cmd TEMPLATE` (run through `sh -c 'exec …'`), `--idle-secs S` (the CPU
//! window, default 30: one frpc heartbeat period).

use expose::bench::proc_stat;
use expose::bench::service::{LocalService, MODE_ECHO};
use expose::testserver::{ServerConfig, TestServer};
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

type Error = Box<dyn std::error::Error>;

const TOKEN: &str = "scale-example-token";

/// How long a client may take to register its proxies or to open the held connections.
const SETUP: Duration = Duration::from_secs(300);

/// Time for a freshly started client to settle (work-connection pool, allocator) before its
/// memory is read.
const SETTLE: Duration = Duration::from_secs(2);

struct Opts {
    client_cmd: String,
    idle_secs: u64,
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    raise_fd_limit();
    match args.first().map(String::as_str) {
        Some("echo-helper") => return echo_helper().await,
        Some("hold-helper") => return hold_helper(&args[1..]).await,
        _ => {}
    }
    let usage = "usage: scale proxies N | idle N [--client-cmd TEMPLATE] [--idle-secs S]";
    let (Some(mode), Some(n)) = (args.first(), args.get(1).and_then(|n| n.parse().ok())) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let mut opts = Opts {
        client_cmd: "target/release/expose frpc -c {config}".into(),
        idle_secs: 30,
    };
    let mut rest = args[2..].iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().ok_or(usage)?;
        match flag.as_str() {
            "--client-cmd" => opts.client_cmd = value.clone(),
            "--idle-secs" => opts.idle_secs = value.parse()?,
            _ => return Err(usage.into()),
        }
    }
    match mode.as_str() {
        "proxies" => proxies(n, &opts).await,
        "idle" => idle(n, &opts).await,
        _ => Err(usage.into()),
    }
}

/// One client with one proxy, then one with `n`.
async fn proxies(n: usize, opts: &Opts) -> Result<(), Error> {
    // The bench's own local service, in echo mode (the proxies mode holds one connection at a
    // time, so it can live in this process).
    let service = LocalService::loopback().await?;
    let mut rss = Vec::new();
    for count in [1, n] {
        let srv = server().await?;
        let config = frpc_config(&srv, service.addr(), count)?;
        let started = Instant::now();
        let mut client = spawn_client(&opts.client_cmd, &config)?;
        let pid = client.id().ok_or("the client exited at once")?;
        let ports = registered_ports(&srv, &mut client, count).await?;
        let registered = started.elapsed();
        // Every proxy forwards: one byte through each.
        for port in &ports {
            echo_byte(SocketAddr::from(([127, 0, 0, 1], *port))).await?;
        }
        tokio::time::sleep(SETTLE).await;
        let mem = proc_stat::memory(pid).ok_or("cannot read the client's memory")?;
        let cpu = idle_cpu(pid, opts.idle_secs).await?;
        println!(
            "{count} proxies: registered in {:.1} ms; RSS {} (anon {}, file {}); idle CPU \
             {:.0} ms in {} s (10 ms clock ticks)",
            registered.as_secs_f64() * 1e3,
            mib(mem.rss_bytes),
            mib(mem.rss_anon_bytes.unwrap_or(0)),
            mib(mem.rss_file_bytes.unwrap_or(0)),
            cpu * 1e3 * opts.idle_secs as f64,
            opts.idle_secs,
        );
        rss.push(mem);
        stop(&mut client).await;
    }
    if let [one, many] = rss.as_slice() {
        let per = |a: u64, b: u64| (b as f64 - a as f64) / (n.max(2) - 1) as f64 / 1024.0;
        println!(
            "per proxy beyond the first: RSS {:.2} KiB, anonymous {:.2} KiB",
            per(one.rss_bytes, many.rss_bytes),
            per(
                one.rss_anon_bytes.unwrap_or(0),
                many.rss_anon_bytes.unwrap_or(0)
            ),
        );
    }
    Ok(())
}

/// `n` idle connections through one proxy.
async fn idle(n: usize, opts: &Opts) -> Result<(), Error> {
    let (_echo_child, echo_port) = helper(&["echo-helper".into()]).await?;
    let srv = server().await?;
    let echo = SocketAddr::from(([127, 0, 0, 1], u16::try_from(echo_port)?));
    let config = frpc_config(&srv, echo, 1)?;
    let mut client = spawn_client(&opts.client_cmd, &config)?;
    let pid = client.id().ok_or("the client exited at once")?;
    let port = registered_ports(&srv, &mut client, 1).await?[0];
    echo_byte(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    tokio::time::sleep(SETTLE).await;
    let before = proc_stat::memory(pid).ok_or("cannot read the client's memory")?;

    let started = Instant::now();
    let (mut holder, held) = helper(&[
        "hold-helper".into(),
        format!("127.0.0.1:{port}"),
        n.to_string(),
    ])
    .await?;
    if held as usize != n {
        return Err(format!("only {held} of {n} connections held").into());
    }
    let opened = started.elapsed();
    tokio::time::sleep(SETTLE).await;
    let during = proc_stat::memory(pid).ok_or("cannot read the client's memory")?;
    let cpu = idle_cpu(pid, opts.idle_secs).await?;
    // Closing the helper's stdin makes it drop every connection and exit.
    drop(holder.stdin.take());
    let _ = tokio::time::timeout(SETUP, holder.wait()).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = proc_stat::memory(pid).ok_or("cannot read the client's memory")?;
    stop(&mut client).await;

    println!(
        "{n} idle connections opened (each echoed a byte) in {:.2} s",
        opened.as_secs_f64()
    );
    for (what, m) in [("before", &before), ("held", &during), ("after", &after)] {
        println!(
            "RSS {what}: {} (anon {}, file {})",
            mib(m.rss_bytes),
            mib(m.rss_anon_bytes.unwrap_or(0)),
            mib(m.rss_file_bytes.unwrap_or(0))
        );
    }
    println!(
        "per held connection: {:.2} KiB; idle CPU with {n} open: {:.0} ms in {} s (10 ms clock \
         ticks)",
        (during.rss_bytes as f64 - before.rss_bytes as f64) / n as f64 / 1024.0,
        cpu * 1e3 * opts.idle_secs as f64,
        opts.idle_secs
    );
    Ok(())
}

async fn server() -> Result<TestServer, Error> {
    Ok(TestServer::start(ServerConfig {
        token: TOKEN.into(),
        user_conn_timeout: Duration::from_secs(60),
        ..Default::default()
    })
    .await?)
}

/// The remote ports of `count` proxies, once the server holds them all (it does once it
/// answered NewProxy, and a proxy with a port is ready).
async fn registered_ports(
    srv: &TestServer,
    client: &mut Child,
    count: usize,
) -> Result<Vec<u16>, Error> {
    let deadline = Instant::now() + SETUP;
    loop {
        let ports: Vec<u16> = srv
            .snapshot()
            .proxies
            .values()
            .filter_map(|p| p.remote_port)
            .collect();
        if ports.len() == count {
            return Ok(ports);
        }
        if Instant::now() > deadline || client.try_wait()?.is_some() {
            return Err(format!("{} of {count} proxies registered", ports.len()).into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A frpc v1 TOML file with `count` tcp proxies to `local`, TLS and tcpMux on (frpc's defaults).
fn frpc_config(srv: &TestServer, local: SocketAddr, count: usize) -> Result<String, Error> {
    let mut text = format!(
        "serverAddr = \"127.0.0.1\"\nserverPort = {}\nloginFailExit = true\n\
         auth.token = \"{TOKEN}\"\n",
        srv.bind_addr().port()
    );
    for i in 0..count {
        text.push_str(&format!(
            "\n[[proxies]]\nname = \"p{i}\"\ntype = \"tcp\"\nlocalIP = \"127.0.0.1\"\n\
             localPort = {}\nremotePort = 0\n",
            local.port()
        ));
    }
    let path =
        std::env::temp_dir().join(format!("expose-scale-{}-{count}.toml", std::process::id()));
    std::fs::write(&path, text)?;
    Ok(path.to_string_lossy().into_owned())
}

fn spawn_client(template: &str, config: &str) -> Result<Child, Error> {
    let cmd = template.replace("{config}", config);
    Ok(Command::new("sh")
        .arg("-c")
        .arg(format!("exec {cmd}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?)
}

/// SIGTERM (frpc and `expose` close their proxies on it), then wait.
async fn stop(child: &mut Child) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .arg(pid.to_string())
            .status();
    }
    if tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

/// The client's CPU time per second of wall time over `secs` seconds of idling.
async fn idle_cpu(pid: u32, secs: u64) -> Result<f64, Error> {
    let start = proc_stat::cpu_time(pid).ok_or("cannot read the client's CPU time")?;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let end = proc_stat::cpu_time(pid).ok_or("cannot read the client's CPU time")?;
    Ok(end.since(&start) / t0.elapsed().as_secs_f64())
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

async fn echo_byte(addr: SocketAddr) -> Result<TcpStream, Error> {
    let echoed = async {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        // The echo mode's byte, which the service echoes back.
        s.write_all(&[MODE_ECHO])
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if b[0] != MODE_ECHO {
            return Err(format!("echoed {:#04x}", b[0]).into());
        }
        Ok::<_, Error>(s)
    };
    tokio::time::timeout(Duration::from_secs(30), echoed)
        .await
        .map_err(|_| "no echo in 30 s")?
}

/// Starts this program as a helper; returns it and the number its first line of output gives.
async fn helper(args: &[String]) -> Result<(Child, u64), Error> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no helper stdout")?;
    let mut line = String::new();
    tokio::time::timeout(SETUP, BufReader::new(stdout).read_line(&mut line)).await??;
    let value = line
        .trim()
        .parse()
        .map_err(|_| format!("helper said {line:?}"))?;
    Ok((child, value))
}

/// Child process: the bench's local service (echo mode here); prints its port, serves until
/// stdin closes.
async fn echo_helper() -> Result<(), Error> {
    let service = LocalService::loopback().await?;
    println!("{}", service.addr().port());
    std::io::stdout().flush()?;
    let _ = tokio::io::stdin().read(&mut [0u8; 1]).await;
    Ok(())
}

/// Child process: opens N connections to ADDR (64 at a time), each echoing a byte; prints how
/// many are held, holds them until stdin closes.
async fn hold_helper(args: &[String]) -> Result<(), Error> {
    let (Some(addr), Some(n)) = (args.first(), args.get(1)) else {
        return Err("hold-helper ADDR N".into());
    };
    let addr: SocketAddr = addr.parse()?;
    let n: usize = n.parse()?;
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let gate = gate.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            echo_byte(addr).await.map_err(|e| e.to_string())
        }));
    }
    let mut held = Vec::with_capacity(n);
    let mut failures = std::collections::BTreeMap::<String, usize>::new();
    for t in tasks {
        match t.await {
            Ok(Ok(s)) => held.push(s),
            Ok(Err(e)) => *failures.entry(e).or_default() += 1,
            Err(e) => *failures.entry(e.to_string()).or_default() += 1,
        }
    }
    for (why, count) in &failures {
        eprintln!("hold-helper: {count} connections failed: {why}");
    }
    println!("{}", held.len());
    std::io::stdout().flush()?;
    let _ = tokio::io::stdin().read(&mut [0u8; 1]).await;
    Ok(())
}

/// Soft open-file limit up to the hard one: each process here holds one socket per connection.
fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
}
