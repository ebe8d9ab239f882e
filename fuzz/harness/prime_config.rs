//! The Prime config files (`~/.prime/config.json` and the `PRIME_CONTEXT` overlay
//! `~/.prime/environments/<name>.json`) read by `PrimeConfig::from_sources`, with the input as
//! their contents.
//!
//! Input: a byte choosing `PRIME_CONTEXT` (none, `production`, `dev` with its file, `gone`
//! without one, or an odd name), a byte of environment flags (API key, base URL, empty team
//! set in the environment), two bytes giving the length of `config.json`, then `config.json`
//! and the rest as `environments/dev.json`. The files live in a fresh temporary directory per
//! run, removed afterwards.
//!
//! Invariants: no panic; an error message is printable and never quotes the API key from a
//! file; an accepted configuration has a printable ASCII key, a base URL that passes the
//! client's checks, and no control characters in the team or user from the files.

use super::{is_unsafe_char, Input};
use expose::prime::{PrimeConfig, PrimeError};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// A directory of its own for each run, under the system's temporary directory.
fn fresh_dir() -> PathBuf {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let n = RUNS.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "expose-fuzz-prime-config-{}-{n}",
        std::process::id()
    ))
}

/// The `api_key` string of a JSON file, when long enough that finding it cannot be chance and
/// it stands nowhere else in the file.
fn file_key(contents: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(contents).ok()?;
    let key = v.get("api_key")?.as_str()?;
    let text = String::from_utf8_lossy(contents);
    (key.chars().count() >= 12 && text.matches(key).count() == 1).then(|| key.to_owned())
}

fn check(result: &Result<PrimeConfig, PrimeError>, keys: &[String]) {
    match result {
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.chars().any(is_unsafe_char), "not printable: {msg:?}");
            for k in keys {
                assert!(!msg.contains(k.as_str()), "the API key in {msg:?}");
            }
        }
        Ok(cfg) => {
            let key = cfg.api_key.expose();
            assert!(!key.is_empty() && key.bytes().all(|b| b.is_ascii_graphic()));
            let url = cfg.base_url.to_ascii_lowercase();
            assert!(
                url.starts_with("https://") || url.starts_with("http://"),
                "{url:?}"
            );
            assert!(!url.ends_with('/') && !url.contains(['?', '#']), "{url:?}");
            assert!(!url.chars().any(|c| c.is_whitespace() || c.is_control()));
            for s in [&cfg.team_id, &cfg.user_id].into_iter().flatten() {
                assert!(!s.chars().any(is_unsafe_char), "{s:?}");
            }
        }
    }
}

/// Runs the checks on one input.
pub fn run(data: &[u8]) {
    let mut input = Input(data);
    let context = match input.byte() % 6 {
        0 => None,
        1 => Some("production".to_owned()),
        2 | 3 => Some("dev".to_owned()),
        4 => Some("gone".to_owned()),
        _ => Some(String::from_utf8_lossy(input.take(8)).into_owned()),
    };
    let flags = input.byte();
    let n = input.u16() as usize;
    let config = input.take(n);
    let overlay = input.rest();

    let home = fresh_dir();
    let prime = home.join(".prime");
    std::fs::create_dir_all(prime.join("environments")).expect("temporary directory");
    std::fs::write(prime.join("config.json"), config).expect("config.json");
    std::fs::write(prime.join("environments/dev.json"), overlay).expect("dev.json");

    let env = |name: &str| -> Option<String> {
        match name {
            "PRIME_CONTEXT" => context.clone(),
            "PRIME_API_KEY" if flags & 1 != 0 => Some("env-key-0123456789".to_owned()),
            "PRIME_BASE_URL" if flags & 2 != 0 => Some("http://127.0.0.1:8080/api/v1/".to_owned()),
            "PRIME_TEAM_ID" if flags & 4 != 0 => Some(String::new()),
            _ => None,
        }
    };
    let result = PrimeConfig::from_sources(env, Some(home.clone()));
    let _ = std::fs::remove_dir_all(&home);
    let keys: Vec<String> = [file_key(config), file_key(overlay)]
        .into_iter()
        .flatten()
        .collect();
    check(&result, &keys);
}
