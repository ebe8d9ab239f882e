//! Prime API replies read as every client call reads them (`expose::prime::fuzzing`), plus the
//! timestamp parsers on the same text.
//!
//! Two bytes pick the HTTP status (mostly the ones the client treats specially, sometimes any
//! code from 100 to 999); the rest is the body.
//!
//! Invariants: no panic; every error message is printable (no control or bidi characters),
//! bounded in length, and never quotes a credential the body carried; every value handed out
//! passed validation (safe ids, host names, no control characters anywhere); a 2xx create is
//! the only way to get credentials, and only with a valid tunnel id.

use super::{is_unsafe_char, Input};
use expose::prime::fuzzing::{
    is_valid_host, is_valid_hostname, is_valid_tunnel_id, parse_http_date, parse_rfc3339,
    read_reply, until,
};
use expose::prime::TunnelInfo;
use std::time::SystemTime;

/// Statuses the client treats specially, and common ones.
const STATUSES: [u16; 12] = [200, 201, 204, 400, 401, 402, 404, 422, 429, 500, 503, 302];

/// Longest error message: 20 field errors of two 200-character texts each, and some wording.
const MAX_MESSAGE_CHARS: usize = 10_000;

/// The id `get_tunnel` asks for.
const ASKED_ID: &str = "t-1-0123456789abcdef";

fn printable(what: &str, s: &str) {
    assert!(
        !s.chars().any(is_unsafe_char),
        "{what} is not printable: {s:?}"
    );
}

fn check_info(t: &TunnelInfo, now: SystemTime) {
    assert!(is_valid_tunnel_id(&t.tunnel_id), "{:?}", t.tunnel_id);
    if let Some(h) = &t.hostname {
        assert!(is_valid_hostname(h), "{h:?}");
    }
    for s in [
        &t.url,
        &t.name,
        &t.http_user,
        &t.user_id,
        &t.team_id,
        &t.expires_at,
    ]
    .into_iter()
    .flatten()
    {
        printable("a tunnel field", s);
    }
    for l in &t.labels {
        printable("a label", l);
    }
    let _ = t.time_left(now);
    let _ = t.is_gone();
}

/// String values of the credential fields anywhere in the body, long enough that finding one
/// in a message cannot be chance. Only a body that parses is searched; a broken one is
/// searched by the `broken_json_*` regression tests instead.
fn credentials(body: &[u8]) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    if let (
                        "frp_token" | "binding_secret" | "http_password",
                        serde_json::Value::String(s),
                    ) = (k.as_str(), v)
                    {
                        if s.chars().count() >= 12 {
                            out.push(s.clone());
                        }
                    }
                    walk(v, out);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        walk(&v, &mut out);
    }
    // A value that also stands elsewhere in the body (say, as the `detail` the error quotes
    // on purpose) proves nothing.
    let text = String::from_utf8_lossy(body);
    out.retain(|s| text.matches(s.as_str()).count() == 1);
    out
}

/// Runs the checks on one input.
pub fn run(data: &[u8]) {
    let mut input = Input(data);
    let sel = input.u16();
    let status = if sel & 0x8000 == 0 {
        STATUSES[sel as usize % STATUSES.len()]
    } else {
        100 + (sel & 0x7fff) % 900
    };
    let body = input.rest();
    let now = SystemTime::now();

    let text = String::from_utf8_lossy(body);
    let _ = parse_rfc3339(&text).map(|t| until(t, now));
    let _ = parse_http_date(&text);

    let r = read_reply(status, body, ASKED_ID).expect("a valid status code");
    let secrets = credentials(body);
    for e in r.errors() {
        let msg = e.to_string();
        printable("an error message", &msg);
        let chars = msg.chars().count();
        assert!(chars <= MAX_MESSAGE_CHARS, "a {chars}-character message");
        for s in &secrets {
            assert!(!msg.contains(s.as_str()), "a credential in {msg:?}");
        }
        if let Some(s) = e.status() {
            assert_eq!(s, status);
        }
    }

    if let Ok(t) = &r.create {
        assert!((200..300).contains(&status));
        assert!(is_valid_tunnel_id(&t.tunnel_id), "{:?}", t.tunnel_id);
        assert!(is_valid_hostname(&t.hostname), "{:?}", t.hostname);
        assert!(is_valid_host(&t.server_host), "{:?}", t.server_host);
        assert!(t.server_port != 0);
        let lower = t.url.to_ascii_lowercase();
        assert!(lower.starts_with("http://") || lower.starts_with("https://"));
        printable("url", &t.url);
        printable("frp_token", t.frp_token.expose());
        printable("binding_secret", t.binding_secret.expose());
        if let Some(p) = &t.http_password {
            printable("http_password", p.expose());
        }
        for s in [&t.name, &t.http_user, &t.user_id, &t.team_id]
            .into_iter()
            .flatten()
        {
            printable("a tunnel field", s);
        }
        let _ = t.time_left(now);
    }
    if let Ok(Some(t)) = &r.get {
        assert_eq!(t.tunnel_id, ASKED_ID);
        check_info(t, now);
    }
    if let Ok(page) = &r.list {
        for t in &page.tunnels {
            check_info(t, now);
        }
    }
    if let Ok(result) = &r.bulk_delete {
        for id in &result.succeeded {
            printable("a deleted id", id);
        }
        for f in &result.failed {
            printable("a failed id", &f.tunnel_id);
            printable("a failure", &f.error);
            let _ = f.is_not_found();
        }
    }
}
