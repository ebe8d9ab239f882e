//! The xtcp proxy's end: frps hands a work connection that carries only a `NatHoleSid`; we
//! discover, tell frps our addresses (`NatHoleClient`), punch as its answer says, report the
//! outcome (`NatHoleReport`), and serve the visitor's QUIC connection: each stream it opens
//! is one visitor connection, handed to `on_stream` like a work connection.

use super::super::codec::MsgReader;
use super::super::error::Error;
use super::super::transport::BoxStream;
use super::{check_resp, discover, punch, quic, Link, QuicStream};
use frp_proto::crypto::Key;
use frp_proto::msg::{NatHoleClient, NatHoleReport};
use frp_proto::nathole::EXCHANGE_TIMEOUT;
use frp_proto::Message;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long frps has to send the sid after StartWorkConn (it writes both at once).
const SID_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the punched socket waits for the visitor's QUIC handshake.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(30);

/// One xtcp proxy as this end sees it.
pub(crate) struct XtcpProxy<'a> {
    /// `user.name`, as frps knows it.
    pub wire_name: String,
    /// The proxy's secret key (encrypts the punch).
    pub secret_key: &'a str,
    /// `natTraversal.disableAssistedAddrs`.
    pub disable_assisted: bool,
}

/// Serves one xtcp work connection (after StartWorkConn) to its end; `on_stream` gets every
/// stream of the visitor's QUIC connection.
pub(crate) async fn serve(
    link: &Link,
    proxy: XtcpProxy<'_>,
    mut reader: MsgReader<BoxStream>,
    stop: &CancellationToken,
    on_stream: impl Fn(BoxStream),
) -> Result<(), Error> {
    let sid = match tokio::time::timeout(SID_TIMEOUT, reader.read()).await {
        Ok(Ok(Some(Message::NatHoleSid(m)))) => m.sid,
        Ok(Ok(Some(other))) => {
            return Err(Error::Protocol(format!(
                "xtcp read from workConn error: unexpected {}",
                other.message_type().name()
            )))
        }
        Ok(Ok(None)) => return Err(Error::Protocol("xtcp read from workConn error: EOF".into())),
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(Error::Timeout("waiting for NatHoleSid")),
    };
    // frps closes the work connection after the sid; nothing else comes on it.
    drop(reader);
    let prepared = discover::prepare(&link.settings.stun_server, proxy.disable_assisted).await?;
    log_prepared(&proxy.wire_name, &prepared);
    let transaction_id = super::new_transaction_id();
    let hello = NatHoleClient {
        transaction_id: transaction_id.clone(),
        proxy_name: proxy.wire_name.clone(),
        sid: sid.clone(),
        mapped_addrs: prepared.mapped.clone(),
        assisted_addrs: prepared.assisted.clone(),
    };
    let resp = link
        .exchange(hello.into(), &transaction_id, EXCHANGE_TIMEOUT)
        .await
        .and_then(check_resp)
        .map_err(|e| Error::Protocol(format!("nathole exchange info error: {}", super::text(e))))?;
    tracing::info!(
        proxy = %proxy.wire_name,
        sid = %resp.sid,
        protocol = %resp.protocol,
        candidates = ?resp.candidate_addrs,
        "get natHoleRespMsg"
    );
    let key = Key::derive(proxy.secret_key);
    let punched = punch::make_hole(prepared.socket, &resp, &key).await;
    link.send(
        NatHoleReport {
            sid: resp.sid.clone(),
            success: punched.is_ok(),
        }
        .into(),
    );
    let (socket, peer) = punched?;
    tracing::info!(proxy = %proxy.wire_name, sid = %resp.sid, remote = %peer, "establishing nat hole connection successful");
    if resp.protocol == "kcp" {
        return Err(Error::Config(
            "xtcp protocol \"kcp\" is not supported (only quic)".into(),
        ));
    }
    let endpoint = quic::server(socket)?;
    let accepted = tokio::select! {
        a = tokio::time::timeout(ACCEPT_TIMEOUT, endpoint.accept()) => a,
        _ = stop.cancelled() => return Ok(()),
    };
    let Ok(Some(incoming)) = accepted else {
        return Err(Error::Timeout("waiting for the visitor's QUIC connection"));
    };
    let conn = incoming
        .await
        .map_err(|e| Error::Protocol(format!("quic accept connection error: {e}")))?;
    loop {
        let stream = tokio::select! {
            s = conn.accept_bi() => s,
            _ = stop.cancelled() => break,
        };
        match stream {
            Ok((send, recv)) => on_stream(Box::new(QuicStream::new(send, recv))),
            Err(e) => {
                tracing::debug!(proxy = %proxy.wire_name, error = %e, "quic accept stream error");
                break;
            }
        }
    }
    conn.close(quinn::VarInt::from_u32(0), b"");
    endpoint.wait_idle().await;
    Ok(())
}

fn log_prepared(name: &str, p: &discover::Prepared) {
    let (nat, behavior) = p
        .feature
        .as_ref()
        .map(|f| (f.nat_type, f.behavior))
        .unwrap_or_default();
    tracing::info!(
        proxy = %name,
        nat_type = nat,
        behavior,
        addresses = ?p.mapped,
        assisted = ?p.assisted,
        "nathole prepare success"
    );
}
