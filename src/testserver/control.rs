//! Control connections (Login and everything after it) and work connections (NewWorkConn and
//! the per-control pool).

use super::nathole;
use super::proxy;
use super::shared::{ControlHandle, Inner};
use super::state::{ControlInfo, ControlMessage, LoginRecord};
use super::v2::{ControlWire, Inbound, Outbound};
use super::wire::{close, random_hex16, write_frame, BoxIo, CONN_READ_TIMEOUT};
use bytes::BytesMut;
use frp_proto::auth::{keys_match, privilege_key};
use frp_proto::msg::{Login, LoginResp, NewWorkConn, Pong, ReqWorkConn, StartWorkConn};
use frp_proto::Message;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Control messages are small; reads of this size take several at once.
const READ_CHUNK: usize = 16 * 1024;

/// The version frps reports in LoginResp.
pub(crate) const SERVER_VERSION: &str = "0.66.0";

/// frps's text for a wrong token (with `detailedErrorsToClient`, the default).
pub(crate) const TOKEN_MISMATCH: &str = "token in login doesn't match token from configuration";

/// Serves one control connection from its Login to its end.
pub(crate) async fn handle_login(
    inner: Arc<Inner>,
    mut io: BoxIo,
    login: Login,
    peer: SocketAddr,
    wire: ControlWire,
) {
    // The plugin runs before frps's own token check, so its reason wins.
    let hook = inner.hooks().login.clone();
    let mut rejection = hook.and_then(|h| h(&login).err());
    if rejection.is_none() {
        let expected = privilege_key(&inner.cfg.token, login.timestamp);
        if !keys_match(&expected, &login.privilege_key) {
            rejection = Some(TOKEN_MISMATCH.to_string());
        }
    }
    if let Some(error) = rejection {
        tracing::debug!(%peer, user = %login.user, %error, "test server: login refused");
        inner.update(|s| {
            s.logins.push(LoginRecord {
                login: login.clone(),
                client_addr: peer,
                run_id: String::new(),
                error: Some(error.clone()),
                replaced_existing: false,
            })
        });
        let resp = LoginResp {
            version: SERVER_VERSION.into(),
            run_id: String::new(),
            error,
        };
        let _ = write_plain(&mut io, &wire, &resp.into()).await;
        close(&mut io).await;
        return;
    }

    let run_id = if login.run_id.is_empty() {
        random_hex16()
    } else {
        login.run_id.clone()
    };
    let pool_count = usize::try_from(login.pool_count)
        .unwrap_or(0)
        .min(inner.cfg.max_pool_count);
    let (handle, rx) = ControlHandle::new(
        &inner,
        run_id.clone(),
        pool_count,
        matches!(wire, ControlWire::V2(_)),
    );

    // Replace a live control with this run id and wait until it is completely gone.
    let mut replaced = false;
    loop {
        let old = {
            let mut reg = inner.registry();
            match reg.controls.get(&run_id) {
                Some(old) => old.clone(),
                None => {
                    reg.controls.insert(run_id.clone(), handle.clone());
                    break;
                }
            }
        };
        replaced = true;
        old.close.cancel();
        old.done.cancelled().await;
    }
    inner.update(|s| {
        s.logins.push(LoginRecord {
            login: login.clone(),
            client_addr: peer,
            run_id: run_id.clone(),
            error: None,
            replaced_existing: replaced,
        });
        if replaced {
            s.counters.controls_replaced += 1;
        }
        s.controls.insert(
            run_id.clone(),
            ControlInfo {
                run_id: run_id.clone(),
                user: login.user.clone(),
                pool_count,
                pooled_work_conns: 0,
                serial: handle.serial,
            },
        );
    });

    tracing::debug!(%peer, user = %login.user, %run_id, replaced, "test server: login accepted");
    let resp = LoginResp {
        version: SERVER_VERSION.into(),
        run_id: run_id.clone(),
        error: String::new(),
    };
    let resp = Message::from(resp);
    let ok = tokio::select! {
        r = tokio::time::timeout(CONN_READ_TIMEOUT, write_plain(&mut io, &wire, &resp)) => {
            matches!(r, Ok(Ok(())))
        }
        _ = handle.close.cancelled() => false,
    };
    let ciphers = wire.ciphers(&inner.cfg.token, &inner.key);
    if let (true, Ok((inbound, outbound))) = (ok, ciphers) {
        for _ in 0..pool_count {
            handle.send(&inner, ReqWorkConn {}.into());
        }
        let (mut rd, mut wr) = tokio::io::split(io);
        tokio::select! {
            _ = handle.close.cancelled() => {}
            _ = read_loop(&inner, &handle, &mut rd, inbound) => {}
            _ = write_loop(&mut wr, rx, outbound) => {}
        }
        if !inner.cancel.is_cancelled() {
            let _ = tokio::time::timeout(CONN_READ_TIMEOUT, async {
                let mut io = rd.unsplit(wr);
                close(&mut io).await;
            })
            .await;
        }
    }
    finish(&inner, &handle).await;
}

/// Tears a control down: unregister, close its proxies, drop its pooled work connections,
/// publish, then signal anyone waiting to replace it.
async fn finish(inner: &Inner, handle: &Arc<ControlHandle>) {
    tracing::debug!(run_id = %handle.run_id, "test server: control closed");
    handle.close.cancel();
    {
        let mut reg = inner.registry();
        if reg
            .controls
            .get(&handle.run_id)
            .is_some_and(|c| Arc::ptr_eq(c, handle))
        {
            reg.controls.remove(&handle.run_id);
        }
    }
    proxy::close_all_of(inner, handle).await;
    {
        let mut rx = handle.pool_rx.lock().await;
        rx.close();
        while rx.try_recv().is_ok() {}
    }
    inner.update(|s| {
        if s.controls
            .get(&handle.run_id)
            .is_some_and(|c| c.serial == handle.serial)
        {
            s.controls.remove(&handle.run_id);
        }
    });
    handle.done.cancel();
}

/// Reads, decrypts and handles control messages until EOF, an error or a heartbeat timeout.
async fn read_loop(
    inner: &Arc<Inner>,
    handle: &Arc<ControlHandle>,
    rd: &mut ReadHalf<BoxIo>,
    mut inbound: Inbound,
) {
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let heartbeat = if inner.cfg.tcp_mux {
        None
    } else {
        inner.cfg.heartbeat_timeout
    };
    let mut last_ping = Instant::now();
    loop {
        buf.reserve(READ_CHUNK);
        let start = buf.len();
        let read = match heartbeat {
            None => rd.read_buf(&mut buf).await,
            Some(hb) => {
                tokio::select! {
                    biased;
                    r = rd.read_buf(&mut buf) => r,
                    _ = tokio::time::sleep_until(last_ping + hb) => {
                        if inner.gate.is_frozen() {
                            // A stopped frps checks nothing; after the thaw the read goes first,
                            // so Pings that arrived meanwhile still count.
                            inner.gate.wait_open().await;
                            continue;
                        }
                        tracing::debug!(run_id = %handle.run_id, "test server: heartbeat timeout");
                        inner.update(|s| s.counters.heartbeat_timeouts += 1);
                        return;
                    }
                }
            }
        };
        if matches!(read, Ok(0) | Err(_)) {
            return;
        }
        if inbound.absorb(&mut buf, start).is_err() {
            return;
        }
        loop {
            match inbound.next(&mut buf) {
                Ok(Some(msg)) => handle_message(inner, handle, msg, &mut last_ping).await,
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}

async fn handle_message(
    inner: &Arc<Inner>,
    handle: &Arc<ControlHandle>,
    msg: Message,
    last_ping: &mut Instant,
) {
    let record = ControlMessage {
        run_id: handle.run_id.clone(),
        message: msg.clone(),
    };
    match msg {
        Message::NewProxy(np) => {
            inner.update(|s| s.control_messages.push(record));
            let resp = proxy::new_proxy(inner, handle, np);
            handle.send(inner, resp.into());
        }
        Message::CloseProxy(cp) => {
            proxy::close_proxy(inner, handle, &cp.proxy_name).await;
            inner.update(|s| {
                s.control_messages.push(record);
                s.close_proxies.push(cp.proxy_name);
            });
        }
        Message::Ping(_) => {
            *last_ping = Instant::now();
            inner.update(|s| s.control_messages.push(record));
            handle.send(inner, Pong::default().into());
        }
        Message::NatHoleVisitor(m) => {
            inner.update(|s| s.control_messages.push(record));
            // frps handles it asynchronously: it waits for the proxy's side.
            tokio::spawn(nathole::handle_visitor(inner.clone(), handle.clone(), m));
        }
        Message::NatHoleClient(m) => {
            inner.update(|s| s.control_messages.push(record));
            nathole::handle_client(inner, handle, m);
        }
        Message::NatHoleReport(m) => {
            inner.update(|s| s.control_messages.push(record));
            nathole::handle_report(inner, &m);
        }
        // Anything else: recorded, otherwise ignored.
        _ => inner.update(|s| s.control_messages.push(record)),
    }
}

/// Encrypts and writes queued messages; the IV (or nonce) goes out lazily with the first one.
async fn write_loop(
    wr: &mut WriteHalf<BoxIo>,
    mut rx: mpsc::UnboundedReceiver<Message>,
    mut outbound: Outbound,
) {
    let mut buf = BytesMut::with_capacity(1024);
    while let Some(msg) = rx.recv().await {
        buf.clear();
        let mut next = Some(msg);
        // Coalesce whatever is queued into one write.
        while let Some(msg) = next {
            outbound.push(&msg, &mut buf);
            next = rx.try_recv().ok();
        }
        if wr.write_all(&buf).await.is_err() || wr.flush().await.is_err() {
            return;
        }
    }
}

/// Writes one plaintext message (LoginResp) in the connection's wire protocol and flushes.
async fn write_plain(io: &mut BoxIo, wire: &ControlWire, msg: &Message) -> std::io::Result<()> {
    let mut buf = BytesMut::with_capacity(128);
    wire.encode_plain(msg, &mut buf)?;
    io.write_all(&buf).await?;
    io.flush().await
}

/// Serves a connection whose first message was NewWorkConn: pool it with its control.
pub(crate) async fn handle_work_conn(inner: Arc<Inner>, mut io: BoxIo, nwc: NewWorkConn) {
    let ctl = inner.registry().controls.get(&nwc.run_id).cloned();
    let Some(ctl) = ctl else {
        let resp = StartWorkConn {
            error: format!("no client control found for run id [{}]", nwc.run_id),
            ..Default::default()
        };
        let _ = write_frame(&mut io, &resp.into()).await;
        close(&mut io).await;
        return;
    };
    inner.update(|s| s.counters.work_conns_received += 1);
    match ctl.pool_tx.try_send(io) {
        Ok(()) => ctl.publish_pool(&inner),
        Err(e) => {
            // Pool full (or control gone): frps 0.66 closes it without a word.
            inner.update(|s| s.counters.work_conns_discarded += 1);
            let mut io = match e {
                mpsc::error::TrySendError::Full(io) | mpsc::error::TrySendError::Closed(io) => io,
            };
            close(&mut io).await;
        }
    }
}
