//! What every plugin shares: the connection it is handed, what is known about the visitor, and
//! frp's join of two streams.

use crate::frp::metered::Metered;
use crate::frp::transport::BoxStream;
use crate::frp::wrapped::Wrapped;
use frp_proto::proxy_protocol::Header;
use std::net::SocketAddr;

/// A work connection as a plugin sees it: the visitor's plain bytes, counted (the work
/// connection under it carries the proxy's bandwidth limit, if any).
pub(crate) type PluginConn = Metered<Wrapped<BoxStream>>;

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

#[cfg(feature = "plugins")]
/// Joins two streams as frp does: bytes both ways until either direction ends, then both are
/// shut down. Two fixed 8 KiB buffers, nothing else held.
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
