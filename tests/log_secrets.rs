//! Secrets never reach the logs: a whole session at trace level, with a request through it and a
//! rejected login, and the captured output is searched for every secret.

mod common;

use common::*;
use expose::frp::{Client, ClientConfig, ProxyConfig, TlsConfig};
use expose::testserver::{ServerConfig, TestServer};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TOKEN: &str = "tok-SECRET-4c1d9e";
const BINDING: &str = "bind-SECRET-8a2f77";
const HTTP_PASSWORD: &str = "pwd-SECRET-19bb02";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// current_thread: every task runs on this thread, so the thread-local subscriber sees them all.
#[tokio::test(flavor = "current_thread")]
async fn no_secret_in_trace_logs() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let srv = TestServer::start(ServerConfig {
        token: TOKEN.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let web = http_server().await;
    let addr = srv.bind_addr();
    let mut cfg = ClientConfig::new(addr.ip().to_string(), addr.port(), TOKEN);
    cfg.user = "u".into();
    cfg.tls = TlsConfig::default();
    cfg.metas.insert("binding_secret".into(), BINDING.into());
    let mut proxy = ProxyConfig::http("web", web.port(), "web");
    if let expose::frp::ProxyKind::Http(h) = &mut proxy.kind {
        h.http_user = Some("alice".into());
        h.http_password = Some(HTTP_PASSWORD.into());
    }
    cfg.proxies.push(proxy);
    tracing::debug!(config = ?cfg, "starting");
    let client = Client::start(cfg.clone()).unwrap();
    tokio::time::timeout(Duration::from_secs(20), client.ready())
        .await
        .unwrap()
        .unwrap();
    let _ = http_get(srv.vhost_http_addr(), "web.tunnel.test", "/").await;
    client.shutdown().await.unwrap();

    // A rejected login logs its error path too.
    let mut bad = cfg.clone();
    bad.token = "other-SECRET-token".into();
    let client = Client::start(bad).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(20), client.ready()).await;
    drop(client);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let logs = String::from_utf8_lossy(&capture.0.lock().unwrap()).to_string();
    assert!(
        logs.len() > 1000,
        "trace logging captured too little:\n{logs}"
    );
    for secret in [TOKEN, BINDING, HTTP_PASSWORD, "other-SECRET-token"] {
        assert!(!logs.contains(secret), "secret {secret:?} leaked into logs");
    }
    // The derived login proof is as good as the token for replay; it must not show either.
    assert!(!logs.contains("privilege_key\":\""), "privilege_key leaked");
}
