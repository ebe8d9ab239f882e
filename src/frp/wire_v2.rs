//! Which wire protocol the client speaks, and how the control connection starts in v2.
//!
//! - `v1` (frp's default): as frpc always did.
//! - `v2` (frpc's `transport.wireProtocol = "v2"`, frps 0.69 or later): magic, ClientHello and
//!   the Login at once, as frpc writes them; the ServerHello then LoginResp; the AEAD control
//!   streams after that. Work and visitor connections send the magic before their first frame.
//! - `auto` (ours, not frpc's): v2 when the server speaks it, v1 otherwise. The control
//!   connection first sends only the magic and the ClientHello, which hold no secret (a random
//!   and the algorithm names), and waits for the answer before the Login goes out:
//!   - a valid ServerHello: the server speaks v2; the Login follows on the same connection.
//!   - the server closes (or resets) the connection without a byte: a frps older than 0.69
//!     reads the magic as a v1 frame type it does not know and closes at once. The client
//!     dials again in v1 straight away.
//!   - no answer within the login timeout, or anything else: a failed attempt like any other,
//!     retried with backoff, nothing decided.
//!
//!   The outcome is remembered for every later reconnect of the client. Once the server has
//!   been seen speaking v2, the client never falls back to v1: a server that suddenly closes
//!   on the magic is then a failure, not a reason to downgrade, so a man in the middle cannot
//!   push a v2 client back to v1 after the first contact.

use super::codec::{MsgReader, MsgWriter};
use super::codec_v2::{V2Reader, V2Writer};
use super::error::Error;
use bytes::BytesMut;
use frp_proto::v2::{Algorithm, Bootstrap, ClientHandshake};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// Which frp wire protocol to speak (`transport.wireProtocol`, CLI `--wire`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WireProtocol {
    /// frp's original framing (the default, as in frpc).
    #[default]
    V1,
    /// frp 0.69's framing with AEAD on the control connection.
    V2,
    /// v2 if the server speaks it, else v1; decided at the first connection (see the module
    /// docs) and kept for reconnects.
    Auto,
}

impl WireProtocol {
    /// `v1`, `v2` or `auto`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "v1" => Some(WireProtocol::V1),
            "v2" => Some(WireProtocol::V2),
            "auto" => Some(WireProtocol::Auto),
            _ => None,
        }
    }

    /// The configuration name.
    pub fn name(self) -> &'static str {
        match self {
            WireProtocol::V1 => "v1",
            WireProtocol::V2 => "v2",
            WireProtocol::Auto => "auto",
        }
    }
}

const UNDECIDED: u8 = 0;
const LEARNED_V1: u8 = 1;
const LEARNED_V2: u8 = 2;

/// The wire in force for one client: the configured one, or what `auto` found out.
#[derive(Debug)]
pub(crate) struct WireChoice {
    configured: WireProtocol,
    learned: AtomicU8,
}

/// How the next control connection starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    V1,
    V2,
    /// `auto`, undecided: hello first, Login only after the answer.
    Probe,
}

impl WireChoice {
    pub(crate) fn new(configured: WireProtocol) -> Self {
        WireChoice {
            configured,
            learned: AtomicU8::new(UNDECIDED),
        }
    }

    fn start(&self) -> Start {
        match (self.configured, self.learned.load(Ordering::Relaxed)) {
            (WireProtocol::V1, _) | (WireProtocol::Auto, LEARNED_V1) => Start::V1,
            (WireProtocol::V2, _) | (WireProtocol::Auto, LEARNED_V2) => Start::V2,
            _ => Start::Probe,
        }
    }

    /// Whether the current login speaks v2 (its work and visitor connections follow it).
    pub(crate) fn is_v2(&self) -> bool {
        self.start() != Start::V1
    }
}

/// Starts the control connection in the chosen wire protocol. Returns the reader and writer
/// ready for the Login, or `None` when `auto` just learned that the server speaks only v1
/// (the caller dials again; the choice now says v1).
pub(crate) async fn start_control<R, W>(
    reader: MsgReader<R>,
    writer: MsgWriter<W>,
    choice: &WireChoice,
    bootstrap: Bootstrap,
    timeout: Duration,
) -> Result<Option<(MsgReader<R>, MsgWriter<W>)>, Error>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let start = choice.start();
    if start == Start::V1 {
        return Ok(Some((reader, writer)));
    }
    let handshake = ClientHandshake::new(bootstrap, &Algorithm::preferred(), rand::random());
    let mut opening = BytesMut::with_capacity(256);
    handshake
        .write_opening(&mut opening)
        .map_err(|e| Error::Protocol(format!("wire v2: {e}")))?;
    let mut reader = reader.with_v2(V2Reader::control(handshake));
    let mut writer = writer.with_v2(V2Writer::new(false));
    writer.send_raw(&opening).await?;
    if start == Start::V2 {
        // As frpc: the Login follows at once; the ServerHello is read before LoginResp.
        return Ok(Some((reader, writer)));
    }
    let answered = tokio::time::timeout(timeout, reader.read_server_hello())
        .await
        .map_err(|_| Error::Timeout("waiting for the wire v2 ServerHello"))?;
    match answered {
        Ok(true) => {
            choice.learned.store(LEARNED_V2, Ordering::Relaxed);
            tracing::info!("the server speaks wire protocol v2");
            Ok(Some((reader, writer)))
        }
        Ok(false) => refused_v2(choice),
        Err(Error::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
            ) =>
        {
            refused_v2(choice)
        }
        Err(e) => Err(e),
    }
}

fn refused_v2<T>(choice: &WireChoice) -> Result<Option<T>, Error> {
    choice.learned.store(LEARNED_V1, Ordering::Relaxed);
    tracing::info!("the server closed the connection on the wire v2 hello; using wire protocol v1");
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_auto_remembers() {
        for w in [WireProtocol::V1, WireProtocol::V2, WireProtocol::Auto] {
            assert_eq!(WireProtocol::parse(w.name()), Some(w));
        }
        assert_eq!(WireProtocol::parse("V2"), None);
        let choice = WireChoice::new(WireProtocol::Auto);
        assert_eq!(choice.start(), Start::Probe);
        assert!(choice.is_v2());
        choice.learned.store(LEARNED_V1, Ordering::Relaxed);
        assert_eq!(choice.start(), Start::V1);
        assert!(!choice.is_v2());
        let fixed = WireChoice::new(WireProtocol::V2);
        fixed.learned.store(LEARNED_V1, Ordering::Relaxed);
        assert_eq!(fixed.start(), Start::V2, "a configured v2 never falls back");
    }

    #[tokio::test]
    async fn auto_falls_back_when_the_server_closes_and_sends_no_login_first() {
        let (client, mut server) = tokio::io::duplex(4096);
        let (rd, wr) = tokio::io::split(client);
        let choice = WireChoice::new(WireProtocol::Auto);
        let peer = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut first = [0u8; 7];
            server.read_exact(&mut first).await.unwrap();
            assert_eq!(first, frp_proto::v2::MAGIC);
            let mut header = [0u8; 8];
            server.read_exact(&mut header).await.unwrap();
            assert_eq!(&header[..4], &[0, 1, 0, 0], "a ClientHello frame");
            let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
            let mut payload = vec![0u8; len as usize];
            server.read_exact(&mut payload).await.unwrap();
            // Nothing else: the Login waits for the ServerHello.
            let mut more = [0u8; 1];
            let waited =
                tokio::time::timeout(Duration::from_millis(200), server.read(&mut more)).await;
            assert!(waited.is_err(), "the client sent more before any answer");
            // A v1 frps closes on the unknown type byte.
        });
        let started = start_control(
            MsgReader::new(rd),
            MsgWriter::new(wr),
            &choice,
            Bootstrap::default(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        peer.await.unwrap();
        assert!(started.is_none());
        assert_eq!(choice.start(), Start::V1);
    }
}
