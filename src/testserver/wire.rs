//! Byte streams and the plaintext frame helpers every part of the server uses.

use bytes::BytesMut;
use frp_proto::frame::{frame_len, HEADER_LEN};
use frp_proto::{decode_frame, encode_frame, Message};
use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// frps's `connReadTimeout`: first byte of a connection, first message of a frp connection.
pub(crate) const CONN_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a closing side may take to flush and send its FIN before it is simply dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Any byte stream the server handles: TCP, TLS over TCP, a yamux stream.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A boxed [`Io`], so pools and splices need not be generic over the transport.
pub(crate) type BoxIo = Box<dyn Io>;

/// 16 random lowercase hex characters, like frps's run ids.
pub(crate) fn random_hex16() -> String {
    frp_proto::auth::to_hex(&rand::random::<[u8; 8]>())
}

fn invalid(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Reads exactly one plaintext frame and nothing after it, so whatever follows (a Login's IV
/// and ciphertext) is still in the stream for the next reader.
pub(crate) async fn read_frame<R: AsyncRead + Unpin + ?Sized>(r: &mut R) -> io::Result<Message> {
    let mut buf = BytesMut::zeroed(HEADER_LEN);
    r.read_exact(&mut buf).await?;
    // Checks the type byte and the length against frp's limits before reading the body.
    let len = frame_len(&buf)
        .map_err(invalid)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "incomplete frame header"))?;
    buf.resize(len, 0);
    r.read_exact(&mut buf[HEADER_LEN..]).await?;
    decode_frame(&mut buf)
        .map_err(invalid)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "incomplete frame"))
}

/// Writes one plaintext frame and flushes.
pub(crate) async fn write_frame(io: &mut BoxIo, msg: &Message) -> io::Result<()> {
    let mut buf = BytesMut::with_capacity(128);
    encode_frame(msg, &mut buf).map_err(invalid)?;
    io.write_all(&buf).await?;
    io.flush().await
}

/// Best-effort graceful close (FIN / close_notify) of one side, bounded in time.
pub(crate) async fn close<T: AsyncWrite + Unpin + ?Sized>(io: &mut T) {
    let _ = tokio::time::timeout(CLOSE_GRACE, io.shutdown()).await;
}
