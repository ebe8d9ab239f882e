//! Loading real-world-shaped frpc files in every format, and the ways a file can be wrong.

use super::*;
use crate::frp::{ProxyKind, QuicOptions, VisitorKind};
use std::time::Duration;

fn envs() -> BTreeMap<String, String> {
    [
        ("FRP_TOKEN", "from-env"),
        ("FRP_SERVER", "frps.example.net"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn strict() -> LoadOptions {
    LoadOptions::with_envs(true, envs())
}

fn lenient() -> LoadOptions {
    LoadOptions::with_envs(false, envs())
}

fn load_as(name: &str, text: &str, opts: &LoadOptions) -> Result<FrpcConfig, ConfigError> {
    load_str(text, Path::new(name), opts)
}

fn err_text(name: &str, text: &str, opts: &LoadOptions) -> String {
    match load_as(name, text, opts) {
        Ok(_) => panic!("{name} loaded but should not:\n{text}"),
        Err(e) => e.to_string(),
    }
}

const HOME_TOML: &str = r#"
# A home server behind NAT: ssh, a web app and a TLS site.
serverAddr = "{{ .Envs.FRP_SERVER }}"
serverPort = 7001
user = "alice"
loginFailExit = false
metadatas.region = "eu"

auth.method = "token"
auth.token = "{{ .Envs.FRP_TOKEN }}"
auth.additionalScopes = ["HeartBeats"]

log.level = "debug"

transport.poolCount = 3
transport.tcpMux = true
transport.dialServerTimeout = 5
transport.dialServerKeepalive = -1
transport.heartbeatInterval = 20
transport.heartbeatTimeout = 60
transport.tls.enable = true
transport.tls.serverName = "frps.internal"
transport.tls.disableCustomTLSFirstByte = false

[[proxies]]
name = "ssh"
type = "tcp"
localIP = "192.168.1.10"
localPort = 22
remotePort = 6022
transport.useEncryption = true
transport.useCompression = true

[[proxies]]
name = "blog"
type = "http"
localPort = 8080
customDomains = ["blog.example.org"]
subdomain = "blog"
locations = ["/", "/static"]
hostHeaderRewrite = "blog.local"
httpUser = "ann"
httpPassword = "pw"
requestHeaders.set.x-from-where = "frp"
metadatas.owner = "ann"

[[proxies]]
name = "site"
type = "https"
localPort = 8443
customDomains = ["secure.example.org"]
"#;

#[test]
fn toml_home_server() {
    let c = load_as("frpc.toml", HOME_TOML, &strict()).unwrap();
    let cfg = &c.client;
    assert_eq!(cfg.server_host, "frps.example.net");
    assert_eq!(cfg.server_port, 7001);
    assert_eq!(cfg.token.expose(), "from-env");
    assert_eq!(cfg.user, "alice");
    assert!(!cfg.login_fail_exit);
    assert_eq!(cfg.metas["region"].expose(), "eu");
    assert!(cfg.auth_heartbeats && !cfg.auth_new_work_conns);
    assert_eq!(cfg.pool_count, 3);
    assert!(cfg.tcp_mux);
    assert_eq!(cfg.dial_timeout, Duration::from_secs(5));
    assert_eq!(cfg.tcp_keepalive, None);
    assert_eq!(cfg.heartbeat_interval, Some(Duration::from_secs(20)));
    assert_eq!(cfg.heartbeat_timeout, Duration::from_secs(60));
    assert!(cfg.tls.enable && cfg.tls.custom_first_byte);
    assert_eq!(cfg.tls.server_name.as_deref(), Some("frps.internal"));
    assert_eq!(c.log_level, "debug");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);

    let names: Vec<_> = cfg.proxies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["ssh", "blog", "site"]);
    let ssh = &cfg.proxies[0];
    assert_eq!(ssh.local_addr(), "192.168.1.10:22");
    assert!(ssh.use_encryption && ssh.use_compression);
    assert!(matches!(ssh.kind, ProxyKind::Tcp { remote_port: 6022 }));
    let blog = &cfg.proxies[1];
    assert_eq!(blog.local_addr(), "127.0.0.1:8080");
    assert_eq!(blog.metas["owner"].expose(), "ann");
    let ProxyKind::Http(h) = &blog.kind else {
        panic!("{:?}", blog.kind)
    };
    assert_eq!(h.subdomain.as_deref(), Some("blog"));
    assert_eq!(h.custom_domains, ["blog.example.org"]);
    assert_eq!(h.locations, ["/", "/static"]);
    assert_eq!(h.host_header_rewrite.as_deref(), Some("blog.local"));
    assert_eq!(h.http_user.as_deref(), Some("ann"));
    assert_eq!(h.http_password.as_ref().map(|p| p.expose()), Some("pw"));
    assert_eq!(h.request_headers["x-from-where"], "frp");
    let ProxyKind::Https {
        custom_domains,
        subdomain,
    } = &cfg.proxies[2].kind
    else {
        panic!()
    };
    assert_eq!(custom_domains, &["secure.example.org"]);
    assert!(subdomain.is_none());
    // Secrets never show in Debug output.
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("from-env") && !debug.contains("\"pw\""),
        "{debug}"
    );
}

#[test]
fn defaults_are_frpcs() {
    let c = load_as("frpc.toml", "", &strict()).unwrap().client;
    assert_eq!(c.server_host, "0.0.0.0");
    assert_eq!(c.server_port, 7000);
    assert!(c.token.is_empty());
    assert!(c.login_fail_exit && c.tcp_mux && c.tls.enable);
    assert!(!c.tls.custom_first_byte);
    assert_eq!(c.pool_count, 1);
    assert_eq!(c.dial_timeout, Duration::from_secs(10));
    assert_eq!(c.tcp_keepalive, Some(Duration::from_secs(7200)));
    assert!(c.proxies.is_empty());
    // Without tcpMux frpc pings every 30 s and gives up after 90 s.
    let c = load_as("frpc.toml", "transport.tcpMux = false", &strict())
        .unwrap()
        .client;
    assert_eq!(c.heartbeat_interval, Some(Duration::from_secs(30)));
    assert_eq!(c.heartbeat_timeout, Duration::from_secs(90));
    let c = load_as(
        "frpc.toml",
        "transport.tcpMux = false\ntransport.heartbeatInterval = -1",
        &strict(),
    )
    .unwrap()
    .client;
    assert_eq!(c.heartbeat_interval, None);
}

#[test]
fn wire_protocol_v1_v2_and_frpcs_error_for_others() {
    use crate::frp::WireProtocol;
    let wire = |text: &str| load_as("frpc.toml", text, &strict()).map(|c| c.client.wire_protocol);
    assert_eq!(wire("").unwrap(), WireProtocol::V1);
    assert_eq!(
        wire("transport.wireProtocol = \"v1\"").unwrap(),
        WireProtocol::V1
    );
    assert_eq!(
        wire("transport.wireProtocol = \"v2\"").unwrap(),
        WireProtocol::V2
    );
    for other in ["auto", "V2", "v3"] {
        let err = wire(&format!("transport.wireProtocol = \"{other}\"")).unwrap_err();
        assert!(
            err.to_string()
                .contains("invalid transport.wireProtocol, optional values are [v1 v2]"),
            "{err}"
        );
    }
}

const YAML: &str = r#"
serverAddr: 10.0.0.5
serverPort: 7000
auth:
  token: "{{ .Envs.FRP_TOKEN }}"
.web: &web
  type: http
  localPort: 3000
proxies:
  - name: web-a
    <<: *web
    subdomain: a
  - name: web-b
    <<: *web
    subdomain: b
  - name: db
    type: tcp
    localPort: 5432
    remotePort: 0
"#;

#[test]
fn yaml_with_anchors_and_merge() {
    let c = load_as("frpc.yaml", YAML, &strict()).unwrap().client;
    assert_eq!(c.server_host, "10.0.0.5");
    assert_eq!(c.token.expose(), "from-env");
    let names: Vec<_> = c.proxies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["web-a", "web-b", "db"]);
    assert!(c.proxies[1].is_http());
    assert!(matches!(
        c.proxies[2].kind,
        ProxyKind::Tcp { remote_port: 0 }
    ));
}

#[test]
fn yaml_11_booleans_as_go_yaml_reads_them() {
    let text = "loginFailExit: no\ntransport:\n  tcpMux: Off\n  tls:\n    enable: NO\n\
                proxies:\n  - name: a\n    type: tcp\n    localPort: 22\n    transport:\n      \
                useEncryption: yes\n      useCompression: On\n  - name: b\n    type: tcp\n    \
                localPort: 23\n    enabled: n\n";
    let c = load_as("frpc.yaml", text, &strict()).unwrap().client;
    assert!(!c.login_fail_exit && !c.tcp_mux && !c.tls.enable);
    assert_eq!(c.proxies.len(), 1, "b is disabled");
    assert!(c.proxies[0].use_encryption && c.proxies[0].use_compression);
    // TOML and JSON keep their own types.
    let e = err_text("frpc.toml", "loginFailExit = \"no\"\n", &strict());
    assert!(e.contains("invalid type"), "{e}");
    let e = err_text("frpc.json", "{\"loginFailExit\": \"yes\"}", &strict());
    assert!(e.contains("invalid type"), "{e}");
}

const JSON: &str = r#"{
  "serverAddr": "frps.example.com",
  "serverPort": 7000,
  "auth": {"token": "t"},
  "transport": {"tls": {"enable": false}},
  "proxies": [
    {"name": "api", "type": "http", "localPort": 9000, "customDomains": ["api.example.com"]},
    {"name": "game", "type": "tcp", "localIp": "127.0.0.2", "localPort": 25565, "remotePort": 25565}
  ]
}"#;

#[test]
fn json_and_go_case_insensitive_keys() {
    let c = load_as("frpc.json", JSON, &strict()).unwrap().client;
    assert!(!c.tls.enable);
    assert_eq!(c.proxies.len(), 2);
    // Go's JSON decoding matches `localIp` to `localIP`; so does ours.
    assert_eq!(c.proxies[1].local_addr(), "127.0.0.2:25565");
    // The extension does not decide: frpc tries TOML, JSON, then YAML whatever the name.
    let c = load_as("frpc.conf", JSON, &strict()).unwrap().client;
    assert_eq!(c.proxies.len(), 2);
    let c = load_as("frpc.yml", YAML, &strict()).unwrap().client;
    assert_eq!(c.proxies.len(), 3);
}

#[test]
fn strict_rejects_unknown_fields_lenient_ignores_them() {
    let text = "serverAddr = \"x\"\nserverAdress = \"typo\"\n";
    assert_eq!(
        err_text("frpc.toml", text, &strict()),
        "json: unknown field \"serverAdress\""
    );
    assert!(load_as("frpc.toml", text, &lenient()).is_ok());
    let nested = "transport.tls.enabled = true\n";
    assert_eq!(
        err_text("frpc.toml", nested, &strict()),
        "json: unknown field \"enabled\""
    );
    // A field of another proxy type is unknown for this one, as in frpc.
    let wrong_type_field =
        "[[proxies]]\nname = \"w\"\ntype = \"http\"\nlocalPort = 80\nsubdomain = \"w\"\nremotePort = 80\n";
    assert_eq!(
        err_text("frpc.toml", wrong_type_field, &strict()),
        "unmarshal ProxyConfig error: json: unknown field \"remotePort\""
    );
    assert!(load_as("frpc.toml", wrong_type_field, &lenient()).is_ok());
}

#[test]
fn frpc_validation_messages() {
    let cases: &[(&str, &str)] = &[
        (
            "[[proxies]]\nname = \"w\"\ntype = \"http\"\nlocalPort = 80\n",
            "proxy w: subdomain and custom domains should not be both empty",
        ),
        (
            "user = \"u\"\n[[proxies]]\nname = \"s\"\ntype = \"tcp\"\nlocalPort = 70000\n",
            "proxy u.s: localPort: localPort: port number 70000 must be in the range 0..65535",
        ),
        (
            "[[proxies]]\nname = \"\"\ntype = \"tcp\"\nlocalPort = 22\n",
            "proxy : name should not be empty",
        ),
        (
            "[[proxies]]\nname = \"x\"\ntype = \"ftp\"\n",
            "unknown proxy type: ftp",
        ),
        (
            "log.level = \"loud\"",
            "invalid log level, optional values are [trace debug info warn error]",
        ),
        (
            "auth.method = \"password\"",
            "invalid auth method, optional values are [token oidc]",
        ),
        (
            "transport.protocol = \"udp\"",
            "invalid transport.protocol, optional values are [tcp kcp quic websocket wss]",
        ),
        (
            "transport.heartbeatInterval = 60\ntransport.heartbeatTimeout = 30",
            "invalid transport.heartbeatTimeout, heartbeat timeout should not less than heartbeat interval",
        ),
        (
            "webServer.port = 99999",
            "webServer.port: port number 99999 must be in the range 0..65535",
        ),
        (
            "[[proxies]]\nname = \"a\"\ntype = \"tcp\"\nlocalPort = 1\n[[proxies]]\nname = \"a\"\ntype = \"tcp\"\nlocalPort = 2\n",
            "proxy name [a] is duplicated",
        ),
        ("serverPort = 70000", "serverPort: port number 70000 must be in the range 0..65535"),
    ];
    for (text, want) in cases {
        assert_eq!(
            &err_text("frpc.toml", text, &strict()),
            want,
            "for:\n{text}"
        );
    }
}

#[test]
fn not_supported_yet_is_named() {
    let cases: &[(&str, &str)] = &[
        (
            "[[visitors]]\nname = \"v\"\ntype = \"xtcp\"\nserverName = \"s\"\nbindPort = 9000\nprotocol = \"kcp\"\n",
            "visitor v: xtcp protocol \"kcp\"",
        ),
        (
            "[[visitors]]\nname = \"vp\"\ntype = \"stcp\"\nserverName = \"s\"\nbindPort = -1\n[visitors.plugin]\ntype = \"virtual_net\"\n",
            "visitor vp: plugin \"virtual_net\"",
        ),
        (
            "[[proxies]]\nname = \"f\"\ntype = \"tcp\"\n[proxies.plugin]\ntype = \"virtual_net\"\n",
            "proxy f: plugin \"virtual_net\"",
        ),
        ("auth.method = \"oidc\"", "auth.method \"oidc\""),
        (
            "webServer.port = 7400\nwebServer.tls.certFile = \"c\"\nwebServer.tls.keyFile = \"k\"",
            "webServer.tls",
        ),
    ];
    for (text, what) in cases {
        let e = load_as("frpc.toml", text, &strict()).unwrap_err();
        assert!(
            matches!(e, ConfigError::Unsupported(_)),
            "{e:?} for:\n{text}"
        );
        assert_eq!(
            e.to_string(),
            format!("{what} is not supported yet"),
            "for:\n{text}"
        );
    }
}

#[test]
fn start_and_enabled_filter_before_anything_is_refused() {
    let text = r#"
start = ["ssh", "vis"]
[[proxies]]
name = "ssh"
type = "tcp"
localPort = 22
[[proxies]]
name = "dns"
type = "udp"
localPort = 53
[[proxies]]
name = "off"
type = "tcp"
localPort = 1
enabled = false
"#;
    let c = load_as("frpc.toml", text, &strict()).unwrap().client;
    let names: Vec<_> = c.proxies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["ssh"]);
}

#[test]
fn warnings_for_what_loads_but_acts_differently() {
    let text = "log.to = \"./frpc.log\"\nwebServer.port = 7400\nwebServer.password = \"admin\"\n";
    let c = load_as("frpc.toml", text, &strict()).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!((c.log_to.as_str(), c.log_max_days), ("./frpc.log", 3));
    assert_eq!(c.web_server.port, 7400);
    assert_eq!(c.web_server.addr, "127.0.0.1");
    assert_eq!(c.web_server.password.expose(), "admin");
    let text = "transport.tls.enable = false\ntransport.tls.trustedCaFile = \"ca.pem\"\n";
    let c = load_as("frpc.toml", text, &strict()).unwrap();
    assert_eq!(
        c.warnings,
        ["transport.tls.trustedCaFile is invalid when transport.tls.enable is false"]
    );
}

#[test]
fn syntax_and_type_errors() {
    let e = err_text("frpc.toml", "serverPort = \n", &strict());
    assert!(e.starts_with("toml: "), "{e}");
    let e = err_text("frpc.json", "{\"serverPort\": }", &strict());
    assert!(e.starts_with("json: "), "{e}");
    let e = err_text("frpc.yaml", "proxies: [\n", &strict());
    assert!(e.starts_with("yaml: "), "{e}");
    let e = err_text("frpc.toml", "serverPort = \"7000\"", &strict());
    assert!(e.starts_with("json: invalid type: string"), "{e}");
    // The field is named as the file spells it, nested and in lists too.
    assert!(e.ends_with("(field serverPort)"), "{e}");
    let e = err_text("frpc.toml", "Transport.PoolCount = true", &strict());
    assert!(e.ends_with("(field Transport.PoolCount)"), "{e}");
    let e = err_text(
        "frpc.yaml",
        "proxies:\n  - name: a\n    type: http\n    localPort: 1\n    customDomains: 5\n",
        &strict(),
    );
    assert!(
        e.starts_with("unmarshal ProxyConfig error: json: invalid type: integer"),
        "{e}"
    );
    assert!(e.ends_with("(field customDomains)"), "{e}");
    let e = err_text("frpc.yaml", "- a\n- b\n", &strict());
    assert!(e.contains("non-object"), "{e}");
    let e = err_text("frpc.toml", "serverAddr = \"{{ .Envs.X \"", &strict());
    assert!(e.starts_with("template: frp:1:"), "{e}");
}

#[test]
fn unset_env_renders_as_go_does() {
    let c = load_as("frpc.toml", "user = \"{{ .Envs.UNSET_VAR }}\"", &strict()).unwrap();
    assert_eq!(c.client.user, "<no value>");
}

#[test]
fn includes_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let confd = dir.path().join("conf.d");
    std::fs::create_dir(&confd).unwrap();
    std::fs::write(
        confd.join("a.toml"),
        "[[proxies]]\nname = \"a\"\ntype = \"tcp\"\nlocalPort = 1\n",
    )
    .unwrap();
    std::fs::write(
        confd.join("b.yaml"),
        "proxies:\n  - name: b\n    type: http\n    localPort: 2\n    subdomain: b\n",
    )
    .unwrap();
    std::fs::write(confd.join("skip.txt"), "not a config").unwrap();
    let main = dir.path().join("frpc.toml");
    let pattern = confd.join("*.*ml");
    std::fs::write(
        &main,
        format!(
            "includes = [{:?}]\n[[proxies]]\nname = \"main\"\ntype = \"tcp\"\nlocalPort = 3\n",
            pattern.to_str().unwrap()
        ),
    )
    .unwrap();
    let c = load(&main, &strict()).unwrap().client;
    let names: Vec<_> = c.proxies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["main", "a", "b"]);

    std::fs::write(
        confd.join("c.toml"),
        "[[proxies]]\nname = \"c\"\nbogus = 1\ntype = \"tcp\"\n",
    )
    .unwrap();
    let e = load(&main, &strict()).unwrap_err().to_string();
    assert!(e.starts_with("load additional config from "), "{e}");
    // frpc's text, then where the field stands.
    assert!(
        e.ends_with(&format!(
            "error: unmarshal ProxyConfig error: json: unknown field \"bogus\" ({} line 3)",
            confd.join("c.toml").display()
        )),
        "{e}"
    );

    let missing = dir.path().join("nope.toml");
    let e = load(&missing, &strict()).unwrap_err().to_string();
    assert_eq!(
        e,
        format!("open {}: no such file or directory", missing.display())
    );
    std::fs::write(&main, "includes = [\"/no/such/dir/*.toml\"]").unwrap();
    let e = load(&main, &strict()).unwrap_err().to_string();
    assert_eq!(e, "include: directory of /no/such/dir/*.toml not exist");
}

#[test]
fn never_panics_on_odd_files() {
    let odd = [
        "\u{0}\u{1}",
        "[[proxies]]",
        "proxies = 3",
        "proxies = [1, 2]",
        "{\"proxies\": [null]}",
        "{\"proxies\": [{\"type\": 5}]}",
        "proxies:\n  - {name: x, type: tcp, localPort: -1}\n",
        "proxies:\n  - {name: x, type: tcp, localPort: 1, remotePort: 99999999999}\n",
        "? [a]\n: b\n",
        "a: &a [*a]\n",
        "serverPort = 1e400",
        "{{",
        "transport.poolCount = -5",
        "transport.dialServerTimeout = -9223372036854775808",
        "webServer.port = -1",
        "start = [1]",
        "metadatas = {a = 1}",
        "[[visitors]]\nname = 5",
    ];
    for text in odd {
        for name in ["f.toml", "f.yaml", "f.json", "f"] {
            let _ = load_as(name, text, &strict());
            let _ = load_as(name, text, &lenient());
        }
    }
}

#[test]
fn settings_only_new_proxy_carries_are_mapped() {
    let text = r#"
[[proxies]]
name = "web"
type = "http"
localPort = 80
subdomain = "w"
routeByHTTPUser = "bob"
responseHeaders.set.X-A = "1"
annotations = { "example.com/Team" = "a" }
loadBalancer.group = "g"
loadBalancer.groupKey = "k"
"#;
    let c = load_as("frpc.toml", text, &strict()).unwrap().client;
    let p = &c.proxies[0];
    assert_eq!((p.group.as_str(), p.group_key.expose()), ("g", "k"));
    assert_eq!(p.annotations["example.com/Team"], "a");
    let crate::frp::ProxyKind::Http(h) = &p.kind else {
        panic!("http")
    };
    assert_eq!(h.route_by_http_user, "bob");
    assert_eq!(h.response_headers["X-A"], "1");
    let bad = "[[proxies]]\nname = \"t\"\ntype = \"tcp\"\nlocalPort = 1\nannotations = { \"-x\" = \"1\" }\n";
    let e = err_text("frpc.toml", bad, &strict());
    assert!(
        e.starts_with("proxy t: annotation key -x is invalid: name part must consist"),
        "{e}"
    );
}

#[test]
fn proxy_runtime_options_map_to_the_engine() {
    use crate::frp::{BandwidthLimitMode, HealthCheckKind, ProxyProtocolVersion};
    let text = r#"
[[proxies]]
name = "db"
type = "tcp"
localPort = 5432
transport.proxyProtocolVersion = "v1"
transport.bandwidthLimit = " 1.5MB "
healthCheck.type = "tcp"

[[proxies]]
name = "web"
type = "http"
localPort = 8080
subdomain = "web"
transport.proxyProtocolVersion = "v2"
transport.bandwidthLimit = "100KB"
transport.bandwidthLimitMode = "server"
healthCheck.type = "http"
healthCheck.path = "healthz"
healthCheck.timeoutSeconds = 2
healthCheck.maxFailed = 3
healthCheck.intervalSeconds = 5
healthCheck.httpHeaders = [{ name = "Host", value = "web.local" }]
"#;
    let cfg = load_as("frpc.toml", text, &strict()).unwrap().client;
    let db = &cfg.proxies[0];
    assert_eq!(db.proxy_protocol, Some(ProxyProtocolVersion::V1));
    let limit = db.bandwidth_limit.as_ref().unwrap();
    assert_eq!(limit.text, "1.5MB");
    assert_eq!(limit.bytes_per_second, 1536 * 1024);
    assert_eq!(limit.mode, BandwidthLimitMode::Client);
    let hc = db.health_check.as_ref().unwrap();
    assert_eq!(hc.kind, HealthCheckKind::Tcp);
    assert_eq!(
        (hc.timeout, hc.max_failed, hc.interval),
        (Duration::from_secs(3), 1, Duration::from_secs(10))
    );
    let web = &cfg.proxies[1];
    assert_eq!(web.proxy_protocol, Some(ProxyProtocolVersion::V2));
    assert_eq!(
        web.bandwidth_limit.as_ref().unwrap().mode,
        BandwidthLimitMode::Server
    );
    let hc = web.health_check.as_ref().unwrap();
    assert_eq!(
        hc.kind,
        HealthCheckKind::Http {
            path: "healthz".into(),
            headers: vec![("Host".into(), "web.local".into())],
        }
    );
    assert_eq!(
        (hc.timeout, hc.max_failed, hc.interval),
        (Duration::from_secs(2), 3, Duration::from_secs(5))
    );
}

#[test]
fn udp_stcp_sudp_proxies_and_visitors_map() {
    let text = r#"
serverAddr = "frps.example"
user = "me"
udpPacketSize = 1400

[[proxies]]
name = "dns"
type = "udp"
localPort = 53
remotePort = 5353

[[proxies]]
name = "ssh"
type = "stcp"
localPort = 22
secretKey = "k1"
allowUsers = ["*"]

[[proxies]]
name = "game"
type = "sudp"
localIP = "10.0.0.2"
localPort = 27015
secretKey = "k2"

[[visitors]]
name = "ssh-v"
type = "stcp"
serverName = "ssh"
serverUser = "other"
secretKey = "k1"
bindAddr = "0.0.0.0"
bindPort = 6000
transport.useEncryption = true

[[visitors]]
name = "game-v"
type = "sudp"
serverName = "game"
secretKey = "k2"
bindPort = 6001

[[visitors]]
name = "off"
type = "stcp"
serverName = "x"
bindPort = 1
enabled = false
"#;
    let c = load_as("v.toml", text, &strict()).unwrap().client;
    assert_eq!(c.udp_packet_size, 1400);
    assert!(matches!(
        c.proxies[0].kind,
        ProxyKind::Udp { remote_port: 5353 }
    ));
    let ProxyKind::Stcp(o) = &c.proxies[1].kind else {
        panic!("{:?}", c.proxies[1].kind)
    };
    assert_eq!(o.secret_key.expose(), "k1");
    assert_eq!(o.allow_users, ["*"]);
    let ProxyKind::Sudp(o) = &c.proxies[2].kind else {
        panic!("{:?}", c.proxies[2].kind)
    };
    assert!(o.allow_users.is_empty());
    assert_eq!(c.proxies[2].local_host, "10.0.0.2");
    assert_eq!(c.visitors.len(), 2);
    let v = &c.visitors[0];
    assert_eq!(
        (
            v.name.as_str(),
            v.kind,
            v.server_name.as_str(),
            v.server_user.as_str()
        ),
        ("ssh-v", VisitorKind::Stcp, "ssh", "other")
    );
    assert_eq!((v.bind_addr.as_str(), v.bind_port), ("0.0.0.0", 6000));
    assert!(v.use_encryption && !v.use_compression);
    let v = &c.visitors[1];
    assert_eq!(
        (v.kind, v.bind_addr.as_str(), v.bind_port),
        (VisitorKind::Sudp, "127.0.0.1", 6001)
    );
}

#[test]
fn token_source_is_validated_and_read_only_on_request() {
    let file =
        "auth.tokenSource.type = \"file\"\nauth.tokenSource.file.path = \"/no/such/token\"\n";
    let mut c = load_as("frpc.toml", file, &strict()).unwrap();
    assert!(c.token_source.is_some());
    let e = c.resolve_token().unwrap_err().to_string();
    assert!(e.starts_with("failed to resolve auth.tokenSource: failed to read file /no/such/token: open /no/such/token: no such file or directory"), "{e}");
    let both = "auth.token = \"t\"\nauth.tokenSource.type = \"file\"\nauth.tokenSource.file.path = \"/t\"\n";
    assert_eq!(
        err_text("frpc.toml", both, &strict()),
        "cannot specify both auth.token and auth.tokenSource"
    );
    assert_eq!(
        err_text("frpc.toml", "auth.tokenSource.type = \"env\"\n", &strict()),
        "invalid auth.tokenSource: unsupported value source type: env (only 'file' and 'exec' are supported)"
    );
    assert_eq!(
        err_text(
            "frpc.toml",
            "auth.tokenSource.type = \"file\"\nauth.tokenSource.file.bad = 1\n",
            &strict()
        ),
        "json: unknown field \"bad\""
    );
    let exec = "auth.tokenSource.type = \"exec\"\nauth.tokenSource.exec.command = \"true\"\n";
    assert!(err_text("frpc.toml", exec, &strict())
        .starts_with("unsafe feature \"TokenSourceExec\" is not enabled."));
    let allowed = strict().allow_unsafe(vec!["TokenSourceExec".into()]);
    assert!(load_as("frpc.toml", exec, &allowed).is_ok());
}

#[test]
fn xtcp_proxy_and_visitor_map() {
    let text = r#"
serverAddr = "frps.example"
natHoleStunServer = "127.0.0.1:3478"

[[proxies]]
name = "ssh"
type = "xtcp"
localPort = 22
secretKey = "k1"
allowUsers = ["*"]
natTraversal.disableAssistedAddrs = true

[[visitors]]
name = "ssh-x"
type = "xtcp"
serverName = "ssh"
secretKey = "k1"
bindPort = 6000
keepTunnelOpen = true
maxRetriesAnHour = 3
minRetryInterval = 30
fallbackTo = "ssh-s"
fallbackTimeoutMs = 200

[[visitors]]
name = "plain"
type = "xtcp"
serverName = "ssh"
bindPort = 6001
"#;
    let c = load_as("x.toml", text, &strict()).unwrap().client;
    assert_eq!(c.nat_hole_stun_server, "127.0.0.1:3478");
    let ProxyKind::Xtcp(o) = &c.proxies[0].kind else {
        panic!("{:?}", c.proxies[0].kind)
    };
    assert_eq!(
        (o.secret_key.expose(), o.allow_users.as_slice()),
        ("k1", &["*".to_owned()][..])
    );
    assert!(o.disable_assisted_addrs);
    let x = &c.visitors[0].xtcp;
    assert_eq!(c.visitors[0].kind, VisitorKind::Xtcp);
    assert_eq!(x.protocol, "quic");
    assert!(x.keep_tunnel_open);
    assert_eq!(x.max_retries_an_hour, 3);
    assert_eq!(x.min_retry_interval, std::time::Duration::from_secs(30));
    assert_eq!(x.fallback_to, "ssh-s");
    assert_eq!(x.fallback_timeout, std::time::Duration::from_millis(200));
    // frpc's defaults.
    let d = &c.visitors[1].xtcp;
    assert_eq!(
        (d.max_retries_an_hour, d.fallback_timeout.as_millis()),
        (8, 1000)
    );
    assert_eq!(d.min_retry_interval, std::time::Duration::from_secs(90));
    assert!(!d.keep_tunnel_open && !d.disable_assisted_addrs);
    let c = load_as("d.toml", "serverAddr = \"x\"", &strict())
        .unwrap()
        .client;
    assert_eq!(c.nat_hole_stun_server, "stun.easyvoip.com:3478");
}

#[test]
fn visitor_validation_uses_frpc_texts() {
    for (text, want) in [
        ("[[visitors]]\nname = \"v\"\ntype = \"stcp\"\nbindPort = 1\n", "visitor v: server name is required"),
        ("user = \"u\"\n[[visitors]]\nname = \"v\"\ntype = \"stcp\"\nserverName = \"s\"\n", "visitor u.v: bind port is required"),
        ("[[visitors]]\nname = \"v\"\ntype = \"stcp\"\nserverName = \"s\"\nbindPort = 1\nbogus = 1\n", "unknown field \"bogus\""),
        ("[[visitors]]\nname = \"v\"\ntype = \"stcp\"\nserverName = \"s\"\nbindPort = 1\nfallbackTo = \"x\"\n", "unknown field \"fallbackTo\""),
        ("udpPacketSize = 9000\n", "udpPacketSize 9000 is not supported"),
    ] {
        let err = err_text("v.toml", text, &strict());
        assert!(err.contains(want), "{text}: {err}");
    }
}

#[test]
fn bad_proxy_runtime_options_fail_as_in_frpc() {
    let proxy = |extra: &str| {
        format!("[[proxies]]\nname = \"p\"\ntype = \"tcp\"\nlocalPort = 1\n{extra}\n")
    };
    let cases = [
        (
            "transport.bandwidthLimit = \"1GB\"",
            "unmarshal ProxyConfig error: unit not support",
        ),
        (
            "transport.bandwidthLimit = \"fastMB\"",
            "unmarshal ProxyConfig error: strconv.ParseFloat: parsing \"fast\": invalid syntax",
        ),
        (
            "transport.proxyProtocolVersion = \"v3\"",
            "proxy p: not support proxy protocol version: v3",
        ),
        (
            "transport.bandwidthLimitMode = \"both\"",
            "proxy p: bandwidth limit mode should be client or server",
        ),
        (
            "healthCheck.type = \"udp\"",
            "proxy p: not support health check type: udp",
        ),
        (
            "healthCheck.type = \"http\"",
            "proxy p: health check path should not be empty",
        ),
    ];
    for (extra, want) in cases {
        assert_eq!(
            err_text("frpc.toml", &proxy(extra), &strict()),
            want,
            "{extra}"
        );
    }
    // A proxy left out by `start` still has its quantity parsed, as frpc decodes every proxy.
    let text = format!(
        "start = [\"q\"]\n{}",
        proxy("transport.bandwidthLimit = \"1\"")
    );
    assert_eq!(
        err_text("frpc.toml", &text, &strict()),
        "unmarshal ProxyConfig error: unit not support"
    );
}

#[test]
fn websocket_wss_and_proxy_url_map_to_the_engine() {
    use crate::frp::{ProxyScheme, TransportProtocol};
    let cfg = load_as(
        "frpc.toml",
        "transport.protocol = \"websocket\"\ntransport.proxyURL = \"http://bob:pa%3Ass@proxy.corp:3128\"\n",
        &strict(),
    )
    .unwrap()
    .client;
    assert_eq!(cfg.transport.protocol, TransportProtocol::Websocket);
    let proxy = cfg.transport.proxy_url.unwrap();
    assert_eq!(proxy.scheme, ProxyScheme::Http);
    assert_eq!(proxy.addr_text(), "proxy.corp:3128");
    let (user, pass) = proxy.auth.unwrap();
    assert_eq!((user.as_str(), pass.expose()), ("bob", "pa:ss"));

    let cfg = load_as(
        "frpc.toml",
        "transport.protocol = \"wss\"\ntransport.proxyURL = \"socks5://127.0.0.1:1080\"\n",
        &strict(),
    )
    .unwrap()
    .client;
    assert_eq!(cfg.transport.protocol, TransportProtocol::Wss);
    assert_eq!(cfg.transport.proxy_url.unwrap().scheme, ProxyScheme::Socks5);

    // The legacy INI's http_proxy is the same setting.
    let cfg = load_as(
        "frpc.ini",
        "[common]\nserver_addr = 1.2.3.4\nprotocol = websocket\nhttp_proxy = socks5://10.0.0.1:1080\n",
        &strict(),
    )
    .unwrap()
    .client;
    assert_eq!(cfg.transport.protocol, TransportProtocol::Websocket);
    assert_eq!(
        cfg.transport.proxy_url.unwrap().addr_text(),
        "10.0.0.1:1080"
    );

    // A URL that would silently bypass the proxy, or a proxy type not implemented, is refused.
    for bad in ["127.0.0.1:3128", "ntlm://p:1", "http://p"] {
        let text = format!("transport.proxyURL = \"{bad}\"\n");
        let e = load_as("frpc.toml", &text, &strict()).unwrap_err();
        assert!(
            e.to_string().contains("transport.proxyURL"),
            "{e} for {bad}"
        );
    }
    // quic maps with frpc's defaults and the file's `transport.quic`.
    let c = load_as("frpc.toml", "transport.protocol = \"quic\"", &strict())
        .unwrap()
        .client;
    assert_eq!(c.transport.protocol, TransportProtocol::Quic);
    assert_eq!(c.transport.quic, QuicOptions::default());
    let text = "transport.protocol = \"quic\"\ntransport.tls.enable = false\n\
                transport.tls.serverName = \"frps.example\"\n\
                [transport.quic]\nkeepalivePeriod = -1\nmaxIdleTimeout = 7\nmaxIncomingStreams = 5\n";
    let c = load_as("frpc.toml", text, &strict()).unwrap().client;
    assert_eq!(
        c.transport.quic,
        QuicOptions::default()
            .keepalive_period(None)
            .max_idle_timeout(Duration::from_secs(7))
            .max_incoming_streams(5)
    );
    // QUIC's TLS runs without `tls.enable` too, under the configured name.
    assert_eq!(c.tls.server_name.as_deref(), Some("frps.example"));
    // kcp stays refused by name.
    let e = load_as("frpc.toml", "transport.protocol = \"kcp\"", &strict()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "transport.protocol \"kcp\" is not supported yet"
    );
}
