//! What the configuration looks like on the wire: the Login template, the NewProxy of each
//! proxy, and the session settings handed to `frp_proto`'s state machine.

use super::config::{ClientConfig, HttpOptions, ProxyConfig, ProxyKind};
use super::error::Error;
use super::proxy_opts::BandwidthLimitMode;
use frp_proto::msg::{Login, NewProxy, StringMap};
use frp_proto::session::{Session, SessionConfig};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, as frp's timestamps.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Go's `runtime.GOOS` for this build, which frps shows in its dashboard.
fn go_os() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    }
}

/// Go's `runtime.GOARCH` for this build.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64",
        other => other,
    }
}

/// The session settings for a configuration: the Login fields, heartbeat and reconnect timing.
pub(crate) fn session_config(cfg: &ClientConfig) -> SessionConfig {
    let metas: StringMap = cfg
        .metas
        .iter()
        .map(|(k, v)| (k.clone(), v.expose().to_owned()))
        .collect();
    let login = Login {
        version: cfg.version.clone(),
        hostname: cfg.hostname.clone().unwrap_or_default(),
        os: go_os().to_owned(),
        arch: go_arch().to_owned(),
        user: cfg.user.clone(),
        client_id: cfg.client_id.clone(),
        metas,
        pool_count: i64::from(cfg.pool_count),
        ..Default::default()
    };
    let mut s = SessionConfig::new(login, cfg.token.expose());
    s.auth_heartbeats = cfg.auth_heartbeats;
    s.heartbeat_interval = cfg.heartbeat_interval;
    s.heartbeat_timeout = cfg.heartbeat_timeout;
    s.login_timeout = cfg.login_timeout;
    s.reconnect = cfg.reconnect.clone();
    s.login_fail_exit = cfg.login_fail_exit;
    s.jitter_seed = rand::random();
    s
}

/// The NewProxy message for a proxy, as Go frpc builds it.
pub(crate) fn new_proxy_message(wire_name: &str, p: &ProxyConfig) -> NewProxy {
    let mut m = NewProxy {
        proxy_name: wire_name.to_owned(),
        use_encryption: p.use_encryption,
        use_compression: p.use_compression,
        metas: p
            .metas
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().to_owned()))
            .collect(),
        group: p.group.clone(),
        group_key: p.group_key.expose().to_owned(),
        annotations: p.annotations.clone(),
        ..Default::default()
    };
    if let Some(limit) = &p.bandwidth_limit {
        // frpc always sends the quantity and names the mode only when it is not the default.
        m.bandwidth_limit = limit.text.clone();
        if limit.mode == BandwidthLimitMode::Server {
            m.bandwidth_limit_mode = "server".into();
        }
    }
    match &p.kind {
        ProxyKind::Tcp { remote_port } => {
            m.proxy_type = "tcp".into();
            m.remote_port = i64::from(*remote_port);
        }
        ProxyKind::Http(HttpOptions {
            subdomain,
            custom_domains,
            locations,
            host_header_rewrite,
            http_user,
            http_password,
            request_headers,
            response_headers,
            route_by_http_user,
        }) => {
            m.proxy_type = "http".into();
            m.subdomain = subdomain.clone().unwrap_or_default();
            m.custom_domains = custom_domains.clone();
            m.locations = locations.clone();
            m.host_header_rewrite = host_header_rewrite.clone().unwrap_or_default();
            m.http_user = http_user.clone().unwrap_or_default();
            m.http_pwd = http_password
                .as_ref()
                .map(|s| s.expose().to_owned())
                .unwrap_or_default();
            m.headers = request_headers.clone();
            m.response_headers = response_headers.clone();
            m.route_by_http_user = route_by_http_user.clone();
        }
        ProxyKind::Https {
            subdomain,
            custom_domains,
        } => {
            m.proxy_type = "https".into();
            m.subdomain = subdomain.clone().unwrap_or_default();
            m.custom_domains = custom_domains.clone();
        }
        ProxyKind::TcpMux {
            subdomain,
            custom_domains,
            http_user,
            http_password,
            route_by_http_user,
        } => {
            m.proxy_type = "tcpmux".into();
            m.multiplexer = "httpconnect".into();
            m.subdomain = subdomain.clone().unwrap_or_default();
            m.custom_domains = custom_domains.clone();
            m.http_user = http_user.clone().unwrap_or_default();
            m.http_pwd = http_password
                .as_ref()
                .map(|s| s.expose().to_owned())
                .unwrap_or_default();
            m.route_by_http_user = route_by_http_user.clone().unwrap_or_default();
        }
        ProxyKind::Udp { remote_port } => {
            m.proxy_type = "udp".into();
            m.remote_port = i64::from(*remote_port);
        }
        ProxyKind::Stcp(o) | ProxyKind::Sudp(o) | ProxyKind::Xtcp(o) => {
            m.proxy_type = p.kind.type_name().into();
            m.sk = o.secret_key.expose().to_owned();
            m.allow_users = o.allow_users.clone();
        }
    }
    m
}

/// The session for a configuration, with every proxy added. Fails when a proxy's registration
/// would not fit a frame (or two share a name).
pub(crate) fn new_session(config: &ClientConfig) -> Result<Session, Error> {
    let now = Instant::now();
    let mut session = Session::new(session_config(config), now, unix_now());
    for p in &config.proxies {
        let msg = new_proxy_message(&config.wire_name(&p.name), p);
        session
            .add_proxy(p.name.clone(), msg, now)
            .map_err(|e| Error::Config(e.to_string()))?;
        if p.health_check.is_some() {
            // Checked above; registered once its health check first passes.
            session.remove_proxy(&p.name);
        }
    }
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_proxy_matches_go_frpc_for_the_vector_http_proxy() {
        let p = ProxyConfig::http("t-0-0123456789abcdef", 80, "t-0-0123456789abcdef");
        let msg = new_proxy_message("t-0-0123456789abcdef.t-0-0123456789abcdef", &p);
        let bytes = frp_proto::frame::encode_to_vec(&msg.into()).unwrap();
        assert_eq!(
            &bytes[9..],
            br#"{"proxy_name":"t-0-0123456789abcdef.t-0-0123456789abcdef","proxy_type":"http","subdomain":"t-0-0123456789abcdef"}"#
        );
    }

    #[test]
    fn login_template_carries_the_config_and_no_secret_in_debug() {
        let mut cfg = ClientConfig::new("h", 7000, "tok-secret");
        cfg.user = "u".into();
        cfg.pool_count = 5;
        let s = session_config(&cfg);
        assert_eq!(s.login.user, "u");
        assert_eq!(s.login.pool_count, 5);
        assert_eq!(s.login.version, cfg.version);
        assert!(!format!("{s:?}").contains("tok-secret"));
    }
}
