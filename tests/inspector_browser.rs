//! The inspector page in a real headless browser (Debian's `chromium` driven by
//! `chromedriver` over WebDriver): it loads, shows a request made through the tunnel within a
//! second, opens its details, replays it and shows the replayed response.
//!
//! `.ci/run` installs `chromium` and `chromium-driver`; without them this test fails and says
//! so, rather than passing without having looked.
#![cfg(unix)]

mod inspect_support;

use inspect_support::*;
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// The W3C WebDriver element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A minimal WebDriver client: one session over chromedriver's HTTP API.
struct Driver {
    http: reqwest::Client,
    session: String,
    _chromedriver: Child,
    _profile: tempfile::TempDir,
}

impl Driver {
    async fn start() -> Driver {
        let exe = ["chromedriver", "/usr/bin/chromedriver"]
            .into_iter()
            .find(|c| {
                std::process::Command::new(c)
                    .arg("--version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            })
            .expect(
                "chromedriver is missing: install it with `apt-get install -y chromium chromium-driver` \
                 (.ci/run does) to run the inspector's browser test",
            );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let chromedriver = Command::new(exe)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let http = api();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = match http.get(format!("{base}/status")).send().await {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .ok()
                    .is_some_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            };
            if ok {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let browser = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("chromium is missing: install it with `apt-get install -y chromium chromium-driver`");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": browser,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        }}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"));
        Driver {
            http,
            session: format!("{base}/session/{id}"),
            _chromedriver: chromedriver,
            _profile: profile,
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let r: Value = self
            .http
            .post(format!("{}{path}", self.session))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["value"].clone()
    }

    async fn goto(&self, url: &str) {
        let v = self.post("/url", json!({ "url": url })).await;
        assert!(v.is_null(), "navigation failed: {v}");
    }

    /// The first element matching `css`, if any now.
    async fn find(&self, css: &str) -> Option<String> {
        let v = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        v[ELEMENT].as_str().map(str::to_owned)
    }

    /// Waits up to `timeout` for an element matching `css` whose text contains `text`.
    async fn wait_text(&self, css: &str, text: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        loop {
            if let Some(e) = self.find(css).await {
                let v: Value = self
                    .http
                    .get(format!("{}/element/{e}/text", self.session))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                last = v["value"].as_str().unwrap_or_default().to_owned();
                if last.contains(text) {
                    return e;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no {css:?} with {text:?} within {timeout:?}; last text {last:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn click(&self, element: &str) {
        let v = self
            .post(&format!("/element/{element}/click"), json!({}))
            .await;
        assert!(v.is_null(), "click failed: {v}");
    }

    async fn quit(self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_a_request_live_its_details_and_a_replay() {
    let driver = Driver::start().await;
    let srv = frps().await;
    let (local, _) = echo_service().await;
    let mut child = expose_http(&srv, local.port(), "page", &["--inspect", "127.0.0.1:0"]);
    let ready = ready(&mut child).await;
    let base = ready["inspector"].as_str().unwrap().to_owned();

    driver.goto(&base).await;
    driver
        .wait_text("#live", "live", Duration::from_secs(10))
        .await;
    assert!(driver.find("tr.req").await.is_none(), "empty at first");

    let (code, _) = through_tunnel(
        &srv,
        "page",
        "POST",
        "/webhook",
        &[
            ("Authorization", BEARER),
            ("Content-Type", "application/json"),
        ],
        r#"{"hello":"browser"}"#,
    )
    .await;
    assert_eq!(code, 201);
    let made = Instant::now();
    let row = driver
        .wait_text("tr.req", "/webhook", Duration::from_secs(1))
        .await;
    let shown_after = made.elapsed();
    assert!(shown_after < Duration::from_secs(1), "{shown_after:?}");

    driver.click(&row).await;
    driver
        .wait_text("#detail-title", "POST /webhook", Duration::from_secs(5))
        .await;
    driver
        .wait_text("#request", "[masked]", Duration::from_secs(5))
        .await;
    driver
        .wait_text(
            "#request pre",
            "\"hello\": \"browser\"",
            Duration::from_secs(5),
        )
        .await;

    let replay = driver.find("#replay").await.expect("a Replay button");
    driver.click(&replay).await;
    driver
        .wait_text("#replay-result", "Replayed: 201", Duration::from_secs(10))
        .await;
    driver
        .wait_text(
            "#replay-result pre",
            "\"auth_ok\": true",
            Duration::from_secs(5),
        )
        .await;
    // The replay is listed as a new request too.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let rows: Value = driver
            .post(
                "/elements",
                json!({"using": "css selector", "value": "tr.req"}),
            )
            .await;
        if rows.as_array().is_some_and(|r| r.len() == 2) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replay was not listed: {rows}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    driver.quit().await;
}
