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
//! directions), `tls` (certificates, tls2raw); `http` holds what the HTTP ones share. Each
//! connection runs in its own work task; nothing a plugin holds grows with the peer's input
//! (bounded header reads, bounded copy buffers), and nothing panics on the peer's bytes.

mod config;

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

use super::error::Error;
use super::transport::BoxStream;
use super::wrapped::Wrapped;
use frp_proto::proxy_protocol::Header;
use std::net::SocketAddr;

/// A work connection as a plugin sees it: the visitor's plain bytes.
pub(crate) type PluginConn = Wrapped<BoxStream>;

/// What StartWorkConn said about the visitor.
#[cfg_attr(not(feature = "plugins"), allow(dead_code))]
pub(crate) struct Visitor {
    /// The proxy's name, for log lines.
    pub proxy: String,
    /// The visitor's address, when frps gave one (the http plugins' `X-Forwarded-For`).
    pub src: Option<SocketAddr>,
    /// The PROXY protocol header, when the proxy asks for one and frps gave the addresses
    /// (unix_domain_socket writes it to the socket first, as frpc does).
    pub header: Option<Header>,
}

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

/// Joins two streams as frp does: bytes both ways until either direction ends, then both are
/// shut down. Two fixed 8 KiB buffers, nothing else held.
#[cfg(feature = "plugins")]
pub(crate) async fn join<A, B>(a: A, b: B) -> std::io::Result<()>
where
    A: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    B: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt;
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    let ab = async {
        tokio::io::copy(&mut ar, &mut bw).await?;
        bw.shutdown().await
    };
    let ba = async {
        tokio::io::copy(&mut br, &mut aw).await?;
        aw.shutdown().await
    };
    tokio::select! {
        r = ab => r,
        r = ba => r,
    }
}

/// Compares two secrets in time that depends only on their lengths, as frpc's
/// `ConstantTimeEqString`.
#[cfg(feature = "plugins")]
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
