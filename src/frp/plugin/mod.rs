//! Client plugins (frpc's `[proxies.plugin]`): what a work connection is handed to instead of
//! a dial to `localIP:localPort`.
//!
//! `work` opens the payload wrapping (`use_encryption`, `use_compression`) and passes the plain
//! byte stream here with what StartWorkConn said about the visitor (its address, the PROXY
//! protocol header). One plugin instance per proxy is made when frps accepts the proxy
//! (reading or generating its certificate, building its HTTP client) and shared by its
//! connections; one that cannot be made is the proxy's start error, as in frpc.
//!
//! One file per plugin: `unix` (unix_domain_socket), `socks5`, `http_proxy`, `static_file`,
//! `reverse` (http2http, http2https, https2http, https2https: one reverse proxy, four
//! directions), `tls` (certificates, tls2raw); `http` holds what the HTTP ones share, `conn`
//! what all of them share (the connection type, the join). Each
//! connection runs in its own work task; nothing a plugin holds grows with the peer's input
//! (bounded header reads, bounded copy buffers), and nothing panics on the peer's bytes.

pub(crate) mod config;
mod conn;

pub use config::{PluginConfig, PluginKind};

#[cfg(feature = "plugins")]
mod http;
#[cfg(feature = "plugins")]
mod http_proxy;
#[cfg(feature = "plugins")]
mod reverse;
#[cfg(feature = "plugins")]
mod socks5;
#[cfg(feature = "plugins")]
mod static_file;
#[cfg(feature = "plugins")]
mod tls;
#[cfg(feature = "plugins")]
mod unix;

pub(crate) use conn::{PluginConn, Visitor};

use super::error::Error;

/// A proxy's plugin instance, made when frps accepts the proxy (as frpc makes its plugin when
/// the proxy starts) and kept for its connections. A plugin that fails to start leaves the
/// slot empty: the proxy is in "start error" and is tried again with its next registration.
#[derive(Default)]
pub(crate) struct Slot {
    #[cfg(feature = "plugins")]
    instance: std::sync::Mutex<Option<std::sync::Arc<Instance>>>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Slot")
    }
}

impl Slot {
    /// Makes the plugin instance unless there is one: frpc's plugin creation when the proxy
    /// starts. The error is frpc's text for the proxy's "start error". Runs on the control task:
    /// what it does is bounded and local (a certificate of a few KiB read, or a key
    /// generated; no network).
    #[cfg(feature = "plugins")]
    pub(crate) fn start(&self, config: &PluginConfig) -> Result<(), String> {
        self.get_or_start(config).map(drop)
    }

    /// Without the `plugins` feature there is nothing to start; connections are refused.
    #[cfg(not(feature = "plugins"))]
    pub(crate) fn start(&self, _config: &PluginConfig) -> Result<(), String> {
        Ok(())
    }

    #[cfg(feature = "plugins")]
    fn get_or_start(&self, config: &PluginConfig) -> Result<std::sync::Arc<Instance>, String> {
        let mut slot = self
            .instance
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(i) = slot.as_ref() {
            return Ok(i.clone());
        }
        let made = std::sync::Arc::new(Instance::new(config)?);
        *slot = Some(made.clone());
        Ok(made)
    }
}

/// Hands one work connection to the proxy's plugin and returns when the plugin is done with
/// it.
#[cfg(feature = "plugins")]
pub(crate) async fn serve(
    config: &PluginConfig,
    slot: &Slot,
    conn: PluginConn,
    visitor: Visitor,
) -> Result<(), Error> {
    // Started when frps accepted the proxy; made here only if a connection comes first.
    let instance = slot.get_or_start(config).map_err(|e| {
        tracing::warn!(proxy = %visitor.proxy, plugin = config.kind.name(), error = %e, "start error");
        Error::Config(format!("plugin {}: {e}", config.kind.name()))
    })?;
    instance.handle(conn, visitor).await
}

/// Without the `plugins` feature a proxy with a plugin cannot serve its visitors.
#[cfg(not(feature = "plugins"))]
pub(crate) async fn serve(
    config: &PluginConfig,
    _slot: &Slot,
    _conn: PluginConn,
    visitor: Visitor,
) -> Result<(), Error> {
    tracing::warn!(proxy = %visitor.proxy, plugin = config.kind.name(), "plugins are not compiled in (cargo feature `plugins`)");
    Err(Error::Config(format!(
        "plugin {} needs the `plugins` feature",
        config.kind.name()
    )))
}

/// A plugin ready to serve connections.
#[cfg(feature = "plugins")]
enum Instance {
    Unix(std::path::PathBuf),
    Socks5(socks5::Socks5),
    HttpProxy(Box<http_proxy::HttpProxy>),
    StaticFile(static_file::StaticFile),
    Reverse(Box<reverse::Reverse>),
    Tls2Raw(tls::Tls2Raw),
}

#[cfg(feature = "plugins")]
impl Instance {
    fn new(config: &PluginConfig) -> Result<Self, String> {
        Ok(match config.kind {
            PluginKind::UnixDomainSocket => Instance::Unix(config.unix_path.clone()),
            PluginKind::Socks5 => Instance::Socks5(socks5::Socks5::new(config)),
            PluginKind::HttpProxy => {
                Instance::HttpProxy(Box::new(http_proxy::HttpProxy::new(config)?))
            }
            PluginKind::StaticFile => Instance::StaticFile(static_file::StaticFile::new(config)),
            PluginKind::Tls2Raw => Instance::Tls2Raw(tls::Tls2Raw::new(config)?),
            PluginKind::Http2Http
            | PluginKind::Http2Https
            | PluginKind::Https2Http
            | PluginKind::Https2Https => {
                Instance::Reverse(Box::new(reverse::Reverse::new(config)?))
            }
        })
    }

    async fn handle(&self, conn: PluginConn, visitor: Visitor) -> Result<(), Error> {
        match self {
            Instance::Unix(path) => unix::handle(path, conn, visitor).await,
            Instance::Socks5(p) => p.handle(conn).await,
            Instance::HttpProxy(p) => p.handle(conn).await,
            Instance::StaticFile(p) => p.handle(conn).await,
            Instance::Reverse(p) => p.handle(conn, visitor).await,
            Instance::Tls2Raw(p) => p.handle(conn, visitor).await,
        }
    }
}
