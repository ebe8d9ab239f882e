//! stcp/sudp visitor connections, as frps's visitor manager handles them: a connection whose
//! first message is NewVisitorConn is matched to a registered stcp/sudp proxy by name, checked
//! (sign key = md5(secret key ‖ timestamp), visiting user in `allow_users`, or `"*"`), answered
//! with NewVisitorConnResp (frps's error texts), and then spliced to a work connection of that
//! proxy. The visitor side is wrapped with the secret key, the work side with the proxy's own
//! wrapping (token key), exactly as frps does.

use super::shared::{Inner, SecretProxy};
use super::splice::splice;
use super::udp::write_msg;
use super::wire::{close, BoxIo};
use crate::frp::wrapped::Wrapped;
use bytes::BytesMut;
use frp_proto::auth::keys_match;
use frp_proto::crypto::Key;
use frp_proto::msg::{NewVisitorConn, NewVisitorConnResp, StartWorkConn};
use std::sync::Arc;

/// Serves one connection whose first message was NewVisitorConn.
pub(crate) async fn handle(inner: Arc<Inner>, mut io: BoxIo, m: NewVisitorConn) {
    let checked = check(&inner, &m);
    let resp = NewVisitorConnResp {
        proxy_name: m.proxy_name.clone(),
        error: checked.as_ref().err().cloned().unwrap_or_default(),
    };
    let ok = write_msg(&mut io, &resp.into()).await.is_ok();
    let target = match checked {
        Ok(t) if ok => t,
        Ok(_) => return,
        Err(error) => {
            tracing::debug!(proxy = %m.proxy_name, %error, "test server: visitor refused");
            inner.update(|s| s.counters.visitor_conns_refused += 1);
            close(&mut io).await;
            return;
        }
    };
    inner.update(|s| s.counters.visitor_conns += 1);
    let key = m.use_encryption.then(|| Key::derive(&target.sk));
    let visitor: BoxIo = Box::new(Wrapped::new(
        io,
        key.as_ref(),
        m.use_compression,
        BytesMut::new(),
    ));
    let start = StartWorkConn {
        proxy_name: m.proxy_name.clone(),
        ..Default::default()
    };
    if let Some(work) = target.ctl.take_work_conn(&inner, start).await {
        splice(visitor, work, &target.wrapping, &[]).await;
    }
}

/// frps's checks, with its error texts.
fn check(inner: &Inner, m: &NewVisitorConn) -> Result<SecretProxy, String> {
    let visitor_user = if m.run_id.is_empty() {
        String::new()
    } else {
        match inner.state.borrow().controls.get(&m.run_id) {
            Some(c) => c.user.clone(),
            None => return Err(format!("no client control found for run id [{}]", m.run_id)),
        }
    };
    let name = &m.proxy_name;
    let target = inner
        .registry()
        .proxies
        .get(name)
        .and_then(|e| e.secret.clone())
        .filter(|s| !s.xtcp)
        .ok_or_else(|| format!("custom listener for [{name}] doesn't exist"))?;
    let expected = frp_proto::udp::sign_key(&target.sk, m.timestamp);
    if !keys_match(&expected, &m.sign_key) {
        return Err(format!("visitor connection of [{name}] auth failed"));
    }
    let allowed = target
        .allow_users
        .iter()
        .any(|u| u == &visitor_user || u == "*");
    if !allowed {
        return Err(format!(
            "visitor connection of [{name}] user [{visitor_user}] not allowed"
        ));
    }
    Ok(target)
}
