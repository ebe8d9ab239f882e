//! A mock Prime API (wiremock, real HTTP on loopback) and the in-repo test frps it hands out
//! credentials for, to run the real `expose` binary against.

use expose::testserver::{ServerConfig, TestServer};
use serde_json::{json, Value};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::process::Command;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const API_KEY: &str = "pk-SECRET-api-key-77aa";
pub const FRP_TOKEN: &str = "frp-SECRET-token-31cc";
pub const BINDING: &str = "bs-SECRET-binding-9e0f";
pub const TUNNEL_ID: &str = "t-e2e-0123456789";

/// `t` as an RFC 3339 UTC timestamp, as the API writes `expires_at`.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (proleptic Gregorian), enough for a test fixture.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// The API's answer to a create: credentials for `srv`, expiring in `expires_in`.
pub fn created_body(srv: &TestServer, expires_in: Duration) -> Value {
    json!({
        "tunnel_id": TUNNEL_ID,
        "hostname": format!("{TUNNEL_ID}.tunnel.test"),
        "url": format!("https://{TUNNEL_ID}.tunnel.test"),
        "frp_token": FRP_TOKEN,
        "binding_secret": BINDING,
        "server_host": "127.0.0.1",
        "server_port": srv.bind_addr().port(),
        "expires_at": rfc3339(SystemTime::now() + expires_in),
        "status": "pending",
        "some_future_field": {"ignored": true},
    })
}

/// The test frps, checking the binding secret like Prime's Login plugin does.
pub async fn frps() -> TestServer {
    let srv = TestServer::start(ServerConfig {
        token: FRP_TOKEN.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    srv.set_login_hook(Some(Arc::new(|login: &expose::proto::msg::Login| {
        if login.metas.get("binding_secret").map(String::as_str) == Some(BINDING)
            && login.user == TUNNEL_ID
        {
            Ok(())
        } else {
            Err("invalid binding secret".into())
        }
    })));
    srv
}

/// A mock API and an empty home directory (no config file) for the binary.
pub struct Env {
    pub home: tempfile::TempDir,
    pub api: MockServer,
}

impl Env {
    pub async fn new() -> Env {
        Env {
            home: tempfile::tempdir().unwrap(),
            api: MockServer::start().await,
        }
    }

    pub fn command(&self, args: &[&str], with_key: bool) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_expose"));
        cmd.args(args)
            .env_clear()
            .env("HOME", self.home.path())
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PRIME_API_BASE_URL", self.api.uri())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if with_key {
            cmd.env("PRIME_API_KEY", API_KEY);
        }
        cmd
    }

    pub async fn run(&self, args: &[&str], with_key: bool) -> (i32, String, String) {
        let out = tokio::time::timeout(
            Duration::from_secs(60),
            self.command(args, with_key).output(),
        )
        .await
        .expect("expose finished in time")
        .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    pub async fn mount_create(&self, status: u16, body: Value) {
        Mock::given(method("POST"))
            .and(path("/api/v1/tunnel"))
            .and(header(
                "authorization",
                format!("Bearer {API_KEY}").as_str(),
            ))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .mount(&self.api)
            .await;
    }

    pub async fn mount_delete(&self) {
        Mock::given(method("DELETE"))
            .and(path(format!("/api/v1/tunnel/{TUNNEL_ID}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
            .mount(&self.api)
            .await;
    }

    pub async fn requests(&self, verb: &str, p: &str) -> usize {
        self.api
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.method.as_str() == verb && r.url.path() == p)
            .count()
    }
}

/// Fails if any of the fixture's secrets shows in `text`.
pub fn assert_no_secrets(text: &str) {
    for s in [API_KEY, FRP_TOKEN, BINDING] {
        assert!(!text.contains(s), "secret {s:?} printed:\n{text}");
    }
}
