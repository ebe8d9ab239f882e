//! xtcp: a direct UDP path between an xtcp visitor and the xtcp proxy's client, punched
//! through both NATs with frps's help, carrying a QUIC connection whose streams are the
//! visitor's connections.
//!
//! The steps, on both ends: discover the public UDP address with STUN (`discover`), exchange
//! the addresses through frps on the control connection ([`Link`]: `NatHoleVisitor` and
//! `NatHoleClient` out, `NatHoleResp` back by transaction id), send encrypted `NatHoleSid`
//! datagrams as frps's plan says (`punch`), and once one end hears the other, run QUIC over
//! that very socket (`quic`): the proxy's end is the QUIC server (`proxy`), the visitor's the
//! client (`tunnel`). The protocol decisions (STUN codec, NAT classification, the punch
//! datagrams) live in `frp_proto::nathole`.

mod discover;
pub(crate) mod proxy;
mod punch;
mod quic;
pub(crate) mod tunnel;

// A stream of the punched QUIC connection is a QUIC transport stream like any other.
pub(crate) use super::transport::quic::QuicStream;

use super::error::Error;
use super::switch::{Switch, SwitchSender};
use frp_proto::msg::NatHoleResp;
use frp_proto::Message;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::oneshot;

/// What the xtcp code of one login needs from the client's configuration.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `natHoleStunServer` (`host:port`).
    pub stun_server: String,
}

/// The control connection as xtcp uses it: messages out through the control task, and each
/// `NatHoleResp` back to whoever waits for its transaction id (frpc's message transporter).
pub(crate) struct Link {
    switches: SwitchSender,
    waiting: Mutex<HashMap<String, oneshot::Sender<NatHoleResp>>>,
    /// The client's xtcp settings.
    pub settings: Settings,
}

impl Link {
    /// A link that sends through the control task's switch channel.
    pub(crate) fn new(switches: SwitchSender, settings: Settings) -> Self {
        Link {
            switches,
            waiting: Mutex::new(HashMap::new()),
            settings,
        }
    }

    /// Queues a message on the control connection (dropped if the session is not online).
    pub(crate) fn send(&self, msg: Message) {
        let _ = self.switches.send(Switch::Send(Box::new(msg)));
    }

    /// Sends `msg` and waits up to `timeout` for the `NatHoleResp` with `transaction_id`.
    pub(crate) async fn exchange(
        &self,
        msg: Message,
        transaction_id: &str,
        timeout: Duration,
    ) -> Result<NatHoleResp, Error> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(transaction_id.to_owned(), tx);
        self.send(msg);
        let answer = tokio::time::timeout(timeout, rx).await;
        self.lock().remove(transaction_id);
        match answer {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(_)) => Err(Error::Protocol(
                "get natHoleRespMsg error: control connection closed".into(),
            )),
            Err(_) => Err(Error::Protocol(
                "get natHoleRespMsg error: context deadline exceeded".into(),
            )),
        }
    }

    /// Hands a message from the control connection to its waiter. False when it is not a
    /// `NatHoleResp` somebody waits for (the caller logs and drops it).
    pub(crate) fn deliver(&self, msg: Message) -> bool {
        let Message::NatHoleResp(resp) = msg else {
            return false;
        };
        match self.lock().remove(&resp.transaction_id) {
            Some(tx) => tx.send(resp).is_ok(),
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<NatHoleResp>>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// frp's transaction and session ids: unix seconds, then 8 random bytes in hex.
pub(crate) fn new_transaction_id() -> String {
    let random: [u8; 8] = rand::random();
    format!(
        "{}{}",
        super::wire::unix_now(),
        frp_proto::auth::to_hex(&random)
    )
}

/// An error's text as frpc words it: our own protocol errors without their kind in front.
pub(crate) fn text(e: Error) -> String {
    match e {
        Error::Protocol(text) => text,
        other => other.to_string(),
    }
}

/// What frpc checks in every `NatHoleResp` before punching (its error texts).
pub(crate) fn check_resp(resp: NatHoleResp) -> Result<NatHoleResp, Error> {
    if !resp.error.is_empty() {
        return Err(Error::Protocol(format!(
            "natHoleRespMsg get error info: {}",
            resp.error
        )));
    }
    if resp.candidate_addrs.is_empty() {
        return Err(Error::Protocol(
            "natHoleRespMsg get empty candidate addresses".into(),
        ));
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn responses_reach_their_waiter_only() {
        let (tx, mut rx) = super::super::switch::channel();
        let link = std::sync::Arc::new(Link::new(
            tx,
            Settings {
                stun_server: String::new(),
            },
        ));
        let l = link.clone();
        let waiter = tokio::spawn(async move {
            l.exchange(
                frp_proto::msg::NatHoleReport::default().into(),
                "t1",
                Duration::from_secs(5),
            )
            .await
        });
        assert!(matches!(rx.recv().await, Some(Switch::Send(_))));
        let other = NatHoleResp {
            transaction_id: "t2".into(),
            ..Default::default()
        };
        assert!(!link.deliver(other.into()));
        assert!(!link.deliver(frp_proto::msg::Pong::default().into()));
        let mine = NatHoleResp {
            transaction_id: "t1".into(),
            sid: "s".into(),
            ..Default::default()
        };
        assert!(link.deliver(mine.into()));
        assert_eq!(waiter.await.unwrap().unwrap().sid, "s");
        let id = new_transaction_id();
        assert_eq!(id.len(), 10 + 16);
        assert!(check_resp(NatHoleResp::default()).is_err());
    }
}
