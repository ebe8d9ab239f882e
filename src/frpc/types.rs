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
    /// Unsafe features allowed (frpc's `--allow-unsafe`), e.g. `TokenSourceExec`.
    pub allow_unsafe: Vec<String>,
}

impl LoadOptions {
    /// Options with the process environment as `.Envs`.
    pub fn new(strict: bool) -> Self {
        let envs = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        LoadOptions {
            strict,
            envs,
            allow_unsafe: Vec::new(),
        }
    }

    /// Options with exactly these variables as `.Envs` (for tests and embedding).
    pub fn with_envs(strict: bool, envs: BTreeMap<String, String>) -> Self {
        LoadOptions {
            strict,
            envs,
            allow_unsafe: Vec::new(),
        }
    }

    /// Allows these unsafe features (frpc's `--allow-unsafe`).
    pub fn allow_unsafe(mut self, features: Vec<String>) -> Self {
        self.allow_unsafe = features;
        self
    }

    pub(crate) fn exec_allowed(&self) -> bool {
        self.allow_unsafe
            .iter()
            .any(|f| f == super::value_source::TOKEN_SOURCE_EXEC)
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
    /// The file was in frpc's deprecated INI format (frpc prints a warning for it).
    pub legacy_ini: bool,
    /// `auth.tokenSource`: where the token comes from. [`FrpcConfig::resolve_token`] reads it
    /// when the client starts (loading and verifying never do, as in frpc).
    pub token_source: Option<super::value_source::ValueSource>,
    /// `log.to`: `console` (the default) or a file path.
    pub log_to: String,
    /// `log.maxDays` (default 3): days of rotated log files kept; 0 or less keeps all.
    pub log_max_days: i64,
}

impl FrpcConfig {
    /// Reads `auth.tokenSource` into the client's token; nothing to do without one. The error
    /// is frpc's `failed to resolve auth.tokenSource: …`. May run a program (only when the
    /// config was loaded with `TokenSourceExec` allowed); it blocks until that ends.
    pub fn resolve_token(&mut self) -> Result<(), ConfigError> {
        if let Some(source) = &self.token_source {
            let token = source.resolve().map_err(|e| {
                ConfigError::Read(format!("failed to resolve auth.tokenSource: {e}"))
            })?;
            self.client.token = Secret::new(token);
        }
        Ok(())
    }
}
