//! frpc's deprecated INI format (`[common]` plus one section per proxy or visitor), turned into
//! the v1 document the rest of the loader already understands, the way frpc converts it.
//!
//! The INI reading follows the library frpc uses with its options: keys and section names are
//! case-sensitive, `#` and `;` start comment lines only (never inside a value), a key without
//! `=` is a boolean `true`, surrounding quotes are removed, `"""` opens a multi-line value, a
//! trailing `\` continues a line, a repeated key or section merges with the last value winning.
//! Values that do not parse as the field's type are left at the default, as frpc leaves them,
//! but with a warning instead of silence.

mod read;

use super::glob;
use super::template;
use super::types::ConfigError;
use read::{go_int, parse, Section, DEFAULT_SECTION};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// frpc's test for the legacy format: the text reads as INI and has a `[common]` section.
pub fn is_legacy(text: &str) -> bool {
    parse(text).is_ok_and(|sections| sections.iter().any(|s| s.name == "common"))
}

/// Renders, parses and converts a legacy file (and the files its `includes` name) into a v1
/// document; warnings for values frpc would silently drop go to `warnings`.
pub fn to_v1(
    text: &str,
    envs: &BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<Value, ConfigError> {
    let rendered = template::render_legacy(text, envs).map_err(|e| ConfigError::Parse(e.0))?;
    let sections = parse(&rendered).map_err(ConfigError::Parse)?;
    let common = sections
        .iter()
        .rev()
        .find(|s| s.name == "common")
        .cloned()
        .ok_or_else(|| {
            ConfigError::Parse("invalid configuration file, not found [common] section".to_owned())
        })?;
    let mut conv = Conv {
        warnings,
        section: &common,
    };
    let mut doc = conv.common()?;

    // Included files are rendered and appended to the text, then all proxies are read from the
    // whole, as frpc does.
    let mut all = rendered;
    for pattern in conv.list("includes") {
        let dir = Path::new(&pattern).parent().unwrap_or(Path::new("."));
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if !dir.exists() {
            return Err(ConfigError::Invalid(format!(
                "parse config error: include: directory of {pattern} not exist"
            )));
        }
        for file in glob::matching_files(&pattern)? {
            let raw = std::fs::read_to_string(&file).map_err(|e| {
                ConfigError::Read(format!(
                    "getIncludeContents error: open {}: {e}",
                    file.display()
                ))
            })?;
            let extra = template::render_legacy(&raw, envs).map_err(|e| {
                ConfigError::Parse(format!(
                    "getIncludeContents error: render extra config {} error: {}",
                    file.display(),
                    e.0
                ))
            })?;
            all.push('\n');
            all.push_str(&extra);
        }
    }
    let sections = parse(&all).map_err(ConfigError::Parse)?;
    let (proxies, visitors) = proxies_and_visitors(sections, conv.warnings)?;
    if let Value::Object(m) = &mut doc {
        m.insert("proxies".into(), Value::Array(proxies));
        m.insert("visitors".into(), Value::Array(visitors));
    }
    Ok(doc)
}

/// Reads one section's keys as the legacy struct fields would.
struct Conv<'a, 'w> {
    warnings: &'w mut Vec<String>,
    section: &'a Section,
}

impl Conv<'_, '_> {
    fn string(&self, key: &str) -> Option<Value> {
        self.section.get(key).map(|v| Value::String(v.to_owned()))
    }

    fn boolean(&mut self, key: &str) -> Option<bool> {
        let raw = self.section.get(key)?;
        match raw {
            "1" | "t" | "T" | "TRUE" | "true" | "True" | "YES" | "yes" | "Yes" | "y" | "ON"
            | "on" | "On" => Some(true),
            "0" | "f" | "F" | "FALSE" | "false" | "False" | "NO" | "no" | "No" | "n" | "OFF"
            | "off" | "Off" => Some(false),
            _ => {
                self.ignored(key, raw, "a boolean");
                None
            }
        }
    }

    fn int(&mut self, key: &str) -> Option<Value> {
        let raw = self.section.get(key)?;
        if raw.is_empty() {
            return None;
        }
        match go_int(raw) {
            Some(n) => Some(Value::from(n)),
            None => {
                self.ignored(key, raw, "an integer");
                None
            }
        }
    }

    fn list(&self, key: &str) -> Vec<String> {
        match self.section.get(key) {
            Some(v) if !v.is_empty() => v.split(',').map(|s| s.trim().to_owned()).collect(),
            _ => Vec::new(),
        }
    }

    fn list_value(&self, key: &str) -> Option<Value> {
        self.section.get(key).map(|_| Value::from(self.list(key)))
    }

    fn ignored(&mut self, key: &str, raw: &str, what: &str) {
        self.warnings.push(format!(
            "[{}] {key} = {raw:?} is not {what}; ignored, as frpc ignores it",
            self.section.name
        ));
    }

    /// `[common]` as frpc's `Convert_ClientCommonConf_To_v1` maps it.
    fn common(&mut self) -> Result<Value, ConfigError> {
        let mut doc = Obj::default();
        doc.put("user", self.string("user"));
        doc.put("serverAddr", self.string("server_addr"));
        doc.put("serverPort", self.int("server_port"));
        doc.put("natHoleStunServer", self.string("nat_hole_stun_server"));
        doc.put("dnsServer", self.string("dns_server"));
        doc.put(
            "loginFailExit",
            Some(Value::Bool(self.boolean("login_fail_exit").unwrap_or(true))),
        );
        doc.put("start", self.list_value("start"));
        doc.put("udpPacketSize", self.int("udp_packet_size"));
        let metas = self.section.with_prefix("meta_");
        if !metas.is_empty() {
            doc.put("metadatas", Some(Value::Object(metas)));
        }

        let mut auth = Obj::default();
        auth.put(
            "method",
            Some(
                self.string("authentication_method")
                    .unwrap_or_else(|| json!("token")),
            ),
        );
        auth.put("token", self.string("token"));
        let mut scopes = Vec::new();
        if self.boolean("authenticate_heartbeats") == Some(true) {
            scopes.push(json!("HeartBeats"));
        }
        if self.boolean("authenticate_new_work_conns") == Some(true) {
            scopes.push(json!("NewWorkConns"));
        }
        if !scopes.is_empty() {
            auth.put("additionalScopes", Some(Value::Array(scopes)));
        }
        let mut oidc = Obj::default();
        oidc.put("clientID", self.string("oidc_client_id"));
        oidc.put("clientSecret", self.string("oidc_client_secret"));
        oidc.put("audience", self.string("oidc_audience"));
        oidc.put("scope", self.string("oidc_scope"));
        oidc.put("tokenEndpointURL", self.string("oidc_token_endpoint_url"));
        let params = self.section.with_prefix("oidc_additional_");
        if !params.is_empty() {
            oidc.put("additionalEndpointParams", Some(Value::Object(params)));
        }
        auth.nest("oidc", oidc);
        doc.nest("auth", auth);

        let mut log = Obj::default();
        log.put("to", self.string("log_file"));
        log.put("level", self.string("log_level"));
        log.put("maxDays", self.int("log_max_days"));
        log.put(
            "disablePrintColor",
            self.boolean("disable_log_color").map(Value::Bool),
        );
        doc.nest("log", log);

        let mut web = Obj::default();
        web.put("addr", self.string("admin_addr"));
        web.put("port", self.int("admin_port"));
        web.put("user", self.string("admin_user"));
        web.put("password", self.string("admin_pwd"));
        web.put("assetsDir", self.string("assets_dir"));
        web.put("pprofEnable", self.boolean("pprof_enable").map(Value::Bool));
        doc.nest("webServer", web);

        let protocol = self.section.get("protocol").unwrap_or("tcp").to_owned();
        if !matches!(
            protocol.as_str(),
            "tcp" | "kcp" | "quic" | "websocket" | "wss"
        ) {
            return Err(ConfigError::Invalid(
                "parse config error: invalid protocol".into(),
            ));
        }
        let mut t = Obj::default();
        t.put("protocol", Some(Value::String(protocol)));
        t.put("dialServerTimeout", self.int("dial_server_timeout"));
        t.put("dialServerKeepalive", self.int("dial_server_keepalive"));
        t.put(
            "connectServerLocalIP",
            self.string("connect_server_local_ip"),
        );
        t.put("proxyURL", self.string("http_proxy"));
        t.put("poolCount", self.int("pool_count"));
        t.put(
            "tcpMux",
            Some(Value::Bool(self.boolean("tcp_mux").unwrap_or(true))),
        );
        t.put(
            "tcpMuxKeepaliveInterval",
            self.int("tcp_mux_keepalive_interval"),
        );
        let interval = self.int("heartbeat_interval");
        let timeout = self.int("heartbeat_timeout");
        if let (Some(i), Some(t)) = (
            interval.as_ref().and_then(Value::as_i64),
            timeout.as_ref().and_then(Value::as_i64),
        ) {
            if i > 0 && t > 0 && t < i {
                return Err(ConfigError::Invalid("parse config error: invalid heartbeat_timeout, heartbeat_timeout is less than heartbeat_interval".into()));
            }
        }
        t.put("heartbeatInterval", interval);
        t.put("heartbeatTimeout", timeout);
        let mut quic = Obj::default();
        quic.put("keepalivePeriod", self.int("quic_keepalive_period"));
        quic.put("maxIdleTimeout", self.int("quic_max_idle_timeout"));
        quic.put("maxIncomingStreams", self.int("quic_max_incoming_streams"));
        t.nest("quic", quic);
        let tls_enable = self.boolean("tls_enable").unwrap_or(true);
        let mut tls = Obj::default();
        tls.put("enable", Some(Value::Bool(tls_enable)));
        tls.put(
            "disableCustomTLSFirstByte",
            Some(Value::Bool(
                self.boolean("disable_custom_tls_first_byte")
                    .unwrap_or(true),
            )),
        );
        for (ini, v1) in [
            ("tls_cert_file", "certFile"),
            ("tls_key_file", "keyFile"),
            ("tls_trusted_ca_file", "trustedCaFile"),
            ("tls_server_name", "serverName"),
        ] {
            let value = self.string(ini);
            if !tls_enable && ini != "tls_server_name" && value.is_some() {
                self.warnings
                    .push(format!("{ini} is invalid when tls_enable is false"));
            }
            tls.put(v1, value);
        }
        t.nest("tls", tls);
        doc.nest("transport", t);
        Ok(doc.into_value())
    }

    /// One proxy section as `Convert_ProxyConf_To_v1`.
    fn proxy(&mut self, kind: &str) -> Result<Value, String> {
        let s = self.section;
        let mut p = Obj::default();
        p.put("name", Some(Value::String(s.name.clone())));
        p.put("type", Some(Value::String(kind.to_owned())));
        p.put("localIP", self.string("local_ip"));
        p.put("localPort", self.int("local_port"));
        let metas = s.with_prefix("meta_");
        if !metas.is_empty() {
            p.put("metadatas", Some(Value::Object(metas)));
        }
        let mut t = Obj::default();
        t.put(
            "useEncryption",
            self.boolean("use_encryption").map(Value::Bool),
        );
        t.put(
            "useCompression",
            self.boolean("use_compression").map(Value::Bool),
        );
        t.put("bandwidthLimit", self.string("bandwidth_limit"));
        t.put("bandwidthLimitMode", self.string("bandwidth_limit_mode"));
        t.put(
            "proxyProtocolVersion",
            self.string("proxy_protocol_version"),
        );
        p.nest("transport", t);
        let mut lb = Obj::default();
        lb.put("group", self.string("group"));
        lb.put("groupKey", self.string("group_key"));
        p.nest("loadBalancer", lb);
        let mut hc = Obj::default();
        hc.put("type", self.string("health_check_type"));
        hc.put("timeoutSeconds", self.int("health_check_timeout_s"));
        hc.put("maxFailed", self.int("health_check_max_failed"));
        hc.put("intervalSeconds", self.int("health_check_interval_s"));
        hc.put("path", self.string("health_check_url"));
        p.nest("healthCheck", hc);
        if let Some(plugin) = s.get("plugin").filter(|p| !p.is_empty()) {
            p.put("plugin", Some(plugin_to_v1(plugin, s)));
        }
        match kind {
            "tcp" | "udp" => p.put("remotePort", self.int("remote_port")),
            "http" => {
                self.domains(&mut p);
                p.put("locations", self.list_value("locations"));
                p.put("httpUser", self.string("http_user"));
                p.put("httpPassword", self.string("http_pwd"));
                p.put("hostHeaderRewrite", self.string("host_header_rewrite"));
                p.put("routeByHTTPUser", self.string("route_by_http_user"));
                let headers = s.with_prefix("header_");
                if !headers.is_empty() {
                    p.put("requestHeaders", Some(json!({ "set": headers })));
                }
            }
            "https" => self.domains(&mut p),
            "tcpmux" => {
                self.domains(&mut p);
                p.put("httpUser", self.string("http_user"));
                p.put("httpPassword", self.string("http_pwd"));
                p.put("routeByHTTPUser", self.string("route_by_http_user"));
                p.put("multiplexer", self.string("multiplexer"));
            }
            "stcp" | "sudp" | "xtcp" => {
                p.put("secretKey", self.string("sk"));
                p.put("allowUsers", self.list_value("allow_users"));
            }
            other => return Err(format!("invalid type [{other}]")),
        }
        Ok(p.into_value())
    }

    /// One visitor section as `Convert_VisitorConf_To_v1`.
    fn visitor(&mut self, kind: &str) -> Result<Value, String> {
        if kind.is_empty() {
            return Err("type shouldn't be empty".into());
        }
        if !matches!(kind, "stcp" | "sudp" | "xtcp") {
            return Err(format!("type [{kind}] error"));
        }
        let mut v = Obj::default();
        v.put("name", Some(Value::String(self.section.name.clone())));
        v.put("type", Some(Value::String(kind.to_owned())));
        let mut t = Obj::default();
        t.put(
            "useEncryption",
            self.boolean("use_encryption").map(Value::Bool),
        );
        t.put(
            "useCompression",
            self.boolean("use_compression").map(Value::Bool),
        );
        v.nest("transport", t);
        v.put("secretKey", self.string("sk"));
        v.put("serverUser", self.string("server_user"));
        v.put("serverName", self.string("server_name"));
        v.put(
            "bindAddr",
            Some(
                self.string("bind_addr")
                    .filter(|a| a.as_str() != Some(""))
                    .unwrap_or_else(|| json!("127.0.0.1")),
            ),
        );
        v.put("bindPort", self.int("bind_port"));
        if kind == "xtcp" {
            v.put(
                "protocol",
                Some(self.string("protocol").unwrap_or_else(|| json!("quic"))),
            );
            v.put(
                "keepTunnelOpen",
                self.boolean("keep_tunnel_open").map(Value::Bool),
            );
            let positive = |v: Option<Value>, default: i64| {
                Value::from(
                    v.and_then(|v| v.as_i64())
                        .filter(|n| *n > 0)
                        .unwrap_or(default),
                )
            };
            let retries = self.int("max_retries_an_hour");
            v.put("maxRetriesAnHour", Some(positive(retries, 8)));
            let interval = self.int("min_retry_interval");
            v.put("minRetryInterval", Some(positive(interval, 90)));
            v.put("fallbackTo", self.string("fallback_to"));
            let fallback = self.int("fallback_timeout_ms");
            v.put("fallbackTimeoutMs", Some(positive(fallback, 1000)));
        }
        Ok(v.into_value())
    }

    fn domains(&mut self, p: &mut Obj) {
        p.put("customDomains", self.list_value("custom_domains"));
        p.put("subdomain", self.string("subdomain"));
    }
}

/// `plugin = NAME` and its `plugin_*` keys as frpc's conversion maps them.
fn plugin_to_v1(kind: &str, s: &Section) -> Value {
    let param = |k: &str| s.get(k).map(|v| Value::String(v.to_owned()));
    let mut p = Obj::default();
    p.put("type", Some(Value::String(kind.to_owned())));
    let headers = || {
        let set = s.with_prefix("plugin_header_");
        (!set.is_empty()).then(|| json!({ "set": set }))
    };
    match kind {
        "http2https" => {
            p.put("localAddr", param("plugin_local_addr"));
            p.put("hostHeaderRewrite", param("plugin_host_header_rewrite"));
            p.put("requestHeaders", headers());
        }
        "http_proxy" => {
            p.put("httpUser", param("plugin_http_user"));
            p.put("httpPassword", param("plugin_http_passwd"));
        }
        "https2http" | "https2https" => {
            p.put("localAddr", param("plugin_local_addr"));
            p.put("hostHeaderRewrite", param("plugin_host_header_rewrite"));
            p.put("requestHeaders", headers());
            p.put("crtPath", param("plugin_crt_path"));
            p.put("keyPath", param("plugin_key_path"));
        }
        "socks5" => {
            p.put("username", param("plugin_user"));
            p.put("password", param("plugin_passwd"));
        }
        "static_file" => {
            p.put("localPath", param("plugin_local_path"));
            p.put("stripPrefix", param("plugin_strip_prefix"));
            p.put("httpUser", param("plugin_http_user"));
            p.put("httpPassword", param("plugin_http_passwd"));
        }
        "unix_domain_socket" => p.put("unixPath", param("plugin_unix_path")),
        _ => {}
    }
    p.into_value()
}

/// Every section but `[common]`: `[range:NAME]` sections expanded first, then each section a
/// proxy (`role = server`, the default) or a visitor.
fn proxies_and_visitors(
    mut sections: Vec<Section>,
    warnings: &mut Vec<String>,
) -> Result<(Vec<Value>, Vec<Value>), ConfigError> {
    let ranges: Vec<Section> = sections
        .iter()
        .filter(|s| s.name.starts_with("range:"))
        .cloned()
        .collect();
    for range in ranges {
        expand_range(&range, &mut sections).map_err(|e| {
            ConfigError::Parse(format!(
                "failed to render template for proxy {}: {e}",
                range.name
            ))
        })?;
    }
    let mut proxies = Vec::new();
    let mut visitors = Vec::new();
    for section in &sections {
        let name = section.name.as_str();
        if name == DEFAULT_SECTION || name == "common" || name.starts_with("range:") {
            continue;
        }
        let mut conv = Conv { warnings, section };
        let kind = section.get("type").unwrap_or("");
        match section
            .get("role")
            .filter(|r| !r.is_empty())
            .unwrap_or("server")
        {
            "server" => {
                let kind = if kind.is_empty() { "tcp" } else { kind };
                let p = conv.proxy(kind).map_err(|e| {
                    ConfigError::Parse(format!("failed to parse proxy {name}, err: {e}"))
                })?;
                proxies.push(p);
            }
            "visitor" => {
                let v = conv.visitor(kind).map_err(|e| {
                    ConfigError::Parse(format!("failed to parse visitor {name}, err: {e}"))
                })?;
                visitors.push(v);
            }
            _ => {
                return Err(ConfigError::Parse(format!(
                    "proxy {name} role should be 'server' or 'visitor'"
                )))
            }
        }
    }
    Ok((proxies, visitors))
}

/// `[range:NAME]` → sections `NAME_0`, `NAME_1`, … with one local/remote port pair each.
fn expand_range(range: &Section, sections: &mut Vec<Section>) -> Result<(), String> {
    let local = range.get("local_port").unwrap_or("");
    let remote = range.get("remote_port").unwrap_or("");
    if local.is_empty() || remote.is_empty() {
        return Err("local_port or remote_port is empty".into());
    }
    let local = template::parse_range_numbers(local)?;
    let remote = template::parse_range_numbers(remote)?;
    if local.len() != remote.len() {
        return Err("local ports number should be same with remote ports number".into());
    }
    if local.is_empty() {
        return Err("local_port and remote_port is necessary".into());
    }
    let prefix = range.name.trim_start_matches("range:").trim();
    for (i, (l, r)) in local.iter().zip(&remote).enumerate() {
        let name = format!("{prefix}_{i}");
        if sections.iter().any(|s| s.name == name) {
            return Err(format!("section {name:?} already exists"));
        }
        let mut s = range.clone();
        s.name = name;
        s.set("local_port", l.to_string());
        s.set("remote_port", r.to_string());
        sections.push(s);
    }
    Ok(())
}

/// A JSON object that leaves out absent values and empty nested objects.
#[derive(Default)]
struct Obj(Map<String, Value>);

impl Obj {
    fn put(&mut self, key: &str, value: Option<Value>) {
        if let Some(v) = value {
            self.0.insert(key.to_owned(), v);
        }
    }

    fn nest(&mut self, key: &str, child: Obj) {
        if !child.0.is_empty() {
            self.0.insert(key.to_owned(), Value::Object(child.0));
        }
    }

    fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

#[cfg(test)]
mod tests;
