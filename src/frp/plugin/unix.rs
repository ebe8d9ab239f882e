//! unix_domain_socket: each connection is spliced to a Unix domain socket, after the PROXY
//! protocol header when the proxy asks for one (frpc writes it there too).

use super::conn::{PluginConn, Visitor};
use crate::frp::error::Error;
use std::path::Path;

/// Dials `path` and joins it with the visitor.
#[cfg(unix)]
pub(super) async fn handle(path: &Path, conn: PluginConn, visitor: Visitor) -> Result<(), Error> {
    use tokio::io::AsyncWriteExt;
    let mut local = match tokio::net::UnixStream::connect(path).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(proxy = %visitor.proxy, "dial to uds {} error: {e}", path.display());
            return Ok(());
        }
    };
    if let Some(header) = &visitor.header {
        local.write_all(header.as_bytes()).await?;
    }
    super::conn::join(local, conn).await?;
    Ok(())
}

/// Unix domain sockets exist only on Unix.
#[cfg(not(unix))]
pub(super) async fn handle(path: &Path, _conn: PluginConn, visitor: Visitor) -> Result<(), Error> {
    tracing::warn!(proxy = %visitor.proxy, "dial to uds {} error: unix domain sockets are not supported on this platform", path.display());
    Ok(())
}
