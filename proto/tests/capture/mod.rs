//! Loading the Go frp 0.66.0 captures in `shared/vectors/` and decoding them with the crate.
//!
//! Shared by the tests in `vectors.rs`. The submodules take a capture apart layer by layer:
//! [`yamux`] splits a multiplexed TCP connection into streams, [`decode`] turns one direction of
//! an frp connection into messages, [`tls`] reads the ClientHello of the TLS cases.

pub mod decode;
pub mod tls;
pub mod yamux;

use frp_proto::crypto::Key;
use frp_proto::msg::*;
use frp_proto::Message;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The capture set these tests were written against.
pub const CAPTURE_SET: &str = "frp-0.66.0";

/// The body the local service answered every request with (vectors README, "Common parameters").
pub const LOCAL_BODY: &[u8] = b"hello from the expose protocol vectors\n";

/// `shared/vectors`, a sibling of the repository root. The captures are not part of the
/// repository (they are shared read-only material), so a missing directory is a set-up error
/// that must say where it looked rather than fail somewhere deep in a test.
pub fn vectors_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors");
    assert!(
        dir.is_dir(),
        "protocol vectors not found at {}: the tests replay those captures; check out `shared` \
         next to the repository root",
        dir.display()
    );
    dir
}

/// Reads a capture file, naming the path on failure so a broken checkout is obvious.
pub fn read_path(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Configs, logs and the transcript are text; a non-UTF-8 one means a corrupted checkout.
pub fn read_text(path: &Path) -> String {
    String::from_utf8(read_path(path))
        .unwrap_or_else(|e| panic!("{} is not UTF-8: {e}", path.display()))
}

/// The transcript stores chunks as hex; a few lines here spare a hex crate dependency.
pub fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd-length hex string");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// The two directions of a connection, named as the capture files and transcript name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dir {
    C2s,
    S2c,
}

impl Dir {
    pub fn name(self) -> &'static str {
        match self {
            Dir::C2s => "c2s",
            Dir::S2c => "s2c",
        }
    }
}

/// `transcript.jsonl`: what every `recv()` of the recording relay returned. These are the real
/// read boundaries frpc and frps saw, the most realistic chunking we can feed our decoders.
pub struct Transcript {
    pub chunks: BTreeMap<(u64, Dir), Vec<Vec<u8>>>,
    pub opened: BTreeSet<u64>,
}

impl Transcript {
    pub fn load(path: &Path) -> Self {
        let mut chunks: BTreeMap<(u64, Dir), Vec<Vec<u8>>> = BTreeMap::new();
        let mut offsets: BTreeMap<(u64, Dir), u64> = BTreeMap::new();
        let mut opened = BTreeSet::new();
        for (n, line) in read_text(path).lines().enumerate() {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{} line {}: {e}", path.display(), n + 1));
            let conn = v["conn"].as_u64().expect("conn number");
            if v["event"] == "open" {
                opened.insert(conn);
            }
            let Some(hex) = v["hex"].as_str() else {
                continue;
            };
            let dir = match v["dir"].as_str() {
                Some("c2s") => Dir::C2s,
                Some("s2c") => Dir::S2c,
                other => panic!("{} line {}: bad dir {other:?}", path.display(), n + 1),
            };
            let bytes = unhex(hex);
            // The offsets must be contiguous, or the relay lost bytes and the capture is unusable.
            let off = offsets.entry((conn, dir)).or_default();
            assert_eq!(
                v["off"].as_u64(),
                Some(*off),
                "{} line {}",
                path.display(),
                n + 1
            );
            assert_eq!(v["len"].as_u64(), Some(bytes.len() as u64));
            *off += bytes.len() as u64;
            chunks.entry((conn, dir)).or_default().push(bytes);
        }
        Transcript { chunks, opened }
    }

    pub fn chunks(&self, conn: u64, dir: Dir) -> &[Vec<u8>] {
        self.chunks.get(&(conn, dir)).map_or(&[], Vec::as_slice)
    }
}

/// Just enough TOML for the flat configs the capture tool writes: `key = value` lines and
/// `[[array]]` tables. A TOML crate would be a new dependency for a handful of lines.
#[derive(Default)]
pub struct Toml {
    pub path: PathBuf,
    pub top: BTreeMap<String, String>,
    pub tables: BTreeMap<String, Vec<BTreeMap<String, String>>>,
}

impl Toml {
    pub fn load(path: &Path) -> Self {
        let mut toml = Toml {
            path: path.to_owned(),
            ..Default::default()
        };
        let mut current: Option<String> = None;
        for line in read_text(path).lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
                toml.tables
                    .entry(name.to_owned())
                    .or_default()
                    .push(BTreeMap::new());
                current = Some(name.to_owned());
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{}: unexpected line {line:?}", path.display()));
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            let map = match &current {
                Some(name) => toml
                    .tables
                    .get_mut(name)
                    .and_then(|t| t.last_mut())
                    .expect("table just pushed"),
                None => &mut toml.top,
            };
            map.insert(key.trim().to_owned(), value.to_owned());
        }
        toml
    }

    pub fn get(&self, key: &str) -> &str {
        self.top
            .get(key)
            .unwrap_or_else(|| panic!("{} has no `{key}`", self.path.display()))
    }

    /// The `[[proxies]]` entry of the given type; each case has exactly one http and one tcp.
    pub fn proxy(&self, ty: &str) -> &BTreeMap<String, String> {
        let found: Vec<_> = self
            .tables
            .get("proxies")
            .into_iter()
            .flatten()
            .filter(|p| p.get("type").map(String::as_str) == Some(ty))
            .collect();
        assert_eq!(found.len(), 1, "{}: one {ty} proxy", self.path.display());
        found[0]
    }
}

/// The text between `prefix` and the next `]` in a log, e.g. the run id frpc logged.
pub fn log_value<'a>(log: &'a str, prefix: &str, path: &Path) -> &'a str {
    let start = log
        .find(prefix)
        .unwrap_or_else(|| panic!("{} does not contain {prefix:?}", path.display()))
        + prefix.len();
    let len = log[start..].find(']').expect("closing bracket");
    &log[start..start + len]
}

/// One capture folder with its configs and transcript.
pub struct Case {
    pub dir: PathBuf,
    pub frpc: Toml,
    pub frps: Toml,
    pub transcript: Transcript,
}

impl Case {
    pub fn load(name: &str) -> Self {
        Self::load_set(CAPTURE_SET, name)
    }

    /// A case of another capture set (`frp-0.70.1` for the wire v2 captures).
    pub fn load_set(set: &str, name: &str) -> Self {
        let dir = vectors_dir().join(set).join(name);
        assert!(dir.is_dir(), "capture case missing: {}", dir.display());
        Case {
            frpc: Toml::load(&dir.join("frpc.toml")),
            frps: Toml::load(&dir.join("frps.toml")),
            transcript: Transcript::load(&dir.join("transcript.jsonl")),
            dir,
        }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    pub fn text(&self, file: &str) -> String {
        read_text(&self.path(file))
    }

    /// The raw bytes of one direction of a TCP connection. The relay writes no file for a
    /// direction that carried nothing (the idle pooled work connection), so a missing file is
    /// accepted only when the transcript agrees that the direction was empty.
    pub fn conn_bytes(&self, conn: u64, dir: Dir) -> Vec<u8> {
        let path = self.path(&format!("conn-{conn}.{}.bin", dir.name()));
        if path.exists() {
            read_path(&path)
        } else {
            assert!(
                self.transcript.chunks(conn, dir).is_empty(),
                "capture file missing: {} (the transcript has bytes for it)",
                path.display()
            );
            Vec::new()
        }
    }

    /// The dynamic values of this capture, from the files that record them.
    pub fn expected(&self) -> Expected {
        let http = self.frpc.proxy("http");
        let tcp = self.frpc.proxy("tcp");
        let frpc_log_path = self.path("frpc.log");
        let frpc_log = read_text(&frpc_log_path);
        let frps_log_path = self.path("frps.log");
        let frps_log = read_text(&frps_log_path);
        let user_conn = log_value(&frps_log, "get a user connection [", &frps_log_path);
        let tcp_src_port = user_conn
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .expect("ip:port of the tcp user connection");
        let exp = Expected {
            token: self.frpc.get("auth.token").to_owned(),
            user: self.frpc.get("user").to_owned(),
            binding_secret: self.frpc.get("metadatas.binding_secret").to_owned(),
            pool_count: self.frpc.get("transport.poolCount").parse().expect("int"),
            http_name: http["name"].clone(),
            subdomain: http["subdomain"].clone(),
            tcp_name: tcp["name"].clone(),
            remote_port: tcp["remotePort"].parse().expect("int"),
            sub_domain_host: self.frps.get("subDomainHost").to_owned(),
            vhost_http_port: self.frps.get("vhostHTTPPort").parse().expect("int"),
            proxy_bind_addr: self.frps.get("proxyBindAddr").to_owned(),
            run_id: log_value(&frpc_log, "get run id [", &frpc_log_path).to_owned(),
            tcp_src_port,
        };
        // capture-notes.txt states the ports in prose; they must agree with the configs, or the
        // configs in the folder are not the ones the capture ran with.
        let notes = self.text("capture-notes.txt");
        assert!(
            notes.contains(&format!("vhostHTTPPort={}", exp.vhost_http_port)),
            "capture-notes.txt disagrees with frps.toml"
        );
        assert!(
            notes.contains(&format!("tcp remotePort={}", exp.remote_port)),
            "capture-notes.txt disagrees with frpc.toml"
        );
        exp
    }
}

/// What a capture must contain, taken from the capture's own configs and logs.
pub struct Expected {
    pub token: String,
    pub user: String,
    pub binding_secret: String,
    pub pool_count: i64,
    pub http_name: String,
    pub subdomain: String,
    pub tcp_name: String,
    pub remote_port: i64,
    pub sub_domain_host: String,
    pub vhost_http_port: u16,
    pub proxy_bind_addr: String,
    pub run_id: String,
    pub tcp_src_port: u16,
}

impl Expected {
    /// The AES key of the control streams, derived from the capture's token.
    pub fn key(&self) -> Key {
        Key::derive(&self.token)
    }

    /// frpc prefixes every proxy name with `<user>.` on the wire.
    pub fn wire_name(&self, name: &str) -> String {
        format!("{}.{name}", self.user)
    }

    pub fn http_proxy(&self) -> NewProxy {
        NewProxy {
            proxy_name: self.wire_name(&self.http_name),
            proxy_type: "http".into(),
            subdomain: self.subdomain.clone(),
            ..Default::default()
        }
    }

    pub fn tcp_proxy(&self) -> NewProxy {
        NewProxy {
            proxy_name: self.wire_name(&self.tcp_name),
            proxy_type: "tcp".into(),
            remote_port: self.remote_port,
            ..Default::default()
        }
    }

    pub fn http_proxy_resp(&self) -> NewProxyResp {
        NewProxyResp {
            proxy_name: self.wire_name(&self.http_name),
            remote_addr: format!(
                "{}.{}:{}",
                self.subdomain, self.sub_domain_host, self.vhost_http_port
            ),
            ..Default::default()
        }
    }

    pub fn tcp_proxy_resp(&self) -> NewProxyResp {
        NewProxyResp {
            proxy_name: self.wire_name(&self.tcp_name),
            remote_addr: format!(":{}", self.remote_port),
            ..Default::default()
        }
    }

    pub fn new_work_conn(&self) -> Message {
        NewWorkConn {
            run_id: self.run_id.clone(),
            ..Default::default()
        }
        .into()
    }
}
