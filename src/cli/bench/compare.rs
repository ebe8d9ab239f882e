//! `expose bench --client-cmd`: two clients measured through the same server, service and
//! phases, side by side.

use super::report::{Report, ThroughputRow};
use serde::Serialize;

/// Both reports and the figures compared.
#[derive(Debug, Serialize)]
pub(super) struct Pair {
    /// The `--client-cmd` template.
    pub(super) client_cmd: String,
    /// The key figures of both clients; `ratio` is other / expose.
    pub(super) figures: Vec<Figure>,
    pub(super) expose: Report,
    pub(super) other: Report,
}

/// One figure of both clients.
#[derive(Debug, Serialize)]
pub(super) struct Figure {
    pub(super) name: String,
    pub(super) unit: &'static str,
    pub(super) expose: Option<f64>,
    pub(super) other: Option<f64>,
    /// other / expose, when both are known and expose's is not 0.
    pub(super) ratio: Option<f64>,
}

const MIB: f64 = (1u64 << 20) as f64;

impl Pair {
    pub(super) fn new(expose: Report, other: Report, template: &str) -> Pair {
        let (a, b) = (key_figures(&expose), key_figures(&other));
        let figures = a
            .into_iter()
            .zip(b)
            .map(|((name, unit, x), (_, _, y))| Figure {
                ratio: x.zip(y).filter(|(x, _)| *x != 0.0).map(|(x, y)| y / x),
                name,
                unit,
                expose: x,
                other: y,
            })
            .collect();
        Pair {
            client_cmd: template.to_owned(),
            figures,
            expose,
            other,
        }
    }
}

/// The figures compared, in a fixed order (the same for both reports).
fn key_figures(r: &Report) -> Vec<(String, &'static str, Option<f64>)> {
    let mut out = Vec::new();
    let rows: &[ThroughputRow] = &r.throughput;
    for t in rows {
        out.push((t.name.clone(), "MiB/s", Some(t.tunnel.bytes_per_sec / MIB)));
    }
    for t in rows {
        out.push((
            format!("{} client CPU", t.name),
            "s/GiB",
            t.client_cpu_secs_per_gib,
        ));
    }
    out.push((
        "round trip added, p50".into(),
        "µs",
        r.latency.as_ref().map(|l| l.added_p50_us),
    ));
    out.push((
        "round trip added, p99".into(),
        "µs",
        r.latency.as_ref().map(|l| l.added_p99_us),
    ));
    out.push((
        "new connections".into(),
        "/s",
        r.connect_rate.as_ref().map(|c| c.tunnel_per_sec),
    ));
    out.push((
        "start → first byte".into(),
        "ms",
        r.first_byte.as_ref().map(|f| f.tunnel_ms.median),
    ));
    let mib = |b: Option<u64>| b.map(|b| b as f64 / MIB);
    out.push(("idle RSS".into(), "MiB", mib(r.client.idle_rss_bytes)));
    out.push(("peak RSS".into(), "MiB", mib(r.client.peak_rss_bytes)));
    out.push((
        "memory per idle connection".into(),
        "KiB",
        r.client
            .idle_conns
            .as_ref()
            .map(|i| i.per_conn_bytes / 1024.0),
    ));
    out
}

/// Both clients side by side.
pub(super) fn table(p: &Pair) -> String {
    let num = |v: Option<f64>| v.map_or_else(|| "n/a".into(), |v| format!("{v:.2}"));
    let mut s = format!(
        "expose bench: expose against --client-cmd {:?} ({})\n\n{:<34} {:>12} {:>12} {:>9}\n",
        p.client_cmd, p.expose.target, "figure", "expose", "other", "other/expose"
    );
    for f in &p.figures {
        s.push_str(&format!(
            "{:<34} {:>12} {:>12} {:>9}\n",
            format!("{} ({})", f.name, f.unit),
            num(f.expose),
            num(f.other),
            f.ratio.map_or_else(|| "n/a".into(), |r| format!("{r:.2}x")),
        ));
    }
    s
}
