//! Where the API key, base URL, team and user come from, in the same order as Prime's tools.
//!
//! Highest priority first:
//! - API key: env `PRIME_API_KEY`, then `api_key` in the config.
//! - Base URL: env `PRIME_API_BASE_URL`, then `PRIME_BASE_URL`, then `base_url` in the config,
//!   then [`DEFAULT_BASE_URL`]. A trailing `/api/v1` (and slashes) is stripped.
//! - Team: env `PRIME_TEAM_ID` when set at all (empty means "no team"), then `team_id`.
//! - User: env `PRIME_USER_ID` when set at all, then `user_id`.
//!
//! "The config" is `~/.prime/config.json` (a flat JSON object; missing is fine), with
//! `~/.prime/environments/<name>.json` laid over it when env `PRIME_CONTEXT=<name>`. The context
//! `production` needs no file: it resets `base_url` to the default and clears the team.

use super::error::PrimeError;
use crate::secret::Secret;
use crate::text::has_unsafe_chars;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// The hosted API.
pub const DEFAULT_BASE_URL: &str = "https://api.primeintellect.ai";

/// The context name that means "the default API, no team".
const PRODUCTION_CONTEXT: &str = "production";

/// Larger config files are refused rather than read (they are a few hundred bytes).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Everything the client needs to reach the API as the user.
///
/// `Debug` is safe to log: the key is a [`Secret`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PrimeConfig {
    /// The API key, sent as `Authorization: Bearer <key>`.
    pub api_key: Secret,
    /// API root without `/api/v1` and without a trailing slash.
    pub base_url: String,
    /// Team used by create and list when the request names none.
    pub team_id: Option<String>,
    /// The user's id, for "only mine" filters.
    pub user_id: Option<String>,
    /// The `PRIME_CONTEXT` in effect, if any.
    pub context: Option<String>,
}

/// The fields read from a config file, before the environment is applied.
#[derive(Default)]
struct FileValues {
    api_key: Option<String>,
    base_url: Option<String>,
    team_id: Option<String>,
    user_id: Option<String>,
}

impl PrimeConfig {
    /// A configuration from explicit values (no files, no environment); `base_url` is
    /// normalised like a configured one.
    pub fn new(api_key: impl Into<Secret>, base_url: &str) -> Self {
        PrimeConfig {
            api_key: api_key.into(),
            base_url: normalize_base_url(base_url),
            team_id: None,
            user_id: None,
            context: None,
        }
    }

    /// Reads the process environment and `~/.prime` (see the module docs for the order).
    pub fn load() -> Result<Self, PrimeError> {
        Self::from_sources(|name| std::env::var(name).ok(), home_dir())
    }

    /// Like [`PrimeConfig::load`], with the environment given as a lookup function and the home
    /// directory given explicitly (`None`: no config files are read). For tests and embedding.
    pub fn from_sources(
        env: impl Fn(&str) -> Option<String>,
        home: Option<PathBuf>,
    ) -> Result<Self, PrimeError> {
        let prime_dir = home.map(|h| h.join(".prime"));

        let mut file = match &prime_dir {
            Some(dir) => read_values(&dir.join("config.json"), false)?.unwrap_or_default(),
            None => FileValues::default(),
        };

        let context = env("PRIME_CONTEXT").filter(|c| !c.is_empty());
        if let Some(name) = &context {
            apply_context(&mut file, name, prime_dir.as_deref())?;
        }

        let api_key = non_empty(env("PRIME_API_KEY").map(|k| k.trim().to_owned()))
            .or_else(|| non_empty(file.api_key.map(|k| k.trim().to_owned())))
            .ok_or(PrimeError::MissingApiKey)?;
        if !api_key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(PrimeError::Config(
                "the API key contains spaces, control or non-ASCII characters".to_owned(),
            ));
        }

        let (base_url, source) = if let Some(u) = non_empty(env("PRIME_API_BASE_URL")) {
            (u, "PRIME_API_BASE_URL".to_owned())
        } else if let Some(u) = non_empty(env("PRIME_BASE_URL")) {
            (u, "PRIME_BASE_URL".to_owned())
        } else if let Some(u) = non_empty(file.base_url) {
            (u, "`base_url` in the config file".to_owned())
        } else {
            (DEFAULT_BASE_URL.to_owned(), "the default".to_owned())
        };
        let base_url = normalize_base_url(&base_url);
        check_base_url(&base_url).map_err(|why| {
            PrimeError::Config(format!("base URL from {source} {why}: {base_url:?}"))
        })?;

        // Any set PRIME_TEAM_ID wins, even an empty one (which means "no team").
        let team_id = match env("PRIME_TEAM_ID") {
            Some(t) => non_empty(Some(t)),
            None => non_empty(file.team_id),
        };
        let user_id = match env("PRIME_USER_ID") {
            Some(u) => non_empty(Some(u)),
            None => non_empty(file.user_id),
        };

        Ok(PrimeConfig {
            api_key: Secret::new(api_key),
            base_url,
            team_id,
            user_id,
            context,
        })
    }
}

/// `$HOME`, or `%USERPROFILE%` on Windows.
fn home_dir() -> Option<PathBuf> {
    let var = if cfg!(windows) { "USERPROFILE" } else { "HOME" };
    std::env::var_os(var)
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// Lays the context `name` over `file`.
fn apply_context(
    file: &mut FileValues,
    name: &str,
    prime_dir: Option<&Path>,
) -> Result<(), PrimeError> {
    if name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(PrimeError::Config(format!(
            "PRIME_CONTEXT {:?} is not a valid context name (letters, digits, '_' and '-' only)",
            name.chars().take(64).collect::<String>()
        )));
    }
    if name == PRODUCTION_CONTEXT {
        file.base_url = None;
        file.team_id = None;
        return Ok(());
    }
    let dir = prime_dir.ok_or_else(|| {
        PrimeError::Config(format!(
            "PRIME_CONTEXT={name} is set but the home directory is unknown"
        ))
    })?;
    let path = dir.join("environments").join(format!("{name}.json"));
    let overlay = read_object(&path, true)?.unwrap_or_default();
    overlay_values(file, &overlay, &path)
}

/// Reads a config file's values; `Ok(None)` when it does not exist and `required` is false.
fn read_values(path: &Path, required: bool) -> Result<Option<FileValues>, PrimeError> {
    let Some(obj) = read_object(path, required)? else {
        return Ok(None);
    };
    let mut values = FileValues::default();
    overlay_values(&mut values, &obj, path)?;
    Ok(Some(values))
}

/// Sets each known key present in `obj` (a `null` clears it).
fn overlay_values(
    values: &mut FileValues,
    obj: &Map<String, Value>,
    path: &Path,
) -> Result<(), PrimeError> {
    let slots: [(&str, &mut Option<String>); 4] = [
        ("api_key", &mut values.api_key),
        ("base_url", &mut values.base_url),
        ("team_id", &mut values.team_id),
        ("user_id", &mut values.user_id),
    ];
    for (key, slot) in slots {
        let Some(v) = obj.get(key) else { continue };
        *slot = match v {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => {
                return Err(PrimeError::ConfigFile {
                    path: path.to_owned(),
                    reason: format!("`{key}` must be a string"),
                })
            }
        };
        if slot.as_deref().is_some_and(has_unsafe_chars) {
            return Err(PrimeError::ConfigFile {
                path: path.to_owned(),
                reason: format!("`{key}` contains control characters"),
            });
        }
    }
    Ok(())
}

/// Reads a JSON object from `path`; `Ok(None)` when it does not exist and `required` is false.
fn read_object(path: &Path, required: bool) -> Result<Option<Map<String, Value>>, PrimeError> {
    let file_err = |reason: String| PrimeError::ConfigFile {
        path: path.to_owned(),
        reason,
    };
    let bytes = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(file_err(
                "no such file (is PRIME_CONTEXT right?)".to_owned(),
            ))
        }
        Err(e) => return Err(file_err(format!("cannot read it: {e}"))),
        Ok(m) if m.len() > MAX_CONFIG_BYTES => {
            return Err(file_err(format!("larger than {MAX_CONFIG_BYTES} bytes")))
        }
        Ok(_) => std::fs::read(path).map_err(|e| file_err(format!("cannot read it: {e}")))?,
    };
    // serde_json's syntax errors name a position, never the text, so no secret is quoted.
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(file_err("expected a JSON object".to_owned())),
        Err(e) => Err(file_err(format!(
            "not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))),
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

/// Trims whitespace and trailing slashes and removes a trailing `/api/v1`.
pub(crate) fn normalize_base_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    let url = url.strip_suffix("/api/v1").unwrap_or(url);
    url.trim_end_matches('/').to_owned()
}

/// Checks a normalised base URL; the error completes "base URL from X ...".
pub(crate) fn check_base_url(url: &str) -> Result<(), &'static str> {
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return Err("must start with https:// or http://");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains spaces or control characters");
    }
    match reqwest::Url::parse(url) {
        Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => {}
        _ => return Err("is not a valid URL"),
    }
    if url.contains('?') || url.contains('#') {
        return Err("must not have a query or fragment");
    }
    Ok(())
}
