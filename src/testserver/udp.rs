//! udp proxies: a UDP socket on the proxy's port relayed over one work connection at a time,
//! as frps's udp proxy does: 500 ms after registration it takes a work connection, exchanges
//! UDPPacket messages on it (inside the proxy's payload wrapping), drops it after 60 s without
//! a message from the client (which pings every 30 s) and then takes another. The messages
//! are v2 frames when the client's login spoke wire v2, as frps's.

use super::shared::{ControlHandle, Inner};
use super::splice::Wrapping;
use super::wire::{read_frame, BoxIo};
use crate::frp::wrapped::Wrapped;
use bytes::BytesMut;
use frp_proto::encode_frame;
use frp_proto::msg::StartWorkConn;
use frp_proto::udp::{self as proto_udp, WORK_CONN_READ_TIMEOUT};
use frp_proto::v2::{frame as frame_v2, FRAME_HEADER_LEN};
use frp_proto::Message;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio_util::sync::{CancellationToken, DropGuard};

/// frps waits this long after registering a udp proxy before taking a work connection, so the
/// client has its NewProxyResp first.
const FIRST_WORK_CONN_DELAY: Duration = Duration::from_millis(500);

/// What a udp proxy's task owns; `_stopped` fires once the socket is closed.
pub(crate) struct UdpProxy {
    pub(crate) socket: UdpSocket,
    pub(crate) name: String,
    pub(crate) ctl: Arc<ControlHandle>,
    pub(crate) wrapping: Wrapping,
    pub(crate) packet_size: usize,
    pub(crate) _stopped: DropGuard,
}

/// Runs a udp proxy until `stop` fires or the server is killed.
pub(crate) async fn run(inner: Arc<Inner>, proxy: UdpProxy, stop: CancellationToken) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = inner.cancel.cancelled() => {}
        _ = relay_forever(&inner, &proxy) => {}
    }
}

async fn relay_forever(inner: &Inner, proxy: &UdpProxy) {
    tokio::time::sleep(FIRST_WORK_CONN_DELAY).await;
    loop {
        let start = StartWorkConn {
            proxy_name: proxy.name.clone(),
            ..Default::default()
        };
        let Some(work) = proxy.ctl.take_work_conn(inner, start).await else {
            if proxy.ctl.close.is_cancelled() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        relay(proxy, work).await;
    }
}

/// Relays between the proxy's socket and one work connection until that connection fails or
/// stays silent too long.
async fn relay(proxy: &UdpProxy, work: BoxIo) {
    let w = &proxy.wrapping;
    let conn = Wrapped::new(work, w.encryption.as_ref(), w.compression, BytesMut::new());
    let (mut rd, mut wr) = tokio::io::split(conn);
    let v2 = proxy.ctl.wire_v2;
    let from_users = async {
        let mut buf = vec![0u8; proxy.packet_size];
        loop {
            let Ok((n, user)) = proxy.socket.recv_from(&mut buf).await else {
                continue;
            };
            let msg = Message::from(proto_udp::encode(&buf[..n], user));
            let written = if v2 {
                write_msg_v2(&mut wr, &msg).await
            } else {
                write_msg(&mut wr, &msg).await
            };
            if written.is_err() {
                return;
            }
        }
    };
    let from_client = async {
        let mut payload = Vec::new();
        loop {
            let read = async {
                if v2 {
                    read_frame_v2(&mut rd).await
                } else {
                    read_frame(&mut rd).await
                }
            };
            let msg = match tokio::time::timeout(WORK_CONN_READ_TIMEOUT, read).await {
                Ok(Ok(m)) => m,
                _ => return,
            };
            if let Message::UdpPacket(p) = msg {
                if let Ok(user) = proto_udp::decode_into(&p, &mut payload) {
                    let _ = proxy.socket.send_to(&payload, user).await;
                }
            }
        }
    };
    tokio::select! {
        _ = from_users => {}
        _ = from_client => {}
    }
}

/// Writes one frame (through the wrapping) and flushes.
pub(crate) async fn write_msg<W: AsyncWrite + Unpin>(
    w: &mut W,
    msg: &Message,
) -> std::io::Result<()> {
    let mut buf = BytesMut::with_capacity(256);
    encode_frame(msg, &mut buf)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    w.write_all(&buf).await?;
    w.flush().await
}

/// Writes one v2 message frame (through the wrapping) and flushes.
async fn write_msg_v2<W: AsyncWrite + Unpin>(w: &mut W, msg: &Message) -> std::io::Result<()> {
    let mut buf = BytesMut::with_capacity(256);
    frame_v2::encode_message(msg, &mut buf)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    w.write_all(&buf).await?;
    w.flush().await
}

/// Reads one v2 message frame.
async fn read_frame_v2<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Message> {
    let invalid = |e| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    let mut buf = BytesMut::zeroed(FRAME_HEADER_LEN);
    r.read_exact(&mut buf).await?;
    let header = frame_v2::FrameHeader::parse(&buf)
        .map_err(invalid)?
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
    buf.resize(FRAME_HEADER_LEN + header.len, 0);
    r.read_exact(&mut buf[FRAME_HEADER_LEN..]).await?;
    frame_v2::decode_message(&mut buf)
        .map_err(invalid)?
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))
}
