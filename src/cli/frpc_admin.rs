//! frpc's admin web server (`webServer.*`), the part that does not need run-time reconfiguration:
//! `GET /healthz`, `GET /api/status`, `POST /api/stop` and `GET /api/config`, with frpc's basic
//! auth and JSON shapes, so `curl` scripts and frpc's own `status`/`stop` commands work.
//! `GET /api/reload` and `PUT /api/config` answer 500 "… is not supported yet".
//!
//! A deliberately small HTTP/1.1 server: one request per connection, a bounded request head,
//! no body read except to skip it. It listens on loopback by default, as frpc does.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use expose::frp::{ClientConfig, ClientState, ProxyKind, ProxyStatus};
use expose::frpc::WebServer;
use expose::proto::auth::keys_match;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};

/// Largest request head read; more is a 431.
const MAX_HEAD: usize = 16 * 1024;

/// A client cannot hold a connection open forever without sending its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What the handlers read.
pub struct Admin {
    /// `webServer` settings (auth).
    pub web: WebServer,
    /// The client's configuration (types, local addresses, server address).
    pub config: ClientConfig,
    /// The config file, for `GET /api/config`.
    pub file: PathBuf,
    /// Live proxy states.
    pub state: watch::Receiver<ClientState>,
    /// Notified by `POST /api/stop`.
    pub stop: Arc<Notify>,
}

/// Binds the admin listener (`webServer.addr:port`).
pub async fn bind(web: &WebServer) -> std::io::Result<TcpListener> {
    TcpListener::bind((web.addr.as_str(), web.port)).await
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, admin: Arc<Admin>) {
    while let Ok((conn, _)) = listener.accept().await {
        let admin = admin.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(READ_TIMEOUT, handle(conn, &admin)).await;
        });
    }
}

async fn handle(mut conn: TcpStream, admin: &Admin) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let head_len = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return respond(&mut conn, 431, "text/plain", "").await;
        }
        let mut chunk = [0u8; 2048];
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("");
    let target = first.next().unwrap_or("");
    let path = target.split('?').next().unwrap_or("");
    let auth = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.trim().to_owned());
    let (status, kind, body) = route(method, path, auth.as_deref(), admin);
    if status == 401 {
        let msg = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"Restricted\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        return conn.write_all(msg.as_bytes()).await;
    }
    respond(&mut conn, status, kind, &body).await?;
    if path == "/api/stop" && status == 200 {
        admin.stop.notify_one();
    }
    Ok(())
}

/// The response for one request: status, content type, body.
fn route(
    method: &str,
    path: &str,
    auth: Option<&str>,
    admin: &Admin,
) -> (u16, &'static str, String) {
    if path == "/healthz" {
        return (200, "text/plain", String::new());
    }
    let known = matches!(
        path,
        "/api/status" | "/api/stop" | "/api/config" | "/api/reload"
    );
    if !known {
        return (404, "text/plain", "404 page not found\n".into());
    }
    if !authorized(auth, &admin.web) {
        return (401, "text/plain", String::new());
    }
    match (method, path) {
        ("GET", "/api/status") => (200, "application/json", status_json(admin).to_string()),
        ("POST", "/api/stop") => (200, "text/plain", String::new()),
        ("GET", "/api/config") => match std::fs::read_to_string(&admin.file) {
            Ok(text) => (200, "text/plain", text),
            Err(e) => (400, "text/plain", e.to_string()),
        },
        ("GET", "/api/reload") => (500, "text/plain", "reload is not supported yet".into()),
        ("PUT", "/api/config") => (
            500,
            "text/plain",
            "PUT /api/config is not supported yet".into(),
        ),
        _ => (405, "text/plain", String::new()),
    }
}

/// frpc's check: no user and no password configured means no auth.
fn authorized(header: Option<&str>, web: &WebServer) -> bool {
    if web.user.is_empty() && web.password.is_empty() {
        return true;
    }
    let want = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", web.user, web.password.expose()))
    );
    header.is_some_and(|h| keys_match(h, &want))
}

/// `GET /api/status`: proxies grouped by type, each list sorted by name, as frpc answers.
fn status_json(admin: &Admin) -> Value {
    let state = admin.state.borrow().clone();
    let cfg = &admin.config;
    let mut by_type: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for p in &cfg.proxies {
        let kind = match p.kind {
            ProxyKind::Tcp { .. } => "tcp",
            ProxyKind::Https { .. } => "https",
            _ => "http",
        };
        let (status, err, remote) = match state.proxies.get(&p.name) {
            Some(ProxyStatus::Ready(r)) => {
                let remote = if kind == "tcp" {
                    format!("{}{}", cfg.server_host, r.remote_addr)
                } else {
                    r.remote_addr.clone()
                };
                ("running", String::new(), remote)
            }
            Some(ProxyStatus::Failed(e)) => ("start error", e.clone(), String::new()),
            _ => ("wait start", String::new(), String::new()),
        };
        let name = if cfg.user.is_empty() {
            p.name.clone()
        } else {
            format!("{}.{}", cfg.user, p.name)
        };
        by_type.entry(kind).or_default().push(json!({
            "name": name,
            "type": kind,
            "status": status,
            "err": err,
            "local_addr": p.local_addr(),
            "plugin": "",
            "remote_addr": remote,
        }));
    }
    for list in by_type.values_mut() {
        list.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    }
    json!(by_type)
}

async fn respond(conn: &mut TcpStream, status: u16, kind: &str, body: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Internal Server Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(body.as_bytes()).await?;
    conn.shutdown().await
}
