//! Client plugins (frpc's `[proxies.plugin]`): what a work connection is handed to instead of
//! a dial to `localIP:localPort`.
//!
//! `work` opens the payload wrapping (`use_encryption`, `use_compression`) and passes the plain
//! byte stream here with what StartWorkConn said about the visitor (its address, the PROXY
//! protocol header). One plugin instance per proxy is made on the proxy's first connection
//! (reading or generating its certificate, building its HTTP client) and shared by the rest.
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

/// A proxy's plugin instance, made on its first connection and kept for the rest; a failure
/// is kept too (and reported once), so a broken plugin does not retry on every visitor.
#[derive(Default)]
pub(crate) struct Slot {
    #[cfg(feature = "plugins")]
    instance: tokio::sync::OnceCell<Result<std::sync::Arc<Instance>, String>>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Slot")
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
    let instance = slot
        .instance
        .get_or_init(|| async {
            Instance::new(config).await.map(std::sync::Arc::new).map_err(|e| {
                tracing::warn!(proxy = %visitor.proxy, plugin = config.kind.name(), error = %e, "run proxy error");
                e
            })
        })
        .await;
    let instance = match instance {
        Ok(i) => i.clone(),
        Err(e) => return Err(Error::Config(format!("plugin {}: {e}", config.kind.name()))),
    };
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
    async fn new(config: &PluginConfig) -> Result<Self, String> {
        Ok(match config.kind {
            PluginKind::UnixDomainSocket => Instance::Unix(config.unix_path.clone()),
            PluginKind::Socks5 => Instance::Socks5(socks5::Socks5::new(config)),
            PluginKind::HttpProxy => {
                Instance::HttpProxy(Box::new(http_proxy::HttpProxy::new(config)?))
            }
            PluginKind::StaticFile => Instance::StaticFile(static_file::StaticFile::new(config)),
            PluginKind::Tls2Raw => Instance::Tls2Raw(tls::Tls2Raw::new(config).await?),
            PluginKind::Http2Http
            | PluginKind::Http2Https
            | PluginKind::Https2Http
            | PluginKind::Https2Https => {
                Instance::Reverse(Box::new(reverse::Reverse::new(config).await?))
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
