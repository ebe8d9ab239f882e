//! frpc 0.66's v1 client schema, as plain serde structs.
//!
//! Go's `encoding/json` matches keys case-insensitively, so frpc accepts `localIp` for `localIP`.
//! To behave the same, the loader lowercases every key (except inside free-form maps such as
//! `metadatas`) before these structs see them; that is why every field here is spelled in
//! lowercase. Every field of the schema is listed, including the ones this client does not
//! implement, so that strict mode accepts every file frpc accepts and the mapping step can name
//! what is not supported yet instead of silently ignoring it.

use crate::secret::Secret;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The top level of a client config file.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ClientFile {
    pub version: Option<String>,
    pub auth: Auth,
    pub user: String,
    pub serveraddr: String,
    pub serverport: i64,
    pub natholestunserver: String,
    pub dnsserver: String,
    pub loginfailexit: Option<bool>,
    pub start: Vec<String>,
    pub log: Log,
    pub webserver: WebServer,
    pub transport: Transport,
    pub virtualnet: VirtualNet,
    pub featuregates: BTreeMap<String, bool>,
    pub udppacketsize: i64,
    pub metadatas: BTreeMap<String, Secret>,
    pub includes: Vec<String>,
    /// Decoded one by one once their `type` is known, as frpc does.
    pub proxies: Vec<serde_json::Value>,
    pub visitors: Vec<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Auth {
    pub method: String,
    pub additionalscopes: Vec<String>,
    pub token: Secret,
    pub tokensource: Option<serde_json::Value>,
    pub oidc: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Log {
    pub to: String,
    pub level: String,
    pub maxdays: i64,
    pub disableprintcolor: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WebServer {
    pub addr: String,
    pub port: i64,
    pub user: String,
    pub password: Secret,
    pub assetsdir: String,
    pub pprofenable: bool,
    pub tls: Option<Tls>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Tls {
    pub certfile: String,
    pub keyfile: String,
    pub trustedcafile: String,
    pub servername: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ClientTls {
    pub enable: Option<bool>,
    pub disablecustomtlsfirstbyte: Option<bool>,
    pub certfile: String,
    pub keyfile: String,
    pub trustedcafile: String,
    pub servername: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Quic {
    pub keepaliveperiod: i64,
    pub maxidletimeout: i64,
    pub maxincomingstreams: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Transport {
    pub protocol: String,
    pub dialservertimeout: i64,
    pub dialserverkeepalive: i64,
    pub connectserverlocalip: String,
    pub proxyurl: String,
    pub poolcount: i64,
    pub tcpmux: Option<bool>,
    pub tcpmuxkeepaliveinterval: i64,
    pub quic: Quic,
    pub heartbeatinterval: i64,
    pub heartbeattimeout: i64,
    pub tls: ClientTls,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct VirtualNet {
    pub address: String,
}

/// Every field any proxy type of frpc 0.66 has; [`type_fields`] says which belong to which type.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Proxy {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub enabled: Option<bool>,
    pub annotations: BTreeMap<String, String>,
    pub transport: ProxyTransport,
    pub metadatas: BTreeMap<String, Secret>,
    pub loadbalancer: LoadBalancer,
    pub healthcheck: HealthCheck,
    pub localip: String,
    pub localport: i64,
    pub plugin: Option<serde_json::Value>,
    pub remoteport: i64,
    pub customdomains: Vec<String>,
    pub subdomain: String,
    pub locations: Vec<String>,
    pub httpuser: String,
    pub httppassword: Secret,
    pub hostheaderrewrite: String,
    pub requestheaders: HeaderOps,
    pub responseheaders: HeaderOps,
    pub routebyhttpuser: String,
    pub multiplexer: String,
    pub secretkey: String,
    pub allowusers: Vec<String>,
    pub nattraversal: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ProxyTransport {
    pub useencryption: bool,
    pub usecompression: bool,
    pub bandwidthlimit: String,
    pub bandwidthlimitmode: String,
    pub proxyprotocolversion: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoadBalancer {
    pub group: String,
    pub groupkey: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HealthCheck {
    #[serde(rename = "type")]
    pub kind: String,
    pub timeoutseconds: i64,
    pub maxfailed: i64,
    pub intervalseconds: i64,
    pub path: String,
    pub httpheaders: Vec<HttpHeader>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HttpHeader {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HeaderOps {
    pub set: BTreeMap<String, String>,
}

/// Keys every proxy type has.
pub const BASE_FIELDS: &[&str] = &[
    "name",
    "type",
    "enabled",
    "annotations",
    "transport",
    "metadatas",
    "loadbalancer",
    "healthcheck",
    "localip",
    "localport",
    "plugin",
];

/// The keys of one proxy type beyond [`BASE_FIELDS`]; `None` for a type frpc does not know.
pub fn type_fields(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "tcp" | "udp" => &["remoteport"],
        "http" => &[
            "customdomains",
            "subdomain",
            "locations",
            "httpuser",
            "httppassword",
            "hostheaderrewrite",
            "requestheaders",
            "responseheaders",
            "routebyhttpuser",
        ],
        "https" => &["customdomains", "subdomain"],
        "tcpmux" => &[
            "customdomains",
            "subdomain",
            "httpuser",
            "httppassword",
            "routebyhttpuser",
            "multiplexer",
        ],
        "stcp" | "sudp" => &["secretkey", "allowusers"],
        "xtcp" => &["secretkey", "allowusers", "nattraversal"],
        _ => return None,
    })
}

/// Keys whose value is a free-form map: their own keys are data, not field names, and keep
/// their case.
pub const FREE_FORM: &[&str] = &[
    "metadatas",
    "annotations",
    "set",
    "featuregates",
    "additionalendpointparams",
];
