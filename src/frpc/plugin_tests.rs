//! `[proxies.plugin]` in frpc's files: every plugin mapped, frpc's messages for bad ones.

use crate::frp::PluginKind;
use crate::frpc::{load_str, ConfigError, FrpcConfig, LoadOptions};
use std::collections::BTreeMap;
use std::path::Path;

fn load(name: &str, text: &str, strict: bool) -> Result<FrpcConfig, ConfigError> {
    load_str(
        text,
        Path::new(name),
        &LoadOptions::with_envs(strict, BTreeMap::new()),
    )
}

fn err(text: &str) -> String {
    match load("frpc.toml", text, true) {
        Ok(_) => panic!("loaded but should not:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn proxy(plugin: &str) -> String {
    format!(
        "[[proxies]]\nname = \"p\"\ntype = \"tcp\"\nremotePort = 6000\n[proxies.plugin]\n{plugin}"
    )
}

#[test]
fn every_plugin_maps_with_its_fields() {
    let text = r#"
[[proxies]]
name = "s5"
type = "tcp"
remotePort = 6001
[proxies.plugin]
type = "socks5"
username = "u"
password = "pw"

[[proxies]]
name = "hp"
type = "tcp"
remotePort = 6002
[proxies.plugin]
type = "http_proxy"
httpUser = "a"
httpPassword = "b"

[[proxies]]
name = "sf"
type = "tcp"
remotePort = 6003
[proxies.plugin]
type = "static_file"
localPath = "/srv"
stripPrefix = "static"
httpUser = "a"
httpPassword = "b"

[[proxies]]
name = "uds"
type = "tcp"
remotePort = 6004
[proxies.plugin]
type = "unix_domain_socket"
unixPath = "/run/app.sock"

[[proxies]]
name = "h2h"
type = "http"
subdomain = "x"
[proxies.plugin]
type = "https2http"
localAddr = "127.0.0.1:8080"
hostHeaderRewrite = "app.local"
requestHeaders.set.x-from-where = "frp"
enableHTTP2 = false
crtPath = "/c.pem"
keyPath = "/k.pem"

[[proxies]]
name = "raw"
type = "tcp"
remotePort = 6005
[proxies.plugin]
type = "tls2raw"
localAddr = "127.0.0.1:22"
"#;
    let cfg = load("frpc.toml", text, true).unwrap();
    let plugins: Vec<_> = cfg
        .client
        .proxies
        .iter()
        .map(|p| p.plugin.clone().unwrap())
        .collect();
    assert_eq!(plugins[0].kind, PluginKind::Socks5);
    assert_eq!(
        (plugins[0].user.as_str(), plugins[0].password.expose()),
        ("u", "pw")
    );
    assert_eq!(plugins[1].kind, PluginKind::HttpProxy);
    assert_eq!(plugins[1].user, "a");
    assert_eq!(plugins[2].kind, PluginKind::StaticFile);
    assert_eq!(plugins[2].local_path, Path::new("/srv"));
    assert_eq!(plugins[2].strip_prefix, "static");
    assert_eq!(plugins[3].unix_path, Path::new("/run/app.sock"));
    let h = &plugins[4];
    assert_eq!(h.kind, PluginKind::Https2Http);
    assert_eq!(h.host_header_rewrite, "app.local");
    assert_eq!(h.request_headers["x-from-where"], "frp");
    assert!(!h.enable_http2);
    assert_eq!(h.crt_path, Path::new("/c.pem"));
    assert_eq!(plugins[5].kind, PluginKind::Tls2Raw);
    assert!(plugins[5].enable_http2, "frpc's default");
    // localPort may be absent with a plugin.
    assert_eq!(cfg.client.proxies[0].local_port, 0);
}

#[test]
fn legacy_ini_plugins_map_too() {
    let ini = "[common]\nserver_addr = 1.2.3.4\n[s]\ntype = tcp\nremote_port = 6000\nplugin = socks5\nplugin_user = u\nplugin_passwd = p\n[f]\ntype = tcp\nremote_port = 6001\nplugin = static_file\nplugin_local_path = /srv\nplugin_strip_prefix = st\n";
    let cfg = load("frpc.ini", ini, true).unwrap();
    let s = cfg.client.proxies.iter().find(|p| p.name == "s").unwrap();
    let s = s.plugin.as_ref().unwrap();
    assert_eq!((s.kind, s.user.as_str()), (PluginKind::Socks5, "u"));
    let f = cfg.client.proxies.iter().find(|p| p.name == "f").unwrap();
    assert_eq!(f.plugin.as_ref().unwrap().strip_prefix, "st");
}

#[test]
fn frpc_messages_for_bad_plugins() {
    let cases: &[(&str, &str)] = &[
        ("foo = 1\n", "unmarshal ProxyConfig error: plugin type is empty"),
        ("type = \"ftp\"\n", "unmarshal ProxyConfig error: unknown plugin type: ftp"),
        (
            "type = \"socks5\"\nhttpUser = \"x\"\n",
            "unmarshal ProxyConfig error: unmarshal ClientPluginOptions error: json: unknown field \"httpUser\"",
        ),
        ("type = \"static_file\"\n", "proxy p: plugin static_file: localPath is required"),
        ("type = \"unix_domain_socket\"\n", "proxy p: plugin unix_domain_socket: unixPath is required"),
        ("type = \"https2http\"\n", "proxy p: plugin https2http: localAddr is required"),
        ("type = \"http2https\"\n", "proxy p: plugin http2https: localAddr is required"),
        ("type = \"https2https\"\n", "proxy p: plugin https2https: localAddr is required"),
        ("type = \"tls2raw\"\n", "proxy p: plugin tls2raw: localAddr is required"),
    ];
    for (plugin, want) in cases {
        assert_eq!(&err(&proxy(plugin)), want, "for {plugin}");
    }
    // http2http and the auth plugins need nothing.
    for plugin in [
        "type = \"http2http\"\n",
        "type = \"socks5\"\n",
        "type = \"http_proxy\"\n",
    ] {
        load("frpc.toml", &proxy(plugin), true).unwrap();
    }
    // Lenient mode ignores unknown plugin fields as frpc does.
    load(
        "frpc.toml",
        &proxy("type = \"socks5\"\nhttpUser = \"x\"\n"),
        false,
    )
    .unwrap();
    // Without a plugin localPort 0 is still refused by name.
    let e = err("[[proxies]]\nname = \"p\"\ntype = \"tcp\"\nremotePort = 6000\n");
    assert!(e.contains("localPort 0"), "{e}");
}
