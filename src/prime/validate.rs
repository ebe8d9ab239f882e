//! Checks on values that cross the API boundary, and cleaning of free text for display.
//!
//! Values from the API end up in terminal output, HTTP headers, frp login messages and file
//! names. Identifiers are held to strict character sets; any text is refused if it carries a
//! character [`crate::text::is_unsafe_char`] refuses: control characters (terminal escapes,
//! header or line injection), Unicode bidirectional controls and invisible format characters
//! (text that displays differently from what it is).

use crate::text::{has_unsafe_chars, is_unsafe_char};
use std::net::IpAddr;

/// Longest DNS label (RFC 1035).
const MAX_LABEL: usize = 63;
/// Longest DNS name in text form, without a trailing dot (RFC 1035).
const MAX_DNS_NAME: usize = 253;
/// How much of a server's free text an error message quotes.
pub(crate) const MAX_QUOTED_CHARS: usize = 200;

/// True if `id` is a safe tunnel id: a DNS label of 1–63 ASCII letters, digits and hyphens, not
/// starting or ending with a hyphen (it becomes the tunnel's subdomain).
pub(crate) fn is_valid_tunnel_id(id: &str) -> bool {
    is_dns_label(id)
}

/// True if `name` is a valid DNS host name: dot-separated labels as in [`is_valid_tunnel_id`],
/// at most 253 characters, with an optional trailing dot.
pub(crate) fn is_valid_hostname(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty() && name.len() <= MAX_DNS_NAME && name.split('.').all(is_dns_label)
}

/// True if `host` is a host name or an IP address (what frp accepts as `serverAddr`).
pub(crate) fn is_valid_host(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok() || is_valid_hostname(host)
}

fn is_dns_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_LABEL
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
}

/// Server text made safe and short for an error message: unsafe characters dropped (line
/// breaks and tabs become spaces), runs of whitespace collapsed, cut to `max` characters.
pub(crate) fn clean_text(s: &str, max: usize) -> String {
    let kept: String = s
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .filter(|c| !is_unsafe_char(*c))
        .collect();
    let collapsed = kept.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= max {
        return collapsed;
    }
    let mut cut: String = collapsed.chars().take(max).collect();
    cut.push('…');
    cut
}

/// A URL from the API: `http://` or `https://`, a host, no whitespace or unsafe characters.
pub(crate) fn is_valid_url(url: &str) -> bool {
    let lower = url
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return false;
    };
    !rest.is_empty()
        && !url.chars().any(|c| c.is_whitespace() || is_unsafe_char(c))
        && reqwest::Url::parse(url).is_ok_and(|u| u.host_str().is_some_and(|h| !h.is_empty()))
}

/// Collects the first problem found while checking a response.
#[derive(Default)]
pub(crate) struct Checker {
    problem: Option<String>,
}

impl Checker {
    fn fail(&mut self, msg: impl FnOnce() -> String) {
        if self.problem.is_none() {
            self.problem = Some(msg());
        }
    }

    /// Free text: no unsafe characters. The value is shown escaped in the message.
    pub(crate) fn text(&mut self, field: &str, value: &str) {
        if has_unsafe_chars(value) {
            self.fail(|| format!("`{field}` contains control characters: {}", quote(value)));
        }
    }

    /// Optional free text.
    pub(crate) fn opt_text(&mut self, field: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.text(field, v);
        }
    }

    /// A secret: no unsafe characters, and the value is never shown.
    pub(crate) fn secret(&mut self, field: &str, value: &str) {
        if has_unsafe_chars(value) {
            self.fail(|| format!("`{field}` contains control characters"));
        }
    }

    /// A tunnel id.
    pub(crate) fn tunnel_id(&mut self, field: &str, value: &str) {
        if !is_valid_tunnel_id(value) {
            self.fail(|| {
                format!(
                    "`{field}` {} is not a valid tunnel id (1-63 letters, digits, hyphens)",
                    quote(value)
                )
            });
        }
    }

    /// A DNS host name.
    pub(crate) fn hostname(&mut self, field: &str, value: &str) {
        if !is_valid_hostname(value) {
            self.fail(|| format!("`{field}` {} is not a valid host name", quote(value)));
        }
    }

    /// A host name or an IP address.
    pub(crate) fn host(&mut self, field: &str, value: &str) {
        if !is_valid_host(value) {
            self.fail(|| {
                format!(
                    "`{field}` {} is not a valid host name or IP address",
                    quote(value)
                )
            });
        }
    }

    /// An http(s) URL.
    pub(crate) fn url(&mut self, field: &str, value: &str) {
        if !is_valid_url(value) {
            self.fail(|| format!("`{field}` {} is not an http(s) URL", quote(value)));
        }
    }

    /// A condition that must hold.
    pub(crate) fn require(&mut self, ok: bool, msg: impl FnOnce() -> String) {
        if !ok {
            self.fail(msg);
        }
    }

    /// The first problem, if any.
    pub(crate) fn finish(self) -> Result<(), String> {
        match self.problem {
            None => Ok(()),
            Some(p) => Err(p),
        }
    }
}

/// A value quoted for an error message: escaped (`{:?}` escapes control characters) and cut.
fn quote(value: &str) -> String {
    let cut: String = value.chars().take(80).collect();
    if cut.len() < value.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifier_checks() {
        assert!(is_valid_tunnel_id("t-1-0123456789abcdef"));
        assert!(is_valid_tunnel_id(&"a".repeat(63)));
        for bad in ["", "-a", "a-", "a_b", "a.b", "ä", &"a".repeat(64)] {
            assert!(!is_valid_tunnel_id(bad), "{bad:?}");
        }
        assert!(is_valid_hostname("t-1-abc.tunnel.pinfra.io"));
        assert!(is_valid_hostname("localhost."));
        for bad in [
            "",
            ".",
            "a..b",
            "a b",
            "-a.b",
            "a.b-",
            "x_y.z",
            &format!("{}.io", "a".repeat(64)),
        ] {
            assert!(!is_valid_hostname(bad), "{bad:?}");
        }
        assert!(
            is_valid_host("10.0.0.1") && is_valid_host("::1") && is_valid_host("tunnel.pinfra.io")
        );
        assert!(!is_valid_host("[::1]") && !is_valid_host("host:7000"));
    }
}
