//! The bind port's websocket side, as frps has it: a connection whose first bytes are
//! `GET /~!frp` is an HTTP upgrade to a websocket, and frp (TLS-sniffed again, then yamux or
//! a single frp connection) runs inside it. Also inside TLS (frpc's `wss`), which frps leaves
//! to a TLS-terminating reverse proxy in front of it and this server does itself.

use super::wire::{BoxIo, CONN_READ_TIMEOUT};
use crate::frp::ws::{accept_key, read_head, Role, WsStream, WS_PATH};
use crate::frp::Prefixed;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The prefix frps's port muxer matches to route a connection to its websocket listener.
pub(crate) const WS_PREFIX: &[u8; 10] = b"GET /~!frp";

/// Reads up to `n` bytes (fewer only at end of stream) within the connection read timeout.
pub(crate) async fn read_some(io: &mut BoxIo, n: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; n];
    let mut have = 0;
    let fill = async {
        while have < n {
            match io.read(&mut buf[have..]).await {
                Ok(0) => break,
                Ok(k) => have += k,
                Err(_) => return None,
            }
        }
        Some(())
    };
    tokio::time::timeout(CONN_READ_TIMEOUT, fill).await.ok()??;
    buf.truncate(have);
    Some(buf)
}

/// If the stream starts with frp's websocket request, answers the upgrade and returns the
/// websocket stream (`Ok(Some)`); otherwise returns the stream with what was read put back
/// (`Err`). `None`: a broken or refused upgrade; the connection is dropped.
pub(crate) async fn maybe_accept(mut io: BoxIo) -> Option<Result<BoxIo, BoxIo>> {
    let first = read_some(&mut io, 1).await?;
    if first.first() != Some(&WS_PREFIX[0]) {
        return Some(Err(Box::new(Prefixed::new(first, io))));
    }
    let mut rest = read_some(&mut io, WS_PREFIX.len() - 1).await?;
    let mut got = first;
    got.append(&mut rest);
    let mut io: BoxIo = Box::new(Prefixed::new(got.clone(), io));
    if got != WS_PREFIX {
        return Some(Err(io));
    }
    let head = tokio::time::timeout(CONN_READ_TIMEOUT, read_head(&mut io))
        .await
        .ok()?
        .ok()?;
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let complete = matches!(req.parse(&head), Ok(httparse::Status::Complete(_)));
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    };
    let upgrade_ok = complete
        && req.path == Some(WS_PATH)
        && header("Upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        && header("Connection").is_some_and(|v| v.to_ascii_lowercase().contains("upgrade"))
        && header("Sec-WebSocket-Version") == Some("13");
    let key = header("Sec-WebSocket-Key").filter(|k| !k.is_empty());
    let (true, Some(key)) = (upgrade_ok, key) else {
        let _ = io
            .write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await;
        return None;
    };
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key)
    );
    io.write_all(resp.as_bytes()).await.ok()?;
    io.flush().await.ok()?;
    // Frame headers are read a few bytes at a time: buffer them.
    let io = tokio::io::BufReader::with_capacity(64 * 1024, io);
    Some(Ok(Box::new(WsStream::new(io, Role::Server))))
}
