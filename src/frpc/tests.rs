//! Loading real-world-shaped frpc files in every format, and the ways a file can be wrong.

use super::*;
use crate::frp::ProxyKind;
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
        ("[[proxies]]\nname = \"dns\"\ntype = \"udp\"\nlocalPort = 53\nremotePort = 53\n", "proxy dns: type \"udp\""),
        ("[[proxies]]\nname = \"s\"\ntype = \"stcp\"\nsecretKey = \"k\"\nlocalPort = 22\n", "proxy s: type \"stcp\""),
        ("[[proxies]]\nname = \"x\"\ntype = \"xtcp\"\nlocalPort = 22\n", "proxy x: type \"xtcp\""),
        ("[[proxies]]\nname = \"su\"\ntype = \"sudp\"\nlocalPort = 22\n", "proxy su: type \"sudp\""),
        (
            "[[proxies]]\nname = \"m\"\ntype = \"tcpmux\"\nmultiplexer = \"httpconnect\"\ncustomDomains = [\"a\"]\nlocalPort = 1\n",
            "proxy m: type \"tcpmux\"",
        ),
        ("[[visitors]]\nname = \"v\"\ntype = \"stcp\"\nserverName = \"s\"\nbindPort = 9000\n", "visitor v: type \"stcp\""),
        (
            "[[proxies]]\nname = \"f\"\ntype = \"tcp\"\n[proxies.plugin]\ntype = \"static_file\"\nlocalPath = \"/srv\"\n",
            "proxy f: plugin \"static_file\"",
        ),
        ("[[proxies]]\nname = \"h\"\ntype = \"tcp\"\nlocalPort = 1\nhealthCheck.type = \"tcp\"\n", "proxy h: healthCheck"),
        ("[[proxies]]\nname = \"g\"\ntype = \"tcp\"\nlocalPort = 1\nloadBalancer.group = \"web\"\n", "proxy g: loadBalancer"),
        ("[[proxies]]\nname = \"b\"\ntype = \"tcp\"\nlocalPort = 1\ntransport.bandwidthLimit = \"1MB\"\n", "proxy b: transport.bandwidthLimit"),
        ("[[proxies]]\nname = \"p\"\ntype = \"tcp\"\nlocalPort = 1\ntransport.proxyProtocolVersion = \"v2\"\n", "proxy p: transport.proxyProtocolVersion"),
        ("transport.protocol = \"quic\"", "transport.protocol \"quic\""),
        ("auth.method = \"oidc\"", "auth.method \"oidc\""),
        ("auth.tokenSource.type = \"file\"\nauth.tokenSource.file.path = \"/t\"", "auth.tokenSource"),
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
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
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
    let e = err_text("frpc.yaml", "- a\n- b\n", &strict());
    assert!(e.contains("non-object"), "{e}");
    let e = err_text("frpc.toml", "serverAddr = \"{{ .Envs.X \"", &strict());
    assert!(e.starts_with("template: frp:1:"), "{e}");
}

#[test]
fn legacy_ini_is_named() {
    let ini = "[common]\nserver_addr = 1.2.3.4\n\n[ssh]\ntype = tcp\nlocal_port = 22\n";
    let e = load_as("frpc.ini", ini, &strict()).unwrap_err();
    assert!(matches!(e, ConfigError::Unsupported(_)), "{e:?}");
    assert!(e.to_string().contains("legacy INI format"), "{e}");
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
    assert!(
        e.ends_with("error: unmarshal ProxyConfig error: json: unknown field \"bogus\""),
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
