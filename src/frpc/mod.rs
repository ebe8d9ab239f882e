//! Go frpc's configuration files: load a v1 `frpc.toml` / `.yaml` / `.json` the way frpc 0.66
//! does and turn it into a [`ClientConfig`] with one [`ProxyConfig`](crate::frp::ProxyConfig) per
//! proxy.
//!
//! ```no_run
//! # fn demo() -> Result<(), expose::frpc::ConfigError> {
//! let loaded = expose::frpc::load("frpc.toml".as_ref(), &expose::frpc::LoadOptions::new(true))?;
//! for w in &loaded.warnings {
//!     eprintln!("WARNING: {w}");
//! }
//! let client = loaded.client; // hand to expose::frp::Client::start
//! # let _ = client; Ok(()) }
//! ```
//!
//! What frpc does and this module does too:
//! - every file is first rendered as a Go template with the environment as `.Envs`
//!   (`{{ .Envs.FRP_TOKEN }}`) and the port-range helpers (`parseNumberRange`);
//! - a file with a `[common]` section is frpc's legacy INI format, converted to the v1 shape
//!   as frpc converts it;
//! - the format is found by trying TOML first, then JSON (text starting with `{`), then YAML;
//!   a `.toml` file that is not valid TOML reports the TOML error;
//! - keys match case-insensitively (Go's JSON decoding), unknown keys are errors in strict mode
//!   (frpc's default) and ignored otherwise;
//! - defaults, `includes` (globs of files whose proxies are added), `start` (only these proxies),
//!   `enabled = false`, the user prefix, and frpc's validation messages.
//!
//! What this client does not implement yet is an error naming the field ("… is not supported
//! yet"), never silently dropped: the virtual_net plugin, OIDC, the kcp transport, and xtcp
//! visitors with `protocol = "kcp"`. Settings that change nothing a visitor
//! or frps sees (log files, the admin web server for now) load with a warning.

mod annotations;
mod glob;
mod ini;
mod locate;
mod map;
mod plugin;
mod schema;
mod template;
mod types;
mod value_source;
mod yaml;

pub use types::{ConfigError, FrpcConfig, LoadOptions, WebServer};
pub use value_source::{ExecEnv, ExecSource, FileSource, ValueSource, TOKEN_SOURCE_EXEC};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// Loads, renders, parses and validates an frpc config file and the files it includes.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<FrpcConfig, ConfigError> {
    let main = read_file(path, opts).map_err(|e| locate::unknown_field(e, path))?;
    let mut proxies = Vec::new();
    let mut visitors = Vec::new();
    main.collect(opts.strict, &mut proxies, &mut visitors)
        .map_err(|e| locate::unknown_field(e, path))?;
    for pattern in &main.file.includes {
        for included in glob::matching_files(pattern)? {
            read_file(&included, opts)
                .and_then(|extra| extra.collect(opts.strict, &mut proxies, &mut visitors))
                .map_err(|e| locate::unknown_field(e, &included))
                .map_err(|e| {
                    ConfigError::Parse(format!(
                        "load additional config from {} error: {e}",
                        included.display()
                    ))
                })?;
        }
    }
    let legacy = main.legacy;
    finish(
        map::build(main.file, proxies, visitors, opts.exec_allowed()),
        legacy,
    )
}

/// Marks a config that came from the legacy INI format and adds its conversion warnings.
fn finish(
    built: Result<FrpcConfig, ConfigError>,
    legacy: Option<Vec<String>>,
) -> Result<FrpcConfig, ConfigError> {
    let mut cfg = built?;
    if let Some(mut warnings) = legacy {
        cfg.legacy_ini = true;
        warnings.append(&mut cfg.warnings);
        cfg.warnings = warnings;
    }
    Ok(cfg)
}

/// [`load`] for text already in memory; `path` only picks the format hint and names the file.
pub fn load_str(text: &str, path: &Path, opts: &LoadOptions) -> Result<FrpcConfig, ConfigError> {
    let parsed = parse_text(text, path, opts)?;
    let mut proxies = Vec::new();
    let mut visitors = Vec::new();
    parsed.collect(opts.strict, &mut proxies, &mut visitors)?;
    let file = parsed.file;
    if !file.includes.is_empty() {
        return Err(ConfigError::Unsupported(
            "includes need a file on disk; use load".into(),
        ));
    }
    finish(
        map::build(file, proxies, visitors, opts.exec_allowed()),
        parsed.legacy,
    )
}

/// A config given as a JSON document in frpc's v1 shape (no templating, no includes), checked
/// and mapped like a file; `frpc tcp|http|https …` builds its one-proxy config this way.
pub fn from_json(mut value: Value, strict: bool) -> Result<FrpcConfig, ConfigError> {
    let mut originals = BTreeMap::new();
    lowercase_keys(&mut value, &mut originals);
    let parsed = Parsed {
        file: decode(value, strict, &originals, "")?,
        originals,
        legacy: None,
    };
    let mut proxies = Vec::new();
    let mut visitors = Vec::new();
    parsed.collect(strict, &mut proxies, &mut visitors)?;
    map::build(parsed.file, proxies, visitors, false)
}

fn read_file(path: &Path, opts: &LoadOptions) -> Result<Parsed, ConfigError> {
    let bytes = std::fs::read(path).map_err(|e| ConfigError::Read(io_text(path, &e)))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        ConfigError::Parse(format!("{}: the file is not UTF-8 text", path.display()))
    })?;
    parse_text(&text, path, opts)
}

/// Go's wording of a failed open (`open PATH: no such file or directory`).
fn io_text(path: &Path, e: &std::io::Error) -> String {
    let what = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    };
    format!("open {}: {what}", path.display())
}

/// A decoded file and how it spelled its keys (for messages).
struct Parsed {
    file: schema::ClientFile,
    originals: BTreeMap<String, String>,
    /// For a legacy INI file: the warnings of its conversion.
    legacy: Option<Vec<String>>,
}

impl Parsed {
    /// Decodes this file's proxies and visitors and appends them.
    fn collect(
        &self,
        strict: bool,
        proxies: &mut Vec<schema::Proxy>,
        visitors: &mut Vec<schema::Visitor>,
    ) -> Result<(), ConfigError> {
        collect(
            &self.file.proxies,
            &self.file.visitors,
            strict,
            &self.originals,
            proxies,
            visitors,
        )
    }
}

fn parse_text(text: &str, path: &Path, opts: &LoadOptions) -> Result<Parsed, ConfigError> {
    if ini::is_legacy(text) {
        let mut warnings = Vec::new();
        let mut value = ini::to_v1(text, &opts.envs, &mut warnings)?;
        let mut originals = BTreeMap::new();
        lowercase_keys(&mut value, &mut originals);
        // The INI reader only produces known fields; unknown INI keys are ignored as frpc's
        // INI reader ignores them.
        let file = decode(value, false, &originals, "")?;
        return Ok(Parsed {
            file,
            originals,
            legacy: Some(warnings),
        });
    }
    let rendered = template::render(text, &opts.envs).map_err(|e| ConfigError::Parse(e.0))?;
    let mut value = to_value(&rendered, path)?;
    let mut originals = BTreeMap::new();
    lowercase_keys(&mut value, &mut originals);
    let file = decode(value, opts.strict, &originals, "")?;
    Ok(Parsed {
        file,
        originals,
        legacy: None,
    })
}

/// The document as JSON, chosen the way frpc chooses: TOML, else JSON, else YAML.
fn to_value(text: &str, path: &Path) -> Result<Value, ConfigError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let value = match toml::from_str::<toml::Table>(text) {
        Ok(table) => {
            serde_json::to_value(table).map_err(|e| ConfigError::Parse(format!("toml: {e}")))?
        }
        Err(e) if ext.as_deref() == Some("toml") => {
            return Err(ConfigError::Parse(format!(
                "toml: {}",
                e.to_string().trim_end()
            )))
        }
        Err(_) if text.trim_start().starts_with('{') => {
            serde_json::from_str(text).map_err(|e| ConfigError::Parse(format!("json: {e}")))?
        }
        Err(_) => {
            let mut yaml: serde_norway::Value = serde_norway::from_str(text)
                .map_err(|e| ConfigError::Parse(format!("yaml: {e}")))?;
            yaml.apply_merge()
                .map_err(|e| ConfigError::Parse(format!("yaml: {e}")))?;
            let mut v =
                serde_json::to_value(yaml).map_err(|e| ConfigError::Parse(format!("yaml: {e}")))?;
            if v.is_null() {
                v = Value::Object(Map::new());
            }
            yaml::booleans(&mut v);
            // Top-level keys starting with '.' hold YAML anchors for reuse, as in frpc.
            if let Value::Object(m) = &mut v {
                m.retain(|k, _| !k.starts_with('.'));
            }
            v
        }
    };
    if !value.is_object() {
        return Err(ConfigError::Parse(
            "json: cannot unmarshal a non-object into the client config".into(),
        ));
    }
    Ok(value)
}

/// Lowercases every key except inside free-form maps, remembering how the file spelled each.
fn lowercase_keys(v: &mut Value, originals: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) => {
            let old = std::mem::take(m);
            for (k, mut child) in old {
                let lower = k.to_lowercase();
                if !schema::FREE_FORM.contains(&lower.as_str()) {
                    lowercase_keys(&mut child, originals);
                }
                originals.entry(lower.clone()).or_insert(k);
                // Go's decoder lets the last of two spellings win; so does this.
                m.insert(lower, child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| lowercase_keys(i, originals)),
        _ => {}
    }
}

/// Decodes `value`; in strict mode an unknown key is frpc's `json: unknown field "NAME"`. A
/// value of the wrong type names its field, as frpc's message does (`json: invalid type: …
/// (field transport.poolCount)`).
fn decode<T: DeserializeOwned>(
    value: Value,
    strict: bool,
    originals: &BTreeMap<String, String>,
    context: &str,
) -> Result<T, ConfigError> {
    let mut unknown = None;
    let mut note_unknown = |path: serde_ignored::Path<'_>| {
        if unknown.is_none() {
            let full = path.to_string();
            let last = full.rsplit('.').next().unwrap_or("").to_owned();
            unknown = Some(last);
        }
    };
    let de = serde_ignored::Deserializer::new(value, &mut note_unknown);
    let decoded: T = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = spelled(&e.path().to_string(), originals);
        let inner = e.into_inner();
        if field.is_empty() || field == "." {
            ConfigError::Parse(format!("{context}json: {inner}"))
        } else {
            ConfigError::Parse(format!("{context}json: {inner} (field {field})"))
        }
    })?;
    match unknown {
        Some(key) if strict => {
            let shown = originals.get(&key).cloned().unwrap_or(key);
            Err(ConfigError::Parse(format!(
                "{context}json: unknown field \"{shown}\""
            )))
        }
        _ => Ok(decoded),
    }
}

/// A field path (`transport.poolcount`, `proxies[0].localport`) with each key as the file
/// spelled it.
fn spelled(path: &str, originals: &BTreeMap<String, String>) -> String {
    path.split('.')
        .map(|part| {
            let (key, index) = part.split_at(part.find('[').unwrap_or(part.len()));
            let key = originals.get(key).map_or(key, String::as_str);
            format!("{key}{index}")
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Decodes the proxies and visitors of one file and appends them.
fn collect(
    proxies: &[Value],
    visitors: &[Value],
    strict: bool,
    originals: &BTreeMap<String, String>,
    out: &mut Vec<schema::Proxy>,
    out_visitors: &mut Vec<schema::Visitor>,
) -> Result<(), ConfigError> {
    const CTX: &str = "unmarshal ProxyConfig error: ";
    for raw in proxies {
        let Value::Object(fields) = raw else {
            return Err(ConfigError::Parse("type is required".into()));
        };
        let kind = fields.get("type").and_then(Value::as_str).unwrap_or("");
        let Some(extra) = schema::type_fields(kind) else {
            return Err(ConfigError::Parse(format!("unknown proxy type: {kind}")));
        };
        if strict {
            if let Some(k) = fields.keys().find(|k| {
                !schema::BASE_FIELDS.contains(&k.as_str()) && !extra.contains(&k.as_str())
            }) {
                let shown = originals.get(k).unwrap_or(k);
                return Err(ConfigError::Parse(format!(
                    "{CTX}json: unknown field \"{shown}\""
                )));
            }
        }
        let proxy: schema::Proxy = decode(raw.clone(), strict, originals, CTX)?;
        // frp parses the bandwidth quantity while decoding, so a bad one fails the file.
        crate::frp::BandwidthLimit::parse(&proxy.transport.bandwidthlimit)
            .map_err(|e| ConfigError::Parse(format!("{CTX}{e}")))?;
        if let Some(p) = &proxy.plugin {
            plugin::check(p, strict, originals, CTX)?;
        }
        out.push(proxy);
    }
    const VCTX: &str = "unmarshal VisitorConfig error: ";
    for raw in visitors {
        let Value::Object(fields) = raw else {
            return Err(ConfigError::Parse("type is required".into()));
        };
        let kind = fields.get("type").and_then(Value::as_str).unwrap_or("");
        if !matches!(kind, "stcp" | "sudp" | "xtcp") {
            return Err(ConfigError::Parse(format!("unknown visitor type: {kind}")));
        }
        if strict {
            let known = |k: &str| {
                schema::VISITOR_FIELDS.contains(&k)
                    || (kind == "xtcp" && schema::XTCP_VISITOR_FIELDS.contains(&k))
            };
            if let Some(k) = fields.keys().find(|k| !known(k)) {
                let shown = originals.get(k).unwrap_or(k);
                return Err(ConfigError::Parse(format!(
                    "{VCTX}json: unknown field \"{shown}\""
                )));
            }
        }
        out_visitors.push(decode(raw.clone(), strict, originals, VCTX)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
