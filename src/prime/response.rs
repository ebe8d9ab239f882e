//! Reading answers: success bodies into types, error statuses into [`PrimeError`]s.
//!
//! Whatever the server sends (broken JSON, an HTML error page, a proxy's plain text, escape
//! sequences) ends as a short, printable message, never a panic. Bodies are never logged, and a
//! body that may hold secrets (anything that starts like JSON) is never quoted.

use super::error::{FieldError, PrimeError};
use super::validate::{clean_text, MAX_QUOTED_CHARS};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Most 422 field errors kept in a [`PrimeError::Validation`].
const MAX_FIELD_ERRORS: usize = 20;

/// A response read in full.
pub(crate) struct Reply {
    /// The HTTP status.
    pub(crate) status: StatusCode,
    /// The whole body (bounded by the client).
    pub(crate) body: Vec<u8>,
}

/// Parses a success body, turning every failure into a readable [`PrimeError`].
pub(crate) fn parse_json<T: DeserializeOwned>(reply: &Reply) -> Result<T, PrimeError> {
    let status = reply.status.as_u16();
    let unexpected = |reason: String| PrimeError::UnexpectedResponse { status, reason };
    if reply.body.iter().all(u8::is_ascii_whitespace) {
        return Err(unexpected("empty body where JSON was expected".to_owned()));
    }
    serde_json::from_slice(&reply.body).map_err(|e| {
        if e.is_data() {
            // Data errors quote offending string values; those could be secrets.
            unexpected(format!(
                "JSON of an unexpected shape: {}",
                redact_quoted(&e.to_string())
            ))
        } else if starts_like_json(&reply.body) {
            // Truncated or broken JSON: the text could hold secrets, so show the position only.
            unexpected(format!("malformed JSON: {e}"))
        } else {
            unexpected(format!(
                "not JSON: {}",
                clean_text(&String::from_utf8_lossy(&reply.body), MAX_QUOTED_CHARS)
            ))
        }
    })
}

/// Whether a body starts like a JSON object or array: such a body may hold secrets, so it is
/// never quoted, whether it parses or not.
fn starts_like_json(body: &[u8]) -> bool {
    matches!(
        body.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    )
}

/// Replaces the contents of every `"…"` in a serde message. serde quotes values Rust-style, so
/// a `\"` inside a quote is part of the value, not its end.
fn redact_quoted(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut inside = false;
    let mut escaped = false;
    for c in msg.chars() {
        if inside && escaped {
            escaped = false;
        } else if inside && c == '\\' {
            escaped = true;
        } else if c == '"' {
            if inside {
                out.push_str("...\"");
            } else {
                out.push('"');
            }
            inside = !inside;
        } else if !inside {
            out.push(c);
        }
    }
    out
}

/// Maps a non-success status (other than the 404s the callers treat as "gone") to an error.
pub(crate) fn error_for_status(reply: &Reply) -> PrimeError {
    let status = reply.status;
    let json: Option<Value> = serde_json::from_slice(&reply.body).ok();
    let detail = || detail_of(status, json.as_ref(), &reply.body);
    match status.as_u16() {
        401 => PrimeError::Unauthorized,
        402 => PrimeError::PaymentRequired(detail()),
        400 => {
            let d = detail();
            if d.to_ascii_lowercase().contains("maximum number of") {
                PrimeError::LimitReached(d)
            } else {
                PrimeError::BadRequest(d)
            }
        }
        404 => PrimeError::NotFound(detail()),
        422 => {
            let mut fields = json.as_ref().map(field_errors).unwrap_or_default();
            if fields.is_empty() {
                fields.push(FieldError {
                    param: String::new(),
                    details: detail(),
                });
            }
            PrimeError::Validation(fields)
        }
        429 => PrimeError::RateLimited {
            retry_after: None,
            attempts: 1,
        },
        s if s >= 500 => PrimeError::Server {
            status: s,
            detail: detail(),
        },
        s => PrimeError::Http {
            status: s,
            detail: detail(),
        },
    }
}

/// The API's explanation: JSON `detail` (or `message`/`error`), else the body text (an HTML
/// page's `<title>`) unless it looks like JSON, else the status's reason phrase. Always
/// cleaned and short.
fn detail_of(status: StatusCode, json: Option<&Value>, body: &[u8]) -> String {
    let from_json = json.and_then(json_detail);
    let text = match from_json {
        Some(d) => d,
        None if starts_like_json(body) => String::new(),
        None => {
            let raw = String::from_utf8_lossy(body);
            html_title(&raw).unwrap_or_else(|| raw.into_owned())
        }
    };
    let cleaned = clean_text(&text, MAX_QUOTED_CHARS);
    if cleaned.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("no details given")
            .to_owned()
    } else {
        cleaned
    }
}

fn json_detail(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(m) => {
            for key in ["detail", "message", "error", "details"] {
                match m.get(key) {
                    Some(Value::String(s)) => return Some(s.clone()),
                    Some(Value::Array(_) | Value::Object(_)) => {
                        let fields = field_errors(v);
                        if !fields.is_empty() {
                            let parts: Vec<String> =
                                fields.iter().map(ToString::to_string).collect();
                            return Some(parts.join("; "));
                        }
                        if let Some(inner) = m.get(key).and_then(json_detail) {
                            return Some(inner);
                        }
                    }
                    _ => {}
                }
            }
            None
        }
        _ => None,
    }
}

/// A page's `<title>`, if the body looks like HTML.
fn html_title(body: &str) -> Option<String> {
    let trimmed = body.trim_start();
    if !trimmed.starts_with('<') {
        return None;
    }
    let lower = trimmed.to_ascii_lowercase();
    let start = lower.find("<title")?;
    let open_end = start + lower[start..].find('>')? + 1;
    let close = open_end + lower[open_end..].find("</title")?;
    let title = trimmed.get(open_end..close)?.trim();
    (!title.is_empty()).then(|| format!("HTML page: {title}"))
}

/// Parameter errors from a 422 body: FastAPI's `{"detail": [{"loc": [...], "msg": ...}]}`,
/// `{"detail": "text"}`, or a list of `{param, details}` objects.
fn field_errors(v: &Value) -> Vec<FieldError> {
    let list = match v {
        Value::Object(m) => ["detail", "errors", "details"]
            .iter()
            .find_map(|k| m.get(*k))
            .unwrap_or(v),
        other => other,
    };
    let items: Vec<&Value> = match list {
        Value::Array(items) => items.iter().collect(),
        Value::String(_) => vec![list],
        Value::Object(m) if has_any(m, &["msg", "message", "details", "loc", "param"]) => {
            vec![list]
        }
        _ => Vec::new(),
    };
    items
        .into_iter()
        .take(MAX_FIELD_ERRORS)
        .map(field_error)
        .filter(|f| !f.details.is_empty() || !f.param.is_empty())
        .collect()
}

fn has_any(m: &Map<String, Value>, keys: &[&str]) -> bool {
    keys.iter().any(|k| m.contains_key(*k))
}

fn field_error(item: &Value) -> FieldError {
    let clean = |s: &str| clean_text(s, MAX_QUOTED_CHARS);
    match item {
        Value::Object(m) => {
            let param = match m.get("loc") {
                Some(Value::Array(parts)) => {
                    let mut parts: Vec<String> = parts
                        .iter()
                        .map(|p| match p {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .collect();
                    let prefixes = ["body", "query", "path", "header", "cookie"];
                    if parts.len() > 1 && prefixes.contains(&parts[0].as_str()) {
                        parts.remove(0);
                    }
                    parts.join(".")
                }
                _ => ["loc", "param", "field", "name"]
                    .iter()
                    .find_map(|k| m.get(*k).and_then(Value::as_str))
                    .unwrap_or_default()
                    .to_owned(),
            };
            // Without a message the item is not quoted: JSON may hold secrets.
            let details = ["msg", "message", "details", "detail", "error"]
                .iter()
                .find_map(|k| m.get(*k).and_then(Value::as_str))
                .map(str::to_owned)
                .unwrap_or_default();
            FieldError {
                param: clean(&param),
                details: clean(&details),
            }
        }
        Value::String(s) => FieldError {
            param: String::new(),
            details: clean(s),
        },
        Value::Array(_) => FieldError {
            param: String::new(),
            details: String::new(),
        },
        other => FieldError {
            param: String::new(),
            details: clean(&other.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::redact_quoted;

    #[test]
    fn quoted_values_are_hidden_even_with_escaped_quotes_inside() {
        let msg = r#"invalid type: string "tok\"SECRET-1\"x", expected u16 at line 1"#;
        let out = redact_quoted(msg);
        assert!(!out.contains("SECRET"), "{out}");
        assert!(!out.contains("tok"), "{out}");
        assert_eq!(out, r#"invalid type: string "...", expected u16 at line 1"#);
        assert_eq!(redact_quoted(r#"a "b\\" c "d" e"#), r#"a "..." c "..." e"#);
    }

    #[test]
    fn serde_messages_with_escaped_quotes_do_not_leak() {
        #[derive(Debug, serde::Deserialize)]
        struct T {
            #[allow(dead_code)]
            port: u16,
        }
        let body = r#"{"port": "k\"SECRET-2\"z"}"#;
        let e = serde_json::from_str::<T>(body).unwrap_err().to_string();
        assert!(
            e.contains("SECRET-2"),
            "the test needs serde to quote the value: {e}"
        );
        assert!(
            !redact_quoted(&e).contains("SECRET-2"),
            "{}",
            redact_quoted(&e)
        );
    }
}
