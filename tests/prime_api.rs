//! The Prime tunnel API client against a local mock of the API (wiremock on 127.0.0.1).
//!
//! Each endpoint's request shape and response parsing, the mapping of every error status,
//! bounded retries, configuration discovery, value validation, timestamp parsing, and that no
//! secret reaches `Debug` output or the logs. No real network.

use expose::prime::{
    BulkDeleteRequest, ClientOptions, CreateTunnelRequest, ErrorKind, ListCut, ListQuery,
    PrimeClient, PrimeConfig, PrimeError, SortBy, SortOrder, TunnelStatus, DEFAULT_BASE_URL,
    DEFAULT_RATE_LIMIT_MAX_WAIT, USER_AGENT,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "pk-TEST-apikey-5e1f0c";
const FRP_TOKEN: &str = "frp-SECRET-a1b2c3";
const BINDING: &str = "bind-SECRET-d4e5f6";
const PASSWORD: &str = "pwd-SECRET-778899";
const ID: &str = "t-1-0123456789abcdef";

// ---------------------------------------------------------------------------------------------
// Helpers

/// Options for tests: short timeout, fast backoff, no proxy from the environment.
fn fast() -> ClientOptions {
    ClientOptions::default()
        .timeout(Duration::from_secs(5))
        .backoff(Duration::from_millis(10), Duration::from_millis(40))
        .rate_limit_max_wait(Duration::from_millis(200))
        .rate_limit_default_wait(Duration::from_millis(10))
        .use_system_proxy(false)
}

fn client_with(base: &str, opts: ClientOptions) -> PrimeClient {
    PrimeClient::with_options(PrimeConfig::new(KEY, base), opts).unwrap()
}

fn client(server: &MockServer) -> PrimeClient {
    client_with(&server.uri(), fast())
}

fn client_with_team(server: &MockServer, team: &str) -> PrimeClient {
    let mut cfg = PrimeConfig::new(KEY, &server.uri());
    cfg.team_id = Some(team.to_owned());
    PrimeClient::with_options(cfg, fast()).unwrap()
}

/// A full create response, with a field this client does not know.
fn created_json() -> Value {
    json!({
        "tunnel_id": ID,
        "hostname": format!("{ID}.tunnel.pinfra.io"),
        "url": format!("https://{ID}.tunnel.pinfra.io"),
        "frp_token": FRP_TOKEN,
        "binding_secret": BINDING,
        "server_host": "tunnel.pinfra.io",
        "server_port": 7001,
        "expires_at": "2026-10-14T12:00:00Z",
        "name": "demo",
        "local_port": 8080,
        "labels": ["a", "b"],
        "http_user": "alice",
        "http_password": PASSWORD,
        "user_id": "user-1",
        "team_id": "team-1",
        "status": "pending",
        "created_at": "2026-10-13T12:00:00.123456+00:00",
        "connected_at": null,
        "terminated_at": null,
        "some_future_field": {"nested": true}
    })
}

fn info_json(id: &str, status: &str) -> Value {
    json!({
        "tunnel_id": id,
        "hostname": format!("{id}.tunnel.pinfra.io"),
        "url": format!("https://{id}.tunnel.pinfra.io"),
        "status": status,
        "expires_at": "2026-10-14T12:00:00Z",
        "labels": ["x"],
        "user_id": "user-1",
        "unknown": 1
    })
}

fn tunnels_path() -> wiremock::matchers::PathExactMatcher {
    path("/api/v1/tunnel")
}

fn tunnel_path(id: &str) -> wiremock::matchers::PathExactMatcher {
    path(format!("/api/v1/tunnel/{id}"))
}

/// A server answering any request with `response`.
async fn server_answering(response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(response)
        .mount(&server)
        .await;
    server
}

/// The error a create gets when the API answers with `response`.
async fn create_error(response: ResponseTemplate) -> PrimeError {
    let server = server_answering(response).await;
    client(&server)
        .create_tunnel(&CreateTunnelRequest::new(8080))
        .await
        .unwrap_err()
}

/// A loopback port with nothing listening on it.
fn refused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// An environment lookup backed by a map (the process environment is never touched).
fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

fn write(home: &Path, rel: &str, text: &str) -> PathBuf {
    let p = home.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

// ---------------------------------------------------------------------------------------------
// create

#[tokio::test]
async fn create_sends_every_set_field_with_bearer_key_and_user_agent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(tunnels_path())
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("user-agent", USER_AGENT))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "local_port": 8080,
            "name": "demo",
            "teamId": "team-9",
            "labels": ["a", "b"],
            "http_user": "alice"
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(created_json()))
        .expect(1)
        .mount(&server)
        .await;

    let req = CreateTunnelRequest::new(8080)
        .name("demo")
        .team_id("team-9")
        .label("a")
        .label("b")
        .http_user("alice");
    let t = client(&server).create_tunnel(&req).await.unwrap();

    assert_eq!(USER_AGENT, concat!("expose/", env!("CARGO_PKG_VERSION")));
    assert_eq!(t.tunnel_id, ID);
    assert_eq!(t.hostname, format!("{ID}.tunnel.pinfra.io"));
    assert_eq!(t.url, format!("https://{ID}.tunnel.pinfra.io"));
    assert_eq!(t.frp_token.expose(), FRP_TOKEN);
    assert_eq!(t.binding_secret.expose(), BINDING);
    assert_eq!(t.server_host, "tunnel.pinfra.io");
    assert_eq!(t.server_port, 7001);
    assert_eq!(t.expires_at, "2026-10-14T12:00:00Z");
    assert_eq!(t.name.as_deref(), Some("demo"));
    assert_eq!(t.local_port, Some(8080));
    assert_eq!(t.labels, ["a", "b"]);
    assert_eq!(t.http_user.as_deref(), Some("alice"));
    assert_eq!(t.http_password.as_ref().map(|p| p.expose()), Some(PASSWORD));
    assert_eq!(t.user_id.as_deref(), Some("user-1"));
    assert_eq!(t.team_id.as_deref(), Some("team-1"));
    assert_eq!(t.status, Some(TunnelStatus::Pending));
    assert_eq!(
        t.created_at.as_deref(),
        Some("2026-10-13T12:00:00.123456+00:00")
    );
    assert_eq!(t.connected_at, None);
}

#[tokio::test]
async fn create_sends_only_the_port_when_nothing_else_is_set() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(tunnels_path())
        .and(body_json(json!({"local_port": 3000})))
        .respond_with(ResponseTemplate::new(201).set_body_json(created_json()))
        .expect(1)
        .mount(&server)
        .await;
    // An empty name and no labels are not sent either.
    let req = CreateTunnelRequest::new(3000).name("");
    client(&server).create_tunnel(&req).await.unwrap();
}

#[tokio::test]
async fn create_falls_back_to_the_configured_team_unless_told_no_team() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_json(json!({"local_port": 1, "teamId": "cfg-team"})))
        .respond_with(ResponseTemplate::new(201).set_body_json(created_json()))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_json(json!({"local_port": 2})))
        .respond_with(ResponseTemplate::new(201).set_body_json(created_json()))
        .expect(1)
        .mount(&server)
        .await;
    let c = client_with_team(&server, "cfg-team");
    c.create_tunnel(&CreateTunnelRequest::new(1)).await.unwrap();
    c.create_tunnel(&CreateTunnelRequest::new(2).team_id(""))
        .await
        .unwrap();
}

#[tokio::test]
async fn create_tolerates_missing_optional_fields_and_defaults_the_server_port() {
    let mut body = created_json();
    let obj = body.as_object_mut().unwrap();
    for k in [
        "server_port",
        "name",
        "local_port",
        "http_user",
        "http_password",
        "user_id",
        "team_id",
        "status",
        "created_at",
        "connected_at",
        "terminated_at",
    ] {
        obj.remove(k);
    }
    obj.insert("labels".into(), Value::Null);
    let server = server_answering(ResponseTemplate::new(200).set_body_json(body)).await;
    let t = client(&server)
        .create_tunnel(&CreateTunnelRequest::new(8080))
        .await
        .unwrap();
    assert_eq!(t.server_port, 7000);
    assert!(t.labels.is_empty());
    assert!(t.http_password.is_none() && t.name.is_none() && t.status.is_none());
}

#[tokio::test]
async fn create_without_a_required_field_is_a_readable_error_without_secrets() {
    let mut body = created_json();
    body.as_object_mut().unwrap().remove("binding_secret");
    let err = create_error(ResponseTemplate::new(201).set_body_json(body)).await;
    let msg = err.to_string();
    assert!(
        matches!(err, PrimeError::UnexpectedResponse { status: 201, .. }),
        "{err:?}"
    );
    assert!(msg.contains("binding_secret"), "{msg}");

    // A secret of the wrong type is reported without quoting it.
    let mut body = created_json();
    body["server_port"] = json!(FRP_TOKEN);
    let err = create_error(ResponseTemplate::new(201).set_body_json(body)).await;
    assert!(!err.to_string().contains(FRP_TOKEN), "{err}");
}

#[tokio::test]
async fn created_tunnel_debug_shows_no_secret() {
    let server = server_answering(ResponseTemplate::new(201).set_body_json(created_json())).await;
    let c = client(&server);
    let t = c
        .create_tunnel(&CreateTunnelRequest::new(8080))
        .await
        .unwrap();
    let shown = format!("{t:?} {c:?} {:?} {:#?}", c.config(), t);
    for secret in [FRP_TOKEN, BINDING, PASSWORD, KEY] {
        assert!(!shown.contains(secret), "{secret} leaked in {shown}");
    }
    assert!(shown.contains("<redacted>"));
    assert!(shown.contains(ID), "non-secret fields stay visible");
}

#[tokio::test]
async fn create_refuses_unsafe_values_from_the_api() {
    let cases: Vec<(&str, Value)> = vec![
        ("tunnel_id", json!("../../etc/passwd")),
        ("tunnel_id", json!("")),
        ("tunnel_id", json!("a".repeat(64))),
        ("hostname", json!("evil host.example")),
        ("hostname", json!("x.example\r\nSet-Cookie: a=b")),
        ("url", json!("javascript:alert(1)")),
        ("url", json!("ftp://x.example")),
        ("url", json!("https://x.example/\u{1b}[31m")),
        ("server_host", json!("tunnel.pinfra.io; rm -rf /")),
        ("server_host", json!("")),
        ("server_port", json!(0)),
        ("frp_token", json!("tok\nen")),
        ("binding_secret", json!("b\u{7}")),
        ("name", json!("demo\u{1b}]0;pwned\u{7}")),
        ("name", json!("evil\u{202e}txt.exe")),
        ("labels", json!(["ok", "bad\u{0}"])),
        ("expires_at", json!("2026\r\n")),
        ("status", json!("pend\u{1b}ing")),
    ];
    for (field, value) in cases {
        let mut body = created_json();
        body[field] = value.clone();
        let err = create_error(ResponseTemplate::new(201).set_body_json(body)).await;
        assert!(
            matches!(err, PrimeError::InvalidResponse(_)),
            "{field}={value}: {err:?}"
        );
        let msg = err.to_string();
        assert!(
            !msg.chars().any(|c| c.is_control()),
            "error message carries control characters: {msg:?}"
        );
        for secret in [FRP_TOKEN, BINDING, PASSWORD] {
            assert!(!msg.contains(secret));
        }
    }
}

#[tokio::test]
async fn create_accepts_an_ip_address_as_server_host() {
    for host in ["203.0.113.7", "2001:db8::1"] {
        let mut body = created_json();
        body["server_host"] = json!(host);
        let server = server_answering(ResponseTemplate::new(201).set_body_json(body)).await;
        let t = client(&server)
            .create_tunnel(&CreateTunnelRequest::new(1))
            .await
            .unwrap();
        assert_eq!(t.server_host, host);
    }
}

#[tokio::test]
async fn create_with_an_invalid_answer_deletes_the_registration() {
    let server = MockServer::start().await;
    let mut body = created_json();
    body["hostname"] = json!("not a host");
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(body))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(tunnel_path(ID))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server)
        .create_tunnel(&CreateTunnelRequest::new(1))
        .await
        .unwrap_err();
    assert!(matches!(err, PrimeError::InvalidResponse(_)), "{err:?}");
}

#[tokio::test]
async fn create_refuses_bad_arguments_without_a_request() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let c = client(&server);
    for req in [
        CreateTunnelRequest::new(0),
        CreateTunnelRequest::new(80).http_user(""),
        CreateTunnelRequest::new(80).http_user("a:b"),
        CreateTunnelRequest::new(80).http_user("a b"),
    ] {
        let err = c.create_tunnel(&req).await.unwrap_err();
        assert!(matches!(err, PrimeError::InvalidRequest(_)), "{err:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// get

#[tokio::test]
async fn get_returns_the_tunnel() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(tunnel_path(ID))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(info_json(ID, "CONNECTED")))
        .expect(1)
        .mount(&server)
        .await;
    let t = client(&server).get_tunnel(ID).await.unwrap().unwrap();
    assert_eq!(t.tunnel_id, ID);
    assert_eq!(t.status, Some(TunnelStatus::Connected));
    assert_eq!(
        t.url.as_deref(),
        Some(&*format!("https://{ID}.tunnel.pinfra.io"))
    );
    assert_eq!(t.labels, ["x"]);
    assert!(!t.is_gone());
    assert_eq!(
        t.expires_at_time(),
        Some(UNIX_EPOCH + Duration::from_secs(1_791_979_200))
    );
}

#[tokio::test]
async fn get_of_a_missing_tunnel_is_none() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(tunnel_path(ID))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(json!({"detail": "Tunnel not found"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    assert!(client(&server).get_tunnel(ID).await.unwrap().is_none());
}

#[tokio::test]
async fn get_tolerates_a_minimal_answer_and_reports_terminal_states() {
    let server = server_answering(
        ResponseTemplate::new(200).set_body_json(json!({"tunnel_id": ID, "status": "Expired"})),
    )
    .await;
    let t = client(&server).get_tunnel(ID).await.unwrap().unwrap();
    assert!(t.is_gone());
    assert_eq!(t.hostname, None);
    assert_eq!(t.expires_at_time(), None);
}

#[tokio::test]
async fn get_refuses_an_answer_about_another_tunnel() {
    let server =
        server_answering(ResponseTemplate::new(200).set_body_json(info_json("t-2-x", "pending")))
            .await;
    let err = client(&server).get_tunnel(ID).await.unwrap_err();
    assert!(matches!(err, PrimeError::InvalidResponse(_)), "{err:?}");
}

#[tokio::test]
async fn unsafe_tunnel_ids_are_refused_before_any_request() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let c = client(&server);
    for id in ["../x", "", "a/b", "a?b=c", "a b", "-rf", "x\r\ny"] {
        assert!(
            matches!(c.get_tunnel(id).await, Err(PrimeError::InvalidRequest(_))),
            "get {id:?}"
        );
        assert!(
            matches!(
                c.delete_tunnel(id).await,
                Err(PrimeError::InvalidRequest(_))
            ),
            "delete {id:?}"
        );
    }
    let bulk = BulkDeleteRequest::ids(["ok-1", "../bad"]);
    assert!(matches!(
        c.bulk_delete_tunnels(&bulk).await,
        Err(PrimeError::InvalidRequest(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// list

#[tokio::test]
async fn list_sends_paging_sorting_and_filters() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(tunnels_path())
        .and(query_param("page", "2"))
        .and(query_param("perPage", "10"))
        .and(query_param("sortBy", "expiresAt"))
        .and(query_param("sortOrder", "asc"))
        .and(query_param("teamId", "team-7"))
        .and(query_param("status", "connected"))
        .and(query_param("labels", "a"))
        .and(query_param("labels", "b c"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "tunnels": [info_json("t-1", "connected"), info_json("t-2", "CONNECTED")],
            "total": 12,
            "page": 2,
            "per_page": 10,
            "has_next": false
        })))
        .expect(1)
        .mount(&server)
        .await;
    let q = ListQuery::new()
        .page(2)
        .per_page(10)
        .sort(SortBy::ExpiresAt, SortOrder::Asc)
        .team_id("team-7")
        .label("a")
        .label("b c")
        .status("Connected");
    let page = client(&server).list_tunnels(&q).await.unwrap();
    assert_eq!(page.total, 12);
    assert_eq!((page.page, page.per_page, page.has_next), (2, 10, false));
    let ids: Vec<_> = page.tunnels.iter().map(|t| t.tunnel_id.as_str()).collect();
    assert_eq!(ids, ["t-1", "t-2"]);

    // Labels go as a repeated key, in order.
    let reqs = server.received_requests().await.unwrap();
    let query = reqs[0].url.query().unwrap_or_default().to_owned();
    assert!(query.contains("labels=a&labels=b+c"), "{query}");
}

#[tokio::test]
async fn list_defaults_and_configured_team() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(tunnels_path())
        .and(query_param("page", "1"))
        .and(query_param("perPage", "50"))
        .and(query_param("sortBy", "createdAt"))
        .and(query_param("sortOrder", "desc"))
        .and(query_param("teamId", "cfg-team"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"tunnels": []})))
        .expect(1)
        .mount(&server)
        .await;
    let page = client_with_team(&server, "cfg-team")
        .list_tunnels(&ListQuery::default())
        .await
        .unwrap();
    assert!(page.tunnels.is_empty());
    assert!(!page.has_next);
    assert_eq!(page.total, 0);

    // Without a team nothing is sent for it.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"tunnels": null})))
        .mount(&server)
        .await;
    client(&server)
        .list_tunnels(&ListQuery::new())
        .await
        .unwrap();
    let reqs = server.received_requests().await.unwrap();
    assert!(!reqs[0].url.query().unwrap_or_default().contains("teamId"));
    assert!(!reqs[0].url.query().unwrap_or_default().contains("labels"));
    assert!(!reqs[0].url.query().unwrap_or_default().contains("status"));
}

#[tokio::test]
async fn list_all_walks_every_page() {
    let server = MockServer::start().await;
    for (page, ids, has_next) in [
        ("1", vec!["t-1", "t-2"], true),
        ("2", vec!["t-3", "t-4"], true),
        ("3", vec!["t-5"], false),
    ] {
        let tunnels: Vec<Value> = ids.iter().map(|id| info_json(id, "pending")).collect();
        Mock::given(method("GET"))
            .and(tunnels_path())
            .and(query_param("page", page))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "tunnels": tunnels, "total": 5, "page": page.parse::<u32>().unwrap(),
                "per_page": 2, "has_next": has_next
            })))
            .expect(1)
            .mount(&server)
            .await;
    }
    let all = client(&server)
        .list_all_tunnels(&ListQuery::new().per_page(2))
        .await
        .unwrap();
    let ids: Vec<_> = all.tunnels.iter().map(|t| t.tunnel_id.as_str()).collect();
    assert_eq!(ids, ["t-1", "t-2", "t-3", "t-4", "t-5"]);
    assert_eq!(all.cut, None);
}

#[tokio::test]
async fn list_all_stops_at_an_empty_page_that_claims_more() {
    let server = server_answering(
        ResponseTemplate::new(200).set_body_json(json!({"tunnels": [], "has_next": true})),
    )
    .await;
    let all = client(&server)
        .list_all_tunnels(&ListQuery::new())
        .await
        .unwrap();
    assert!(all.tunnels.is_empty());
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

/// A page of three tunnels that always claims more.
fn endless_page() -> ResponseTemplate {
    let tunnels: Vec<Value> = ["t-1", "t-2", "t-3"]
        .iter()
        .map(|id| info_json(id, "pending"))
        .collect();
    ResponseTemplate::new(200).set_body_json(json!({"tunnels": tunnels, "has_next": true}))
}

/// An endless list, walked with these bounds.
async fn list_all_bounded(
    response: ResponseTemplate,
    entries: usize,
    bytes: usize,
    time: Duration,
) -> (
    Result<expose::prime::TunnelList, PrimeError>,
    usize,
    Duration,
) {
    let server = server_answering(response).await;
    let started = Instant::now();
    let result = client_with(&server.uri(), fast().list_bounds(entries, bytes, time))
        .list_all_tunnels(&ListQuery::new())
        .await;
    let pages = server.received_requests().await.unwrap().len();
    (result, pages, started.elapsed())
}

#[tokio::test]
async fn list_all_stops_at_the_entry_bound_and_says_so() {
    let (result, pages, _) =
        list_all_bounded(endless_page(), 7, 1 << 20, Duration::from_secs(30)).await;
    let list = result.unwrap();
    assert_eq!(list.tunnels.len(), 7);
    assert_eq!(list.cut, Some(ListCut::Entries(7)));
    assert_eq!(list.cut.unwrap().as_str(), "max_entries");
    assert!(list.cut.unwrap().to_string().contains("7 tunnels"));
    assert_eq!(pages, 3);
}

#[tokio::test]
async fn list_all_stops_at_the_byte_bound_and_says_so() {
    let (result, pages, _) =
        list_all_bounded(endless_page(), 1_000_000, 2048, Duration::from_secs(30)).await;
    let list = result.unwrap();
    assert_eq!(list.cut, Some(ListCut::Bytes(2048)));
    // Each page is several hundred bytes: a few pages, never the endless rest.
    assert!((2..=8).contains(&pages), "{pages} pages");
    assert_eq!(list.tunnels.len(), 3 * pages);
}

#[tokio::test]
async fn list_all_stops_at_the_time_bound_and_says_so() {
    let slow = endless_page().set_delay(Duration::from_millis(300));
    let bound = Duration::from_secs(1);
    let (result, pages, took) = list_all_bounded(slow, 1_000_000, 1 << 30, bound).await;
    let list = result.unwrap();
    assert_eq!(list.cut, Some(ListCut::Time(bound)));
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!((2..=5).contains(&pages), "{pages} pages");
    assert!(list.tunnels.len() >= 3);
}

#[tokio::test]
async fn list_all_without_a_single_page_in_time_is_a_timeout() {
    let stuck = endless_page().set_delay(Duration::from_secs(3));
    let (result, _, took) =
        list_all_bounded(stuck, 1_000_000, 1 << 30, Duration::from_millis(300)).await;
    let err = result.unwrap_err();
    assert!(
        matches!(err, PrimeError::Transport { timeout: true, .. }),
        "{err:?}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[tokio::test]
async fn list_all_stops_after_1000_pages_and_says_so() {
    let (result, pages, _) =
        list_all_bounded(endless_page(), usize::MAX, usize::MAX, Duration::MAX).await;
    let list = result.unwrap();
    assert_eq!(list.cut, Some(ListCut::Pages(1000)));
    assert_eq!(pages, 1000);
    assert_eq!(list.tunnels.len(), 3000);
}

#[tokio::test]
async fn list_refuses_a_tunnel_with_unsafe_values() {
    let mut bad = info_json("t-1", "pending");
    bad["url"] = json!("https://x.example/\u{1b}[2J");
    let server = server_answering(
        ResponseTemplate::new(200).set_body_json(json!({"tunnels": [bad], "has_next": false})),
    )
    .await;
    let err = client(&server)
        .list_tunnels(&ListQuery::new())
        .await
        .unwrap_err();
    assert!(matches!(err, PrimeError::InvalidResponse(_)), "{err:?}");
}

#[test]
fn status_is_case_insensitive_and_keeps_unknown_values() {
    assert_eq!(TunnelStatus::parse("CONNECTED"), TunnelStatus::Connected);
    assert_eq!(
        TunnelStatus::parse("Disconnected"),
        TunnelStatus::Disconnected
    );
    assert_eq!(TunnelStatus::parse("pending"), TunnelStatus::Pending);
    assert_eq!(TunnelStatus::parse("terminated"), TunnelStatus::Terminated);
    assert_eq!(
        TunnelStatus::parse("Hibernating"),
        TunnelStatus::Other("Hibernating".into())
    );
    assert_eq!(TunnelStatus::parse("Hibernating").as_str(), "Hibernating");
    assert_eq!(TunnelStatus::Connected.to_string(), "connected");
    assert!(TunnelStatus::parse("EXPIRED").is_terminal());
    assert!(TunnelStatus::Terminated.is_terminal());
    assert!(!TunnelStatus::Disconnected.is_terminal());
    let parsed: TunnelStatus = serde_json::from_value(json!("Pending")).unwrap();
    assert_eq!(parsed, TunnelStatus::Pending);
    assert_eq!(
        serde_json::to_value(TunnelStatus::Expired).unwrap(),
        json!("expired")
    );
}

// ---------------------------------------------------------------------------------------------
// delete and bulk delete

#[tokio::test]
async fn delete_accepts_200_and_204_and_reports_404_as_already_gone() {
    for (status, expected) in [(200, true), (204, true), (404, false)] {
        let server = MockServer::start().await;
        let mut resp = ResponseTemplate::new(status);
        if status == 200 {
            resp = resp.set_body_json(json!({"success": true, "message": "Tunnel deleted"}));
        }
        Mock::given(method("DELETE"))
            .and(tunnel_path(ID))
            .and(header("authorization", format!("Bearer {KEY}").as_str()))
            .respond_with(resp)
            .expect(1)
            .mount(&server)
            .await;
        assert_eq!(client(&server).delete_tunnel(ID).await.unwrap(), expected);
    }
}

#[tokio::test]
async fn delete_maps_other_statuses_to_errors() {
    let server = server_answering(
        ResponseTemplate::new(503).set_body_json(json!({"detail": "maintenance"})),
    )
    .await;
    let err = client(&server).delete_tunnel(ID).await.unwrap_err();
    assert!(
        matches!(&err, PrimeError::Server { status: 503, detail } if detail == "maintenance"),
        "{err:?}"
    );
}

#[tokio::test]
async fn bulk_delete_by_ids_sends_all_users_and_parses_the_outcome() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(tunnels_path())
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(body_json(
            json!({"all_users": false, "tunnel_ids": ["t-1", "t-2", "t-3"]}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "succeeded": ["t-1"],
            "failed": [
                {"tunnel_id": "t-2", "error": "Tunnel not found"},
                {"tunnel_id": "t-3", "error": "permission\u{1b}[31m denied\r\n"}
            ],
            "extra": true
        })))
        .expect(1)
        .mount(&server)
        .await;
    let res = client(&server)
        .bulk_delete_tunnels(&BulkDeleteRequest::ids(["t-1", "t-2", "t-3"]))
        .await
        .unwrap();
    assert_eq!(res.succeeded, ["t-1"]);
    assert_eq!(res.failed.len(), 2);
    assert!(res.failed[0].is_not_found());
    assert!(!res.failed[1].is_not_found());
    assert_eq!(res.failed[1].tunnel_id, "t-3");
    assert_eq!(res.failed[1].error, "permission[31m denied");
}

#[tokio::test]
async fn bulk_delete_by_filter_sends_each_set_filter() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(tunnels_path())
        .and(body_json(json!({
            "all_users": true,
            "labels": ["ci", "nightly"],
            "status": "disconnected",
            "teamId": "team-1",
            "userId": "user-1"
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"succeeded": ["t-9"]})))
        .expect(1)
        .mount(&server)
        .await;
    let req = BulkDeleteRequest::default()
        .all_users(true)
        .label("ci")
        .label("nightly")
        .status(TunnelStatus::Disconnected)
        .team_id("team-1")
        .user_id("user-1");
    let res = client(&server).bulk_delete_tunnels(&req).await.unwrap();
    assert_eq!(res.succeeded, ["t-9"]);
    assert!(res.failed.is_empty());
}

#[tokio::test]
async fn bulk_delete_without_ids_or_filters_is_refused() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let req = BulkDeleteRequest::default().all_users(true).team_id("");
    let err = client(&server).bulk_delete_tunnels(&req).await.unwrap_err();
    assert!(matches!(err, PrimeError::InvalidRequest(_)), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// Error statuses

#[tokio::test]
async fn status_401_is_unauthorized() {
    let err =
        create_error(ResponseTemplate::new(401).set_body_json(json!({"detail": "bad"}))).await;
    assert!(matches!(err, PrimeError::Unauthorized), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(err.to_string().contains("API key unauthorized"));
    assert_eq!(err.status(), Some(401));
}

#[tokio::test]
async fn status_402_is_payment_required() {
    let err = create_error(
        ResponseTemplate::new(402).set_body_json(json!({"detail": "Insufficient balance"})),
    )
    .await;
    assert!(
        matches!(&err, PrimeError::PaymentRequired(d) if d == "Insufficient balance"),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Auth);
}

#[tokio::test]
async fn status_400_with_maximum_number_is_the_tunnel_limit() {
    let detail = "You have reached the maximum number of concurrent tunnels (5)";
    let err =
        create_error(ResponseTemplate::new(400).set_body_json(json!({"detail": detail}))).await;
    assert!(
        matches!(&err, PrimeError::LimitReached(d) if d == detail),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Limit);
    assert!(err.to_string().contains("tunnel limit reached"));

    // The same words in a plain-text body count too.
    let err = create_error(
        ResponseTemplate::new(400).set_body_string("maximum number of tunnels reached"),
    )
    .await;
    assert!(matches!(err, PrimeError::LimitReached(_)), "{err:?}");
}

#[tokio::test]
async fn other_400_is_bad_request_with_the_detail() {
    let err = create_error(
        ResponseTemplate::new(400).set_body_json(json!({"detail": "Invalid team\u{1b}[0m"})),
    )
    .await;
    assert!(
        matches!(&err, PrimeError::BadRequest(d) if d == "Invalid team[0m"),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Other);
}

#[tokio::test]
async fn status_404_on_create_is_not_found() {
    let err =
        create_error(ResponseTemplate::new(404).set_body_json(json!({"detail": "Not Found"})))
            .await;
    assert!(
        matches!(&err, PrimeError::NotFound(d) if d == "Not Found"),
        "{err:?}"
    );
}

#[tokio::test]
async fn status_422_lists_each_parameter() {
    let err = create_error(ResponseTemplate::new(422).set_body_json(json!({
        "detail": [
            {"loc": ["body", "local_port"], "msg": "Input should be less than or equal to 65535", "type": "less_than_equal"},
            {"loc": ["body", "labels", 0], "msg": "String should have at most 64 characters"},
            {"loc": ["query", "page"], "msg": "must be positive"}
        ]
    })))
    .await;
    let PrimeError::Validation(fields) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(fields.len(), 3);
    assert_eq!(fields[0].param, "local_port");
    assert_eq!(fields[1].param, "labels.0");
    assert_eq!(fields[2].param, "page");
    assert_eq!(
        err.to_string(),
        "request rejected by the Prime API (HTTP 422): \
         local_port: Input should be less than or equal to 65535; \
         labels.0: String should have at most 64 characters; page: must be positive"
    );
}

#[tokio::test]
async fn status_422_tolerates_other_shapes() {
    let err = create_error(
        ResponseTemplate::new(422).set_body_json(json!({"detail": "name is too long"})),
    )
    .await;
    assert!(
        err.to_string().ends_with("(HTTP 422): name is too long"),
        "{err}"
    );

    let err = create_error(ResponseTemplate::new(422).set_body_json(json!({
        "detail": [{"param": "name", "details": "too long"}]
    })))
    .await;
    assert!(err.to_string().ends_with("name: too long"), "{err}");

    let err = create_error(ResponseTemplate::new(422).set_body_string("<html>oops</html>")).await;
    assert!(
        matches!(&err, PrimeError::Validation(f) if f.len() == 1),
        "{err:?}"
    );
}

#[tokio::test]
async fn status_5xx_is_a_server_error_even_with_an_html_page() {
    let page = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\
                <body><center><h1>502 Bad Gateway</h1></center></body></html>";
    let err = create_error(ResponseTemplate::new(502).set_body_raw(page, "text/html")).await;
    assert!(
        matches!(&err, PrimeError::Server { status: 502, detail } if detail == "HTML page: 502 Bad Gateway"),
        "{err:?}"
    );
    let err = create_error(ResponseTemplate::new(500)).await;
    assert!(
        matches!(&err, PrimeError::Server { status: 500, detail } if detail == "Internal Server Error"),
        "{err:?}"
    );
}

#[tokio::test]
async fn other_statuses_are_http_errors() {
    let err =
        create_error(ResponseTemplate::new(403).set_body_json(json!({"message": "forbidden"})))
            .await;
    assert!(
        matches!(&err, PrimeError::Http { status: 403, detail } if detail == "forbidden"),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 429

#[tokio::test]
async fn rate_limited_post_is_retried_after_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0"))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(created_json()))
        .expect(1)
        .mount(&server)
        .await;
    let t = client(&server)
        .create_tunnel(&CreateTunnelRequest::new(1))
        .await
        .unwrap();
    assert_eq!(t.tunnel_id, ID);
}

#[tokio::test]
async fn rate_limit_retries_are_bounded() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0"))
        .expect(4) // the request and three retries
        .mount(&server)
        .await;
    let err = client(&server).get_tunnel(ID).await.unwrap_err();
    assert!(
        matches!(
            err,
            PrimeError::RateLimited {
                retry_after: Some(d),
                attempts: 4
            } if d == Duration::ZERO
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Limit);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(info_json(ID, "pending")))
        .mount(&server)
        .await;
    let opts = fast().rate_limit_max_wait(Duration::from_secs(10));
    let started = Instant::now();
    client_with(&server.uri(), opts)
        .get_tunnel(ID)
        .await
        .unwrap()
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(950));
}

#[tokio::test]
async fn long_retry_after_is_capped() {
    assert_eq!(DEFAULT_RATE_LIMIT_MAX_WAIT, Duration::from_secs(10));
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "3600"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let opts = fast().rate_limit_max_wait(Duration::from_millis(50));
    let started = Instant::now();
    assert!(client_with(&server.uri(), opts)
        .delete_tunnel(ID)
        .await
        .unwrap());
    assert!(started.elapsed() < Duration::from_secs(3));
}

// ---------------------------------------------------------------------------------------------
// Bodies that are not what they should be

#[tokio::test]
async fn malformed_json_is_a_readable_error_that_quotes_no_secret() {
    let body = format!(r#"{{"tunnel_id": "{ID}", "frp_token": "{FRP_TOKEN}", "#);
    let err = create_error(ResponseTemplate::new(201).set_body_raw(body, "application/json")).await;
    let msg = err.to_string();
    assert!(
        matches!(err, PrimeError::UnexpectedResponse { status: 201, .. }),
        "{err:?}"
    );
    assert!(msg.contains("malformed JSON"), "{msg}");
    assert!(!msg.contains(FRP_TOKEN), "{msg}");
}

#[tokio::test]
async fn an_html_page_with_status_200_is_a_readable_error() {
    let page = format!(
        "<html>\n<head><title>Login</title></head>\u{1b}[31m<body>{}</body></html>",
        "x".repeat(500)
    );
    let server = server_answering(ResponseTemplate::new(200).set_body_raw(page, "text/html")).await;
    let err = client(&server).get_tunnel(ID).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "unexpected response from the API (HTTP 200): not JSON: <html> <head><title>Login"
        ),
        "{msg}"
    );
    assert!(!msg.chars().any(|c| c.is_control()), "{msg:?}");
    assert!(msg.chars().count() < 300, "{msg}");
}

#[tokio::test]
async fn wrong_shapes_and_empty_bodies_are_errors_not_panics() {
    for (status, body) in [
        (200, r#"{"tunnels": "nope"}"#),
        (200, r#"[1, 2, 3]"#),
        (200, ""),
        (200, "null"),
        (200, r#"{"tunnels": [{"no_id": true}]}"#),
    ] {
        let server =
            server_answering(ResponseTemplate::new(status).set_body_raw(body, "application/json"))
                .await;
        let err = client(&server)
            .list_tunnels(&ListQuery::new())
            .await
            .unwrap_err();
        assert!(
            matches!(err, PrimeError::UnexpectedResponse { status: 200, .. }),
            "{body}: {err:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Transport failures

#[tokio::test]
async fn get_is_retried_on_connection_refused() {
    let base = format!("http://127.0.0.1:{}", refused_port());
    let opts = ClientOptions::default().use_system_proxy(false);
    let started = Instant::now();
    let err = client_with(&base, opts).get_tunnel(ID).await.unwrap_err();
    // Three attempts: backoffs of 100 ms and 200 ms between them.
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(&err, PrimeError::Transport { timeout: false, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("connection failed"), "{msg}");
    assert!(msg.contains(&base), "{msg}");
    assert_eq!(err.kind(), ErrorKind::Other);
}

#[tokio::test]
async fn post_is_not_retried_on_connection_refused() {
    let base = format!("http://127.0.0.1:{}", refused_port());
    let opts = fast().backoff(Duration::from_secs(2), Duration::from_secs(2));
    let started = Instant::now();
    let err = client_with(&base, opts)
        .create_tunnel(&CreateTunnelRequest::new(1))
        .await
        .unwrap_err();
    assert!(matches!(err, PrimeError::Transport { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a retry would have waited"
    );
}

fn slow_options() -> ClientOptions {
    fast().timeout(Duration::from_millis(200))
}

#[tokio::test]
async fn get_and_delete_are_retried_on_timeouts() {
    let server = MockServer::start().await;
    let slow = ResponseTemplate::new(200)
        .set_body_json(info_json(ID, "pending"))
        .set_delay(Duration::from_secs(2));
    Mock::given(method("GET"))
        .respond_with(slow.clone())
        .expect(3)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .respond_with(slow)
        .expect(3)
        .mount(&server)
        .await;
    let c = client_with(&server.uri(), slow_options());
    let err = c.get_tunnel(ID).await.unwrap_err();
    assert!(
        matches!(&err, PrimeError::Transport { timeout: true, .. }),
        "{err:?}"
    );
    let err = c.delete_tunnel(ID).await.unwrap_err();
    assert!(
        matches!(&err, PrimeError::Transport { timeout: true, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn post_is_not_retried_on_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(created_json())
                .set_delay(Duration::from_secs(2)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = client_with(&server.uri(), slow_options())
        .create_tunnel(&CreateTunnelRequest::new(1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PrimeError::Transport { timeout: true, .. }),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Configuration

#[test]
fn config_key_comes_from_env_first_then_the_file() {
    let home = tempfile::tempdir().unwrap();
    write(
        home.path(),
        ".prime/config.json",
        r#"{"api_key": "file-key", "team_id": "file-team", "user_id": "file-user", "other": [1]}"#,
    );
    let h = Some(home.path().to_path_buf());

    let cfg =
        PrimeConfig::from_sources(env_of(&[("PRIME_API_KEY", "env-key")]), h.clone()).unwrap();
    assert_eq!(cfg.api_key.expose(), "env-key");
    assert_eq!(cfg.team_id.as_deref(), Some("file-team"));
    assert_eq!(cfg.user_id.as_deref(), Some("file-user"));
    assert_eq!(cfg.base_url, DEFAULT_BASE_URL);
    assert_eq!(cfg.context, None);

    let cfg = PrimeConfig::from_sources(env_of(&[]), h.clone()).unwrap();
    assert_eq!(cfg.api_key.expose(), "file-key");

    // An empty PRIME_API_KEY does not hide the file's key.
    let cfg = PrimeConfig::from_sources(env_of(&[("PRIME_API_KEY", "")]), h).unwrap();
    assert_eq!(cfg.api_key.expose(), "file-key");
}

#[test]
fn config_without_a_key_says_how_to_set_one() {
    let home = tempfile::tempdir().unwrap(); // no .prime at all: fine, just no key
    let err = PrimeConfig::from_sources(env_of(&[]), Some(home.path().to_path_buf())).unwrap_err();
    assert!(matches!(err, PrimeError::MissingApiKey), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Auth);
    let msg = err.to_string();
    assert!(
        msg.contains("export PRIME_API_KEY=") && msg.contains("prime login"),
        "{msg}"
    );

    let err = PrimeConfig::from_sources(env_of(&[]), None).unwrap_err();
    assert!(matches!(err, PrimeError::MissingApiKey));
}

#[test]
fn config_base_url_precedence_and_api_v1_stripping() {
    let home = tempfile::tempdir().unwrap();
    write(
        home.path(),
        ".prime/config.json",
        r#"{"api_key": "k", "base_url": "https://file.example/api/v1/"}"#,
    );
    let h = || Some(home.path().to_path_buf());
    let load = |pairs: &[(&str, &str)]| PrimeConfig::from_sources(env_of(pairs), h()).unwrap();

    assert_eq!(load(&[]).base_url, "https://file.example");
    assert_eq!(
        load(&[("PRIME_BASE_URL", "https://base.example/")]).base_url,
        "https://base.example"
    );
    assert_eq!(
        load(&[
            ("PRIME_BASE_URL", "https://base.example"),
            ("PRIME_API_BASE_URL", "http://127.0.0.1:8080/api/v1")
        ])
        .base_url,
        "http://127.0.0.1:8080"
    );
    assert_eq!(
        load(&[("PRIME_API_BASE_URL", "")]).base_url,
        "https://file.example",
        "an empty override is ignored"
    );
    let cfg = PrimeConfig::from_sources(env_of(&[("PRIME_API_KEY", "k")]), None).unwrap();
    assert_eq!(cfg.base_url, "https://api.primeintellect.ai");
    assert_eq!(
        PrimeConfig::new("k", "https://x.example/prefix/api/v1/").base_url,
        "https://x.example/prefix"
    );

    let err = PrimeConfig::from_sources(
        env_of(&[("PRIME_API_KEY", "k"), ("PRIME_BASE_URL", "ftp://nope")]),
        None,
    )
    .unwrap_err();
    assert!(
        matches!(&err, PrimeError::Config(m) if m.contains("PRIME_BASE_URL")),
        "{err:?}"
    );
}

#[test]
fn config_team_from_env_wins_even_when_empty() {
    let home = tempfile::tempdir().unwrap();
    write(
        home.path(),
        ".prime/config.json",
        r#"{"api_key": "k", "team_id": "file-team", "user_id": "file-user"}"#,
    );
    let h = || Some(home.path().to_path_buf());
    let cfg = PrimeConfig::from_sources(
        env_of(&[("PRIME_TEAM_ID", "env-team"), ("PRIME_USER_ID", "env-user")]),
        h(),
    )
    .unwrap();
    assert_eq!(cfg.team_id.as_deref(), Some("env-team"));
    assert_eq!(cfg.user_id.as_deref(), Some("env-user"));

    let cfg =
        PrimeConfig::from_sources(env_of(&[("PRIME_TEAM_ID", ""), ("PRIME_USER_ID", "")]), h())
            .unwrap();
    assert_eq!(cfg.team_id, None, "an empty PRIME_TEAM_ID means no team");
    assert_eq!(cfg.user_id, None);
}

#[test]
fn config_malformed_file_is_an_error_naming_the_file() {
    let home = tempfile::tempdir().unwrap();
    let file = write(home.path(), ".prime/config.json", r#"{"api_key": "k","#);
    let err =
        PrimeConfig::from_sources(env_of(&[("PRIME_API_KEY", "k")]), Some(home.path().into()))
            .unwrap_err();
    assert!(
        matches!(&err, PrimeError::ConfigFile { path, .. } if path == &file),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&file.display().to_string()),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::Auth);

    write(
        home.path(),
        ".prime/config.json",
        r#"["not", "an", "object"]"#,
    );
    let err = PrimeConfig::from_sources(env_of(&[]), Some(home.path().into())).unwrap_err();
    assert!(matches!(err, PrimeError::ConfigFile { .. }), "{err:?}");

    write(
        home.path(),
        ".prime/config.json",
        r#"{"api_key": {"nested": 1}}"#,
    );
    let err = PrimeConfig::from_sources(env_of(&[]), Some(home.path().into())).unwrap_err();
    assert!(matches!(err, PrimeError::ConfigFile { .. }), "{err:?}");
}

#[test]
fn config_context_overlays_its_environment_file() {
    let home = tempfile::tempdir().unwrap();
    write(
        home.path(),
        ".prime/config.json",
        r#"{"api_key": "main-key", "team_id": "main-team", "user_id": "u1", "base_url": "https://main.example"}"#,
    );
    write(
        home.path(),
        ".prime/environments/staging.json",
        r#"{"base_url": "https://staging.example/api/v1", "team_id": null, "api_key": "staging-key"}"#,
    );
    let h = || Some(home.path().to_path_buf());

    let cfg = PrimeConfig::from_sources(env_of(&[("PRIME_CONTEXT", "staging")]), h()).unwrap();
    assert_eq!(cfg.base_url, "https://staging.example");
    assert_eq!(cfg.api_key.expose(), "staging-key");
    assert_eq!(cfg.team_id, None);
    assert_eq!(
        cfg.user_id.as_deref(),
        Some("u1"),
        "keys the overlay lacks stay"
    );
    assert_eq!(cfg.context.as_deref(), Some("staging"));

    // Env still beats the overlay.
    let cfg = PrimeConfig::from_sources(
        env_of(&[("PRIME_CONTEXT", "staging"), ("PRIME_API_KEY", "env-key")]),
        h(),
    )
    .unwrap();
    assert_eq!(cfg.api_key.expose(), "env-key");

    // `production` needs no file: default base URL, no team.
    let cfg = PrimeConfig::from_sources(env_of(&[("PRIME_CONTEXT", "production")]), h()).unwrap();
    assert_eq!(cfg.base_url, DEFAULT_BASE_URL);
    assert_eq!(cfg.team_id, None);
    assert_eq!(cfg.api_key.expose(), "main-key");
}

#[test]
fn config_context_name_must_be_safe_and_exist() {
    let home = tempfile::tempdir().unwrap();
    write(home.path(), ".prime/config.json", r#"{"api_key": "k"}"#);
    write(home.path(), ".prime/secret.json", r#"{"api_key": "other"}"#);
    let h = || Some(home.path().to_path_buf());
    for bad in ["../secret", "a/b", "a.b", "x y", "dev\n"] {
        let err = PrimeConfig::from_sources(env_of(&[("PRIME_CONTEXT", bad)]), h()).unwrap_err();
        assert!(matches!(err, PrimeError::Config(_)), "{bad:?}: {err:?}");
        assert_eq!(err.kind(), ErrorKind::Auth);
    }
    let err = PrimeConfig::from_sources(env_of(&[("PRIME_CONTEXT", "nope")]), h()).unwrap_err();
    assert!(matches!(err, PrimeError::ConfigFile { .. }), "{err:?}");
}

#[test]
fn client_refuses_unusable_configs() {
    assert!(matches!(
        PrimeClient::new(PrimeConfig::new("", "https://x.example")),
        Err(PrimeError::MissingApiKey)
    ));
    assert!(matches!(
        PrimeClient::new(PrimeConfig::new("bad\nkey", "https://x.example")),
        Err(PrimeError::Config(_))
    ));
    assert!(matches!(
        PrimeClient::new(PrimeConfig::new("k", "not a url")),
        Err(PrimeError::Config(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Timestamps (the parsers themselves are unit-tested in src/prime/time.rs)

#[tokio::test]
async fn time_left_until_expiry() {
    let server = server_answering(ResponseTemplate::new(201).set_body_json(created_json())).await;
    let t = client(&server)
        .create_tunnel(&CreateTunnelRequest::new(1))
        .await
        .unwrap();
    let expiry = UNIX_EPOCH + Duration::from_secs(1_791_979_200);
    assert_eq!(t.expires_at_time().unwrap(), expiry);
    assert_eq!(
        t.time_left(expiry - Duration::from_secs(90)).unwrap(),
        Duration::from_secs(90)
    );
    assert_eq!(
        t.time_left(expiry + Duration::from_secs(5)).unwrap(),
        Duration::ZERO
    );
}

// ---------------------------------------------------------------------------------------------
// Logs

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

// current_thread: the client's tasks run on this thread, where the subscriber is installed.
#[tokio::test(flavor = "current_thread")]
async fn no_secret_reaches_the_logs_even_at_trace_level() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(created_json()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500).set_body_string("boom"))
        .mount(&server)
        .await;
    let c = client(&server);
    let t = c
        .create_tunnel(&CreateTunnelRequest::new(1).http_user("alice"))
        .await
        .unwrap();
    tracing::debug!(tunnel = ?t, client = ?c, "created");
    let _ = c.get_tunnel(ID).await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("Prime API"), "the capture works: {logs}");
    for secret in [KEY, FRP_TOKEN, BINDING, PASSWORD] {
        assert!(!logs.contains(secret), "{secret} in logs:\n{logs}");
    }
}

#[test]
fn error_kinds_for_exit_codes() {
    assert_eq!(PrimeError::MissingApiKey.kind(), ErrorKind::Auth);
    assert_eq!(PrimeError::Unauthorized.kind(), ErrorKind::Auth);
    assert_eq!(
        PrimeError::PaymentRequired(String::new()).kind(),
        ErrorKind::Auth
    );
    assert_eq!(PrimeError::Config(String::new()).kind(), ErrorKind::Auth);
    assert_eq!(
        PrimeError::LimitReached(String::new()).kind(),
        ErrorKind::Limit
    );
    assert_eq!(
        PrimeError::RateLimited {
            retry_after: None,
            attempts: 4
        }
        .kind(),
        ErrorKind::Limit
    );
    assert_eq!(
        PrimeError::BadRequest(String::new()).kind(),
        ErrorKind::Other
    );
    assert_eq!(
        PrimeError::Server {
            status: 500,
            detail: String::new()
        }
        .kind(),
        ErrorKind::Other
    );
    assert_eq!(
        PrimeError::InvalidResponse(String::new()).kind(),
        ErrorKind::Other
    );
}
