//! frpc's one-proxy commands without a config file: `frpc tcp|http|https|udp -s ADDR -P PORT -t TOKEN
//! -l LOCAL_PORT …`. The flags become a v1 config document that goes through the same checks
//! and mapping as a file.

use clap::{ArgAction, Args};
use expose::frpc::{from_json, ConfigError, FrpcConfig};
use serde_json::{json, Map, Value};

/// The flags of frpc's proxy commands (the client-level ones and the proxy's).
#[derive(Debug, Args)]
pub struct QuickArgs {
    /// frp server's address
    #[arg(
        global = true,
        short = 's',
        long = "server_addr",
        alias = "server-addr",
        default_value = "127.0.0.1"
    )]
    server_addr: String,
    /// frp server's port
    #[arg(
        global = true,
        short = 'P',
        long = "server_port",
        alias = "server-port",
        default_value_t = 7000
    )]
    server_port: i64,
    /// tcp, kcp, quic, websocket, wss
    #[arg(global = true, short = 'p', long = "protocol", default_value = "tcp")]
    protocol: String,
    /// log level
    #[arg(
        global = true,
        long = "log_level",
        alias = "log-level",
        default_value = "info"
    )]
    log_level: String,
    /// console or file path
    #[arg(
        global = true,
        long = "log_file",
        alias = "log-file",
        default_value = "console"
    )]
    log_file: String,
    /// log file reversed days
    #[arg(
        global = true,
        long = "log_max_days",
        alias = "log-max-days",
        default_value_t = 3
    )]
    log_max_days: i64,
    /// disable log color in console
    #[arg(global = true, long = "disable_log_color", alias = "disable-log-color")]
    disable_log_color: bool,
    /// specify the custom server name of tls certificate
    #[arg(
        global = true,
        long = "tls_server_name",
        alias = "tls-server-name",
        default_value = ""
    )]
    tls_server_name: String,
    /// specify dns server instead of using system default one
    #[arg(
        global = true,
        long = "dns_server",
        alias = "dns-server",
        default_value = ""
    )]
    dns_server: String,
    /// enable frpc tls
    #[arg(global = true, long = "tls_enable", alias = "tls-enable", action = ArgAction::Set, num_args = 0..=1,
        require_equals = true, default_value_t = true, default_missing_value = "true")]
    tls_enable: bool,
    /// user
    #[arg(global = true, short = 'u', long = "user", default_value = "")]
    user: String,
    /// auth token
    #[arg(global = true, short = 't', long = "token", default_value = "")]
    token: String,
    /// proxy name
    #[arg(
        short = 'n',
        long = "proxy_name",
        alias = "proxy-name",
        default_value = ""
    )]
    proxy_name: String,
    /// metadata key-value pairs (e.g., key1=value1,key2=value2)
    #[arg(long = "metadatas", value_delimiter = ',')]
    metadatas: Vec<String>,
    /// annotation key-value pairs (e.g., key1=value1,key2=value2)
    #[arg(long = "annotations", value_delimiter = ',')]
    annotations: Vec<String>,
    /// local ip
    #[arg(
        short = 'i',
        long = "local_ip",
        alias = "local-ip",
        default_value = "127.0.0.1"
    )]
    local_ip: String,
    /// local port
    #[arg(
        short = 'l',
        long = "local_port",
        alias = "local-port",
        default_value_t = 0
    )]
    local_port: i64,
    /// use encryption
    #[arg(long = "ue")]
    ue: bool,
    /// use compression
    #[arg(long = "uc")]
    uc: bool,
    /// bandwidth limit mode
    #[arg(
        long = "bandwidth_limit_mode",
        alias = "bandwidth-limit-mode",
        default_value = "client"
    )]
    bandwidth_limit_mode: String,
    /// bandwidth limit (e.g. 100KB or 1MB)
    #[arg(
        long = "bandwidth_limit",
        alias = "bandwidth-limit",
        default_value = ""
    )]
    bandwidth_limit: String,
    /// remote port (tcp)
    #[arg(short = 'r', long = "remote_port", alias = "remote-port")]
    remote_port: Option<i64>,
    /// locations (http)
    #[arg(long = "locations", value_delimiter = ',')]
    locations: Vec<String>,
    /// http auth user (http)
    #[arg(long = "http_user", alias = "http-user")]
    http_user: Option<String>,
    /// http auth password (http)
    #[arg(long = "http_pwd", alias = "http-pwd")]
    http_pwd: Option<String>,
    /// host header rewrite (http)
    #[arg(long = "host_header_rewrite", alias = "host-header-rewrite")]
    host_header_rewrite: Option<String>,
    /// custom domains (http, https)
    #[arg(
        short = 'd',
        long = "custom_domain",
        alias = "custom-domain",
        value_delimiter = ','
    )]
    custom_domain: Vec<String>,
    /// sub domain (http, https)
    #[arg(long = "sd")]
    sd: Option<String>,
    /// multiplexer (tcpmux)
    #[arg(long = "mux")]
    mux: Option<String>,
    /// secret key (stcp, sudp, xtcp)
    #[arg(long = "sk")]
    sk: Option<String>,
    /// allow visitor users (stcp, sudp, xtcp)
    #[arg(long = "allow_users", alias = "allow-users", value_delimiter = ',')]
    allow_users: Vec<String>,
}

fn pairs(items: &[String], flag: &str) -> Result<Map<String, Value>, ConfigError> {
    items
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => Ok((k.to_owned(), Value::from(v))),
            None => Err(ConfigError::Invalid(format!(
                "invalid argument \"{kv}\" for \"--{flag}\" flag: {kv} must be formatted as key=value"
            ))),
        })
        .collect()
}

/// The flags only some proxy types have, and the types that have each.
const TYPED_FLAGS: &[(&str, &[&str])] = &[
    ("remote_port", &["tcp", "udp"]),
    ("locations", &["http"]),
    ("http_user", &["http", "tcpmux"]),
    ("http_pwd", &["http", "tcpmux"]),
    ("host_header_rewrite", &["http"]),
    ("custom_domain", &["http", "https", "tcpmux"]),
    ("sd", &["http", "https", "tcpmux"]),
    ("mux", &["tcpmux"]),
    ("sk", &["stcp", "sudp", "xtcp"]),
    ("allow_users", &["stcp", "sudp", "xtcp"]),
];

impl QuickArgs {
    /// Whether a type-specific flag was given.
    fn given(&self, flag: &str) -> bool {
        match flag {
            "remote_port" => self.remote_port.is_some(),
            "locations" => !self.locations.is_empty(),
            "http_user" => self.http_user.is_some(),
            "http_pwd" => self.http_pwd.is_some(),
            "host_header_rewrite" => self.host_header_rewrite.is_some(),
            "custom_domain" => !self.custom_domain.is_empty(),
            "sd" => self.sd.is_some(),
            "mux" => self.mux.is_some(),
            "sk" => self.sk.is_some(),
            "allow_users" => !self.allow_users.is_empty(),
            _ => false,
        }
    }

    /// The client-level part of the v1 document, with these proxies and visitors.
    fn document(&self, proxies: Vec<Value>, visitors: Vec<Value>) -> Value {
        json!({
            "serverAddr": self.server_addr,
            "serverPort": self.server_port,
            "user": self.user,
            "auth": {"token": self.token},
            "dnsServer": self.dns_server,
            "log": {
                "level": self.log_level,
                "to": self.log_file,
                "maxDays": self.log_max_days,
                "disablePrintColor": self.disable_log_color,
            },
            "transport": {
                "protocol": self.protocol,
                "tls": {"enable": self.tls_enable, "serverName": self.tls_server_name},
            },
            "proxies": proxies,
            "visitors": visitors,
        })
    }

    /// The name the config file's checks put in front of their messages.
    fn prefixed(&self, name: &str) -> String {
        if self.user.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.user)
        }
    }
}

/// frpc checks a one-proxy (or one-visitor) command's settings directly, so its messages lack
/// the `proxy NAME: ` (`visitor NAME: `) a config file's checks put in front.
fn unprefixed(e: ConfigError, prefix: &str) -> ConfigError {
    match e {
        ConfigError::Invalid(m) => match m.strip_prefix(prefix) {
            Some(rest) => ConfigError::Invalid(rest.to_owned()),
            None => ConfigError::Invalid(m),
        },
        other => other,
    }
}

/// The config of `frpc KIND FLAGS…` (`kind` is one of frpc's proxy types).
pub fn config(kind: &str, a: &QuickArgs) -> Result<FrpcConfig, ConfigError> {
    // Flags of another proxy type are unknown to this command, as in frpc.
    if let Some((flag, _)) = TYPED_FLAGS
        .iter()
        .find(|(flag, types)| !types.contains(&kind) && a.given(flag))
    {
        return Err(ConfigError::Invalid(format!("unknown flag: --{flag}")));
    }
    let mut proxy = json!({
        "name": a.proxy_name,
        "type": kind,
        "localIP": a.local_ip,
        "localPort": a.local_port,
        "metadatas": pairs(&a.metadatas, "metadatas")?,
        "annotations": pairs(&a.annotations, "annotations")?,
        "transport": {
            "useEncryption": a.ue,
            "useCompression": a.uc,
            "bandwidthLimit": a.bandwidth_limit,
            "bandwidthLimitMode": a.bandwidth_limit_mode,
        },
    });
    let fields = [
        ("remotePort", a.remote_port.map(Value::from)),
        (
            "locations",
            (!a.locations.is_empty()).then(|| json!(a.locations)),
        ),
        ("httpUser", a.http_user.clone().map(Value::from)),
        ("httpPassword", a.http_pwd.clone().map(Value::from)),
        (
            "hostHeaderRewrite",
            a.host_header_rewrite.clone().map(Value::from),
        ),
        (
            "customDomains",
            (!a.custom_domain.is_empty()).then(|| json!(a.custom_domain)),
        ),
        ("subdomain", a.sd.clone().map(Value::from)),
        ("multiplexer", a.mux.clone().map(Value::from)),
        ("secretKey", a.sk.clone().map(Value::from)),
        (
            "allowUsers",
            (!a.allow_users.is_empty()).then(|| json!(a.allow_users)),
        ),
    ];
    for (key, value) in fields {
        if let (Some(v), Some(obj)) = (value, proxy.as_object_mut()) {
            obj.insert(key.to_owned(), v);
        }
    }
    let prefix = format!("proxy {}: ", a.prefixed(&a.proxy_name));
    from_json(a.document(vec![proxy], Vec::new()), true).map_err(|e| unprefixed(e, &prefix))
}

/// The flags of `frpc stcp|sudp|xtcp visitor` (besides the client-level ones of its parent).
#[derive(Debug, Args)]
pub struct VisitorArgs {
    /// visitor name
    #[arg(
        short = 'n',
        long = "visitor_name",
        alias = "visitor-name",
        default_value = ""
    )]
    visitor_name: String,
    /// use encryption
    #[arg(long = "ue")]
    ue: bool,
    /// use compression
    #[arg(long = "uc")]
    uc: bool,
    /// secret key
    #[arg(long = "sk", default_value = "")]
    sk: String,
    /// server name
    #[arg(long = "server_name", alias = "server-name", default_value = "")]
    server_name: String,
    /// server user
    #[arg(long = "server-user", alias = "server_user", default_value = "")]
    server_user: String,
    /// bind addr
    #[arg(long = "bind_addr", alias = "bind-addr", default_value = "")]
    bind_addr: String,
    /// bind port
    #[arg(
        long = "bind_port",
        alias = "bind-port",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    bind_port: i64,
}

/// The config of `frpc KIND visitor FLAGS…`: the client-level flags of `a`, one visitor.
pub fn visitor_config(
    kind: &str,
    a: &QuickArgs,
    v: &VisitorArgs,
) -> Result<FrpcConfig, ConfigError> {
    let visitor = json!({
        "name": v.visitor_name,
        "type": kind,
        "secretKey": v.sk,
        "serverName": v.server_name,
        "serverUser": v.server_user,
        "bindAddr": v.bind_addr,
        "bindPort": v.bind_port,
        "transport": {"useEncryption": v.ue, "useCompression": v.uc},
    });
    let prefix = format!("visitor {}: ", a.prefixed(&v.visitor_name));
    from_json(a.document(Vec::new(), vec![visitor]), true).map_err(|e| unprefixed(e, &prefix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use expose::frp::ProxyKind;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: QuickArgs,
    }

    fn parse(args: &[&str]) -> QuickArgs {
        T::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
            .unwrap()
            .a
    }

    #[test]
    fn tcp_flags_become_a_proxy() {
        let a = parse(&[
            "-s",
            "frps.example",
            "-P",
            "7001",
            "-t",
            "tok",
            "-u",
            "me",
            "-n",
            "ssh",
            "-l",
            "22",
            "-r",
            "6000",
            "--ue",
            "--tls_enable=false",
        ]);
        let c = config("tcp", &a).unwrap().client;
        assert_eq!(
            (c.server_host.as_str(), c.server_port),
            ("frps.example", 7001)
        );
        assert_eq!(c.token.expose(), "tok");
        assert_eq!(c.user, "me");
        assert!(!c.tls.enable);
        let p = &c.proxies[0];
        assert_eq!(p.name, "ssh");
        assert!(p.use_encryption);
        assert!(matches!(p.kind, ProxyKind::Tcp { remote_port: 6000 }));
    }

    #[test]
    fn http_flags_and_foreign_flags() {
        let a = parse(&[
            "-n",
            "web",
            "-l",
            "80",
            "--sd",
            "web",
            "-d",
            "a.example,b.example",
        ]);
        let c = config("http", &a).unwrap().client;
        let ProxyKind::Http(h) = &c.proxies[0].kind else {
            panic!()
        };
        assert_eq!(h.subdomain.as_deref(), Some("web"));
        assert_eq!(h.custom_domains, ["a.example", "b.example"]);
        let e = config("tcp", &a).unwrap_err().to_string();
        assert_eq!(e, "unknown flag: --custom_domain");
        let a = parse(&["-n", "web", "-l", "80"]);
        let e = config("http", &a).unwrap_err().to_string();
        assert_eq!(e, "subdomain and custom domains should not be both empty");
        let a = parse(&["-n", "x", "-l", "1", "--metadatas", "novalue"]);
        assert!(config("tcp", &a).is_err());
    }

    #[test]
    fn tcpmux_flags() {
        let a = parse(&["-n", "m", "-l", "22", "--sd", "box", "--mux", "httpconnect"]);
        let c = config("tcpmux", &a).unwrap().client;
        let ProxyKind::TcpMux { subdomain, .. } = &c.proxies[0].kind else {
            panic!("{:?}", c.proxies[0].kind)
        };
        assert_eq!(subdomain.as_deref(), Some("box"));
        // frpc's own check: the multiplexer must be named.
        let a = parse(&["-n", "m", "-l", "22", "--sd", "box"]);
        let e = config("tcpmux", &a).unwrap_err().to_string();
        assert_eq!(e, "not support multiplexer: ");
        let a = parse(&[
            "-n",
            "m",
            "-l",
            "22",
            "-d",
            "x.test",
            "--mux",
            "httpconnect",
            "-r",
            "1",
        ]);
        assert_eq!(
            config("tcpmux", &a).unwrap_err().to_string(),
            "unknown flag: --remote_port"
        );
    }

    #[test]
    fn udp_quick_command_maps_to_a_udp_proxy() {
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            a: QuickArgs,
        }
        let t =
            T::try_parse_from(["frpc", "-t", "x", "-l", "53", "-r", "5353", "-n", "dns"]).unwrap();
        let c = config("udp", &t.a).unwrap().client;
        assert!(matches!(
            c.proxies[0].kind,
            ProxyKind::Udp { remote_port: 5353 }
        ));
        let t = T::try_parse_from(["frpc", "-l", "53", "--sd", "x"]).unwrap();
        assert!(config("udp", &t.a).is_err());
    }
}
