//! What `expose bench` reports: the rows of each phase, the JSON document and the table.

use expose::bench::load::{ConnectRate, Direction, Transfer};
use expose::bench::summary::{Percentiles, Spread};
use serde::Serialize;

/// Bytes per GiB.
pub(super) const GIB: f64 = (1u64 << 30) as f64;

/// One throughput phase: both measurements and what the client spent.
#[derive(Debug, Serialize)]
pub(super) struct ThroughputRow {
    pub(super) name: String,
    pub(super) direction: Direction,
    pub(super) streams: usize,
    pub(super) direct: Measured,
    pub(super) tunnel: Measured,
    /// tunnel / direct.
    pub(super) ratio: f64,
    pub(super) client_cpu_secs: Option<f64>,
    pub(super) client_cpu_secs_per_gib: Option<f64>,
    /// CPU of this process (visitors, local service and, by default, the test server) per GiB
    /// through the tunnel: where the rest of the machine went.
    pub(super) bench_cpu_secs_per_gib: Option<f64>,
}

#[derive(Debug, Serialize)]
pub(super) struct Measured {
    pub(super) bytes: u64,
    pub(super) secs: f64,
    pub(super) bytes_per_sec: f64,
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
pub(super) struct LatencyRow {
    pub(super) msg_size: usize,
    pub(super) direct: Percentiles,
    pub(super) tunnel: Percentiles,
    pub(super) added_p50_us: f64,
    pub(super) added_p90_us: f64,
    pub(super) added_p99_us: f64,
    pub(super) added_max_us: f64,
}

#[derive(Debug, Serialize)]
pub(super) struct ConnectRow {
    pub(super) direct: ConnectRate,
    pub(super) direct_per_sec: f64,
    pub(super) tunnel: ConnectRate,
    pub(super) tunnel_per_sec: f64,
    pub(super) ratio: f64,
    pub(super) client_cpu_us_per_conn: Option<f64>,
}

#[derive(Debug, Serialize)]
pub(super) struct FirstByteRow {
    /// Direct connect + 1-byte echo to the service, µs.
    pub(super) direct_us: f64,
    /// Spawn of `expose tcp` → its ready line, ms.
    pub(super) ready_ms: Spread,
    /// Spawn of `expose tcp` → a byte echoed through the tunnel, ms.
    pub(super) tunnel_ms: Spread,
    pub(super) ratio: f64,
}

#[derive(Debug, Serialize)]
pub(super) struct IdleRow {
    pub(super) connections: usize,
    pub(super) rss_before_bytes: u64,
    pub(super) rss_after_bytes: u64,
    pub(super) per_conn_bytes: f64,
}

#[derive(Debug, Serialize)]
pub(super) struct ClientCost {
    /// CPU seconds per GiB over all throughput phases together.
    pub(super) cpu_secs_per_gib: Option<f64>,
    /// RSS of a freshly started client after it settled.
    pub(super) idle_rss_bytes: Option<u64>,
    /// Of which anonymous (heap, stacks: private to the client).
    pub(super) idle_rss_anon_bytes: Option<u64>,
    /// Of which file-backed (binary and libraries: shared page cache).
    pub(super) idle_rss_file_bytes: Option<u64>,
    /// VmHWM of the main client after every phase.
    pub(super) peak_rss_bytes: Option<u64>,
    pub(super) idle_conns: Option<IdleRow>,
}

#[derive(Debug, Serialize)]
pub(super) struct RttInfo {
    pub(super) requested_ms: Option<f64>,
    pub(super) applied: bool,
    pub(super) note: Option<String>,
}

#[derive(Debug, Serialize)]
pub(super) struct Report {
    pub(super) target: String,
    pub(super) in_process_server: bool,
    pub(super) tls: bool,
    pub(super) mux: bool,
    pub(super) quick: bool,
    pub(super) cpus: usize,
    pub(super) os: &'static str,
    pub(super) note: String,
    pub(super) rtt: RttInfo,
    pub(super) throughput: Vec<ThroughputRow>,
    /// `None` when skipped with `--phases`, as are the next two.
    pub(super) latency: Option<LatencyRow>,
    pub(super) connect_rate: Option<ConnectRow>,
    pub(super) first_byte: Option<FirstByteRow>,
    pub(super) client: ClientCost,
}

pub(super) fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

pub(super) fn per_gib(cpu_secs: f64, bytes: u64) -> f64 {
    if bytes == 0 {
        0.0
    } else {
        cpu_secs / (bytes as f64 / GIB)
    }
}

pub(super) fn rate(bytes_per_sec: f64) -> String {
    let mib = bytes_per_sec / (1 << 20) as f64;
    if mib >= 1024.0 {
        format!("{:.2} GiB/s", mib / 1024.0)
    } else {
        format!("{mib:.0} MiB/s")
    }
}

pub(super) fn mem(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "n/a".into(), crate::cli::output::bytes)
}

pub(super) fn opt(v: Option<f64>, digits: usize, unit: &str) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.digits$}{unit}"))
}

/// The human report.
pub(super) fn table(r: &Report) -> String {
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
    if let Some(l) = &r.latency {
        line(String::new());
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
    }
    if r.connect_rate.is_some() || r.first_byte.is_some() {
        line(String::new());
    }
    if let Some(c) = &r.connect_rate {
        line(format!(
            "{:<22} {:>11.0}/s {:>11.0}/s {:>8.0}% {:>12}",
            "new connections",
            c.direct_per_sec,
            c.tunnel_per_sec,
            c.ratio * 100.0,
            opt(c.client_cpu_us_per_conn, 0, " µs/conn")
        ));
    }
    if let Some(f) = &r.first_byte {
        line(format!(
            "{:<22} {:>10.2} ms {:>10.1} ms {:>8.0}x   (start → echo; ready after {:.1} ms)",
            "first byte",
            f.direct_us / 1e3,
            f.tunnel_ms.median,
            f.ratio,
            f.ready_ms.median
        ));
    }
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
            crate::cli::output::bytes(i.rss_before_bytes),
            crate::cli::output::bytes(i.rss_after_bytes),
            i.per_conn_bytes / 1024.0
        )),
        None => line("  idle connections       n/a".into()),
    }
    s
}
