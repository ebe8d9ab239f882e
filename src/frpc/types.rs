//! The loader's public types: options, result and errors. A leaf module, so the loader's parts
//! can all use them without depending on each other.

use crate::frp::ClientConfig;
use crate::secret::Secret;
use std::collections::BTreeMap;

/// A config file that cannot be used; the text is frpc's where frpc has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file (or an included one) could not be read.
    #[error("{0}")]
    Read(String),
    /// Template, syntax or type error.
    #[error("{0}")]
    Parse(String),
    /// A value frpc's validation refuses.
    #[error("{0}")]
    Invalid(String),
    /// Valid for frpc, but not implemented by this client yet.
    #[error("{0}")]
    Unsupported(String),
}

/// How to load a file.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoadOptions {
    /// Unknown fields are errors (frpc's `--strict_config`, on by default).
    pub strict: bool,
    /// The values of `{{ .Envs.NAME }}`.
    pub envs: BTreeMap<String, String>,
}

impl LoadOptions {
    /// Options with the process environment as `.Envs`.
    pub fn new(strict: bool) -> Self {
        let envs = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        LoadOptions { strict, envs }
    }

    /// Options with exactly these variables as `.Envs` (for tests and embedding).
    pub fn with_envs(strict: bool, envs: BTreeMap<String, String>) -> Self {
        LoadOptions { strict, envs }
    }
}

/// frpc's admin web server settings (`webServer.*`). The library only loads them; the `expose`
/// binary serves the admin API from them.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct WebServer {
    /// Listen address (default 127.0.0.1).
    pub addr: String,
    /// Listen port; 0: no admin server.
    pub port: u16,
    /// Basic-auth user.
    pub user: String,
    /// Basic-auth password.
    pub password: Secret,
}

/// A loaded and validated frpc config.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FrpcConfig {
    /// The client with all proxies that `start` and `enabled` leave, in file order (then the
    /// included files' proxies).
    pub client: ClientConfig,
    /// `webServer.*`.
    pub web_server: WebServer,
    /// `log.level` (default `info`).
    pub log_level: String,
    /// Things that load but do not act as in frpc, one sentence each.
    pub warnings: Vec<String>,
}
