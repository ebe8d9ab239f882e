//! frpc's one-proxy commands without a config file: `frpc tcp|http|https -s ADDR -P PORT -t TOKEN
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
        short = 's',
        long = "server_addr",
        alias = "server-addr",
        default_value = "127.0.0.1"
    )]
    server_addr: String,
    /// frp server's port
    #[arg(
        short = 'P',
        long = "server_port",
        alias = "server-port",
        default_value_t = 7000
    )]
    server_port: i64,
    /// tcp, kcp, quic, websocket, wss
    #[arg(short = 'p', long = "protocol", default_value = "tcp")]
    protocol: String,
    /// log level
    #[arg(long = "log_level", alias = "log-level", default_value = "info")]
    log_level: String,
    /// console or file path
    #[arg(long = "log_file", alias = "log-file", default_value = "console")]
    log_file: String,
    /// log file reversed days
    #[arg(long = "log_max_days", alias = "log-max-days", default_value_t = 3)]
    log_max_days: i64,
    /// disable log color in console
    #[arg(long = "disable_log_color", alias = "disable-log-color")]
    disable_log_color: bool,
    /// specify the custom server name of tls certificate
    #[arg(
        long = "tls_server_name",
        alias = "tls-server-name",
        default_value = ""
    )]
    tls_server_name: String,
    /// specify dns server instead of using system default one
    #[arg(long = "dns_server", alias = "dns-server", default_value = "")]
    dns_server: String,
    /// enable frpc tls
    #[arg(long = "tls_enable", alias = "tls-enable", action = ArgAction::Set, num_args = 0..=1,
        require_equals = true, default_value_t = true, default_missing_value = "true")]
    tls_enable: bool,
    /// user
    #[arg(short = 'u', long = "user", default_value = "")]
    user: String,
    /// auth token
    #[arg(short = 't', long = "token", default_value = "")]
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

/// The config of `frpc KIND FLAGS…` (`kind` is tcp, http or https).
pub fn config(kind: &str, a: &QuickArgs) -> Result<FrpcConfig, ConfigError> {
    // Flags of another proxy type are unknown to this command, as in frpc.
    let foreign: &[(bool, &str)] = match kind {
        "tcp" => &[
            (!a.locations.is_empty(), "locations"),
            (a.http_user.is_some(), "http_user"),
            (a.http_pwd.is_some(), "http_pwd"),
            (a.host_header_rewrite.is_some(), "host_header_rewrite"),
            (!a.custom_domain.is_empty(), "custom_domain"),
            (a.sd.is_some(), "sd"),
        ],
        "https" => &[
            (a.remote_port.is_some(), "remote_port"),
            (!a.locations.is_empty(), "locations"),
            (a.http_user.is_some(), "http_user"),
            (a.http_pwd.is_some(), "http_pwd"),
            (a.host_header_rewrite.is_some(), "host_header_rewrite"),
        ],
        _ => &[(a.remote_port.is_some(), "remote_port")],
    };
    if let Some((_, flag)) = foreign.iter().find(|(set, _)| *set) {
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
    ];
    for (key, value) in fields {
        if let (Some(v), Some(obj)) = (value, proxy.as_object_mut()) {
            obj.insert(key.to_owned(), v);
        }
    }
    let doc = json!({
        "serverAddr": a.server_addr,
        "serverPort": a.server_port,
        "user": a.user,
        "auth": {"token": a.token},
        "dnsServer": a.dns_server,
        "log": {
            "level": a.log_level,
            "to": a.log_file,
            "maxDays": a.log_max_days,
            "disablePrintColor": a.disable_log_color,
        },
        "transport": {
            "protocol": a.protocol,
            "tls": {"enable": a.tls_enable, "serverName": a.tls_server_name},
        },
        "proxies": [proxy],
    });
    from_json(doc, true)
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
        assert_eq!(
            e,
            "proxy web: subdomain and custom domains should not be both empty"
        );
        let a = parse(&["-n", "x", "-l", "1", "--metadatas", "novalue"]);
        assert!(config("tcp", &a).is_err());
    }
}
