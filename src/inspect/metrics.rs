//! `/metrics`: the engine's counters in the Prometheus text format (OpenMetrics 1.0, which
//! Prometheus scrapes natively), encoded by `prometheus-client` at scrape time from the
//! snapshots the engine keeps anyway ([`ClientHandle::stats`], [`ClientHandle::metrics`], the
//! state watch): nothing is counted twice and nothing is added to the data path.

use crate::frp::{ClientHandle, Phase};
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of [`encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Reads a running client's figures at each scrape.
#[derive(Clone)]
struct Source(ClientHandle);

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Source")
    }
}

type Labels = Vec<(&'static str, String)>;

fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    values: &[(Labels, u64)],
) -> std::fmt::Result {
    let mut family = enc.encode_descriptor(name, help, unit, MetricType::Counter)?;
    for (labels, v) in values {
        ConstCounter::new(*v).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    values: &[(Labels, i64)],
) -> std::fmt::Result {
    let mut family = enc.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    for (labels, v) in values {
        ConstGauge::new(*v).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl prometheus_client::collector::Collector for Source {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let stats = self.0.stats();
        let more = self.0.metrics();
        let phase = match &self.0.state().borrow().phase {
            Phase::Connecting => "connecting",
            Phase::Online => "online",
            Phase::Reconnecting => "reconnecting",
            _ => "stopped",
        };
        let none = Labels::new;
        let e = &mut enc;
        let states = ["connecting", "online", "reconnecting", "stopped"]
            .map(|s| (vec![("state", s.to_owned())], i64::from(s == phase)));
        gauge(
            e,
            "expose_session_state",
            "The control session's state: 1 for the current one.",
            None,
            &states,
        )?;
        counter(
            e,
            "expose_reconnects",
            "Sessions re-established after a loss.",
            None,
            &[(none(), stats.reconnects)],
        )?;
        counter(
            e,
            "expose_login_failures",
            "Login attempts that did not end logged in (dial, TLS or refused login).",
            None,
            &[(none(), more.login_failures)],
        )?;
        gauge(
            e,
            "expose_work_connections_open",
            "Work connections splicing to a local service now.",
            None,
            &[(none(), int(stats.active_work_conns))],
        )?;
        counter(
            e,
            "expose_work_connections",
            "Work connections that reached a local service since start.",
            None,
            &[(none(), stats.total_work_conns)],
        )?;
        gauge(
            e,
            "expose_work_connections_pooled",
            "Work connections waiting in the server's pool for a visitor.",
            None,
            &[(none(), int(more.pooled_work_conns))],
        )?;
        counter(
            e,
            "expose_to_local",
            "Bytes from visitors to local services.",
            Some(&Unit::Bytes),
            &[(none(), stats.bytes_to_local)],
        )?;
        counter(
            e,
            "expose_from_local",
            "Bytes from local services to visitors.",
            Some(&Unit::Bytes),
            &[(none(), stats.bytes_from_local)],
        )?;
        gauge(
            e,
            "expose_buffered",
            "Payload bytes held by work connections right now.",
            Some(&Unit::Bytes),
            &[(none(), int(stats.buffered_bytes))],
        )?;
        let per = |f: &dyn Fn(&crate::frp::ProxyStats) -> u64| -> Vec<(Labels, u64)> {
            more.proxies
                .iter()
                .map(|p| (vec![("proxy", p.name.clone())], f(p)))
                .collect()
        };
        let open: Vec<(Labels, i64)> = per(&|p| p.open_conns)
            .into_iter()
            .map(|(l, v)| (l, int(v)))
            .collect();
        gauge(
            e,
            "expose_proxy_connections_open",
            "Connections of each proxy splicing now.",
            None,
            &open,
        )?;
        counter(
            e,
            "expose_proxy_connections",
            "Connections of each proxy since start.",
            None,
            &per(&|p| p.total_conns),
        )?;
        counter(
            e,
            "expose_proxy_to_local",
            "Bytes from visitors to the local service, per proxy (counted when a connection ends).",
            Some(&Unit::Bytes),
            &per(&|p| p.bytes_to_local),
        )?;
        counter(
            e,
            "expose_proxy_from_local",
            "Bytes from the local service to visitors, per proxy (counted when a connection ends).",
            Some(&Unit::Bytes),
            &per(&|p| p.bytes_from_local),
        )?;
        counter(
            e,
            "expose_http_requests",
            "HTTP exchanges completed, per proxy (proxies whose requests are observed).",
            None,
            &per(&|p| p.http_requests),
        )?;
        let mut family = e.encode_descriptor(
            "expose_http_request_duration",
            "From the end of a request head to the end of its response, per proxy.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for p in &more.proxies {
            let labels: Labels = vec![("proxy", p.name.clone())];
            family.encode_family(&labels)?.encode_histogram::<Labels>(
                p.http_duration_sum.as_secs_f64(),
                p.http_requests,
                &p.http_buckets,
                None,
            )?;
        }
        Ok(())
    }
}

/// The metrics of `client`, as `/metrics` serves them.
pub fn encode(client: &ClientHandle) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Source(client.clone())));
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}
