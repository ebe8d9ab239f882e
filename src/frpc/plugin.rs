//! `[proxies.plugin]`: frpc's typed plugin options. Decoded once the proxy is (frpc's messages:
//! `plugin type is empty`, `unknown plugin type: NAME`, unknown fields per plugin type in
//! strict mode), validated with frpc's texts (`plugin NAME: localAddr is required`, …), then
//! mapped to the engine's [`PluginConfig`].

use super::types::ConfigError;
use crate::frp::{PluginConfig, PluginKind};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Every field of every plugin, keys lowercased as the loader leaves them.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Options {
    #[serde(rename = "type")]
    kind: String,
    localaddr: String,
    hostheaderrewrite: String,
    requestheaders: HeaderOperations,
    enablehttp2: Option<bool>,
    crtpath: String,
    keypath: String,
    httpuser: String,
    httppassword: String,
    username: String,
    password: String,
    localpath: String,
    stripprefix: String,
    unixpath: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct HeaderOperations {
    set: BTreeMap<String, String>,
}

/// The keys of each plugin type besides `type`; `None` for a type frpc does not know.
fn fields(kind: &str) -> Option<&'static [&'static str]> {
    const FORWARD: &[&str] = &["localaddr", "hostheaderrewrite", "requestheaders"];
    const HTTPS: &[&str] = &[
        "localaddr",
        "hostheaderrewrite",
        "requestheaders",
        "enablehttp2",
        "crtpath",
        "keypath",
    ];
    Some(match kind {
        "http2https" | "http2http" => FORWARD,
        "https2http" | "https2https" => HTTPS,
        "http_proxy" => &["httpuser", "httppassword"],
        "socks5" => &["username", "password"],
        "static_file" => &["localpath", "stripprefix", "httpuser", "httppassword"],
        "unix_domain_socket" => &["unixpath"],
        "tls2raw" => &["localaddr", "crtpath", "keypath"],
        "virtual_net" => &[],
        _ => return None,
    })
}

/// frpc's decoding of a proxy's `plugin` (errors in its words, after `context`).
pub(super) fn check(
    value: &Value,
    strict: bool,
    originals: &BTreeMap<String, String>,
    context: &str,
) -> Result<(), ConfigError> {
    let parse = |msg: String| ConfigError::Parse(format!("{context}{msg}"));
    let Value::Object(map) = value else {
        if value.is_null() {
            return Ok(());
        }
        return Err(parse(
            "json: cannot unmarshal a non-object into Go value of type v1.TypedClientPluginOptions"
                .into(),
        ));
    };
    let kind = map.get("type").and_then(Value::as_str).unwrap_or("");
    if kind.is_empty() {
        return Err(parse("plugin type is empty".into()));
    }
    let Some(known) = fields(kind) else {
        return Err(parse(format!("unknown plugin type: {kind}")));
    };
    let inner = "unmarshal ClientPluginOptions error: json: ";
    if strict {
        if let Some(k) = map
            .keys()
            .find(|k| k.as_str() != "type" && !known.contains(&k.as_str()))
        {
            let shown = originals.get(k).unwrap_or(k);
            return Err(parse(format!("{inner}unknown field \"{shown}\"")));
        }
        if let Some(Value::Object(h)) = map.get("requestheaders") {
            if let Some(k) = h.keys().find(|k| k.as_str() != "set") {
                let shown = originals.get(k).unwrap_or(k);
                return Err(parse(format!("{inner}unknown field \"{shown}\"")));
            }
        }
    }
    serde_json::from_value::<Options>(value.clone())
        .map(drop)
        .map_err(|e| parse(format!("{inner}{e}")))
}

fn options(value: &Value) -> Options {
    serde_json::from_value(value.clone()).unwrap_or_default()
}

/// frpc's `ValidateClientPluginOptions`; the caller adds `proxy NAME: `.
pub(super) fn validate(value: &Value) -> Result<(), String> {
    let o = options(value);
    let required = match o.kind.as_str() {
        "http2https" | "https2http" | "https2https" | "tls2raw" if o.localaddr.is_empty() => {
            "localAddr"
        }
        "static_file" if o.localpath.is_empty() => "localPath",
        "unix_domain_socket" if o.unixpath.is_empty() => "unixPath",
        _ => return Ok(()),
    };
    Err(format!("plugin {}: {required} is required", o.kind))
}

/// The engine's plugin; `Err(type)` for a plugin this client does not implement.
pub(super) fn to_plugin(value: &Value) -> Result<PluginConfig, String> {
    let o = options(value);
    let Some(kind) = PluginKind::from_name(&o.kind) else {
        return Err(o.kind);
    };
    let mut p = PluginConfig::new(kind);
    p.local_addr = o.localaddr;
    p.unix_path = o.unixpath.into();
    p.local_path = o.localpath.into();
    p.strip_prefix = o.stripprefix;
    (p.user, p.password) = match kind {
        PluginKind::Socks5 => (o.username, o.password.into()),
        _ => (o.httpuser, o.httppassword.into()),
    };
    p.host_header_rewrite = o.hostheaderrewrite;
    p.request_headers = o.requestheaders.set;
    p.enable_http2 = o.enablehttp2.unwrap_or(true);
    p.crt_path = o.crtpath.into();
    p.key_path = o.keypath.into();
    Ok(p)
}

#[cfg(test)]
#[path = "plugin_tests.rs"]
mod tests;
