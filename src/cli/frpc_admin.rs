//! frpc's admin web server (`webServer.*`): `GET /healthz`, `GET /api/status`, `POST /api/stop`,
//! `GET /api/config`, `PUT /api/config` (writes the file) and `GET /api/reload` (reads the file
//! again and replaces the running proxies), with frpc's basic auth, status codes, bodies, JSON
//! shapes and log lines, so `curl` scripts and frpc's own `reload`/`status`/`stop` commands work.
//!
//! A deliberately small HTTP/1.1 server: one request per connection, a bounded request head and
//! body. It listens on loopback by default, as frpc does.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use expose::frp::{ClientConfig, ClientHandle, ClientState, ProxyStatus};
use expose::frpc::{load, LoadOptions, WebServer};
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

/// Largest `PUT /api/config` body (a config file); more is refused with 413.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// A client cannot hold a connection open forever without sending its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Bound on one request, reload included (the client answers a reload at once, or after its
/// current dial attempt at the latest).
const HANDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// frpc's auth middleware waits this long before answering a failed login.
const AUTH_FAIL_DELAY: Duration = Duration::from_millis(200);

/// One of frpc's log lines, written by the owner of the log.
pub struct Line {
    /// Warning (`[W]`) rather than info.
    pub warn: bool,
    /// frpc's `file:line` of the line.
    pub caller: &'static str,
    /// The text.
    pub text: String,
    /// Prefixed with the run id, as frpc's per-session logger does.
    pub session: bool,
}

/// Writes a [`Line`].
pub type LogFn = Arc<dyn Fn(Line) + Send + Sync>;

/// What the handlers read.
pub struct Admin {
    /// `webServer` settings (auth).
    pub web: WebServer,
    /// The client's configuration (server address, user).
    pub config: ClientConfig,
    /// The config file, for `GET/PUT /api/config` and `GET /api/reload`.
    pub file: PathBuf,
    /// Live proxy states.
    pub state: watch::Receiver<ClientState>,
    /// Notified by `POST /api/stop`.
    pub stop: Arc<Notify>,
    /// The running client, for the proxies in force and reloads.
    pub client: ClientHandle,
    /// `--allow-unsafe`, which a reload checks the file against.
    pub allow_unsafe: Vec<String>,
    /// frpc's log.
    pub log: LogFn,
}

impl Admin {
    fn info(&self, caller: &'static str, text: String) {
        (self.log)(Line {
            warn: false,
            caller,
            text,
            session: false,
        });
    }

    fn warn(&self, caller: &'static str, text: String) {
        (self.log)(Line {
            warn: true,
            caller,
            text,
            session: false,
        });
    }
}

/// A parsed request.
struct Request<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    auth: Option<String>,
    body: Vec<u8>,
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
            let _ = tokio::time::timeout(HANDLE_TIMEOUT, handle(conn, &admin)).await;
        });
    }
}

async fn handle(mut conn: TcpStream, admin: &Admin) -> std::io::Result<()> {
    let Some((head, body)) = tokio::time::timeout(READ_TIMEOUT, read_head(&mut conn))
        .await
        .unwrap_or(Ok(None))?
    else {
        return Ok(());
    };
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("");
    let target = first.next().unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers: Vec<(&str, &str)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    let auth = header("authorization").map(str::to_owned);
    let mut req = Request {
        method,
        path,
        query,
        auth,
        body,
    };
    if method == "PUT" && path == "/api/config" && authorized(req.auth.as_deref(), &admin.web) {
        let length = match header("content-length").map(str::parse::<usize>) {
            None => 0,
            Some(Ok(n)) if n <= MAX_BODY => n,
            Some(_) => return respond(&mut conn, 413, "text/plain", "").await,
        };
        if header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
            conn.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
        }
        let read = read_body(&mut conn, &mut req.body, length);
        if tokio::time::timeout(READ_TIMEOUT, read).await.is_err() {
            return Ok(());
        }
        req.body.truncate(length);
    }
    let (status, kind, body) = route(&req, admin).await;
    if status == 401 {
        // frpc's auth middleware answers a wrong or missing password after 200 ms, with Go's
        // `http.Error` body.
        tokio::time::sleep(AUTH_FAIL_DELAY).await;
        let body = "Unauthorized\n";
        let msg = format!(
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"Restricted\"\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return conn.write_all(msg.as_bytes()).await;
    }
    if status == 301 {
        // Go's `http.Redirect` body.
        let body = "<a href=\"/static/\">Moved Permanently</a>.\n\n";
        let msg = format!(
            "HTTP/1.1 301 Moved Permanently\r\nLocation: /static/\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return conn.write_all(msg.as_bytes()).await;
    }
    respond(&mut conn, status, kind, &body).await?;
    if path == "/api/stop" && status == 200 {
        admin.stop.notify_one();
    }
    Ok(())
}

/// Reads up to the end of the request head; returns it and the body bytes read with it.
async fn read_head(conn: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buf = Vec::with_capacity(1024);
    let head_len = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            respond(conn, 431, "text/plain", "").await?;
            return Ok(None);
        }
        let mut chunk = [0u8; 2048];
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
    let body = buf.split_off(head_len + 4);
    Ok(Some((head, body)))
}

/// Reads the body until it has `length` bytes (or the peer stops sending).
async fn read_body(conn: &mut TcpStream, body: &mut Vec<u8>, length: usize) {
    let mut chunk = [0u8; 8192];
    while body.len() < length {
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
}

/// How frpc's router (gorilla/mux) places a request before any handler runs.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// `/healthz`: any method, no auth.
    Open,
    /// A route behind the auth middleware.
    Guarded,
    /// The path has routes, none for this method: 405 before the auth middleware.
    WrongMethod,
    /// No route: 404 before the auth middleware.
    Unknown,
}

/// Places `method path` as frpc 0.66's admin router does: `/healthz` open; the API routes,
/// `/favicon.ico`, `/static/…` and `/` (the dashboard, any method) behind basic auth; a known
/// path with another method is a 405 and any other path a 404, both without asking for auth.
pub(crate) fn place(method: &str, path: &str) -> Placement {
    let allowed: &[&str] = match path {
        "/healthz" => return Placement::Open,
        "/" => return Placement::Guarded,
        "/api/reload" | "/api/status" => &["GET"],
        "/api/stop" => &["POST"],
        "/api/config" => &["GET", "PUT"],
        // expose's addition (not in frpc): the engine's metrics.
        "/metrics" => &["GET"],
        "/favicon.ico" => &["GET"],
        p if p.starts_with("/static/") => &["GET"],
        _ => return Placement::Unknown,
    };
    if allowed.contains(&method) {
        Placement::Guarded
    } else {
        Placement::WrongMethod
    }
}

/// The response for one request: status, content type, body.
async fn route(req: &Request<'_>, admin: &Admin) -> (u16, &'static str, String) {
    let (method, path) = (req.method, req.path);
    match place(method, path) {
        Placement::Open => return (200, "text/plain", String::new()),
        Placement::Unknown => return (404, "text/plain", "404 page not found\n".into()),
        Placement::WrongMethod => return (405, "text/plain", String::new()),
        Placement::Guarded => {}
    }
    if !authorized(req.auth.as_deref(), &admin.web) {
        return (401, "text/plain", String::new());
    }
    match (method, path) {
        // The dashboard's entry point redirects to its pages, which this build does not carry.
        (_, "/") => (301, "text/html", String::new()),
        (_, "/favicon.ico") => (404, "text/plain", "404 page not found\n".into()),
        (_, p) if p.starts_with("/static/") => (404, "text/plain", "404 page not found\n".into()),
        ("GET", "/api/status") => (200, "application/json", status_json(admin).to_string()),
        // expose's addition: the engine's metrics, behind the same auth.
        ("GET", "/metrics") => (
            200,
            expose::inspect::metrics::CONTENT_TYPE,
            expose::inspect::metrics::encode(&admin.client),
        ),
        ("POST", "/api/stop") => (200, "text/plain", String::new()),
        ("GET", "/api/config") if admin.file.as_os_str().is_empty() => {
            (400, "text/plain", "frpc has no config file path".into())
        }
        ("GET", "/api/config") => match std::fs::read(&admin.file) {
            Ok(bytes) => (
                200,
                "text/plain",
                String::from_utf8_lossy(&bytes).into_owned(),
            ),
            Err(e) => (
                400,
                "text/plain",
                format!("open {}: {}", admin.file.display(), go_io_error(&e)),
            ),
        },
        ("GET", "/api/reload") => {
            let (code, body) = reload(admin, strict_query(req.query)).await;
            (code, "text/plain", body)
        }
        ("PUT", "/api/config") => {
            let (code, body) = put_config(admin, &req.body);
            (code, "text/plain", body)
        }
        _ => (405, "text/plain", String::new()),
    }
}

/// `strictConfig` of the query as frpc reads it: Go's `ParseBool` of the first value; absent
/// or unparsable is false.
fn strict_query(query: &str) -> bool {
    let value = query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == "strictConfig")
        .map(|(_, v)| v);
    matches!(value, Some("1" | "t" | "T" | "TRUE" | "true" | "True"))
}

/// `GET /api/reload`: load the config file again (templates, includes, validation) and make its
/// proxies and visitors the running sets. A file that does not load is a 400 with the error text, and nothing
/// changes; client-level settings in the new file are not applied, as in frpc.
async fn reload(admin: &Admin, strict: bool) -> (u16, String) {
    admin.info("client/admin_api.go:79", "api request [/api/reload]".into());
    let opts = LoadOptions::new(strict).allow_unsafe(admin.allow_unsafe.clone());
    let (code, msg) = match load(&admin.file, &opts) {
        Err(e) => (400, e.to_string()),
        Ok(loaded) => match admin
            .client
            .reload(loaded.client.proxies, loaded.client.visitors)
            .await
        {
            Ok((proxies, visitors)) => {
                let user = &admin.config.user;
                let names = |list: &[String]| {
                    let wire: Vec<String> = list
                        .iter()
                        .map(|n| {
                            if user.is_empty() {
                                n.clone()
                            } else {
                                format!("{user}.{n}")
                            }
                        })
                        .collect();
                    format!("[{}]", wire.join(" "))
                };
                // frpc's proxy manager, then its visitor manager, log what they changed.
                for (list, caller, what) in [
                    (
                        &proxies.removed,
                        "proxy/proxy_manager.go:162",
                        "proxy removed",
                    ),
                    (&proxies.added, "proxy/proxy_manager.go:180", "proxy added"),
                    (
                        &visitors.removed,
                        "visitor/visitor_manager.go:166",
                        "visitor removed",
                    ),
                    (
                        &visitors.added,
                        "visitor/visitor_manager.go:179",
                        "visitor added",
                    ),
                ] {
                    if !list.is_empty() {
                        (admin.log)(Line {
                            warn: false,
                            caller,
                            text: format!("{what}: {}", names(list)),
                            session: true,
                        });
                    }
                }
                admin.info("client/admin_api.go:108", "success reload conf".into());
                (200, String::new())
            }
            Err(e @ expose::frp::Error::Config(_)) => (400, e.to_string()),
            Err(e) => (500, e.to_string()),
        },
    };
    if code != 200 {
        let line = if code == 400 {
            "client/admin_api.go:92"
        } else {
            "client/admin_api.go:105"
        };
        admin.warn(line, format!("reload frpc proxy config error: {msg}"));
    }
    admin.info(
        "client/admin_api.go:81",
        format!("api response [/api/reload], code [{code}]"),
    );
    (code, msg)
}

/// `PUT /api/config`: the body replaces the config file (created with mode 0600), unchecked;
/// a later reload applies it.
fn put_config(admin: &Admin, body: &[u8]) -> (u16, String) {
    admin.info(
        "client/admin_api.go:231",
        "http put request [/api/config]".into(),
    );
    let (code, msg) = if body.is_empty() {
        (400, "body can't be empty".to_owned())
    } else {
        match write_config(&admin.file, body) {
            Ok(()) => (200, String::new()),
            Err(e) => (
                500,
                format!(
                    "write content to frpc config file error: open {}: {}",
                    admin.file.display(),
                    go_io_error(&e)
                ),
            ),
        }
    };
    if code != 200 {
        let line = if code == 400 {
            "client/admin_api.go:252"
        } else {
            "client/admin_api.go:259"
        };
        admin.warn(line, msg.clone());
    }
    admin.info(
        "client/admin_api.go:233",
        format!("http put response [/api/config], code [{code}]"),
    );
    (code, msg)
}

/// Go's `os.WriteFile(path, body, 0o600)`: create or truncate, then write.
fn write_config(path: &std::path::Path, body: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(body)
}

/// Go's text for an I/O error (`no such file or directory`, `permission denied`).
fn go_io_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
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
    for p in &admin.client.proxies() {
        let kind = p.kind.type_name();
        let (status, err, remote) = match state.proxies.get(&p.name) {
            Some(ProxyStatus::Ready(r)) => {
                let remote = if matches!(kind, "tcp" | "udp") {
                    format!("{}{}", cfg.server_host, r.remote_addr)
                } else {
                    r.remote_addr.clone()
                };
                ("running", String::new(), remote)
            }
            Some(ProxyStatus::Failed(e)) => ("start error", e.clone(), String::new()),
            Some(ProxyStatus::AwaitingHealth) => ("new", String::new(), String::new()),
            Some(ProxyStatus::CheckFailed) => ("check failed", String::new(), String::new()),
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
            // frpc shows no local address for a plugin without localPort.
            "local_addr": if p.local_port == 0 && p.plugin.is_some() { String::new() } else { p.local_addr() },
            "plugin": p.plugin.as_ref().map_or("", |pl| pl.kind.name()),
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
        413 => "Payload Too Large",
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
