use super::read::*;
use super::*;
use crate::frp::ProxyKind;
use crate::frpc::{load, load_str, LoadOptions};
use std::time::Duration;

fn envs() -> BTreeMap<String, String> {
    [("FRP_TOKEN", "ini-token")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn opts() -> LoadOptions {
    LoadOptions::with_envs(true, envs())
}

const HOME_INI: &str = r#"
; frpc.ini of a home server, the legacy way
[common]
server_addr = 10.0.0.5
server_port = 7001
token = {{ .Envs.FRP_TOKEN }}
user = bob
login_fail_exit = false
tcp_mux = true
pool_count = 2
heartbeat_interval = 10
heartbeat_timeout = 40
tls_enable = true
tls_server_name = "frps.internal"
authenticate_heartbeats = true
meta_region = eu
admin_addr = 127.0.0.1
admin_port = 7400
admin_user = admin
admin_pwd = secret # not a comment: inline comments are off
log_level = debug

[ssh]
type = tcp
local_ip = 192.168.1.10
local_port = 22
remote_port = 6022
use_encryption = true
use_compression = yes
meta_owner = bob

[web]
type = http
local_port = 8080
subdomain = web
custom_domains = a.example.org, b.example.org
locations = /,/static
http_user = ann
http_pwd = pw
host_header_rewrite = web.local
header_X-From-Where = frp

[site]
type = https
local_port = 8443
custom_domains = secure.example.org

[range:game]
type = tcp
local_port = 6000-6001,6005
remote_port = 7000-7002
"#;

#[test]
fn home_server_converts_like_frpc() {
    let c = load_str(HOME_INI, Path::new("frpc.ini"), &opts()).unwrap();
    assert!(c.legacy_ini);
    let cfg = &c.client;
    assert_eq!(cfg.server_host, "10.0.0.5");
    assert_eq!(cfg.server_port, 7001);
    assert_eq!(cfg.token.expose(), "ini-token");
    assert_eq!(cfg.user, "bob");
    assert!(!cfg.login_fail_exit);
    assert!(cfg.tcp_mux && cfg.auth_heartbeats && !cfg.auth_new_work_conns);
    assert_eq!(cfg.pool_count, 2);
    assert_eq!(cfg.heartbeat_interval, Some(Duration::from_secs(10)));
    assert_eq!(cfg.heartbeat_timeout, Duration::from_secs(40));
    assert!(cfg.tls.enable);
    // The legacy format's default: no custom first byte.
    assert!(!cfg.tls.custom_first_byte);
    assert_eq!(cfg.tls.server_name.as_deref(), Some("frps.internal"));
    assert_eq!(cfg.metas["region"].expose(), "eu");
    assert_eq!(c.log_level, "debug");
    assert_eq!(c.web_server.port, 7400);
    assert_eq!(c.web_server.user, "admin");
    assert_eq!(
        c.web_server.password.expose(),
        "secret # not a comment: inline comments are off"
    );

    let names: Vec<_> = cfg.proxies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["ssh", "web", "site", "game_0", "game_1", "game_2"]);
    let ssh = &cfg.proxies[0];
    assert_eq!(ssh.local_addr(), "192.168.1.10:22");
    assert!(ssh.use_encryption && ssh.use_compression);
    assert_eq!(ssh.metas["owner"].expose(), "bob");
    assert!(matches!(ssh.kind, ProxyKind::Tcp { remote_port: 6022 }));
    let ProxyKind::Http(h) = &cfg.proxies[1].kind else {
        panic!("{:?}", cfg.proxies[1].kind)
    };
    assert_eq!(h.subdomain.as_deref(), Some("web"));
    assert_eq!(h.custom_domains, ["a.example.org", "b.example.org"]);
    assert_eq!(h.locations, ["/", "/static"]);
    assert_eq!(h.http_user.as_deref(), Some("ann"));
    assert_eq!(h.host_header_rewrite.as_deref(), Some("web.local"));
    assert_eq!(h.request_headers["X-From-Where"], "frp");
    assert!(matches!(cfg.proxies[2].kind, ProxyKind::Https { .. }));
    let ports: Vec<_> = cfg.proxies[3..]
        .iter()
        .map(|p| match p.kind {
            ProxyKind::Tcp { remote_port } => (p.local_port, remote_port),
            _ => panic!(),
        })
        .collect();
    assert_eq!(ports, [(6000, 7000), (6001, 7001), (6005, 7002)]);
}

#[test]
fn start_filters_sections_and_defaults_apply() {
    let ini = "[common]\nstart = a, c\n[a]\nlocal_port = 1\n[b]\nlocal_port = 2\n[c]\ntype = tcp\nlocal_port = 3\n";
    let c = load_str(ini, Path::new("frpc.ini"), &opts())
        .unwrap()
        .client;
    let names: Vec<_> = c.proxies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["a", "c"]);
    assert_eq!(c.server_host, "0.0.0.0");
    assert_eq!(c.server_port, 7000);
    assert!(c.tcp_mux && c.login_fail_exit && c.tls.enable);
}

#[test]
fn errors_are_frpcs() {
    let e = |ini: &str| {
        load_str(ini, Path::new("frpc.ini"), &opts())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        e("[common]\nheartbeat_interval = 30\nheartbeat_timeout = 10\n"),
        "parse config error: invalid heartbeat_timeout, heartbeat_timeout is less than heartbeat_interval"
    );
    assert_eq!(
        e("[common]\nprotocol = carrier-pigeon\n"),
        "parse config error: invalid protocol"
    );
    assert_eq!(
        e("[common]\n[x]\ntype = ftp\n"),
        "failed to parse proxy x, err: invalid type [ftp]"
    );
    assert_eq!(
        e("[common]\n[x]\nrole = boss\n"),
        "proxy x role should be 'server' or 'visitor'"
    );
    assert_eq!(
        e("[common]\n[v]\nrole = visitor\n"),
        "failed to parse visitor v, err: type shouldn't be empty"
    );
    assert_eq!(
        e("[common]\n[range:g]\nlocal_port = 1-3\nremote_port = 5\n"),
        "failed to render template for proxy range:g: local ports number should be same with remote ports number"
    );
    assert!(
        e("[common]\n{{ range $v := parseNumberRange \"1\" }}{{ end }}\n")
            .contains("function \"parseNumberRange\" not defined")
    );
    // The same frpc validation as v1 runs on the converted config.
    assert!(e("[common]\n[x]\ntype = tcp\nlocal_port = 70000\n").contains("65535"));
}

#[test]
fn bad_values_warn_and_keep_defaults() {
    let ini = "[common]\nserver_port = seven\ntcp_mux = maybe\n[x]\nlocal_port = 0x10\n";
    let c = load_str(ini, Path::new("frpc.ini"), &opts()).unwrap();
    assert_eq!(c.client.server_port, 7000);
    assert!(c.client.tcp_mux);
    assert_eq!(c.client.proxies[0].local_port, 16);
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("server_port"), "{:?}", c.warnings);
}

#[test]
fn not_implemented_parts_are_still_named() {
    let ini = "[common]\n[p]\ntype = tcp\nplugin = virtual_net\n";
    let e = load_str(ini, Path::new("frpc.ini"), &opts()).unwrap_err();
    assert!(e.to_string().contains("virtual_net"), "{e}");
}

#[test]
fn detection_is_by_common_section_not_extension() {
    assert!(is_legacy("[common]\nserver_addr = x\n"));
    assert!(is_legacy("# c\n [ common ] \n"));
    assert!(!is_legacy(
        "serverAddr = \"x\"\n[[proxies]]\nname = \"a\"\n"
    ));
    assert!(!is_legacy("[commons]\n"));
    assert!(!is_legacy("[common\n"));
    // A legacy file named .toml is still read as INI, as frpc does.
    let c = load_str(
        "[common]\nserver_port = 7100\n",
        Path::new("frpc.toml"),
        &opts(),
    )
    .unwrap();
    assert!(c.legacy_ini && c.client.server_port == 7100);
}

#[test]
fn ini_reading_rules() {
    let s = parse(
        "top = 1\n[a]\nk = v\n\"quoted key\" = \"quoted value\"\nflag\nc: colon\nlong = one \\\n  two\nm = \"\"\"x\ny\"\"\"\n[a]\nk = again\n",
    )
    .unwrap();
    assert_eq!(s[0].name, DEFAULT_SECTION);
    assert_eq!(s[0].get("top"), Some("1"));
    let a = &s[1];
    assert_eq!(s.len(), 2);
    assert_eq!(a.get("k"), Some("again"));
    assert_eq!(a.get("quoted key"), Some("quoted value"));
    assert_eq!(a.get("flag"), Some("true"));
    assert_eq!(a.get("c"), Some("colon"));
    assert_eq!(a.get("long"), Some("one two"));
    assert_eq!(a.get("m"), Some("x\ny"));
    assert!(parse("[a\n").is_err());
    assert!(parse("= v\n").is_err());
    assert!(parse("m = \"\"\"never closed\n").is_err());
}

#[test]
fn go_integers() {
    assert_eq!(go_int("42"), Some(42));
    assert_eq!(go_int("-7"), Some(-7));
    assert_eq!(go_int("0x1F"), Some(31));
    assert_eq!(go_int("0o17"), Some(15));
    assert_eq!(go_int("017"), Some(15));
    assert_eq!(go_int("0b101"), Some(5));
    assert_eq!(go_int("0x_1"), None);
    assert_eq!(go_int("1_000"), None);
    assert_eq!(go_int(""), None);
    assert_eq!(go_int("-"), None);
    assert_eq!(go_int("--1"), None);
    assert_eq!(go_int("99999999999999999999"), None);
}

#[test]
fn includes_are_appended_as_frpc_does() {
    let dir = tempfile::tempdir().unwrap();
    let confd = dir.path().join("conf.d");
    std::fs::create_dir(&confd).unwrap();
    std::fs::write(confd.join("a.ini"), "[a]\ntype = tcp\nlocal_port = 1\n").unwrap();
    std::fs::write(confd.join("b.txt"), "[b]\nlocal_port = 2\n").unwrap();
    let main = dir.path().join("frpc.ini");
    std::fs::write(
        &main,
        format!(
            "[common]\nincludes = {}\n[main]\nlocal_port = 3\n",
            confd.join("*.ini").display()
        ),
    )
    .unwrap();
    let c = load(&main, &opts()).unwrap().client;
    let names: Vec<_> = c.proxies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["main", "a"]);
    std::fs::write(&main, "[common]\nincludes = /no/such/dir/*.ini\n").unwrap();
    let e = load(&main, &opts()).unwrap_err().to_string();
    assert_eq!(
        e,
        "parse config error: include: directory of /no/such/dir/*.ini not exist"
    );
}

#[test]
fn no_panic_on_odd_input() {
    for s in [
        "[common]\n\"\n",
        "[common]\n\"\"\"",
        "[common]\n`k\n",
        "[common]\n[range:]\nlocal_port=1\nremote_port=1\n",
        "[common]\n[range:x]\nlocal_port=1-99999999999\nremote_port=1\n",
        "[common]\nkey = \\",
        "\u{feff}[common]\n",
        "[common]\n[]\n",
        "[common]\n[x]\nlocal_port = -1\n",
        "[common]\n[v]\nrole = visitor\ntype = stcp\nbind_port = 99999999999999999999\n",
    ] {
        let _ = load_str(s, Path::new("frpc.ini"), &opts());
    }
}
