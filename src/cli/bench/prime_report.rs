//! What `expose bench --prime` reports: one row per HTTP phase, the JSON document and the table.

use super::report::{mem, opt, per_gib, rate, ratio};
use expose::bench::http_load::{Errors, PhaseResult, Work};
use serde::Serialize;

/// One phase: the same requests directly against the service and through the tunnel.
#[derive(Debug, Serialize)]
pub(super) struct PhaseRow {
    /// `small`, `download` or `upload`.
    pub(super) name: &'static str,
    /// `GET` or `POST`.
    pub(super) method: &'static str,
    /// Body size of each request (the response's for GET, the request's for POST).
    pub(super) body_bytes: u64,
    pub(super) direct: PhaseResult,
    pub(super) tunnel: PhaseResult,
    /// Tunnel bytes/s over direct bytes/s (the same as the ratio of requests/s: every request
    /// of a phase has the same size).
    pub(super) ratio: f64,
    /// Tunnel latency percentile minus the direct one, µs.
    pub(super) added_p50_us: f64,
    pub(super) added_p90_us: f64,
    pub(super) added_p99_us: f64,
    pub(super) added_max_us: f64,
    /// CPU seconds of the client process during the tunnel run.
    pub(super) client_cpu_secs: Option<f64>,
    pub(super) client_cpu_secs_per_gib: Option<f64>,
    /// Client CPU per successful request through the tunnel, µs (the small phase's figure).
    pub(super) client_cpu_us_per_request: Option<f64>,
}

impl PhaseRow {
    pub(super) fn new(
        name: &'static str,
        work: &Work,
        direct: PhaseResult,
        tunnel: PhaseResult,
        client_cpu_secs: Option<f64>,
    ) -> PhaseRow {
        let (method, body_bytes) = match work {
            Work::Get(n) => ("GET", *n),
            Work::Post(b) => ("POST", b.len() as u64),
        };
        let (d, t) = (&direct.latency, &tunnel.latency);
        PhaseRow {
            name,
            method,
            body_bytes,
            ratio: ratio(tunnel.bytes_per_sec, direct.bytes_per_sec),
            added_p50_us: t.p50_us - d.p50_us,
            added_p90_us: t.p90_us - d.p90_us,
            added_p99_us: t.p99_us - d.p99_us,
            added_max_us: t.max_us - d.max_us,
            client_cpu_secs_per_gib: client_cpu_secs.map(|c| per_gib(c, tunnel.bytes)),
            client_cpu_us_per_request: client_cpu_secs
                .filter(|_| tunnel.requests > 0)
                .map(|c| c * 1e6 / tunnel.requests as f64),
            client_cpu_secs,
            direct,
            tunnel,
        }
    }
}

/// What the client process cost.
#[derive(Debug, Serialize)]
pub(super) struct PrimeClientCost {
    /// CPU seconds per GiB of bodies through the tunnel, over the download and upload phases.
    pub(super) cpu_secs_per_gib: Option<f64>,
    /// RSS once the tunnel answered, before the phases.
    pub(super) idle_rss_bytes: Option<u64>,
    pub(super) idle_rss_anon_bytes: Option<u64>,
    pub(super) idle_rss_file_bytes: Option<u64>,
    /// VmHWM after every phase.
    pub(super) peak_rss_bytes: Option<u64>,
}

/// The whole `--prime` report.
#[derive(Debug, Serialize)]
pub(super) struct PrimeReport {
    pub(super) target: String,
    /// The tunnel's public URL (no credentials: the bench never asks for basic auth).
    pub(super) url: String,
    pub(super) tunnel_id: String,
    /// A `--resolve` entry sent the requests elsewhere than DNS would have.
    pub(super) resolved: bool,
    pub(super) quick: bool,
    pub(super) concurrency: usize,
    pub(super) cpus: usize,
    pub(super) os: &'static str,
    pub(super) note: String,
    pub(super) phases: Vec<PhaseRow>,
    pub(super) client: PrimeClientCost,
}

/// One phase's speed: requests/s for small bodies, bytes/s for bulk ones.
fn speed(row: &PhaseRow, r: &PhaseResult) -> String {
    if row.name == "small" {
        format!("{:.0} req/s", r.requests_per_sec)
    } else {
        rate(r.bytes_per_sec)
    }
}

/// `none`, or the failures by kind.
fn errors_text(e: &Errors) -> String {
    if e.total == 0 {
        return "none".into();
    }
    let mut parts: Vec<String> = e
        .status
        .iter()
        .map(|(code, n)| format!("HTTP {code}: {n}"))
        .collect();
    for (kind, n) in [
        ("timeout", e.timeout),
        ("connect", e.connect),
        ("body", e.body),
        ("other", e.other),
    ] {
        if n > 0 {
            parts.push(format!("{kind}: {n}"));
        }
    }
    parts.join(", ")
}

/// The human report.
pub(super) fn table(r: &PrimeReport) -> String {
    let mut s = String::new();
    let mut line = |t: String| {
        s.push_str(&t);
        s.push('\n');
    };
    line(format!(
        "expose bench --prime: {} (tunnel {}{}; {} requests in flight; {} CPUs, {})",
        r.url,
        r.tunnel_id,
        if r.resolved { ", --resolve" } else { "" },
        r.concurrency,
        r.cpus,
        r.os
    ));
    line(format!("note: {}", r.note));
    line(String::new());
    line(format!(
        "{:<24} {:>13} {:>13} {:>7} {:>9} {:>12}",
        "phase", "direct", "tunnel", "ratio", "requests", "client CPU"
    ));
    for p in &r.phases {
        line(format!(
            "{:<24} {:>13} {:>13} {:>6.0}% {:>9} {:>12}",
            format!(
                "{} ({} {})",
                p.name,
                p.method,
                crate::cli::output::bytes(p.body_bytes)
            ),
            speed(p, &p.direct),
            speed(p, &p.tunnel),
            p.ratio * 100.0,
            p.tunnel.requests,
            if p.name == "small" {
                opt(p.client_cpu_us_per_request, 0, " µs/req")
            } else {
                opt(p.client_cpu_secs_per_gib, 2, " s/GiB")
            },
        ));
    }
    if let Some(small) = r.phases.iter().find(|p| p.name == "small") {
        line(String::new());
        line(format!(
            "{:<24} {:>13} {:>13} {:>10}",
            format!("latency ({} B)", small.body_bytes),
            "direct",
            "tunnel",
            "added"
        ));
        let (d, t) = (&small.direct.latency, &small.tunnel.latency);
        for (name, dv, tv) in [
            ("p50", d.p50_us, t.p50_us),
            ("p90", d.p90_us, t.p90_us),
            ("p99", d.p99_us, t.p99_us),
            ("max", d.max_us, t.max_us),
        ] {
            line(format!(
                "{:<24} {:>10.2} ms {:>10.2} ms {:>+7.2} ms",
                format!("  {name}"),
                dv / 1e3,
                tv / 1e3,
                (tv - dv) / 1e3
            ));
        }
    }
    line(String::new());
    line("errors".into());
    for p in &r.phases {
        line(format!(
            "  {:<22} direct: {}; tunnel: {}",
            p.name,
            errors_text(&p.direct.errors),
            errors_text(&p.tunnel.errors)
        ));
    }
    line(String::new());
    line("client process".into());
    line(format!(
        "  CPU per GiB (bulk)     {}",
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
    s
}
