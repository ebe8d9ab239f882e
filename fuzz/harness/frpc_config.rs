//! frpc config files as `expose::frpc::load_str` reads them: Go-template rendering (ranges
//! included), TOML/JSON/YAML detection and decoding, the legacy INI reader and its conversion,
//! frpc's validation and the mapping to the engine's config.
//!
//! Input: one byte choosing the file name (`frpc.toml`, `.yaml`, `.json`, `.ini`, no
//! extension) and strict or lenient mode, then the file's text (invalid UTF-8 replaced).
//! The environment is fixed: `FRP_TOKEN` and `PORTS` are set.
//!
//! Invariants: no panic, however deep or odd the file; an error message is printable text; an
//! accepted config has proxies and visitors with non-empty, distinct names, a local port unless
//! a plugin serves the proxy, and a token and metadata whose Debug form hides their values.

use super::Input;
use expose::frpc::{load_str, LoadOptions};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

const TOKEN: &str = "fuzz-env-token-7c1e";

pub fn run(data: &[u8]) {
    let mut input = Input(data);
    let choice = input.byte();
    let name = ["frpc.toml", "frpc.yaml", "frpc.json", "frpc.ini", "frpc"][usize::from(choice % 5)];
    let strict = choice & 0x80 == 0;
    let text = String::from_utf8_lossy(input.rest());
    let envs: BTreeMap<String, String> = [("FRP_TOKEN", TOKEN), ("PORTS", "6000-6002,7000")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    match load_str(
        &text,
        Path::new(name),
        &LoadOptions::with_envs(strict, envs),
    ) {
        Err(e) => {
            // Display must work; the text may quote the file, which the user wrote.
            let _ = e.to_string();
        }
        Ok(cfg) => {
            let mut names = HashSet::new();
            for p in &cfg.client.proxies {
                assert!(!p.name.is_empty(), "a proxy without a name was accepted");
                assert!(names.insert(p.name.clone()), "duplicate proxy {}", p.name);
                assert!(
                    p.local_port != 0 || p.plugin.is_some(),
                    "proxy {} has no local port and no plugin",
                    p.name
                );
            }
            let mut visitors = HashSet::new();
            for v in &cfg.client.visitors {
                assert!(!v.name.is_empty(), "a visitor without a name was accepted");
                assert!(
                    visitors.insert(v.name.clone()),
                    "duplicate visitor {}",
                    v.name
                );
            }
            // Secrets print redacted, whatever their value (the file may also put the token's
            // text in a plain field, such as a server address; that one prints).
            let token = cfg.client.token.expose();
            if token.len() >= 4 {
                assert!(
                    !format!("{:?}", cfg.client.token).contains(token),
                    "the token shows in Debug output"
                );
            }
            for value in cfg.client.metas.values() {
                if value.expose().len() >= 4 {
                    assert!(!format!("{value:?}").contains(value.expose()));
                }
            }
        }
    }
}
