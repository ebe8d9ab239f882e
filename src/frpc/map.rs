//! From frpc's schema to the engine's config: frpc's defaults and validation (its messages),
//! then the mapping, refusing by name what this client does not implement yet.

use super::schema::{self, ClientFile};
use super::types::{ConfigError, FrpcConfig, WebServer};
use crate::frp::{ClientConfig, HttpOptions, ProxyConfig, ProxyKind, TlsConfig};
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
fn validate_common(f: &ClientFile, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
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
fn refuse_common(f: &ClientFile, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
    if f.auth.method == "oidc" {
        return Err(unsupported("auth.method \"oidc\""));
    }
    if f.auth.tokensource.is_some() {
        return Err(unsupported("auth.tokenSource"));
    }
    let t = &f.transport;
    if !t.protocol.is_empty() && t.protocol != "tcp" {
        return Err(unsupported(format!(
            "transport.protocol \"{}\"",
            t.protocol
        )));
    }
    if !t.proxyurl.is_empty() {
        return Err(unsupported("transport.proxyURL"));
    }
    if !t.connectserverlocalip.is_empty() {
        return Err(unsupported("transport.connectServerLocalIP"));
    }
    if !f.dnsserver.is_empty() {
        warnings.push("dnsServer is not supported yet; the system resolver is used".into());
    }
    if !f.log.to.is_empty() && f.log.to != "console" {
        warnings.push(format!(
            "log.to \"{}\" is not supported yet; logging to the console",
            f.log.to
        ));
    }
    Ok(())
}

/// frpc's checks of one proxy (`proxy NAME: …` is added by the caller).
fn validate_proxy(p: &schema::Proxy) -> Result<(), String> {
    if p.name.is_empty() {
        return Err("name should not be empty".into());
    }
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
    if !matches!(p.kind.as_str(), "tcp" | "http" | "https") {
        return Err(no(&format!("type \"{}\"", p.kind)));
    }
    if let Some(plugin) = &p.plugin {
        let kind = plugin.get("type").and_then(|t| t.as_str()).unwrap_or("");
        return Err(no(&format!("plugin \"{kind}\"")));
    }
    let checks: [(bool, &str); 8] = [
        (!p.annotations.is_empty(), "annotations"),
        (
            !p.transport.bandwidthlimit.is_empty(),
            "transport.bandwidthLimit",
        ),
        (
            !p.transport.proxyprotocolversion.is_empty(),
            "transport.proxyProtocolVersion",
        ),
        (!p.loadbalancer.group.is_empty(), "loadBalancer"),
        (!p.healthcheck.kind.is_empty(), "healthCheck"),
        (!p.responseheaders.set.is_empty(), "responseHeaders"),
        (!p.routebyhttpuser.is_empty(), "routeByHTTPUser"),
        (p.localport == 0, "localPort 0 (a plugin)"),
    ];
    if let Some((_, what)) = checks.iter().find(|(bad, _)| *bad) {
        return Err(no(what));
    }
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
    Ok(proxy)
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

/// Applies frpc's defaults, validation, `start` and `enabled`, and builds the engine's config.
pub fn build(
    f: ClientFile,
    proxies: Vec<schema::Proxy>,
    visitors: Vec<(String, String, bool)>,
) -> Result<FrpcConfig, ConfigError> {
    let mut warnings = Vec::new();
    validate_common(&f, &mut warnings)?;
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
    refuse_common(&f, &mut warnings)?;
    if let Some((name, kind, _)) = visitors.iter().find(|(n, _, e)| wanted(n, *e)) {
        return Err(unsupported(format!(
            "visitor {}: type \"{kind}\"",
            prefixed(name)
        )));
    }
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
    cfg.pool_count = u32::try_from(t.poolcount)
        .ok()
        .filter(|&n| n > 0)
        .unwrap_or(1);
    cfg.dial_timeout = secs(t.dialservertimeout, cfg.dial_timeout);
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
    if tls.enable {
        if !t.tls.servername.is_empty() {
            tls = tls.server_name(t.tls.servername.clone());
        }
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
    for p in proxies {
        cfg.proxies.push(to_proxy(p)?);
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
    })
}
