//! From frpc's schema to the engine's config: frpc's defaults and validation (its messages),
//! then the mapping, refusing by name what this client does not implement yet.

use super::schema::{self, ClientFile};
use super::types::{ConfigError, FrpcConfig, WebServer};
use crate::frp::{
    BandwidthLimit, BandwidthLimitMode, ClientConfig, HealthCheck, HttpOptions, ProxyConfig,
    ProxyKind, ProxyProtocolVersion, ProxyUrl, QuicOptions, SecretOptions, TlsConfig,
    TransportProtocol, VisitorConfig, VisitorKind,
};
use std::collections::HashSet;
use std::time::Duration;

const LOG_LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error"];
const PROTOCOLS: &[&str] = &["tcp", "kcp", "quic", "websocket", "wss"];
const SCOPES: &[&str] = &["HeartBeats", "NewWorkConns"];

fn unsupported(what: impl std::fmt::Display) -> ConfigError {
    ConfigError::Unsupported(format!("{what} is not supported yet"))
}

/// frpc's `ValidatePort`.
fn port(value: i64, field: &str) -> Result<u16, String> {
    u16::try_from(value)
        .map_err(|_| format!("{field}: port number {value} must be in the range 0..65535"))
}

/// frpc's checks of the client-level settings, all errors joined as Go's `errors.Join` does.
fn validate_common(
    f: &ClientFile,
    allow_exec: bool,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let mut errs = Vec::new();
    if !f.virtualnet.address.is_empty() {
        errs.push(
            "VirtualNet feature is not enabled; enable it by setting the appropriate feature gate flag"
                .to_owned(),
        );
    }
    let method = if f.auth.method.is_empty() {
        "token"
    } else {
        &f.auth.method
    };
    if !matches!(method, "token" | "oidc") {
        errs.push("invalid auth method, optional values are [token oidc]".to_owned());
    }
    if !f
        .auth
        .additionalscopes
        .iter()
        .all(|s| SCOPES.contains(&s.as_str()))
    {
        errs.push(
            "invalid auth additional scopes, optional values are [HeartBeats NewWorkConns]"
                .to_owned(),
        );
    }
    if !f.auth.token.is_empty() && f.auth.tokensource.is_some() {
        errs.push("cannot specify both auth.token and auth.tokenSource".to_owned());
    }
    if let Some(source) = &f.auth.tokensource {
        if source.kind == "exec" && !allow_exec {
            errs.push(format!("unsafe feature \"{}\" is not enabled. To enable it, ensure it is allowed in the configuration or command line flags", super::value_source::TOKEN_SOURCE_EXEC));
        }
        if let Err(e) = source.validate() {
            errs.push(format!("invalid auth.tokenSource: {e}"));
        }
    }
    let level = if f.log.level.is_empty() {
        "info"
    } else {
        &f.log.level
    };
    if !LOG_LEVELS.contains(&level) {
        errs.push(
            "invalid log level, optional values are [trace debug info warn error]".to_owned(),
        );
    }
    if let Some(tls) = &f.webserver.tls {
        if tls.certfile.is_empty() {
            errs.push("tls.certFile must be specified when tls is enabled".to_owned());
        } else if tls.keyfile.is_empty() {
            errs.push("tls.keyFile must be specified when tls is enabled".to_owned());
        }
    }
    if let Err(e) = port(f.webserver.port, "webServer.port") {
        errs.push(e);
    }
    let t = &f.transport;
    let mux = t.tcpmux.unwrap_or(true);
    let (interval, timeout) = heartbeat(t.heartbeatinterval, t.heartbeattimeout, mux);
    if timeout > 0 && interval > 0 && timeout < interval {
        errs.push("invalid transport.heartbeatTimeout, heartbeat timeout should not less than heartbeat interval".to_owned());
    }
    if !t.tls.enable.unwrap_or(true) {
        for (name, value) in [
            ("transport.tls.certFile", &t.tls.certfile),
            ("transport.tls.keyFile", &t.tls.keyfile),
            ("transport.tls.trustedCaFile", &t.tls.trustedcafile),
        ] {
            if !value.is_empty() {
                warnings.push(format!(
                    "{name} is invalid when transport.tls.enable is false"
                ));
            }
        }
    }
    let protocol = if t.protocol.is_empty() {
        "tcp"
    } else {
        &t.protocol
    };
    if !PROTOCOLS.contains(&protocol) {
        errs.push(
            "invalid transport.protocol, optional values are [tcp kcp quic websocket wss]"
                .to_owned(),
        );
    }
    if !matches!(t.wireprotocol.as_str(), "" | "v1" | "v2") {
        errs.push("invalid transport.wireProtocol, optional values are [v1 v2]".to_owned());
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid(errs.join("\n")))
    }
}

/// frpc's heartbeat defaults: off (-1) with tcpMux, 30 s / 90 s without.
fn heartbeat(interval: i64, timeout: i64, mux: bool) -> (i64, i64) {
    let (di, dt) = if mux { (-1, -1) } else { (30, 90) };
    (
        if interval == 0 { di } else { interval },
        if timeout == 0 { dt } else { timeout },
    )
}

/// What this client cannot do yet among the client-level settings.
fn refuse_common(f: &ClientFile) -> Result<(), ConfigError> {
    if f.auth.method == "oidc" {
        return Err(unsupported("auth.method \"oidc\""));
    }
    let t = &f.transport;
    if TransportProtocol::from_name(&t.protocol).is_none() {
        return Err(unsupported(format!(
            "transport.protocol \"{}\"",
            t.protocol
        )));
    }
    // Serving the admin API in the clear when TLS was asked for would be a silent downgrade.
    if f.webserver.tls.is_some() {
        return Err(unsupported("webServer.tls"));
    }
    Ok(())
}

/// frpc's checks of one proxy (`proxy NAME: …` is added by the caller).
fn validate_proxy(p: &schema::Proxy) -> Result<(), String> {
    if p.name.is_empty() {
        return Err("name should not be empty".into());
    }
    super::annotations::validate(&p.annotations)?;
    let version = p.transport.proxyprotocolversion.as_str();
    if !matches!(version, "" | "v1" | "v2") {
        return Err(format!("not support proxy protocol version: {version}"));
    }
    if !matches!(
        p.transport.bandwidthlimitmode.as_str(),
        "" | "client" | "server"
    ) {
        return Err("bandwidth limit mode should be client or server".into());
    }
    if p.plugin.is_none() {
        port(p.localport, "localPort").map_err(|e| format!("localPort: {e}"))?;
    }
    let hc = p.healthcheck.kind.as_str();
    if !matches!(hc, "" | "tcp" | "http") {
        return Err(format!("not support health check type: {hc}"));
    }
    if hc == "http" && p.healthcheck.path.is_empty() {
        return Err("health check path should not be empty".into());
    }
    if let Some(plugin) = &p.plugin {
        super::plugin::validate(plugin)?;
    }
    if matches!(p.kind.as_str(), "http" | "https" | "tcpmux")
        && p.subdomain.is_empty()
        && p.customdomains.is_empty()
    {
        return Err("subdomain and custom domains should not be both empty".into());
    }
    if p.kind == "tcpmux" && p.multiplexer != "httpconnect" {
        return Err(format!("not support multiplexer: {}", p.multiplexer));
    }
    Ok(())
}

/// The engine's proxy for a validated frpc proxy, or what is not supported yet.
fn to_proxy(p: schema::Proxy) -> Result<ProxyConfig, ConfigError> {
    let no = |what: &str| unsupported(format!("proxy {}: {what}", p.name));
    if !matches!(
        p.kind.as_str(),
        "tcp" | "http" | "https" | "tcpmux" | "udp" | "stcp" | "sudp" | "xtcp"
    ) {
        return Err(no(&format!("type \"{}\"", p.kind)));
    }
    let plugin = match p.plugin.as_ref().filter(|v| !v.is_null()) {
        Some(v) => {
            Some(super::plugin::to_plugin(v).map_err(|kind| no(&format!("plugin \"{kind}\"")))?)
        }
        None if p.localport == 0 => return Err(no("localPort 0")),
        None => None,
    };
    let local_port = u16::try_from(p.localport).unwrap_or(0);
    let kind = match p.kind.as_str() {
        "tcp" => ProxyKind::Tcp {
            remote_port: port(p.remoteport, "remotePort")
                .map_err(|e| ConfigError::Invalid(format!("proxy {}: {e}", p.name)))?,
        },
        "https" => ProxyKind::Https {
            subdomain: non_empty(p.subdomain),
            custom_domains: p.customdomains,
        },
        "tcpmux" => {
            let auth = !p.httpuser.is_empty() || !p.httppassword.is_empty();
            ProxyKind::TcpMux {
                subdomain: non_empty(p.subdomain),
                custom_domains: p.customdomains,
                http_user: auth.then_some(p.httpuser),
                http_password: auth.then_some(p.httppassword),
                route_by_http_user: non_empty(p.routebyhttpuser),
            }
        }
        "udp" => ProxyKind::Udp {
            remote_port: port(p.remoteport, "remotePort")
                .map_err(|e| ConfigError::Invalid(format!("proxy {}: {e}", p.name)))?,
        },
        "stcp" | "sudp" | "xtcp" => {
            let mut o = SecretOptions::new(p.secretkey);
            o.allow_users = p.allowusers;
            o.disable_assisted_addrs = disable_assisted_addrs(p.nattraversal.as_ref());
            match p.kind.as_str() {
                "stcp" => ProxyKind::Stcp(o),
                "sudp" => ProxyKind::Sudp(o),
                _ => ProxyKind::Xtcp(o),
            }
        }
        _ => {
            let auth = !p.httpuser.is_empty() || !p.httppassword.is_empty();
            ProxyKind::Http(HttpOptions {
                subdomain: non_empty(p.subdomain),
                custom_domains: p.customdomains,
                locations: p.locations,
                host_header_rewrite: non_empty(p.hostheaderrewrite),
                http_user: auth.then_some(p.httpuser),
                http_password: auth.then_some(p.httppassword),
                request_headers: p.requestheaders.set,
                response_headers: p.responseheaders.set,
                route_by_http_user: p.routebyhttpuser,
            })
        }
    };
    let mut proxy = ProxyConfig::new(p.name, local_port, kind)
        .use_encryption(p.transport.useencryption)
        .use_compression(p.transport.usecompression);
    if !p.localip.is_empty() {
        proxy.local_host = p.localip;
    }
    proxy.metas = p.metadatas;
    // Carried in NewProxy for every type, as frpc does; frps decides where groups apply.
    proxy.group = p.loadbalancer.group;
    proxy.group_key = p.loadbalancer.groupkey.into();
    proxy.annotations = p.annotations;
    proxy.proxy_protocol = ProxyProtocolVersion::from_config(&p.transport.proxyprotocolversion);
    proxy.bandwidth_limit = bandwidth(&p.transport)?;
    proxy.health_check = health_check(p.healthcheck);
    proxy.plugin = plugin;
    Ok(proxy)
}

/// frpc's `dnsServer`: `IP` or `IP:PORT` (port 53 when absent).
fn dns_server_addr(text: &str) -> Option<std::net::SocketAddr> {
    if let Ok(addr) = text.parse() {
        return Some(addr);
    }
    let ip: std::net::IpAddr = text
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    Some((ip, 53).into())
}

/// frpc's checks of one visitor (`visitor NAME: …` is added by the caller).
fn validate_visitor(v: &schema::Visitor) -> Result<(), String> {
    if v.name.is_empty() {
        return Err("name is required".into());
    }
    if v.servername.is_empty() {
        return Err("server name is required".into());
    }
    if v.bindport == 0 {
        return Err("bind port is required".into());
    }
    if v.kind == "xtcp" && !matches!(v.protocol.as_str(), "" | "kcp" | "quic") {
        return Err("protocol should be kcp or quic".into());
    }
    Ok(())
}

/// The engine's visitor for a validated frpc visitor, or what is not supported yet.
fn to_visitor(v: schema::Visitor, prefixed: &str) -> Result<VisitorConfig, ConfigError> {
    let no = |what: &str| unsupported(format!("visitor {prefixed}: {what}"));
    let kind = match v.kind.as_str() {
        "stcp" => VisitorKind::Stcp,
        "sudp" => VisitorKind::Sudp,
        "xtcp" => VisitorKind::Xtcp,
        other => return Err(no(&format!("type \"{other}\""))),
    };
    if kind == VisitorKind::Xtcp && v.protocol == "kcp" {
        // quic only: see docs/frpc.md for why kcp is not offered.
        return Err(no("xtcp protocol \"kcp\""));
    }
    if let Some(plugin) = &v.plugin {
        let kind = plugin.get("type").and_then(|t| t.as_str()).unwrap_or("");
        return Err(no(&format!("plugin \"{kind}\"")));
    }
    let bind_port = i32::try_from(v.bindport)
        .ok()
        .filter(|p| *p <= i32::from(u16::MAX))
        .ok_or_else(|| {
            ConfigError::Invalid(format!(
                "visitor {prefixed}: bindPort: port number {} must be in the range 0..65535",
                v.bindport
            ))
        })?;
    let mut out = VisitorConfig::new(v.name, kind, v.servername, v.secretkey, bind_port)
        .server_user(v.serveruser)
        .use_encryption(v.transport.useencryption)
        .use_compression(v.transport.usecompression);
    if !v.bindaddr.is_empty() {
        out.bind_addr = v.bindaddr;
    }
    if kind == VisitorKind::Xtcp {
        let x = &mut out.xtcp;
        if !v.protocol.is_empty() {
            x.protocol = v.protocol;
        }
        x.keep_tunnel_open = v.keeptunnelopen;
        if v.maxretriesanhour > 0 {
            x.max_retries_an_hour = u32::try_from(v.maxretriesanhour).unwrap_or(u32::MAX);
        }
        if v.minretryinterval > 0 {
            x.min_retry_interval = std::time::Duration::from_secs(v.minretryinterval as u64);
        }
        x.fallback_to = v.fallbackto;
        if v.fallbacktimeoutms > 0 {
            x.fallback_timeout = std::time::Duration::from_millis(v.fallbacktimeoutms as u64);
        }
        x.disable_assisted_addrs = disable_assisted_addrs(v.nattraversal.as_ref());
    }
    Ok(out)
}

/// `natTraversal.disableAssistedAddrs` of an xtcp proxy or visitor.
fn disable_assisted_addrs(nat_traversal: Option<&serde_json::Value>) -> bool {
    nat_traversal
        .and_then(|v| v.as_object())
        .and_then(|o| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("disableAssistedAddrs"))
        })
        .and_then(|(_, v)| v.as_bool())
        .unwrap_or(false)
}

/// `transport.bandwidthLimit` and its mode; no limit when the quantity is empty.
fn bandwidth(t: &schema::ProxyTransport) -> Result<Option<BandwidthLimit>, ConfigError> {
    // Already parsed once when the file was decoded, where frpc reports its errors.
    let limit = BandwidthLimit::parse(&t.bandwidthlimit)
        .map_err(|e| ConfigError::Parse(format!("unmarshal ProxyConfig error: {e}")))?;
    if limit.text.is_empty() {
        return Ok(None);
    }
    let mode = match t.bandwidthlimitmode.as_str() {
        "server" => BandwidthLimitMode::Server,
        _ => BandwidthLimitMode::Client,
    };
    Ok(Some(limit.mode(mode)))
}

/// frpc's health check with its defaults: 3 s timeout, 1 failure, 10 s interval.
fn health_check(h: schema::HealthCheck) -> Option<HealthCheck> {
    let check = match h.kind.as_str() {
        "tcp" => HealthCheck::tcp(),
        "http" => h
            .httpheaders
            .into_iter()
            .fold(HealthCheck::http(h.path), |c, hd| {
                c.header(hd.name, hd.value)
            }),
        _ => return None,
    };
    let positive =
        |v: i64, default: u64| u64::try_from(v).ok().filter(|&v| v > 0).unwrap_or(default);
    Some(
        check
            .timeout(Duration::from_secs(positive(h.timeoutseconds, 3)))
            .max_failed(u32::try_from(positive(h.maxfailed, 1)).unwrap_or(u32::MAX))
            .interval(Duration::from_secs(positive(h.intervalseconds, 10))),
    )
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn secs(value: i64, default: Duration) -> Duration {
    u64::try_from(value)
        .ok()
        .filter(|&v| v > 0)
        .map_or(default, Duration::from_secs)
}

/// frpc's `transport.quic` with quic-go's reading of it: 0 is frp's default (10 s, 30 s,
/// 100000); a negative keepalive sends none, a negative idle timeout is the default, and a
/// negative stream count allows none.
fn quic_options(q: &schema::Quic) -> QuicOptions {
    let defaults = QuicOptions::default();
    let keepalive = match q.keepaliveperiod {
        k if k < 0 => None,
        k => Some(secs(k, Duration::from_secs(10))),
    };
    let streams = match q.maxincomingstreams {
        0 => defaults.max_incoming_streams,
        n => u32::try_from(n.max(0)).unwrap_or(u32::MAX),
    };
    defaults
        .keepalive_period(keepalive)
        .max_idle_timeout(secs(q.maxidletimeout, defaults.max_idle_timeout))
        .max_incoming_streams(streams)
}

/// Applies frpc's defaults, validation, `start` and `enabled`, and builds the engine's config.
pub fn build(
    f: ClientFile,
    proxies: Vec<schema::Proxy>,
    visitors: Vec<schema::Visitor>,
    allow_exec: bool,
) -> Result<FrpcConfig, ConfigError> {
    let mut warnings = Vec::new();
    validate_common(&f, allow_exec, &mut warnings)?;
    let start: HashSet<&str> = f.start.iter().map(String::as_str).collect();
    let wanted = |name: &str, enabled: bool| (start.is_empty() || start.contains(name)) && enabled;
    let prefixed = |name: &str| {
        if f.user.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", f.user)
        }
    };
    let proxies: Vec<schema::Proxy> = proxies
        .into_iter()
        .filter(|p| wanted(&p.name, p.enabled.unwrap_or(true)))
        .collect();
    for p in &proxies {
        validate_proxy(p)
            .map_err(|e| ConfigError::Invalid(format!("proxy {}: {e}", prefixed(&p.name))))?;
    }
    let visitors: Vec<schema::Visitor> = visitors
        .into_iter()
        .filter(|v| wanted(&v.name, v.enabled.unwrap_or(true)))
        .collect();
    for v in &visitors {
        validate_visitor(v)
            .map_err(|e| ConfigError::Invalid(format!("visitor {}: {e}", prefixed(&v.name))))?;
    }
    refuse_common(&f)?;
    let mut names = HashSet::new();
    for p in &proxies {
        if !names.insert(p.name.clone()) {
            return Err(ConfigError::Invalid(format!(
                "proxy name [{}] is duplicated",
                prefixed(&p.name)
            )));
        }
    }

    let host = if f.serveraddr.is_empty() {
        "0.0.0.0".to_owned()
    } else {
        f.serveraddr.clone()
    };
    let server_port = match f.serverport {
        0 => 7000,
        p => port(p, "serverPort").map_err(ConfigError::Invalid)?,
    };
    let mut cfg = ClientConfig::new(host, server_port, f.auth.token.clone());
    cfg.user = f.user.clone();
    cfg.metas = f.metadatas.clone();
    cfg.login_fail_exit = f.loginfailexit.unwrap_or(true);
    cfg.auth_heartbeats = f.auth.additionalscopes.iter().any(|s| s == "HeartBeats");
    cfg.auth_new_work_conns = f.auth.additionalscopes.iter().any(|s| s == "NewWorkConns");
    let t = &f.transport;
    cfg.tcp_mux = t.tcpmux.unwrap_or(true);
    if t.wireprotocol == "v2" {
        cfg.wire_protocol = crate::frp::WireProtocol::V2;
    }
    cfg.pool_count = u32::try_from(t.poolcount)
        .ok()
        .filter(|&n| n > 0)
        .unwrap_or(1);
    cfg.dial_timeout = secs(t.dialservertimeout, cfg.dial_timeout);
    if !t.connectserverlocalip.is_empty() {
        cfg.local_ip = Some(t.connectserverlocalip.parse().map_err(|_| {
            ConfigError::Invalid(format!(
                "transport.connectServerLocalIP: {:?} is not an IP address",
                t.connectserverlocalip
            ))
        })?);
    }
    if !f.dnsserver.is_empty() {
        cfg.dns_server = Some(dns_server_addr(&f.dnsserver).ok_or_else(|| {
            ConfigError::Invalid(format!(
                "dnsServer: {:?} is not an IP address with an optional port",
                f.dnsserver
            ))
        })?);
    }
    cfg.tcp_keepalive = match t.dialserverkeepalive {
        k if k < 0 => None,
        k => Some(secs(k, Duration::from_secs(7200))),
    };
    // With tcpMux frpc leaves heartbeats to yamux's own keepalive; rust-yamux has none, so the
    // engine keeps its application-level ping unless the file sets a positive interval.
    let (interval, timeout) = heartbeat(t.heartbeatinterval, t.heartbeattimeout, cfg.tcp_mux);
    if interval > 0 {
        cfg.heartbeat_interval = Some(secs(interval, crate::frp::DEFAULT_HEARTBEAT_INTERVAL));
    } else if !cfg.tcp_mux {
        cfg.heartbeat_interval = None;
    }
    if timeout > 0 {
        cfg.heartbeat_timeout = secs(timeout, crate::frp::DEFAULT_HEARTBEAT_TIMEOUT);
    }
    let mut tls = TlsConfig::default()
        .enable(t.tls.enable.unwrap_or(true))
        .custom_first_byte(!t.tls.disablecustomtlsfirstbyte.unwrap_or(true));
    // The name also serves QUIC, whose TLS runs whatever `tls.enable` says.
    if !t.tls.servername.is_empty() {
        tls = tls.server_name(t.tls.servername.clone());
    }
    if tls.enable {
        if !t.tls.trustedcafile.is_empty() {
            tls = tls.ca_file(t.tls.trustedcafile.clone());
        }
        match (t.tls.certfile.is_empty(), t.tls.keyfile.is_empty()) {
            (false, false) => tls = tls.client_cert(t.tls.certfile.clone(), t.tls.keyfile.clone()),
            (true, true) => {}
            _ => {
                return Err(ConfigError::Invalid(
                    "transport.tls.certFile and transport.tls.keyFile must be set together".into(),
                ))
            }
        }
    }
    cfg.tls = tls;
    cfg.transport.protocol = TransportProtocol::from_name(&t.protocol)
        .ok_or_else(|| unsupported(format!("transport.protocol \"{}\"", t.protocol)))?;
    cfg.transport.quic = quic_options(&t.quic);
    // frpc falls back on the `http_proxy` environment variable (that exact, lower-case name;
    // not HTTPS_PROXY, ALL_PROXY or NO_PROXY) for every transport that dials TCP.
    let proxy_url = if t.proxyurl.is_empty() {
        std::env::var("http_proxy").unwrap_or_default()
    } else {
        t.proxyurl.clone()
    };
    if !proxy_url.is_empty() {
        cfg.transport.proxy_url = Some(
            ProxyUrl::parse(&proxy_url)
                .map_err(|e| ConfigError::Invalid(format!("transport.proxyURL: {e}")))?,
        );
    }
    for p in proxies {
        cfg.proxies.push(to_proxy(p)?);
    }
    let mut visitor_names = HashSet::new();
    for v in visitors {
        let name = prefixed(&v.name);
        if !visitor_names.insert(v.name.clone()) {
            return Err(ConfigError::Invalid(format!(
                "visitor name [{name}] is duplicated"
            )));
        }
        cfg.visitors.push(to_visitor(v, &name)?);
    }
    if !f.natholestunserver.is_empty() {
        cfg.nat_hole_stun_server = f.natholestunserver.clone();
    }
    if f.udppacketsize > 0 {
        cfg.udp_packet_size = usize::try_from(f.udppacketsize).unwrap_or(usize::MAX);
        if cfg.udp_packet_size > frp_proto::udp::MAX_UDP_PACKET_SIZE {
            return Err(ConfigError::Unsupported(format!(
                "udpPacketSize {} is not supported: at most {} fits an frp message",
                f.udppacketsize,
                frp_proto::udp::MAX_UDP_PACKET_SIZE
            )));
        }
    }
    let web_server = WebServer {
        addr: if f.webserver.addr.is_empty() {
            "127.0.0.1".into()
        } else {
            f.webserver.addr.clone()
        },
        port: port(f.webserver.port, "webServer.port").map_err(ConfigError::Invalid)?,
        user: f.webserver.user.clone(),
        password: f.webserver.password.clone(),
    };
    let log_level = if f.log.level.is_empty() {
        "info".into()
    } else {
        f.log.level.clone()
    };
    Ok(FrpcConfig {
        client: cfg,
        web_server,
        log_level,
        warnings,
        legacy_ini: false,
        token_source: f.auth.tokensource,
        log_to: if f.log.to.is_empty() {
            "console".into()
        } else {
            f.log.to.clone()
        },
        log_max_days: if f.log.maxdays == 0 { 3 } else { f.log.maxdays },
    })
}
